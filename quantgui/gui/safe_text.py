"""Showing strings that came from a file (names, paths, engine messages quoting them) safely.

Qt renders a label's or tooltip's text as HTML when it looks like HTML, so a layer called
`<img src=...>` or a file name with markup would be rendered, and control characters would be
shown raw. Labels that show such strings are plain text; tooltips and rich text get escaped text.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from quantgui.core import html_text, printable


def plain(label: QLabel) -> QLabel:
    """Make `label` show its text literally (never as HTML)."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_label(text: str = "") -> QLabel:
    return plain(QLabel(printable(text)))


def tooltip(text: str) -> str:
    """A tooltip that shows `text` literally (Qt would otherwise guess HTML)."""
    return "<qt>" + html_text(text) + "</qt>"


__all__ = ["html_text", "plain", "plain_label", "printable", "tooltip"]
