"""What the user's labeled data says about a run: the accuracy change with its paired 95%
interval, a small per-class table (before, after, change) and the samples whose prediction
flipped, with a thumbnail for an image file or the sentence for text. Reads the result's typed
fields (`RunResult.accuracy_change`, `similarity`, `skipped_samples`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QListWidget, QListWidgetItem,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from quantgui.core import printable

from .safe_text import plain_label, tooltip

ICON = 40
EMPTY = "Per-class accuracy and flipped samples appear here after a run on labeled data."


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x == x else "–"


class DataView(QWidget):
    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("dataView")
        self.headline = plain_label(EMPTY)
        self.headline.setObjectName("accuracyChange")
        self.headline.setWordWrap(True)
        self.classes = QTableWidget(0, 4)
        self.classes.setObjectName("perClassTable")
        self.classes.setHorizontalHeaderLabels(["class", "before", "after", "change"])
        self.classes.verticalHeader().hide()
        self.classes.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.classes.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.classes.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.flips = QListWidget()
        self.flips.setObjectName("flipsList")
        self.flips.setIconSize(QSize(ICON, ICON))
        self.flips.setWordWrap(True)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.classes)
        split.addWidget(self.flips)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.headline)
        lay.addWidget(split, 1)

    @classmethod
    def docked(cls, win: Any) -> "DataView":
        """A view in an "Accuracy by class" dock tabbed with the session history, following
        the result on the plots."""
        from PySide6.QtWidgets import QDockWidget
        view = cls()
        if hasattr(win.results, "shown"):
            win.results.shown.connect(view.show_result)
        win._dock("dataDock", "Accuracy by class", view, Qt.DockWidgetArea.BottomDockWidgetArea)
        history = win.findChild(QDockWidget, "historyDock")
        win.tabifyDockWidget(history, win.findChild(QDockWidget, "dataDock"))
        history.raise_()
        return view

    def show_result(self, result: Any) -> None:
        change = getattr(result, "accuracy_change", None)
        self.classes.setRowCount(0)
        self.flips.clear()
        lines = []
        if change is not None:
            lines.append(f"Accuracy change: {change.words()} on {change.samples:,} samples")
        similarity = getattr(result, "similarity", None)
        if similarity is not None:
            lines.append(f"Similarity: {similarity.words()}")
        if getattr(result, "skipped_samples", 0):
            lines.append(f"{result.skipped_samples:,} unreadable samples skipped")
        self.headline.setText("\n".join(lines) or EMPTY)
        if change is None:
            return
        names = {i: c.name for i, c in enumerate(change.per_class)}
        for c in change.per_class:
            row = self.classes.rowCount()
            self.classes.insertRow(row)
            cells = [printable(c.name), _pct(c.before), _pct(c.after),
                     f"{100 * (c.after - c.before):+.1f} pt"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(tooltip(f"{c.name}: {c.samples:,} samples"))
                self.classes.setItem(row, col, item)
        for flip in change.flips:
            what = ("now wrong" if flip.broken else "now right" if flip.fixed
                    else "still wrong, another class")
            text = (f"#{flip.id}: {names.get(flip.before, flip.before)} → "
                    f"{names.get(flip.after, flip.after)} ({what}; label "
                    f"{names.get(flip.label, flip.label)})")
            item = QListWidgetItem(printable(text + _item_text(flip.item)))
            icon = _icon(flip.item)
            if icon is not None:
                item.setIcon(icon)
            item.setToolTip(tooltip(flip.item or text))
            self.flips.addItem(item)
        if not change.flips_total:
            self.flips.addItem("No prediction changed.")
        elif change.flips_total > len(change.flips):
            self.flips.addItem(f"… {change.flips_total - len(change.flips):,} more (in the JSON "
                               f"result)")

    def per_class_rows(self) -> list[list[str]]:
        return [[self.classes.item(r, c).text() for c in range(4)]
                for r in range(self.classes.rowCount())]


def _item_text(item: Optional[str]) -> str:
    """A sentence is shown; a file is its icon (the name is in the tooltip)."""
    if not item or _is_image(item):
        return ""
    return f"\n“{item[:160]}”"


def _is_image(item: str) -> bool:
    return Path(item).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp",
                                         ".tif", ".tiff", ".ppm", ".pgm")


def _icon(item: Optional[str]) -> Optional[QIcon]:
    if not item or not _is_image(item) or not Path(item).is_file():
        return None
    pixmap = QPixmap(item)
    return None if pixmap.isNull() else QIcon(pixmap.scaled(ICON, ICON,
                                                            Qt.AspectRatioMode.KeepAspectRatio))
