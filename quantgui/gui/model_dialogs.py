"""Dialogs and helpers for opening a model: file filters, drag and drop, the architecture
question (a state_dict needs its `nn.Module` class) and the explicit trust confirmation that
unpickling a whole module requires (unpickling runs arbitrary code). The example-input question
is example_dialog.py; open_flow.py routes the engine's refusals to these dialogs.

All dialogs are opened with `open()` (window-modal, returns at once) so the event loop, the
worker and the tests keep running.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QMessageBox, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget)

from .retry_dialog import RetryDialog
from .safe_text import html_text, plain_label, printable

#: Everything the engine's `open_model` reads (a Hugging Face folder is opened as a folder).
MODEL_SUFFIXES = (".pt", ".pth", ".pt2", ".bin", ".ckpt", ".safetensors", ".ts", ".jit",
                  ".torchscript")
MODEL_FILTER = ("PyTorch models (" + " ".join(f"*{s}" for s in MODEL_SUFFIXES) + ");;"
                "All files (*)")
DATA_FILTER = "Data files (*.npz *.pt *.pth);;All files (*)"
RECIPE_FILTER = "Recipes (*.json);;All files (*)"


def paths_from_mime(mime: QMimeData) -> list[str]:
    """Local files/folders in a drag (URLs that are not local files are ignored)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


def check_droppable(path: str) -> Optional[str]:
    """None when `path` looks like something `open_model` can read, else a clear reason."""
    p = Path(path)
    if not p.exists():
        return f"{path}: no such file or folder"
    if p.is_dir():
        if (p / "config.json").exists() or any(p.glob("*.safetensors")) or any(p.glob("*.bin")):
            return None
        return (f"{p.name}: this folder holds no model (a Hugging Face model folder has a "
                f"config.json and weights)")
    if p.suffix.lower() == ".json":
        return None  # a recipe: the window loads it into the panels
    if p.suffix.lower() not in MODEL_SUFFIXES:
        return (f"{p.name}: not a PyTorch model file; QuantGUI opens "
                f"{', '.join(MODEL_SUFFIXES)} files, Hugging Face folders and .json recipes")
    return None


def ask_open_model(parent: QWidget, start_dir: str = "") -> Optional[str]:
    path, _ = QFileDialog.getOpenFileName(parent, "Open model", start_dir, MODEL_FILTER)
    return path or None


def ask_open_folder(parent: QWidget, start_dir: str = "") -> Optional[str]:
    path = QFileDialog.getExistingDirectory(parent, "Open model folder (Hugging Face)", start_dir)
    return path or None


def trust_box(parent: QWidget, source: str, message: str = "") -> QMessageBox:
    """The confirmation before a file that runs code is opened. Default button: No.

    `message` is the engine's refusal (the same line the CLI prints); its reason in brackets
    says what in the file would run."""
    box = QMessageBox(parent)
    box.setObjectName("trustBox")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Trust this file?")
    box.setText(f"Opening <b>{html_text(Path(source).name)}</b> runs code stored in the file.")
    reason = _refusal_reason(message)
    box.setInformativeText(
        (f"Why: {html_text(reason)}.<br><br>" if reason else "")
        + "Such code can do <b>anything</b> on this computer with your permissions. Only continue "
        "if you created this file or fully trust where it came from.<br><br>Safer: save a "
        "state_dict (or TorchScript / torch.export without pickled parts) and open that "
        "instead.<br><br>Load it anyway?")
    if message:
        box.setDetailedText(message)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.setEscapeButton(QMessageBox.StandardButton.No)
    box.button(QMessageBox.StandardButton.Yes).setText("Trust and load")
    box.button(QMessageBox.StandardButton.Yes).setToolTip("Unpickle the file (runs its code)")
    box.button(QMessageBox.StandardButton.No).setToolTip("Do not load the file")
    return box


def _refusal_reason(message: str) -> str:
    """'... runs code stored in it (REASON); ...' -> REASON (empty when not in that form)."""
    head, sep, rest = message.partition("runs code stored in it (")
    if not sep:
        return ""
    depth, out = 1, []
    for ch in rest:
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            break
        out.append(ch)
    return "".join(out)


