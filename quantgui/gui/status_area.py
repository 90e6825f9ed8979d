"""The status bar's parts: the phase line and the warnings button.

The phase line says what the window is doing (loading, running step 2/4, done). It never
widens the window: a text too long for the bar ends in "…" and the whole text is its tooltip.
Warnings from the engine (torch deprecations, a model's own warnings) never replace it: they are
counted on a button beside it, listed in its tooltip and, on a click, in a dialog.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QToolButton, QWidget

from .safe_text import printable, tooltip

#: Warnings kept for the dialog (the oldest are dropped first).
MAX_WARNINGS = 200


class ElidedLabel(QLabel):
    """A one-line plain-text label that takes the width it is given and no more."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self._full = printable(text, newlines=False)
        self._elide()

    def text(self) -> str:
        """The whole text (what is drawn may end in '…')."""
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight,
                                              max(0, self.width()))
        super().setText(shown)
        self.setToolTip(tooltip(self._full) if shown != self._full else "")


class WarningsButton(QToolButton):
    """'⚠ 3' in the status bar; hidden until the first warning of the session."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setObjectName("warningsButton")
        self.setAutoRaise(True)
        self.warnings: list[str] = []
        self.dialog: Optional[QMessageBox] = None
        self.setToolTip("Warnings from the engine this session (click to see them all)")
        self.clicked.connect(self.show_all)
        self.hide()

    def add(self, text: str) -> None:
        self.warnings = (self.warnings + [printable(text)])[-MAX_WARNINGS:]
        n = len(self.warnings)
        self.setText(f"⚠ {n} warning{'s' if n != 1 else ''}")
        recent = self.warnings[-3:]
        self.setToolTip(tooltip("Warnings from the engine (click to see them all):\n"
                                + "\n".join(f"• {w.splitlines()[0][:160]}" for w in recent)))
        self.show()

    def show_all(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "Warnings",
                          f"{len(self.warnings)} warning(s) from the engine this session. "
                          "They did not stop any work; the details list them all.",
                          QMessageBox.StandardButton.Ok, self.window())
        box.setDetailedText("\n\n".join(self.warnings))
        box.finished.connect(box.deleteLater)
        self.dialog = box
        box.open()
