"""Colours and styling shared by every plot.

pyqtgraph ignores the Qt palette (its default background is black), so each plot takes its
background and foreground from the palette here and again whenever the palette or the colour
scheme changes. The palette decides light vs dark because it is what the user sees around the
plots; offscreen the scheme is `Unknown` and the default palette is light, so plots are light.
Before/after use the Okabe-Ito orange/blue pair, which stays distinct under the common forms of
colour blindness; the blue is lightened on dark backgrounds to stay legible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QGuiApplication, QPalette

#: Explains the colours once, for tooltips.
COLOUR_HELP = "Orange = before (original model), blue = after (optimized variant)."


@dataclass(frozen=True)
class Theme:
    dark: bool
    background: str
    foreground: str
    muted: str
    grid_alpha: float
    before: str
    after: str
    good: str
    neutral: str
    bad: str
    warn: str
    pareto: str
    #: Row background of a result that lost quality (amber; dark amber on dark themes, so the
    #: theme's own light text stays readable on it).
    degraded_bg: str = "#FFE6BF"

    def verdict_colour(self, label: Optional[str], degraded: bool = False) -> str:
        """Green only for faster without quality loss; amber ("warn") when quality was lost
        or the timing cannot decide; red for slower."""
        if label == "slower":
            return self.bad
        if degraded or label == "inconclusive":
            return self.warn
        return self.good if label == "faster" else self.neutral

    def which_colour(self, which: str) -> str:
        return self.before if which == "before" else self.after

    def brush(self, colour: str, alpha: int = 255) -> QColor:
        c = QColor(colour)
        c.setAlpha(alpha)
        return c


def _is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def current(palette: Optional[QPalette] = None) -> Theme:
    """The theme matching `palette` (default: the application's)."""
    if palette is None:
        palette = QGuiApplication.palette()
    dark = _is_dark(palette)
    bg = palette.color(QPalette.ColorRole.Base).name()
    fg = palette.color(QPalette.ColorRole.Text).name()
    if dark:
        return Theme(True, bg, fg, "#a0a0a0", 0.25, before="#E69F00", after="#56B4E9",
                     good="#3DD39B", neutral="#B0B0B0", bad="#FF7F50", warn="#F0E442",
                     pareto="#E0E0E0", degraded_bg="#5C4310")
    return Theme(False, bg, fg, "#606060", 0.18, before="#E69F00", after="#0072B2",
                 good="#007A56", neutral="#6E6E6E", bad="#C0392B", warn="#9A6A00",
                 pareto="#303030")


def style_plot(plot: pg.PlotWidget, theme: Theme) -> None:
    """Background, axes, labels, title and legend text from the theme."""
    plot.setBackground(theme.background)
    item = plot.getPlotItem()
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pg.mkPen(theme.foreground))
        axis.setTextPen(pg.mkPen(theme.foreground))
        # Re-colour the axis label too (its colour is fixed when the label is set).
        label = axis.labelText
        if label:
            axis.setLabel(label, units=axis.labelUnits or None, color=theme.foreground)
    item.getAxis("left").setStyle(hideOverlappingLabels=False)  # keep "0" on bar charts
    item.showGrid(x=False, y=True, alpha=theme.grid_alpha)
    legend = item.legend
    if legend is not None:
        legend.setLabelTextColor(theme.foreground)
        for _sample, label in legend.items:
            label.setText(label.text)  # setLabelTextColor only stores the colour
        legend.setBrush(pg.mkBrush(theme.brush(theme.background, 200)))
        legend.setPen(pg.mkPen(theme.muted))


def set_title(plot: pg.PlotWidget, html: str, lines: int = 1) -> None:
    """Set a (possibly multi-line, HTML) title; pyqtgraph fixes titles at one 30 px line."""
    item = plot.getPlotItem()
    item.setTitle(html)
    height = 8 + 20 * max(1, lines)
    item.titleLabel.setMaximumHeight(height)
    item.layout.setRowFixedHeight(0, height)
    # A text item without a width lays lines out left-aligned: fix the width so they centre.
    text = item.titleLabel.item
    text.setTextWidth(-1)
    text.setTextWidth(text.document().idealWidth() + 1)
    item.titleLabel.resizeEvent(None)


def title_html(theme: Theme, title: str, *extra: tuple[str, Optional[str]], key_html: str = "",
               key_inline: bool = True) -> str:
    """`title` in bold, then each (text, colour) on its own smaller line. `key_html` (the colour
    key) follows the title on its line, or fills the first extra line (given as "")."""
    head = f'<span style="color:{theme.foreground}; font-weight:600">{escape(title)}</span>'
    small = 'font-size:9pt'
    if key_html and key_inline:
        head += f'&nbsp;&nbsp;&nbsp;<span style="color:{theme.foreground}; {small}">{key_html}</span>'
    parts = [head]
    for i, (text, colour) in enumerate(extra):
        body = key_html if key_html and not key_inline and i == 0 else escape(text)
        parts.append(f'<span style="color:{colour or theme.foreground}; {small}">{body}</span>')
    return '<div style="text-align:center">' + "<br>".join(parts) + "</div>"


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ThemeWatcher(QObject):
    """Calls `apply(theme)` now and whenever the palette or colour scheme changes."""

    def __init__(self, widget: Any, apply: Callable[[Theme], None]) -> None:
        super().__init__(widget)
        self._widget = widget
        self._apply = apply
        widget.installEventFilter(self)
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._refresh)
        self._refresh()

    def _refresh(self, *_: Any) -> None:
        self._apply(current(self._widget.palette()))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._refresh()
        return False
