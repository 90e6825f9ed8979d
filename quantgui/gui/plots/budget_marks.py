"""The quality budget on the history's latency/quality scatter: its floor as a dotted line and
the words that say what the line and the crosses (variants failing their budget) mean."""

from __future__ import annotations

from typing import Any, Optional


def fails_budget(result: Any) -> bool:
    check = getattr(result, "budget", None)
    return check is not None and check.status == "fails"


def budget_subtitle(plot: Any, results: list[Any], metric: str, baseline: Optional[float],
                    scale: float, xs: list[float]) -> list[tuple[str, Optional[str]]]:
    """The budget line of the newest shown result whose budget this axis can draw (accuracy:
    the original's accuracy minus the drop; cosine: the minimum cosine), and the subtitle that
    says what the line and the crosses mean."""
    plot.budget_line.setData([], [])
    checks = [r.budget for r in reversed(results)
              if getattr(r, "budget", None) is not None and r.budget.criteria]
    if not checks:
        return []

    def level(b: Any) -> Optional[float]:
        if metric == "accuracy" and b.max_accuracy_drop is not None and baseline is not None:
            return baseline * scale - b.max_accuracy_drop
        if metric == "cosine" and b.min_cosine is not None:
            return b.min_cosine
        return None
    drawn = next((c.budget for c in checks if level(c.budget) is not None), None)
    if drawn is not None and xs:
        y = level(drawn)
        plot.budget_line.setData([min(xs), max(xs)], [y, y])
    shown = drawn or checks[0].budget
    failing = sum(fails_budget(r) for r in results)
    text = f"✕ fails its budget: {failing} · " if failing else ""
    text += ("┈ " if drawn is not None and xs else "") + f"budget {shown.describe()}"
    return [(text, "warn" if failing else "muted")]
