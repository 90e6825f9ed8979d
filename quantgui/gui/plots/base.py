"""Common parts of the result plots: themed PlotWidget, number formats, the title block (title,
colour key, subtitles elided at word boundaries) and the empty state."""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QGraphicsItem

from ..safe_text import printable
from . import theme as th
from .turns import release_all

CATEGORY_TICKS = [[(0.0, "before"), (1.0, "after")]]
#: Words that make no sense at the end of an elided line ("speedup 1.4x ·…").
_DANGLING = {"·", "—", "–", "-", ":", ";", ",", "(", "/", "→", "and", "of", "on", "in"}
_MARGIN = 12  # px kept free left and right of the title block


def num(value: Any) -> Optional[float]:
    """A finite float, or None for anything else (missing, NaN, text)."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def sig3(value: float) -> str:
    """Three significant digits, never in scientific notation: 0.0012, 0.591, 12.3, 140, 1030."""
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def fmt_ms(value: Optional[float]) -> str:
    """A latency for people: '0.591 ms', '140 ms', '1.03 s' ('–' when unknown)."""
    if value is None:
        return "–"
    return f"{sig3(value / 1000)} s" if abs(value) >= 1000 else f"{sig3(value)} ms"


def fmt_bytes_mb(value: Optional[float]) -> str:
    return "–" if value is None else f"{sig3(value / 1e6)} MB"


def model_name(source: Any) -> str:
    """A short name for the model a result belongs to: 'digits-cnn' for 'example:digits-cnn',
    the file or folder name for a path, '(unknown model)' when the result does not say."""
    text = str(source or "").strip()
    if not text:
        return "(unknown model)"
    if text.startswith("example:"):
        return printable(text[len("example:"):], newlines=False)
    tail = text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return printable(tail or text, newlines=False)


def recipe_label(result: Any, recipe_text: str = "") -> str:
    """The recipe as the user saw it ('bf16 + channels_last'), else the steps of the result."""
    if recipe_text and recipe_text.strip():
        return recipe_text.strip()
    return " → ".join(s.name for s in result.recipe.steps) or "(no steps)"


def elide_words(text: str, metrics: QFontMetricsF, width: float) -> str:
    """`text` if it fits in `width` px, else as many whole words as fit followed by '…'.
    Only a single word wider than the space is cut inside (there is no boundary to cut at)."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    words = text.split(" ")
    while len(words) > 1:
        words.pop()
        while len(words) > 1 and words[-1] in _DANGLING:
            words.pop()
        candidate = " ".join(words).rstrip(",;:(") + "…"
        if metrics.horizontalAdvance(candidate) <= width:
            return candidate
    return metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)


def nice_step(span: float, ticks: int = 5) -> int:
    """An integer tick spacing (1, 2, 5, 10, 20, ...) giving about `ticks` ticks over `span`."""
    raw = max(1.0, span / max(1, ticks))
    base = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * base >= raw:
            return int(m * base)
    return int(10 * base)


