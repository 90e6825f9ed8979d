"""The model area: a summary of the open model and the data chooser.

The summary shows what the engine found (format, parameters, size, layer types, example input,
data) and the CPU capabilities that decide which INT8/BF16 paths are fast on this machine.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QLabel, QSizePolicy,
                               QVBoxLayout, QWidget)

from quantgui.core import human_bytes  # torch-free: fine at start-up

from .safe_text import plain, plain_label, printable, tooltip

DATA_BUILTIN, DATA_FILE, DATA_NONE = "builtin", "file", "none"
DATA_CUSTOM = "custom"  # the user's own data with its settings (gui/data_dialog.py)


def human_count(n: Optional[int]) -> str:
    if n is None:
        return "–"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 10_000:
        return f"{n / 1e3:.1f} k"
    return f"{n:,}"


def _value_label() -> QLabel:
    lab = plain_label("–")
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return lab


class ModelSummary(QGroupBox):
    ROWS = (("source", "Model", "What was opened"),
            ("format", "Format", "How the model was stored"),
            ("params", "Parameters", "Number of trainable and frozen parameters"),
            ("size", "Size", "Size of the model as it would be saved"),
            ("layers", "Layers", "Leaf module types and how many of each"),
            ("input", "Example input", "The input the model is timed with (batch first); "
                                       "File > Example Input… changes it"),
            ("data", "Data", "Data used for calibration and to measure accuracy"),
            ("cpu", "CPU", "CPU features that decide which INT8/BF16 kernels are fast here"))

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("Summary", parent)
        self.setObjectName("modelSummary")
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        self.fields: dict[str, QLabel] = {}
        for key, title, tip in self.ROWS:
            lab = _value_label()
            lab.setObjectName(f"summary_{key}")
            lab.setToolTip(tip)
            head = QLabel(title + ":")
            head.setToolTip(tip)
            form.addRow(head, lab)
            self.fields[key] = lab
        self.notes = _value_label()
        self.notes.setEnabled(False)
        form.addRow(self.notes)
        self.set_loading("Starting the engine…")

    def set_loading(self, text: str) -> None:
        for lab in self.fields.values():
            lab.setText("–")
        self.fields["source"].setText(text)
        self.notes.setText("")

    def show_model(self, loaded: Any, cpu: list[str]) -> None:
        info = loaded.info
        f = self.fields
        f["source"].setText(printable(f"{info.name} — {info.source}"))
        f["source"].setToolTip(tooltip(info.source))
        f["format"].setText(info.format)
        f["params"].setText(human_count(info.parameters))
        f["size"].setText(human_bytes(info.size_bytes))
        layers = sorted(info.layer_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        f["layers"].setText(printable(", ".join(f"{n}×{c}" for n, c in layers[:8])
                            + (f", +{len(layers) - 8} more" if len(layers) > 8 else "")))
        f["layers"].setToolTip(tooltip("\n".join(f"{n}: {c}" for n, c in layers)))
        f["input"].setText(printable(info.example_input))
        f["data"].setText(describe_data(loaded))
        f["cpu"].setText(", ".join(cpu) or "no INT8/BF16 acceleration detected")
        self.notes.setText(printable("\n".join(info.notes)))
        self.notes.setVisible(bool(info.notes))


def describe_data(loaded: Any) -> str:
    """The open model's data in words (its test/train `DataInfo`s)."""
    test, train = loaded.test, loaded.train
    if test is None and train is None:
        return "none: fidelity to the original model is the quality measure"
    parts = []
    if test is not None:
        labeled = "labeled" if test.labeled else "unlabeled: fidelity only"
        parts.append(f"test {test.samples} ({labeled})")
    if train is not None:
        parts.append(f"calibration {train.samples}")
    name = (test or train).name
    return f"{name}: " + ", ".join(parts)


class DataChooser(QGroupBox):
    """Built-in split / a data file / none. Emits the choice; the window reloads the data."""

    chosen = Signal(str)  # DATA_BUILTIN, DATA_FILE or DATA_NONE

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("Data", parent)
        self.setObjectName("dataChooser")
        self.combo = QComboBox()
        self.combo.setObjectName("dataCombo")
        self.combo.addItem("Built-in / bundled data", DATA_BUILTIN)
        self.combo.addItem("Data file (.npz / .pt)…", DATA_FILE)
        self.combo.addItem("Your data: images, IDX, CSV, text…", DATA_CUSTOM)
        self.combo.addItem("None — measure fidelity only", DATA_NONE)
        self.combo.setToolTip(
            "Data used to calibrate INT8 and to measure accuracy.\n"
            "Built-in: the example's held-out split (or data bundled with the model).\n"
            "Data file: .npz or .pt with 'inputs' (and 'labels' for accuracy).\n"
            "Your data: a folder of class subfolders of images, MNIST-style IDX files, a "
            "CSV table or sentences, with resize / crop / normalize and the evaluation "
            "share.\n"
            "None: no accuracy; agreement, cosine and SQNR against the original model show "
            "the quality instead.")
        self.combo.activated.connect(lambda i: self.chosen.emit(self.combo.itemData(i)))
        self.path = plain(QLabel())
        self.path.setWordWrap(True)
        self.path.setEnabled(False)
        self.path.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QVBoxLayout(self)
        lay.addWidget(self.combo)
        lay.addWidget(self.path)
        self.path.hide()

    def mode(self) -> str:
        return self.combo.currentData()

    def set_mode(self, mode: str, path: str = "", loaded: Any = None) -> None:
        """Show `mode` (and the data file's path); `loaded`, when given, says whether that data
        has labels (without them only fidelity is measured)."""
        idx = self.combo.findData(mode)
        self.combo.setCurrentIndex(max(0, idx))
        test = getattr(loaded, "test", None)
        unlabeled = mode in (DATA_FILE, DATA_CUSTOM) and test is not None and not test.labeled
        self.path.setText(printable(path) + ("\nno labels: fidelity only" if unlabeled else ""))
        self.path.setToolTip(tooltip(path))
        self.path.setVisible(bool(path) and mode in (DATA_FILE, DATA_CUSTOM))
