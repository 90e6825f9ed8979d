"""Persistent GUI settings (QSettings) and the light/dark palette.

The settings object is injected into the main window so tests pass
`QSettings(tmp_path / "t.ini", QSettings.IniFormat)` and never touch the user's own settings.
Only window geometry, dock state, recent files and a few preferences live here; recipes are the
engine's JSON files.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QRectF, QSettings, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleFactory

SETTINGS_VERSION = 1
MAX_RECENT = 8


def default_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "QuantGUI", "QuantGUI")


class AppSettings:
    """Typed access to the handful of values the GUI keeps between sessions."""

    def __init__(self, qsettings: Optional[QSettings] = None) -> None:
        self.q = qsettings if qsettings is not None else default_settings()
        if self.q.value("version") is None:
            self.q.setValue("version", SETTINGS_VERSION)

    # -- recent models ------------------------------------------------------------------------
    def recent(self) -> list[str]:
        value = self.q.value("recent", [])
        if isinstance(value, str):  # an ini file with a single entry gives a plain string
            value = [value]
        return [str(v) for v in (value or []) if v]

    def add_recent(self, source: str) -> list[str]:
        items = [source] + [r for r in self.recent() if r != source]
        items = items[:MAX_RECENT]
        self.q.setValue("recent", items)
        return items

    def clear_recent(self) -> None:
        self.q.setValue("recent", [])

    # -- window -------------------------------------------------------------------------------
    def save_window(self, window) -> None:
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", window.saveState(SETTINGS_VERSION))
        self.q.sync()

    def restore_window(self, window) -> bool:
        geometry = self.q.value("window/geometry")
        state = self.q.value("window/state")
        ok = False
        if geometry is not None:
            ok = bool(window.restoreGeometry(geometry))
        if state is not None:
            ok = bool(window.restoreState(state, SETTINGS_VERSION)) and ok
        return ok

    # -- preferences --------------------------------------------------------------------------
    def theme(self) -> str:
        return str(self.q.value("theme", "auto"))

    def set_theme(self, theme: str) -> None:
        self.q.setValue("theme", theme)

    def cluster(self) -> str:
        """Where the Sweep view measures: "local" (this machine), "auto", or a Ray address."""
        return str(self.q.value("sweep/cluster", "local") or "local")

    def set_cluster(self, cluster: str) -> None:
        self.q.setValue("sweep/cluster", cluster)

    def last_dir(self) -> str:
        return str(self.q.value("last_dir", ""))

    def set_last_dir(self, path: str) -> None:
        self.q.setValue("last_dir", path)


def is_dark(theme: str = "auto") -> bool:
    if theme in ("light", "dark"):
        return theme == "dark"
    # Offscreen and many Linux desktops report Unknown: treat it as light.
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


class QuantStyle(QProxyStyle):
    """Fusion, with check box indicators outlined in a colour that stands out from the panel.

    Fusion outlines an unticked box in the window colour darkened, which on the dark palette is
    about the colour of the box and of the panel behind it (contrast ~1.1:1): the box vanished.
    The outline drawn here is the palette's placeholder-text grey (>= 3:1 on both palettes).
    """

    def __init__(self) -> None:
        super().__init__(QStyleFactory.create("Fusion"))

    def drawPrimitive(self, element, option, painter, widget=None) -> None:  # noqa: N802
        super().drawPrimitive(element, option, painter, widget)
        if element != QStyle.PrimitiveElement.PE_IndicatorCheckBox:
            return
        colour = option.palette.color(QPalette.ColorGroup.Active,
                                      QPalette.ColorRole.PlaceholderText)
        if not option.state & QStyle.StateFlag.State_Enabled:
            colour.setAlpha(110)  # still visible, clearly not active
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(colour, 1.0))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5))
        painter.restore()


def apply_theme(app, theme: str = "auto") -> bool:
    """Fusion style (outlined check boxes) with a light or dark palette; True when dark."""
    if not isinstance(app.style(), QuantStyle):
        app.setStyle(QuantStyle())
    dark = is_dark(theme)
    app.setPalette(dark_palette() if dark else light_palette())
    return dark


def light_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#f4f5f7", QPalette.ColorRole.WindowText: "#1d1f23",
        QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#eef0f3",
        QPalette.ColorRole.Text: "#1d1f23", QPalette.ColorRole.Button: "#e9ebef",
        QPalette.ColorRole.ButtonText: "#1d1f23", QPalette.ColorRole.Highlight: "#2f6fd6",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#ffffe6",
        QPalette.ColorRole.ToolTipText: "#1d1f23", QPalette.ColorRole.PlaceholderText: "#80858f",
        QPalette.ColorRole.Link: "#2f6fd6",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#9aa0aa"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, QColor("#9aa0aa"))
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#9aa0aa"))
    return p


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#25272b", QPalette.ColorRole.WindowText: "#e6e7ea",
        QPalette.ColorRole.Base: "#1b1c1f", QPalette.ColorRole.AlternateBase: "#2b2d31",
        QPalette.ColorRole.Text: "#e6e7ea", QPalette.ColorRole.Button: "#303237",
        QPalette.ColorRole.ButtonText: "#e6e7ea", QPalette.ColorRole.Highlight: "#4a88e8",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#303237",
        QPalette.ColorRole.ToolTipText: "#e6e7ea", QPalette.ColorRole.PlaceholderText: "#8b9099",
        QPalette.ColorRole.Link: "#6ea1f0",
    }
    for role, color in roles.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c7079"))
    return p
