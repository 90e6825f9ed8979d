"""A hostile file shown to the GUI behaves exactly as in the CLI: the same loader refuses it with
the same message (in the error dialog, or the trust prompt's details), nothing runs, the model
that was open stays open."""

import pytest
from PySide6.QtWidgets import QMessageBox

from quantgui import cli
from tests.hostile import corpus

LOAD_TIMEOUT_MS = 120_000

#: The cases the Open flow can express (the window has no --example-input field yet).
GUI_CASES = [m for m in corpus.MODEL_CASES if m is not corpus.example_input_flag]


def _open_kwargs(args):
    kwargs, rest = {"source": args[0]}, list(args[1:])
    while rest:
        flag, value = rest.pop(0), rest.pop(0)
        if flag == "--input-shape":
            kwargs["input_shape"] = tuple(int(d) for d in value.split(","))
        elif flag == "--data":
            kwargs["data"] = value
        else:
            raise AssertionError(f"no GUI field for {flag}")
    return kwargs


@pytest.mark.parametrize("make", GUI_CASES, ids=lambda m: m.__name__)
def test_hostile_file_in_the_gui_gets_the_cli_message(make, window, qtbot, tmp_path, capsys):
    work, canary = tmp_path / "corpus", tmp_path / "outside" / "canary"
    work.mkdir()
    case = make(work, canary)
    capsys.readouterr()  # whatever making the corpus printed
    assert cli.main(["inspect", *case.args]) == 2
    cli_line = capsys.readouterr().err.strip().removeprefix("quantgui-cli: error: ")
    before = window.loaded

    window.open_source(**_open_kwargs(case.args))
    qtbot.waitUntil(lambda: isinstance(window.dialog, QMessageBox) and window.dialog.isVisible(),
                    timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.engine.busy)
    box = window.dialog
    if box.objectName() == "trustBox":
        assert "refused because" in cli_line
        assert box.detailedText() == cli_line
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.No).click()
    else:
        assert box.objectName() == "errorBox"
        assert box.text() == cli_line
        box.done(0)
    assert not canary.exists()
    assert window.loaded is before


def test_trust_prompt_names_the_reason_and_escapes_the_file_name(window, qtbot, tmp_path):
    work = tmp_path / "a<b>dir"
    work.mkdir()
    case = corpus.pt2_pickled_weight(work, tmp_path / "canary")
    named = case.named.rename(work / "<i>x&y.pt2")
    window.open_source(str(named))
    qtbot.waitUntil(lambda: isinstance(window.dialog, QMessageBox) and window.dialog.isVisible()
                    and window.dialog.objectName() == "trustBox", timeout=LOAD_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.engine.busy)
    box = window.dialog
    assert "&lt;i&gt;x&amp;y.pt2" in box.text()
    assert "'fc.weight' is stored as a pickle" in box.informativeText()
    box.button(QMessageBox.StandardButton.No).click()
