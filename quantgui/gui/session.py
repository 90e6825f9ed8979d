"""The session history (every finished run) and its export as CSV or JSON.

Also a text-only stand-in for the results/history views, used only when the plots package
cannot be imported (it keeps the window usable and the numbers visible).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QVBoxLayout, QWidget

COLUMNS = ("recipe", "source", "verdict", "quality", "speedup_median", "speedup_ci95_low",
           "speedup_ci95_high", "before_latency_ms", "after_latency_ms", "before_size_bytes",
           "after_size_bytes", "size_ratio", "before_accuracy", "after_accuracy",
           "top1_agreement", "cosine", "sqnr_db", "batch_size", "threads")


def _fin(x: Optional[float]) -> Optional[float]:
    """A finite number or None: a CSV cell never holds NaN or inf."""
    return x if x is not None and math.isfinite(x) else None


def row(recipe_text: str, result: Any) -> dict:
    """One CSV row of a `RunResult`."""
    t, f = result.timing, result.fidelity
    ci = t.ci95 if t.ci_known else (None, None)
    quality = result.quality
    return {
        "recipe": recipe_text, "source": result.source,
        "verdict": result.verdict.label if result.verdict.known else None,
        "quality": quality.summary or quality.status,
        "speedup_median": _fin(t.speedup),
        "speedup_ci95_low": ci[0], "speedup_ci95_high": ci[1],
        "before_latency_ms": _fin(result.before.latency.median_ms),
        "after_latency_ms": _fin(result.after.latency.median_ms),
        "before_size_bytes": result.before.size_bytes,
        "after_size_bytes": result.after.size_bytes,
        "size_ratio": _fin(result.size_ratio),
        "before_accuracy": _fin(result.before.accuracy),
        "after_accuracy": _fin(result.after.accuracy),
        "top1_agreement": _fin(f.top1_agreement), "cosine": _fin(f.cosine),
        "sqnr_db": _fin(f.sqnr_db),
        "batch_size": result.batch_size, "threads": result.threads,
    }


def export(path: str | Path, history: list[tuple[str, Any]]) -> Path:
    """Write the session as .csv (one row per run) or .json (full results), whole or not at
    all; a folder problem or a full disk is a `UserError` (the message the CLI prints)."""
    from quantgui.core import write_text_atomic
    path = Path(path)
    if path.suffix.lower() == ".csv":
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        writer.writeheader()
        for recipe_text, result in history:
            writer.writerow(row(recipe_text, result))
        text = buf.getvalue()
    else:
        if path.suffix.lower() != ".json":
            path = path.with_suffix(".json")
        data = {"runs": [{"recipe_text": r, "result": res.to_json()} for r, res in history]}
        text = json.dumps(data, indent=2, allow_nan=False)
    return write_text_atomic(path, text)


def summary_text(result: Any) -> str:
    from quantgui.core import html_text
    r = row("", result)

    def fmt(v: Optional[float], spec: str, unit: str = "") -> str:
        return "–" if v is None else f"{v:{spec}}{unit}"
    verdict = result.summary() if r["verdict"] else ""
    return (f"<b>{html_text(verdict)}</b><br>speedup {fmt(r['speedup_median'], '.2f', '×')} · "
            f"latency {fmt(r['before_latency_ms'], '.3f')} → {fmt(r['after_latency_ms'], '.3f')}"
            f" ms · size ×{fmt(r['size_ratio'], '.2f')} · accuracy "
            f"{fmt(r['before_accuracy'], '.3f')} → {fmt(r['after_accuracy'], '.3f')} · top-1 "
            f"agreement {fmt(r['top1_agreement'], '.3f')}")


class FallbackResults(QLabel):
    """Stand-in for plots.ResultsView with the same methods."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("Results appear here after a run.", parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.last: Any = None

    def start_run(self, recipe_text: str) -> None:
        self.setText(f"Running {recipe_text}…")

    def on_progress(self, progress: Any) -> None:
        pass

    def show_result(self, result: Any, recipe_text: str = "") -> None:
        self.last = result
        self.setText(summary_text(result))

    def clear(self) -> None:
        self.last = None
        self.setText("Results appear here after a run.")

    def export_png(self, path: str) -> None:
        from quantgui.core import write_bytes_atomic
        from .export_actions import png_bytes
        write_bytes_atomic(path, png_bytes(self))

    def export_svg(self, path: str) -> None:
        raise NotImplementedError("SVG export needs the plots package")


class FallbackHistory(QWidget):
    """Stand-in for plots.HistoryView."""

    variantSelected = Signal(object)
    rowSelected = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._results: list[Any] = []
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._on_row)
        QVBoxLayout(self).addWidget(self.list)

    def add(self, result: Any, recipe_text: str) -> None:
        self._results.append(result)
        speed = _fin(result.timing.speedup)
        self.list.addItem(f"{recipe_text}: {speed:.2f}×" if speed else recipe_text)

    def _on_row(self, i: int) -> None:
        self.rowSelected.emit(i)
        if i >= 0:
            self.variantSelected.emit(self._results[i])

    def results(self) -> list[Any]:
        return list(self._results)

    def clear(self) -> None:
        self._results.clear()
        self.list.clear()

    def load(self, entries: list[tuple[Any, str]]) -> None:
        self.clear()
        for result, recipe_text in entries:
            self.add(result, recipe_text)
