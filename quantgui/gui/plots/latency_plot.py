"""Latency: timed samples streaming in, then medians with p10-p90 bars and the verdict."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pyqtgraph as pg

from .base import CATEGORY_TICKS, BasePlot, fmt_ms, num
from .theme import COLOUR_HELP

WHICH = ("before", "after")
BAR_WIDTH = 0.5


def speedup_text(result: Any) -> str:
    """'faster, but outputs diverge (cosine 0.952) — speedup 1.39x (95% CI 1.30–1.48x)': the
    engine's headline of a `RunResult` ('' without a speedup)."""
    if num(result.timing.speedup) is None:
        return ""
    return result.headline() if result.verdict.known else result.speed_text()


def verdict_role(result: Any) -> str:
    """The colour role of a result's headline (see Theme.verdict_colour)."""
    label = result.verdict.label
    if label == "slower":
        return "bad"
    if result.verdict.degraded or label == "inconclusive":
        return "warn"
    return "good" if label == "faster" else "neutral"


class LatencyPlot(BasePlot):
    name = "latency"
    title = "Latency per batch"
    help = ("While timing: every timed sample in the order it was measured (before and after are "
            "interleaved, so drift shows on both). Finally: the median as a bar, the p10–p90 "
            "range as error bars, the samples as dots, and the speedup (before/after median) "
            "with its 95% confidence interval. " + COLOUR_HELP)

    empty_text = "no timing yet"

    def _build(self) -> None:
        item = self.getPlotItem()
        self.set_key(("before", "before"), ("after", "after"), symbol="●")
        self.median_bars = {w: pg.BarGraphItem(x=[], height=[], width=BAR_WIDTH) for w in WHICH}
        for bars in self.median_bars.values():
            item.addItem(bars)
        self.error_bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0),
                                          bottom=np.zeros(0), beam=0.18)
        item.addItem(self.error_bars)
        self.samples = {w: pg.PlotDataItem([], [], pen=None, symbol="o", symbolSize=5, name=w)
                        for w in WHICH}
        for curve in self.samples.values():
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            item.addItem(curve)
        self.set_axis_label("left", "ms")
        self._live: dict[str, list[float]] = {}
        self._index: dict[str, list[int]] = {}
        self._count = 0
        self._stats: dict[str, dict] = {}
        self._verdict: Optional[str] = None
        self._final = False
        self._result: Any = None
        self._rng = np.random.default_rng(0)
        self.clear_data()

    def _restyle(self) -> None:
        t = self.theme
        for w in WHICH:
            colour = t.which_colour(w)
            self.median_bars[w].setOpts(brush=pg.mkBrush(t.brush(colour, 110)),
                                        pen=pg.mkPen(colour, width=1.5))
            self.samples[w].setSymbolBrush(pg.mkBrush(t.brush(colour, 190)))
            self.samples[w].setSymbolPen(pg.mkPen(None))
        self.error_bars.setData(pen=pg.mkPen(t.foreground, width=1.5))
        if self._final:
            self._render_final_title()

    # -- live -------------------------------------------------------------------------------
    def add_samples(self, samples: list[tuple[str, float]]) -> None:
        """Append live (which, ms) samples in measurement order (one setData per series)."""
        samples = [(w, v) for w, v in samples if w in WHICH]
        if not samples:
            return
        if self._final:
            self._reset_live()
        for which, v in samples:
            self._live[which].append(v)
            self._index[which].append(self._count)
            self._count += 1
        for which in {w for w, _ in samples}:
            self.samples[which].setData(self._index[which], self._live[which])
        self.fit_live([0, self._count - 1], self._live["before"] + self._live["after"],
                      from_zero=True)
        n_b, n_a = len(self._live["before"]), len(self._live["after"])
        med = {w: (float(np.median(self._live[w])) if self._live[w] else None) for w in WHICH}
        text = f"timing… {n_b} before / {n_a} after samples"
        if med["before"] is not None and med["after"] is not None:
            text += f" · running medians {fmt_ms(med['before'])} / {fmt_ms(med['after'])}"
        self.set_subtitle((text, "muted"))

    def _reset_live(self) -> None:
        self._live = {w: [] for w in WHICH}
        self._index = {w: [] for w in WHICH}
        self._count = 0
        self._final = False
        self._result = None
        self._stats = {}
        self._verdict = None
        for w in WHICH:
            self.median_bars[w].setOpts(x=[], height=[])
            self.samples[w].setData([], [])
        self.error_bars.setData(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0), bottom=np.zeros(0))
        bottom = self.getPlotItem().getAxis("bottom")
        bottom.setTicks(None)
        bottom.setTickSpacing()
        self.set_axis_label("bottom", "timed sample #")  # in measurement order (help)
        self.setMouseEnabled(x=True, y=True)
        self._show_legend(True)
        self.set_empty(True)

    # -- final ------------------------------------------------------------------------------
    def set_result(self, result: Any) -> None:
        """The final plot of a `RunResult`."""
        self._final = True
        self._result = result
        self._stats = {}
        xs, ys, tops, bottoms = [], [], [], []
        ceiling = 0.0
        for i, w in enumerate(WHICH):
            lat = getattr(result, w).latency
            med, p10, p90 = num(lat.median_ms), num(lat.p10_ms), num(lat.p90_ms)
            samples = [v for v in (num(x) for x in lat.values_ms) if v is not None]
            if med is None and samples:
                med = float(np.median(samples))
            if med is None:
                self.median_bars[w].setOpts(x=[], height=[])
                self.samples[w].setData([], [])
                continue
            self._stats[w] = {"median": med, "p10": p10, "p90": p90, "n": len(samples)}
            self.median_bars[w].setOpts(x=[i], height=[med], width=BAR_WIDTH)
            if p10 is not None and p90 is not None:
                xs.append(i)
                ys.append(med)
                tops.append(max(0.0, p90 - med))
                bottoms.append(max(0.0, med - p10))
            ceiling = max(ceiling, med, p90 or 0.0)
            if samples:
                jitter = self._rng.uniform(-BAR_WIDTH * 0.35, BAR_WIDTH * 0.35, len(samples))
                self.samples[w].setData(i + jitter, samples)
                # Outliers may stretch the axis, but never beyond 3x the p90 band.
                ceiling = max(ceiling, min(max(samples), 3 * (p90 or med)))
            else:
                self.samples[w].setData([], [])
        self.error_bars.setData(x=np.array(xs, float), y=np.array(ys, float),
                                top=np.array(tops, float), bottom=np.array(bottoms, float),
                                beam=0.18)
        self._verdict = result.verdict.label
        self._show_legend(False)  # the axis names before/after
        if not self._stats:
            self.set_empty(True, "latency not measured")
            self._render_final_title()
            return
        self.set_empty(False)
        self.getPlotItem().getAxis("bottom").setTicks(CATEGORY_TICKS)
        self.set_axis_label("bottom", "")
        self.setMouseEnabled(x=False, y=False)
        self.disableAutoRange()
        self.setXRange(-0.6, 1.6, padding=0)
        ceiling = ceiling if ceiling > 0 else 1.0
        self.setYRange(-ceiling * 0.04, ceiling * 1.15, padding=0)  # "0" stays labelled
        self._render_final_title()

    def _render_final_title(self) -> None:
        lines: list[tuple[str, Optional[str]]] = []
        r = self._result
        text = speedup_text(r)
        if text:  # two lines: the verdict in its colour, then the numbers it rests on
            head, _, speed = text.partition(" — ")
            lines.append((head, verdict_role(r)))
            if speed:
                lines.append((speed, None))
        if r.noisy:
            reason = r.noisy_reason
            lines.append((f"⚠ noisy measurement{': ' + reason if reason else ''}", "warn"))
        self.set_subtitle(*lines)
        tips = [self.help]
        for w, s in self._stats.items():
            band = (f", p10–p90 {fmt_ms(s['p10'])}–{fmt_ms(s['p90'])}"
                    if s["p10"] is not None and s["p90"] is not None else "")
            tips.append(f"{w}: median {fmt_ms(s['median'])}{band}, {s['n']} samples")
        tips += [f"• {x}" for x in r.verdict.reasons]
        tips += [f"⚠ {x}" for x in r.verdict.warnings]
        self.setToolTip("\n".join(tips))

    def verdict_text(self) -> str:
        return self.subtitle_text()

    def clear_data(self) -> None:
        self._reset_live()
        self.setToolTip(self.help)
        super().clear_data()

    def has_data(self) -> bool:
        if self._final:
            return all(w in self._stats for w in WHICH)
        return all(self._live[w] for w in WHICH)