class BasePlot(pg.PlotWidget):
    """A PlotWidget that follows the palette and knows its title, colour key and empty state."""

    name = "plot"
    title = "Plot"
    help = ""
    #: Shown in the middle while the plot has nothing to draw (no axes, no ticks then).
    empty_text = "no data yet"

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        # Small on purpose: the window must fit 1024x640 with every plot in it.
        self.setMinimumSize(150, 120)
        self.theme = th.current()
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        # The title spans the axis columns too, so it can use (and is elided to) the whole
        # width instead of widening the plot past its layout.
        item.layout.removeItem(item.titleLabel)
        item.layout.addItem(item.titleLabel, 0, 0, 1, 3)
        # Axes replay their tick text from a QPicture on every paint (most of a plot's paint
        # time); cached as pixmaps they are redrawn only when their ticks change.
        for name in ("left", "bottom"):
            item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._title_extra: list[tuple[str, Optional[str]]] = []
        self._title_roles: list[Optional[str]] = []
        self._title_set: tuple[str, int] = ("", -1)  # the title html and extra lines set last
        self._shown_lines: list[str] = []
        self._key: list[tuple[str, str]] = []   # (label, Theme attribute) for the colour key
        self._key_symbol = "■"
        self._key_visible = False
        self._empty = False
        self._empty_item = pg.TextItem("", anchor=(0.5, 0.5))
        item.addItem(self._empty_item, ignoreBounds=True)
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
    def grab(self, *args: Any) -> Any:
        release_all()  # (turns.py) a plot waiting for its turn to paint would be blank
        return super().grab(*args)

    def apply_theme(self, theme: th.Theme) -> None:
        self.theme = theme
        th.style_plot(self, theme)
        self._empty_item.setColor(theme.muted)
        if self._empty:
            self.getPlotItem().showGrid(x=False, y=False)
        self._restyle()
        self._render_title()

    def set_key(self, *entries: tuple[str, str], symbol: str = "■") -> None:
        """The colour key drawn in the title block: (label, Theme colour attribute) pairs.
        It replaces a legend inside the plot, which covered bars and points."""
        self._key = list(entries)
        self._key_symbol = symbol
        self._render_title()

    def _show_legend(self, show: bool) -> None:
        self._key_visible = show
        self._render_title()

    def key_shown(self) -> bool:
        return bool(self._key) and self._key_visible and not self._empty

    def set_empty(self, empty: bool, text: str = "") -> None:
        """Nothing to draw: axes, ticks, grid and key hidden and a neutral line of text in the
        middle (no negative milliseconds or 0-1 sample axes). False brings the axes back."""
        self._empty = empty
        item = self.getPlotItem()
        item.showAxis("left", not empty)
        item.showAxis("bottom", not empty)
        item.showGrid(x=False, y=not empty, alpha=self.theme.grid_alpha)
        self._empty_item.setText((text or self.empty_text) if empty else "")
        self._empty_item.setVisible(empty)
        if empty:
            item.vb.disableAutoRange()
            self.setXRange(0, 1, padding=0)
            self.setYRange(0, 1, padding=0)
            self._empty_item.setPos(0.5, 0.5)
        self._render_title()

    def is_empty(self) -> bool:
        return self._empty

    def empty_message(self) -> str:
        return self._empty_item.toPlainText() if self._empty else ""

    def set_subtitle(self, *lines: tuple[str, Optional[str]]) -> None:
        """Lines under the title as (text, role) where role is a Theme colour attribute name."""
        self._title_extra = [(text, None) for text, _ in lines]
        self._title_roles = [role for _, role in lines]
        self._render_title()

    def subtitle_text(self) -> str:
        """The full subtitle (what is drawn may be elided to the plot's width)."""
        return "\n".join(text for text, _ in self._title_extra)

    def shown_subtitle(self) -> list[str]:
        """The subtitle lines as drawn at the current width."""
        return list(self._shown_lines)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        # Elide the title to the new width first: its old (wider) minimum would otherwise keep
        # the plot item wider than the view when pyqtgraph fits it in below.
        # (pyqtgraph resizes during its own __init__ and after close(), without a plot item)
        if hasattr(self, "_watcher") and self.getPlotItem() is not None:
            self._render_title()
        super().resizeEvent(event)

    def _fonts(self) -> tuple[QFont, QFont]:
        base = QFont(self.getPlotItem().titleLabel.item.font())
        bold = QFont(base)
        bold.setPointSizeF(11)  # pyqtgraph's title size
        bold.setWeight(QFont.Weight.DemiBold)
        small = QFont(base)
        small.setPointSizeF(9)
        return bold, small

    def _render_title(self) -> None:
        # Every line is elided at a word boundary to the plot's width: a wider line would also
        # set the plot's minimum width and push it out of its layout. The full text stays in
        # subtitle_text() and the title's tooltip.
        bold, small = self._fonts()
        fm_small = QFontMetricsF(small)
        width = max(40.0, self.width() - 2 * _MARGIN)
        title = elide_words(self.title, QFontMetricsF(bold), width)
        key_html, key_width = "", 0.0
        if self.key_shown():
            key_html = "&nbsp;&nbsp;".join(
                f'<span style="color:{getattr(self.theme, role)}">{self._key_symbol}</span>'
                f"&nbsp;{th.escape(label)}" for label, role in self._key)
            plain = "  ".join(f"{self._key_symbol} {label}" for label, _ in self._key)
            key_width = fm_small.horizontalAdvance(plain)
        extra: list[tuple[str, Optional[str]]] = []
        self._shown_lines = []
        for (text, _), role in zip(self._title_extra, self._title_roles):
            shown = elide_words(text, fm_small, width)
            self._shown_lines.append(shown)
            extra.append((shown, getattr(self.theme, role) if role else None))
        key_inline = bool(key_html) and (QFontMetricsF(bold).horizontalAdvance(title) + 16
                                         + key_width <= width)
        if key_html and not key_inline:
            extra.insert(0, ("", None))  # the key gets a line of its own
        html = th.title_html(self.theme, title, *extra, key_html=key_html, key_inline=key_inline)
        if (html, len(extra)) != self._title_set:
            # Setting a title re-lays the plot out and repaints it: live updates (30 a second)
            # and resizes mostly leave it as it is.
            th.set_title(self, html, 1 + len(extra))
            self._title_set = (html, len(extra))
        full = "\n".join(text for text, _ in self._title_extra)
        elided = any(s != t for s, (t, _) in zip(self._shown_lines, self._title_extra))
        self.getPlotItem().titleLabel.setToolTip(full if elided or title != self.title else "")

    def fit_live(self, xs: list[float], ys: list[float], from_zero: bool = True,
                 headroom: float = 0.12,
                 y_range: Optional[tuple[float, float]] = None) -> None:
        """The live view fitted to the points so far: x from the first to the last point with
        integer ticks (sample and batch numbers are counts), y with a little room on top
        (or exactly `y_range`)."""
        if not ys or not xs:
            return
        self.set_empty(False)
        self.getPlotItem().vb.disableAutoRange()
        x0, x1 = min(xs), max(xs)
        x1 = max(x1, x0 + 1)
        self.setXRange(x0 - 0.5, x1 + 0.5, padding=0)
        self.getPlotItem().getAxis("bottom").setTickSpacing(levels=[(nice_step(x1 - x0), 0)])
        if y_range is None:
            lo, hi = (0.0 if from_zero else min(ys)), max(ys)
            span = (hi - lo) or abs(hi) or 1.0
            lo -= (0.04 if from_zero else 0.08) * span  # keeps the bottom tick label
            y_range = (lo, hi + headroom * span)
        self.setYRange(*y_range, padding=0)

    def set_axis_label(self, axis: str, text: str) -> None:
        # AxisItem.setLabel, not PlotItem.setLabel: the latter also shows a hidden axis.
        ax = self.getPlotItem().getAxis(axis)
        # Units are in the label already ("MB", "ms"): pyqtgraph's automatic SI prefix would
        # turn 0.65 MB into "MB (x0.001)" with ticks in kilobytes.
        ax.enableAutoSIPrefix(False)
        ax.setLabel(text, color=self.theme.foreground)
        ax.showLabel(bool(text))
