"""Opening a model with the mouse alone (issue 9, items 1 and 10): the example-input dialog for a
model that carries none (TorchScript, a trusted pickle), the architecture dialog offering the
file's nn.Module classes, and both dialogs staying open, fields filled, with the error of a
failed attempt in them. Real widgets: keys typed into fields, the dialogs' own buttons, menu
actions; only the file dialogs are answered (monkeypatched)."""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox
from shiboken6 import isValid
from torch import nn

from quantgui.gui import model_dialogs
from quantgui.gui.example_dialog import ExampleInputDialog
from quantgui.gui.model_dialogs import ArchitectureDialog
from quantgui.gui.model_panel import DATA_FILE

LOAD_TIMEOUT_MS = 120_000

ARCH = '''import torch
from torch import nn


class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
'''


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _choose(monkeypatch, path):
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))


def wait_dialog(qtbot, w, cls):
    qtbot.waitUntil(lambda: isinstance(w.dialog, cls) and w.dialog.isVisible(),
                    timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)
    return w.dialog


def click_ok(qtbot, dlg):
    qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)


def wait_error(qtbot, w, dlg):
    """The attempt failed: its error is in the dialog, which is still open."""
    qtbot.waitUntil(lambda: not w.engine.busy and not dlg.busy, timeout=LOAD_TIMEOUT_MS)
    assert dlg.isVisible() and w.dialog is dlg
    assert dlg.error.isVisible()
    return dlg.error.text()


def closed(dlg):
    """Closed (and perhaps already deleted: the window deletes a dialog once finished)."""
    return not isValid(dlg) or not dlg.isVisible()


def type_into(qtbot, edit, text):
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


