"""The data dialog: the user's own data (an image folder, IDX files, a table, sentences, a
Dataset from code) with the preprocessing stored in its reference (resize, crop, grayscale,
normalize preset), the evaluation share, a sample cap, and a preview strip of a few images with
their class (or the first sentences). Gives a `DataSpec`; the window reopens the model with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from quantgui.core import (DataSpec, Preprocess, UserError, data_kind_title, data_preview,
                           parse_size)

from .safe_text import plain, plain_label, tooltip

THUMB = 56
NORMALIZE = [("none (0–1)", None), ("ImageNet mean/std", "imagenet"), ("from the data", "data")]
FILE_FILTER = ("Data (*.csv *.parquet *.txt *.jsonl *.npz *.pt *.pth *-ubyte *-ubyte.gz);;"
               "All files (*)")


class DataDialog(QDialog):
    chosen = Signal(object)  # DataSpec

    def __init__(self, parent: Optional[QWidget] = None, spec: Optional[DataSpec] = None,
                 start_dir: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("dataDialog")
        self.setWindowTitle("Your data")
        self.start_dir = start_dir
        self.path = QLineEdit()
        self.path.setObjectName("dataPath")
        self.path.setPlaceholderText("a folder of class subfolders, IDX files, .csv, .txt, "
                                     "file.py:factory…")
        self.path.editingFinished.connect(self.refresh)
        self.file_button = QPushButton("File…")
        self.file_button.setObjectName("dataFileButton")
        self.file_button.clicked.connect(self._pick_file)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setObjectName("dataFolderButton")
        self.folder_button.clicked.connect(self._pick_folder)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(self.file_button)
        row.addWidget(self.folder_button)

        self.kind = plain_label("")
        self.kind.setObjectName("dataKind")
        self.resize_edit = QLineEdit()
        self.resize_edit.setObjectName("resizeEdit")
        self.resize_edit.setPlaceholderText("e.g. 256 (shorter side) or 224x224")
        self.crop_edit = QLineEdit()
        self.crop_edit.setObjectName("cropEdit")
        self.crop_edit.setPlaceholderText("e.g. 224")
        self.grayscale = QCheckBox("one channel")
        self.grayscale.setObjectName("grayscaleCheck")
        self.normalize = QComboBox()
        self.normalize.setObjectName("normalizeCombo")
        for text, value in NORMALIZE:
            self.normalize.addItem(text, value)
        self.eval_share = QDoubleSpinBox()
        self.eval_share.setObjectName("evalShare")
        self.eval_share.setRange(0.05, 0.95)
        self.eval_share.setSingleStep(0.05)
        self.eval_share.setValue(0.8)
        self.eval_share.setToolTip("The part kept for evaluation; the rest calibrates INT8 / "
                                   "trains QAT (stratified by class, seeded: never the same "
                                   "sample in both)")
        self.overlap = QCheckBox("use every sample for both")
        self.overlap.setObjectName("overlapCheck")
        self.overlap.toggled.connect(lambda on: self.eval_share.setEnabled(not on))
        self.max_samples = QSpinBox()
        self.max_samples.setObjectName("maxSamples")
        self.max_samples.setRange(0, 10_000_000)
        self.max_samples.setSpecialValueText("all")
        self.max_samples.setToolTip("A stratified, seeded subset for speed; the accuracy "
                                    "change's 95% interval says whether it is large enough")
        form = QFormLayout()
        form.addRow("Kind", self.kind)
        form.addRow("Resize", self.resize_edit)
        form.addRow("Center crop", self.crop_edit)
        form.addRow("Grayscale", self.grayscale)
        form.addRow("Normalize", self.normalize)
        split = QHBoxLayout()
        split.addWidget(self.eval_share)
        split.addWidget(self.overlap, 1)
        form.addRow("Evaluation share", split)
        form.addRow("Samples", self.max_samples)

        self.preview = QWidget()
        self.preview.setObjectName("previewStrip")
        self.preview_row = QHBoxLayout(self.preview)
        self.preview_row.setContentsMargins(0, 0, 0, 0)
        self.preview_text = plain_label("")
        self.preview_text.setObjectName("previewText")
        self.preview_text.setWordWrap(True)
        self.error = plain_label("")
        self.error.setObjectName("dataError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: palette(link-visited);")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(form)
        lay.addWidget(self.preview)
        lay.addWidget(self.preview_text)
        lay.addWidget(self.error)
        lay.addWidget(self.buttons)
        if spec is not None:
            self.set_spec(spec)

    # -- the reference ---------------------------------------------------------------------
    def set_spec(self, spec: DataSpec) -> None:
        p = spec.preprocess
        self.path.setText(spec.path)
        self.resize_edit.setText("x".join(map(str, p.resize or [])))
        self.crop_edit.setText("x".join(map(str, p.crop or [])))
        self.grayscale.setChecked(p.grayscale)
        self.normalize.setCurrentIndex(max(0, self.normalize.findData(p.normalize)))
        self.eval_share.setValue(spec.eval_fraction or 0.8)
        self.overlap.setChecked(spec.overlap)
        self.max_samples.setValue(spec.max_samples or 0)
        self.refresh()

    def spec(self) -> DataSpec:
        """The reference the form describes; UserError for a value it cannot take."""
        path = self.path.text().strip()
        if not path:
            raise UserError("choose a file or folder")
        pre = Preprocess(
            resize=parse_size(self.resize_edit.text(), "Resize") if self.resize_edit.text().strip() else None,
            crop=parse_size(self.crop_edit.text(), "Center crop") if self.crop_edit.text().strip() else None,
            grayscale=self.grayscale.isChecked(), normalize=self.normalize.currentData())
        overlap = self.overlap.isChecked()
        return DataSpec(path, preprocess=pre, overlap=overlap,
                        eval_fraction=None if overlap else round(self.eval_share.value(), 2),
                        max_samples=self.max_samples.value() or None).check()

    def _ok(self) -> None:
        try:
            spec = self.spec()
        except UserError as exc:
            self.error.setText(str(exc))
            return
        self.chosen.emit(spec)
        self.accept()

    # -- choosing and previewing -----------------------------------------------------------
    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Data file", self.start_dir, FILE_FILTER)
        if path:
            self.path.setText(path)
            self.refresh()

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Data folder", self.start_dir)
        if path:
            self.path.setText(path)
            self.refresh()

    def refresh(self) -> None:
        """The detected kind and a few samples (file names only are listed: nothing decoded
        but the few thumbnails)."""
        self._clear_preview()
        self.error.setText("")
        path = self.path.text().strip()
        if not path:
            self.kind.setText("")
            return
        try:
            kind, samples = data_preview(DataSpec(path), 8)
        except (UserError, OSError, ValueError) as exc:
            self.kind.setText("")
            self.error.setText(str(exc))
            return
        self.kind.setText(data_kind_title(kind))
        images = kind in ("image_folder", "image_flat")
        for widget in (self.resize_edit, self.crop_edit, self.grayscale, self.normalize):
            widget.setEnabled(images or kind == "idx")
        if images:
            for file, label in samples:
                self.preview_row.addWidget(_thumb(file, label))
            self.preview_row.addStretch(1)
        elif samples:
            self.preview_text.setText("\n".join(
                (f"[{label}] " if label is not None else "") + text[:120]
                for text, label in samples))

    def _clear_preview(self) -> None:
        while self.preview_row.count():
            item = self.preview_row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.preview_text.setText("")

    def thumbnails(self) -> list[QWidget]:
        return [self.preview_row.itemAt(i).widget() for i in range(self.preview_row.count())
                if self.preview_row.itemAt(i).widget() is not None]

    def thumbnail_labels(self) -> list[str]:
        return [w.findChild(QLabel, "previewLabel").text() for w in self.thumbnails()]


def _thumb(file: str, label: Optional[str]) -> QWidget:
    """A thumbnail with its class name underneath (plain text: names come from folders)."""
    cell = QWidget()
    cell.setObjectName("previewThumb")
    picture = plain(QLabel())
    pixmap = QPixmap(file)
    if not pixmap.isNull():
        picture.setPixmap(pixmap.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation))
    else:
        picture.setText("?")
    picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
    picture.setFixedSize(THUMB, THUMB)
    name = plain_label(label or "")
    name.setObjectName("previewLabel")
    name.setAlignment(Qt.AlignmentFlag.AlignCenter)
    name.setMaximumWidth(THUMB + 16)
    lay = QVBoxLayout(cell)
    lay.setContentsMargins(2, 2, 2, 2)
    lay.setSpacing(1)
    lay.addWidget(picture)
    lay.addWidget(name)
    cell.setToolTip(tooltip(Path(file).name + (f" — {label}" if label else "")))
    return cell


def describe(data: Any) -> str:
    return data.describe() if isinstance(data, DataSpec) else str(data or "")


def choose_own_data(win: Any, args: dict) -> None:
    """The data dialog for the open model (open(), not exec()); OK reopens the model with the
    DataSpec (`args`: what the model was opened with)."""
    current = args.get("data")
    dialog = DataDialog(win, current if isinstance(current, DataSpec) else None,
                        win.app_settings.last_dir())
    dialog.chosen.connect(lambda spec: win.open_source(**{**args, "data": spec}))
    win.dialog = dialog
    dialog.open()
