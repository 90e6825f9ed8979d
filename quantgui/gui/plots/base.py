"""Common parts of the result plots: themed PlotWidget, safe dict access, number formats."""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg

from . import theme as th

CATEGORY_TICKS = [[(0.0, "before"), (1.0, "after")]]


def get(d: Any, *keys: str, default: Any = None) -> Any:
    """d[k1][k2]... or `default` when any level is missing or not a dict."""
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return default if d is None else d


def num(value: Any) -> Optional[float]:
    """A finite float, or None for anything else (missing, NaN, text)."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_bytes_mb(value: Optional[float]) -> str:
    return "–" if value is None else f"{value / 1e6:.3g} MB"


class BasePlot(pg.PlotWidget):
    """A PlotWidget that follows the palette and knows its title and empty state."""

    name = "plot"
    title = "Plot"
    help = ""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(260, 200)
        self.theme = th.current()
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        self._title_extra: list[tuple[str, Optional[str]]] = []
        self._title_roles: list[Optional[str]] = []
        self.setToolTip(self.help)
        self._build()
        self._watcher = th.ThemeWatcher(self, self.apply_theme)

    # -- to override ------------------------------------------------------------------------
    def _build(self) -> None:
        """Create every item once; updates only call setData/setOpts on them."""

    def _restyle(self) -> None:
        """Re-colour items after a theme change."""

    def has_data(self) -> bool:
        return False

    def clear_data(self) -> None:
        self.set_subtitle()

    # -- shared -----------------------------------------------------------------------------
    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        th.style_plot(self, theme)
        self._restyle()
        self._render_title()

    def set_subtitle(self, *lines: tuple[str, Optional[str]]) -> None:
        """Lines under the title as (text, role) where role is a Theme colour attribute name."""
        self._title_extra = [(text, None) for text, _ in lines]
        self._title_roles = [role for _, role in lines]
        self._render_title()

    def subtitle_text(self) -> str:
        return "\n".join(text for text, _ in self._title_extra)

    def _render_title(self) -> None:
        # A long line would set the plot's minimum width and push it out of its layout;
        # the full text stays in subtitle_text() and the tooltip.
        extra = [(_shorten(text), getattr(self.theme, role) if role else None)
                 for (text, _), role in zip(self._title_extra, self._title_roles)]
        th.set_title(self, th.title_html(self.theme, self.title, *extra), 1 + len(extra))

    def _show_legend(self, show: bool) -> None:
        legend = self.getPlotItem().legend
        if legend is not None:
            legend.setVisible(show)

    def fit_y_live(self, values: list[float], from_zero: bool, headroom: float = 0.35) -> None:
        """Auto x, but y fitted with a free band on top so the legend never hides live data."""
        if not values:
            return
        lo, hi = (0.0 if from_zero else min(values)), max(values)
        span = (hi - lo) or abs(hi) or 1.0
        lo -= (0.04 if from_zero else 0.08) * span  # keeps the bottom tick label (grid edge)
        self.enableAutoRange(x=True)
        self.getPlotItem().vb.enableAutoRange(y=False)
        self.setYRange(lo, hi + headroom * span, padding=0)

    def set_axis_label(self, axis: str, text: str) -> None:
        # AxisItem.setLabel, not PlotItem.setLabel: the latter also shows a hidden axis.
        ax = self.getPlotItem().getAxis(axis)
        # Units are in the label already ("MB", "ms"): pyqtgraph's automatic SI prefix would
        # turn 0.65 MB into "MB (x0.001)" with ticks in kilobytes.
        ax.enableAutoSIPrefix(False)
        ax.setLabel(text, color=self.theme.foreground)
        ax.showLabel(bool(text))


#: Longest subtitle line drawn on a plot (characters).
SUBTITLE_MAX = 64


def _shorten(text: str) -> str:
    return text if len(text) <= SUBTITLE_MAX else text[:SUBTITLE_MAX - 1].rstrip() + "…"