# -- item 1: the example-input step ------------------------------------------------------------
def test_torchscript_without_an_input_asks_for_one(window, qtbot, tmp_path):
    path = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.script(_mlp()), str(path))
    window.open_source(str(path))
    dlg = wait_dialog(qtbot, window, ExampleInputDialog)
    assert window.loaded.info.source.startswith("example:")  # the old model stays meanwhile
    assert "needs an example input" in dlg.intro.text()
    assert dlg.radios["shape"].isChecked() and "text" not in dlg.radios
    # No command-line flags in a window that has no command line.
    assert "--" not in "".join(lab.text() for lab in dlg.findChildren(type(dlg.error)))

    click_ok(qtbot, dlg)  # nothing typed: said in the dialog, nothing started
    assert "Type the input shape" in dlg.error.text() and not window.engine.busy

    type_into(qtbot, dlg.shape, "2,5")  # typing clears the old error
    assert not dlg.error.isVisible()
    click_ok(qtbot, dlg)
    error = wait_error(qtbot, window, dlg)
    assert error == (f"{path}: the model fails on the example input (2, 5) float32 "
                     f"(RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x5 and 4x8))")
    assert dlg.shape.text() == "2,5" and dlg.dtype.currentText() == "float32"

    type_into(qtbot, dlg.shape, "2,4")
    assert not dlg.error.isVisible()
    with qtbot.waitSignal(window.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        click_ok(qtbot, dlg)
    assert loaded.args[0].info.example_input == "(2, 4) float32"
    assert window.summary.fields["input"].text() == "(2, 4) float32"
    qtbot.waitUntil(lambda: closed(dlg))
    qtbot.waitUntil(lambda: not window.engine.busy)


def test_a_trusted_pickle_asks_for_its_input_without_asking_trust_again(window, qtbot, tmp_path,
                                                                        monkeypatch):
    path = tmp_path / "whole.pt"
    torch.save(_mlp(), path)
    asked = []
    real_box = model_dialogs.trust_box

    def counted(*args, **kwargs):
        asked.append(args[1])
        return real_box(*args, **kwargs)
    monkeypatch.setattr(model_dialogs, "trust_box", counted)
    window.open_source(str(path))
    box = wait_dialog(qtbot, window, QMessageBox)
    assert box.objectName() == "trustBox"
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    dlg = wait_dialog(qtbot, window, ExampleInputDialog)
    assert "Sequential, pickled, 67 parameters" in dlg.intro.text()
    type_into(qtbot, dlg.shape, "3,4")
    with qtbot.waitSignal(window.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        click_ok(qtbot, dlg)
    assert loaded.args[0].info.format == "pickled"
    assert loaded.args[0].info.example_input.startswith("(3, 4) float32")
    assert asked == [str(path)]  # one trust prompt, not two
    assert window.loaded_args["trust"] is True
    qtbot.waitUntil(lambda: not window.engine.busy)


def test_input_from_a_data_file_without_labels_is_fidelity_only(window, qtbot, tmp_path,
                                                               monkeypatch):
    path = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.script(_mlp()), str(path))
    data = tmp_path / "inputs_only.npz"
    np.savez(data, inputs=np.random.default_rng(0).normal(size=(20, 4)).astype("float32"))
    window.open_source(str(path))
    dlg = wait_dialog(qtbot, window, ExampleInputDialog)
    _choose(monkeypatch, data)
    qtbot.mouseClick(dlg.findChild(type(dlg.ok_button), "exampleDataBrowse"),
                     Qt.MouseButton.LeftButton)
    assert dlg.data.text() == str(data) and dlg.radios["data"].isChecked()
    with qtbot.waitSignal(window.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        click_ok(qtbot, dlg)
    assert loaded.args[0].info.example_input.startswith("(8, 4) float32")
    assert not loaded.args[0].test.labeled
    assert "unlabeled: fidelity only" in window.summary.fields["data"].text()
    chooser = window.data_chooser
    assert chooser.mode() == DATA_FILE
    assert chooser.path.text() == f"{data}\nno labels: fidelity only"
    qtbot.waitUntil(lambda: not window.engine.busy)


def test_example_input_action_for_a_text_model_offers_sentences(make_window, qtbot, tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "good", "bad"]
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64, num_labels=2)
    folder = tmp_path / "bert"
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    BertTokenizerFast(vocab={t: i for i, t in enumerate(words)}).save_pretrained(folder)
    w = make_window()
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source(str(folder))
    qtbot.waitUntil(lambda: not w.engine.busy)
    action = w.actions_by_name["example_input"]
    assert action.isEnabled()
    action.trigger()
    dlg = wait_dialog(qtbot, w, ExampleInputDialog)
    assert dlg.radios["text"].isChecked()
    dlg.sentences.setFocus()
    qtbot.keyClicks(dlg.sentences, "the film was good")
    qtbot.keyClick(dlg.sentences, Qt.Key.Key_Return)
    qtbot.keyClicks(dlg.sentences, "bad")
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        click_ok(qtbot, dlg)
    # [CLS] the film was good [SEP]; "bad" padded to it
    assert "input_ids: (2, 6) int64" in loaded.args[0].info.example_input
    qtbot.waitUntil(lambda: not w.engine.busy)


def test_example_input_action_is_off_for_a_model_that_carries_its_own(window):
    action = window.actions_by_name["example_input"]
    assert not action.isEnabled()
    assert action.toolTip() == "This model carries its own example input."


# -- item 10: the architecture dialog ---------------------------------------------------------
def test_architecture_dialog_lists_classes_and_stays_open_on_a_wrong_one(window, qtbot, tmp_path,
                                                                         monkeypatch):
    arch = tmp_path / "nets.py"
    arch.write_text(ARCH)
    torch.manual_seed(0)
    weights = tmp_path / "weights.pt"
    from importlib import util
    spec = util.spec_from_file_location("nets_for_test", arch)
    nets = util.module_from_spec(spec)
    spec.loader.exec_module(nets)
    torch.save(nets.Net().state_dict(), weights)

    window.open_source(str(weights))
    dlg = wait_dialog(qtbot, window, ArchitectureDialog)
    assert not dlg.classes.isVisible()
    assert dlg.reason.text() == (f"{weights}: holds only weights (a state_dict of 4 entries), "
                                 f"not a model")  # the CLI's line, less its flags
    _choose(monkeypatch, arch)
    qtbot.mouseClick(dlg.browse, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.classes.isVisible(), timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.engine.busy)
    assert [dlg.classes.itemText(i) for i in range(dlg.classes.count())] == ["Other", "Net"]
    assert dlg.arch.text() == f"{arch}:Other"  # the first, offered in the combo

    click_ok(qtbot, dlg)  # the wrong class: the dialog stays, with the error and the fields
    error = wait_error(qtbot, window, dlg)
    assert "the weights do not match" in error
    assert dlg.arch.text() == f"{arch}:Other"

    dlg.classes.setFocus()
    qtbot.keyClick(dlg.classes, Qt.Key.Key_Down)  # the keyboard's way of choosing "Net"
    assert dlg.arch.text() == f"{arch}:Net"
    assert not dlg.error.isVisible()  # the old error went with the edit
    type_into(qtbot, dlg.shape, "2,4")
    with qtbot.waitSignal(window.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        click_ok(qtbot, dlg)
    assert loaded.args[0].info.name == "Net"
    qtbot.waitUntil(lambda: closed(dlg))
    qtbot.waitUntil(lambda: not window.engine.busy)


def test_a_typo_in_the_class_and_then_the_missing_input(window, qtbot, tmp_path):
    arch = tmp_path / "nets.py"
    arch.write_text(ARCH)
    weights = tmp_path / "weights.pt"
    torch.save({"fc.weight": torch.ones(5, 4), "fc.bias": torch.zeros(5)}, weights)
    window.open_source(str(weights))
    dlg = wait_dialog(qtbot, window, ArchitectureDialog)
    type_into(qtbot, dlg.arch, f"{arch}:Othr")
    click_ok(qtbot, dlg)
    error = wait_error(qtbot, window, dlg)
    assert error == f"{arch}: defines no 'Othr' (found: Other, Net)"
    type_into(qtbot, dlg.arch, f"{arch}:Other")
    assert not dlg.error.isVisible()
    click_ok(qtbot, dlg)  # right class, no input shape: the example-input step follows
    example = wait_dialog(qtbot, window, ExampleInputDialog)
    assert closed(dlg)
    type_into(qtbot, example.shape, "2,4")
    with qtbot.waitSignal(window.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        click_ok(qtbot, example)
    assert loaded.args[0].info.name == "Other"
    assert window.loaded_args["arch"] == f"{arch}:Other"
    qtbot.waitUntil(lambda: not window.engine.busy)


def test_architecture_file_without_modules_or_broken(window, qtbot, tmp_path, monkeypatch):
    weights = tmp_path / "weights.pt"
    torch.save({"fc.weight": torch.ones(5, 4)}, weights)
    window.open_source(str(weights))
    dlg = wait_dialog(qtbot, window, ArchitectureDialog)
    empty = tmp_path / "helpers.py"
    empty.write_text("def make():\n    return None\n")
    _choose(monkeypatch, empty)
    qtbot.mouseClick(dlg.browse, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.browse.isEnabled() and not window.engine.busy,
                    timeout=LOAD_TIMEOUT_MS)
    assert dlg.error.text() == ("helpers.py defines no nn.Module class; if a function builds "
                                "the model, type its name after the colon")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    _choose(monkeypatch, broken)
    qtbot.mouseClick(dlg.browse, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.browse.isEnabled() and not window.engine.busy,
                    timeout=LOAD_TIMEOUT_MS)
    assert dlg.error.text() == (f"{broken}: importing the architecture file failed "
                                f"(RuntimeError: boom)")
    assert not dlg.classes.isVisible() and dlg.isVisible()


def test_cancel_closes_the_dialog_and_keeps_the_model(window, qtbot, tmp_path):
    path = tmp_path / "mlp.pt"
    torch.jit.save(torch.jit.script(_mlp()), str(path))
    before = window.loaded
    window.open_source(str(path))
    dlg = wait_dialog(qtbot, window, ExampleInputDialog)
    qtbot.mouseClick(dlg.buttons.button(dlg.buttons.StandardButton.Cancel),
                     Qt.MouseButton.LeftButton)
    assert closed(dlg) and window.loaded is before and not window.engine.busy
    assert window.summary.fields["source"].text().endswith(before.info.source)
