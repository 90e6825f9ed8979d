"""Model size: grouped before/after bars (file size, and memory when known) with the ratio."""

from __future__ import annotations

from typing import Any, Optional

import pyqtgraph as pg

from .base import BasePlot, fmt_bytes_mb, num
from .theme import COLOUR_HELP

GROUPS = ("size", "memory")
#: Short enough to be drawn under their bars at the smallest plot width (pyqtgraph drops a tick
#: label that would reach past the axis); the long names are in GROUP_NAMES and the tooltip.
GROUP_LABELS = {"size": "file size", "memory": "in memory"}
GROUP_NAMES = {"size": "serialized size", "memory": "memory (parameters + buffers)"}
WIDTH = 0.36


def ratio_text(ratio: Optional[float]) -> str:
    """'0.26x (3.8x smaller)' for after/before = 0.26."""
    if ratio is None or ratio <= 0:
        return ""
    if abs(ratio - 1.0) < 0.005:
        return f"{ratio:.2f}x (same size)"
    if ratio < 1.0:
        return f"{ratio:.2f}x ({1.0 / ratio:.1f}x smaller)"
    return f"{ratio:.2f}x ({ratio:.1f}x larger)"


class SizePlot(BasePlot):
    name = "size"
    title = "Model size"
    help = ("Size of the model before and after optimization, in MB (1 MB = 10^6 bytes): "
            "file size = as serialized, in memory = parameters + buffers; the ratio is "
            "after / before. " + COLOUR_HELP)

    empty_text = "no sizes yet"

    def _build(self) -> None:
        item = self.getPlotItem()
        self.before_bars = pg.BarGraphItem(x=[], height=[], width=WIDTH, name="before")
        self.after_bars = pg.BarGraphItem(x=[], height=[], width=WIDTH, name="after")
        item.addItem(self.before_bars)
        item.addItem(self.after_bars)
        self.set_axis_label("left", "MB")
        bottom = item.getAxis("bottom")
        bottom.setTicks([[(i, GROUP_LABELS[g]) for i, g in enumerate(GROUPS)]])
        bottom.setStyle(hideOverlappingLabels=False)  # lets a label reach 15 px past the axis
        self.setMouseEnabled(x=False, y=False)
        self.set_key(("before", "before"), ("after", "after"))
        self._show_legend(True)
        self._values: dict[str, tuple[Optional[float], Optional[float]]] = {}
        self._ratio: Optional[float] = None
        self._draw()

    def _restyle(self) -> None:
        t = self.theme
        self.before_bars.setOpts(brush=pg.mkBrush(t.before), pen=pg.mkPen(t.foreground, width=0.5))
        self.after_bars.setOpts(brush=pg.mkBrush(t.after), pen=pg.mkPen(t.foreground, width=0.5))

    # -- data -------------------------------------------------------------------------------
    def set_sizes(self, before: Any, after: Any, group: str = "size") -> None:
        self._values[group] = (num(before), num(after))
        if group == "size":
            b, a = self._values[group]
            self._ratio = a / b if a is not None and b else None
        self._draw()

    def set_result(self, result: Any) -> None:
        """The final sizes of a `RunResult`."""
        self._values = {}
        self._ratio = None
        for group, key in (("size", "size_bytes"), ("memory", "memory_bytes")):
            b = num(getattr(result.before, key))
            a = num(getattr(result.after, key))
            if b is not None or a is not None:
                self._values[group] = (b, a)
        sb, sa = self._values.get("size", (None, None))
        ratio = num(result.size_ratio)
        if ratio is None and sb and sa is not None:
            ratio = sa / sb
        self._ratio = ratio
        self._draw()

    def clear_data(self) -> None:
        self._values = {}
        self._ratio = None
        super().clear_data()
        self._draw()

    def has_data(self) -> bool:
        b, a = self._values.get("size", (None, None))
        return b is not None and a is not None

    def ratio(self) -> Optional[float]:
        return self._ratio

    def ratio_label_text(self) -> str:
        """The ratio as shown (the subtitle under the title, clear of the bars)."""
        return ratio_text(self._ratio)

    def _draw(self) -> None:
        bx, bh, ax, ah = [], [], [], []
        top = 0.0
        tips = []
        for i, group in enumerate(GROUPS):
            b, a = self._values.get(group, (None, None))
            if b is not None:
                bx.append(i - WIDTH / 2)
                bh.append(b / 1e6)
            if a is not None:
                ax.append(i + WIDTH / 2)
                ah.append(a / 1e6)
            top = max([top] + [v / 1e6 for v in (b, a) if v is not None])
            if b is not None or a is not None:
                tips.append(f"{GROUP_NAMES[group]}: {fmt_bytes_mb(b)} → {fmt_bytes_mb(a)}")
        self.before_bars.setOpts(x=bx, height=bh, width=WIDTH)
        self.after_bars.setOpts(x=ax, height=ah, width=WIDTH)
        text = ratio_text(self._ratio)
        self.set_subtitle(*([(text, None)] if text else []))
        self.setToolTip("\n".join([self.help] + tips))
        if not (bx or ax):
            self.set_empty(True)
            return
        self.set_empty(False)
        top = top if top > 0 else 1.0
        self.setXRange(-0.6, len(GROUPS) - 0.4, padding=0)
        # With a grid pyqtgraph drops a tick label sitting exactly on the edge: go a bit below 0.
        self.setYRange(-top * 0.04, top * 1.08, padding=0)
