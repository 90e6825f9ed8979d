"""The example-input question: a TorchScript archive, a pickled module or a state_dict carries no
input, yet timing the model and checking that it runs need one. The same choices as the CLI's
flags: a file (`--example-input`), a shape and dtype (`--input-shape`, `--input-dtype`), the
first samples of a data file (`--data`, which also becomes the test data), and for a Hugging
Face folder with a tokenizer a few typed sentences.

The answer is the `open_model` keyword arguments it stands for, e.g. {"input_shape": (2, 4),
"input_dtype": "float32"}; the window re-opens the model with them (keeping everything else it
was opened with, trust included) and the dialog stays open until that works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QGridLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QRadioButton,
                               QVBoxLayout, QWidget)

from quantgui.core import DTYPE_NAMES

from .model_dialogs import DATA_FILTER, parse_shape
from .retry_dialog import RetryDialog
from .safe_text import html_text, plain_label

EXAMPLE_FILTER = "Example inputs (*.pt *.pth *.npz);;All files (*)"
MAX_SENTENCES = 64


def describe_model(info: Any) -> str:
    """'Sequential, TorchScript, 67 parameters' from a ModelInfo (or '' without one)."""
    if info is None:
        return ""
    return f"{info.name}, {info.format}, {info.parameters:,} parameters"


class ExampleInputDialog(RetryDialog):
    chosen = Signal(dict)  # open_model keyword arguments

    def __init__(self, parent: Optional[QWidget], source: str, message: str = "",
                 kinds: Sequence[str] = ("file", "shape", "data"), info: Any = None,
                 current: Optional[str] = None) -> None:
        """`current`: the example input the open model has (choosing another), else None."""
        super().__init__(parent)
        self.setObjectName("exampleDialog")
        self.setWindowTitle("Example input")
        self.source = source
        what = describe_model(info)
        name = f"<b>{html_text(Path(source).name)}</b>" + (f" ({html_text(what)})"
                                                          if what else "")
        self.intro = intro = QLabel(
            f"{name} is timed on {html_text(current)}. Choose another example input:"
            if current else
            f"{name} needs an example input: QuantGUI times the model on it and checks that "
            f"it runs. Choose one:")
        intro.setObjectName("dialogIntro")
        intro.setWordWrap(True)
        self.reason = plain_label(message)
        self.reason.setWordWrap(True)
        self.reason.setVisible(bool(message))
        self.reason.setEnabled(False)

        self.group = QButtonGroup(self)
        grid = QGridLayout()
        grid.setColumnStretch(1, 1)
        self.radios: dict[str, QRadioButton] = {}

        # A shape and its dtype.
        self.shape = QLineEdit()
        self.shape.setObjectName("exampleShape")
        self.shape.setPlaceholderText("batch first, e.g. 8,3,224,224")
        self.shape.setToolTip("Random values of this shape (seeded): normal values for float "
                              "types, integers for int types (token ids: int64)")
        self.dtype = QComboBox()
        self.dtype.setObjectName("exampleDtype")
        self.dtype.addItems(DTYPE_NAMES)
        if getattr(info, "format", None) == "huggingface":
            self.dtype.setCurrentText("int64")  # its shapes are token ids
        self.dtype.setToolTip("Data type of the input: float32 for most models, int64 for "
                              "token ids (a language model's input)")
        shape_row = QHBoxLayout()
        shape_row.addWidget(self.shape, 1)
        shape_row.addWidget(self.dtype)
        self._add(grid, "shape", "A shape:", shape_row, self.shape, self.dtype)

        # A file holding a tensor, a tuple or a dict of tensors.
        self.file = QLineEdit()
        self.file.setObjectName("exampleFile")
        self.file.setPlaceholderText("a tensor, tuple or dict of tensors (.pt / .npz)")
        self.file.setToolTip("A file saved with torch.save (read weights-only) or numpy.savez")
        self._add(grid, "file", "A file:", self._browse_row(self.file, self._browse_file),
                  self.file)

        # The first samples of a data file (which also becomes the test data).
        self.data = QLineEdit()
        self.data.setObjectName("exampleData")
        self.data.setPlaceholderText("a data file with 'inputs' (labels optional)")
        self.data.setToolTip("The first 8 samples are the example input; the file also becomes "
                             "the test and calibration data (without 'labels': fidelity only)")
        self._add(grid, "data", "From a data file:",
                  self._browse_row(self.data, self._browse_data), self.data)

        # A Hugging Face folder with a tokenizer: typed sentences.
        self.sentences = QPlainTextEdit()
        self.sentences.setObjectName("exampleSentences")
        self.sentences.setPlaceholderText("One sentence per line, e.g.\nThe film was wonderful.")
        self.sentences.setToolTip("Each line is one sample, tokenized by the folder's tokenizer "
                                  "and padded to the longest")
        self.sentences.setFixedHeight(90)
        if "text" in kinds:
            self._add(grid, "text", "Sentences:", self.sentences, self.sentences)
        for kind in ("file", "data"):
            if kind not in kinds:
                self.radios[kind].setEnabled(False)

        self.watch(self.shape, self.dtype, self.file, self.data, self.sentences,
                   *self.radios.values())
        self.radios["text" if "text" in kinds else "shape"].setChecked(True)
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.reason)
        lay.addLayout(grid)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        self.resize(600, self.sizeHint().height())

    def _add(self, grid: QGridLayout, kind: str, title: str, field: Any,
             *edits: QWidget) -> None:
        radio = QRadioButton(title)
        radio.setObjectName(f"exampleKind_{kind}")
        self.group.addButton(radio)
        self.radios[kind] = radio
        row = grid.rowCount()
        grid.addWidget(radio, row, 0)
        if isinstance(field, QWidget):
            grid.addWidget(field, row, 1)
        else:
            grid.addLayout(field, row, 1)
        for edit in edits:  # typing into a choice's field chooses it
            signal = edit.activated if isinstance(edit, QComboBox) else edit.textChanged
            signal.connect(lambda *_, r=radio: r.setChecked(True))

    def _browse_row(self, edit: QLineEdit, slot: Any) -> QHBoxLayout:
        button = QPushButton("Browse…")
        button.setObjectName(f"{edit.objectName()}Browse")
        button.clicked.connect(slot)
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return row

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Example input file",
                                              str(Path(self.source).parent), EXAMPLE_FILTER)
        if path:
            self.file.setText(path)
            self.clear_error()

    def _browse_data(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Data file", str(Path(self.source).parent),
                                              DATA_FILTER)
        if path:
            self.data.setText(path)
            self.clear_error()

    def kind(self) -> str:
        return next(k for k, r in self.radios.items() if r.isChecked())

    def answer(self) -> tuple:
        """({open_model keyword arguments},) or ValueError with what is missing."""
        kind = self.kind()
        if kind == "shape":
            shape = parse_shape(self.shape.text())
            if shape is None:
                raise ValueError("Type the input shape, batch first, e.g. 8,3,224,224")
            return ({"input_shape": shape, "input_dtype": self.dtype.currentText()},)
        if kind in ("file", "data"):
            edit = self.file if kind == "file" else self.data
            path = edit.text().strip()
            if not path:
                raise ValueError("Choose a file (Browse…)")
            if not Path(path).expanduser().is_file():
                raise ValueError(f"{path}: no such file")
            return ({"example_input" if kind == "file" else "data": path},)
        lines = [t.strip() for t in self.sentences.toPlainText().splitlines() if t.strip()]
        if not lines:
            raise ValueError("Type at least one sentence (one per line)")
        if len(lines) > MAX_SENTENCES:
            raise ValueError(f"At most {MAX_SENTENCES} sentences (one batch)")
        return ({"example_text": lines},)
