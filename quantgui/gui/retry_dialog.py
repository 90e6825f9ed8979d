"""The base of the dialogs that answer a question opening a model asked (which architecture,
which example input): OK tries to open the model with the answer, and the dialog stays open,
fields filled, until it opens. The attempt's error shows in the dialog (not in a second box);
editing any field clears it, so an old error never stands next to a new answer.

The window (open_flow.py) calls `set_busy` while the attempt runs and `show_error` when it fails,
and accepts the dialog when the model opened.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QLabel, QLineEdit,
                               QPlainTextEdit, QWidget)

from .safe_text import plain, printable


def error_colour(widget: QWidget) -> str:
    """A red that reads on the current palette (the dark theme's background is dark grey)."""
    dark = widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return "#ff7b6b" if dark else "#b03a2e"


class RetryDialog(QDialog):
    """OK validates the fields (a ValueError's text shows as the error) and emits the subclass's
    `chosen` signal with the answer; it does not close: the window accepts it once the model
    opened."""

    chosen: Signal  # defined by each dialog with its answer's types

    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.error = plain(QLabel())
        self.error.setObjectName("dialogError")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.try_accept)
        self.buttons.rejected.connect(self.reject)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Open")
        self.busy = False
        self._busy_text = ""

    def watch(self, *widgets: Any) -> None:
        """Editing any of these clears the error shown."""
        for w in widgets:
            if isinstance(w, QLineEdit):
                w.textEdited.connect(self.clear_error)
            elif isinstance(w, QPlainTextEdit):
                w.textChanged.connect(self.clear_error)
            elif isinstance(w, QComboBox):
                w.activated.connect(self.clear_error)
            else:
                w.toggled.connect(self.clear_error)

    def show_error(self, text: str) -> None:
        self.set_busy(False)
        self.error.setStyleSheet(f"color: {error_colour(self)};")
        self.error.setText(printable(text))
        self.error.setToolTip(printable(text))
        self.error.show()
        self.fit_height()

    def fit_height(self) -> None:
        """Grow to show a longer message instead of squeezing the fields (a wrapped label's
        height is not part of the dialog's minimum size)."""
        lay = self.layout()
        if lay is None:
            return
        need = (lay.totalHeightForWidth(self.width()) if lay.hasHeightForWidth()
                else lay.totalSizeHint().height())
        if need > self.height():
            self.resize(self.width(), need)

    def clear_error(self, *_: Any) -> None:
        if not self.busy:
            self.error.clear()
            self.error.hide()

    def set_busy(self, busy: bool, text: str = "Opening the model…") -> None:
        """While an attempt runs, OK is off and the dialog says so (Cancel stops it)."""
        was, self.busy = self.busy, busy
        self.ok_button.setEnabled(not busy)
        if busy:
            self.error.setStyleSheet("")
            self.error.setText(text)
            self.error.show()
            self.fit_height()
        elif was:  # the busy line goes; an error shown since stays
            if self.error.text() == self._busy_text:
                self.error.clear()
                self.error.hide()
        self._busy_text = text if busy else ""

    def answer(self) -> tuple:
        """The arguments `chosen` is emitted with; ValueError with what is wrong."""
        raise NotImplementedError

    def try_accept(self) -> None:
        if self.busy:
            return
        try:
            value = self.answer()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        self.clear_error()
        self.chosen.emit(*value)