class ArchitectureDialog(RetryDialog):
    """Asks which `nn.Module` a state_dict belongs to: `file.py:Factory` plus JSON kwargs.

    Browse picks the file; the window then lists its nn.Module classes (importing the file runs
    it, on the worker: choosing the file is the user's decision to run it) into `classes`."""

    chosen = Signal(str, dict, object)  # arch, kwargs, input_shape (tuple or None)
    listRequested = Signal(str)         # a Python file whose nn.Module classes to list

    def __init__(self, parent: QWidget, source: str, message: str = "",
                 arch: str = "", kwargs: Optional[dict] = None) -> None:
        super().__init__(parent)
        self.setObjectName("archDialog")
        self.setWindowTitle("Which architecture?")
        self.source = source
        self.arch_file = ""  # the file Browse picked (whose classes are listed)
        intro = QLabel(f"<b>{html_text(Path(source).name)}</b> holds weights only (a state_dict). "
                       "Tell QuantGUI which Python class or factory builds the model.")
        intro.setWordWrap(True)
        self.reason = plain_label(message)
        self.reason.setWordWrap(True)
        self.reason.setVisible(bool(message))
        self.reason.setEnabled(False)

        self.arch = QLineEdit(arch)
        self.arch.setPlaceholderText("path/to/model.py:MyNet")
        self.arch.setToolTip("A Python file and the class or function in it that returns the "
                             "model, e.g. models/net.py:Net. The file is imported (runs its code).")
        self.browse = QPushButton("Browse…")
        self.browse.setToolTip("Pick the Python file that defines the model; its nn.Module "
                               "classes are then offered (listing them imports the file)")
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.arch, 1)
        row.addWidget(self.browse)
        self.classes = QComboBox()
        self.classes.setObjectName("archClasses")
        self.classes.setToolTip("The nn.Module classes the file defines; a factory function is "
                                "typed after the colon above instead")
        self.classes.activated.connect(self._class_chosen)
        self.classes_label = QLabel("Class:")
        self.kwargs = QPlainTextEdit(json.dumps(kwargs or {}))
        self.kwargs.setToolTip('Keyword arguments for the factory as a JSON object, e.g. '
                               '{"hidden": 256}')
        self.kwargs.setFixedHeight(60)
        self.shape = QLineEdit()
        self.shape.setPlaceholderText("optional, e.g. 8,3,32,32")
        self.shape.setToolTip("Example input shape (batch first) when the model needs one to be "
                              "measured; leave empty and QuantGUI asks for an example input "
                              "when it needs one")

        form = QFormLayout()
        form.addRow("Architecture:", row)
        form.addRow(self.classes_label, self.classes)
        form.addRow("Keyword args (JSON):", self.kwargs)
        form.addRow("Input shape:", self.shape)
        self._show_classes(False)
        self.watch(self.arch, self.kwargs, self.shape, self.classes)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.reason)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())

    def _show_classes(self, on: bool) -> None:
        self.classes_label.setVisible(on)
        self.classes.setVisible(on)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Python file defining the model",
                                              str(Path(self.source).parent),
                                              "Python (*.py);;All files (*)")
        if path:
            self.clear_error()
            self.arch_file = path
            name = self.arch.text().rpartition(":")[2] if ":" in self.arch.text() else ""
            self.arch.setText(f"{path}:{name}" if name else path)
            self.classes.clear()
            self._show_classes(False)
            self.set_busy(True, "Looking for nn.Module classes in the file…")
            self.browse.setEnabled(False)
            self.listRequested.emit(path)

    def set_classes(self, path: str, names: list[str]) -> None:
        """The nn.Module classes `path` defines (the worker's answer to listRequested)."""
        self.browse.setEnabled(True)
        self.set_busy(False)
        if path != self.arch_file:
            return  # an answer for a file chosen before
        if not names:
            self.show_error(f"{Path(path).name} defines no nn.Module class; if a function "
                            f"builds the model, type its name after the colon")
            return
        self.classes.clear()
        self.classes.addItems(names)
        self._show_classes(True)
        typed = self.arch.text().rpartition(":")[2] if ":" in self.arch.text() else ""
        index = names.index(typed) if typed in names else 0
        self.classes.setCurrentIndex(index)
        self._class_chosen(index)

    def list_failed(self, message: str) -> None:
        self.browse.setEnabled(True)
        self.show_error(message)

    def _class_chosen(self, index: int) -> None:
        if index >= 0 and self.arch_file:
            self.arch.setText(f"{self.arch_file}:{self.classes.itemText(index)}")

    def values(self) -> tuple[str, dict, Optional[tuple]]:
        """(arch, kwargs, input_shape) or ValueError with what is wrong."""
        arch = self.arch.text().strip()
        if ":" not in arch or not all(arch.rsplit(":", 1)):
            raise ValueError("Architecture must be file.py:ClassOrFactory")
        text = self.kwargs.toPlainText().strip() or "{}"
        try:
            kwargs = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Keyword args are not valid JSON: {exc.msg} "
                             f"(line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(kwargs, dict):
            raise ValueError("Keyword args must be a JSON object such as {\"hidden\": 256}")
        return arch, kwargs, parse_shape(self.shape.text())

    def answer(self) -> tuple:
        return self.values()


def parse_shape(text: str) -> Optional[tuple]:
    """The dialog's shape field: empty means none; the engine's parser does the rest."""
    from quantgui.core import UserError
    from quantgui.core import parse_shape as engine_parse_shape
    if not text.strip().strip("()[]"):
        return None
    try:
        return engine_parse_shape(text)
    except UserError as exc:
        raise ValueError(f"Input shape: {exc}") from None


def error_box(parent: QWidget, title: str, message: str, details: str = "",
              warning: bool = False) -> QMessageBox:
    """A non-blocking error dialog (open(), not exec()); the traceback goes in Details."""
    box = QMessageBox(parent)
    box.setObjectName("errorBox")
    box.setIcon(QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setTextFormat(Qt.TextFormat.PlainText)  # messages quote names from files
    box.setText(printable(message))
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box


def dropped_kind(path: str) -> str:
    return "recipe" if Path(path).suffix.lower() == ".json" else "model"


def describe_source(source: Any) -> str:
    s = str(source)
    return s.split(":", 1)[1] if s.startswith("example:") else Path(s).name or s
