"""A run as plain text: the before/after table `quantgui-cli run` prints (no Qt, no rich terminal)."""

from __future__ import annotations

import math
from typing import Any, Optional




def mb(n: Optional[int]) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def num(x: Optional[float], fmt: str = ".4f") -> str:
    if x is None:
        return "-"
    return format(x, fmt) if math.isfinite(x) else str(x)  # inf, -inf, nan


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def format_result(result: Any) -> str:
    """The before/after text table (`quantgui-cli run` prints it; reports may reuse it)."""
    b, a, t, f, v = result.before, result.after, result.timing, result.fidelity, result.verdict

    def lat(s: Any) -> str:
        return f"{s.median_ms:.3f} ms [{s.p10_ms:.3f}-{s.p90_ms:.3f}]"
    ratio = "-" if result.size_ratio is None else f"{result.size_ratio:.2f}x"
    lines = [f"model: {result.source or '-'}    recipe: {result.recipe.describe()}",
             f"batch {result.batch_size}, {result.threads} thread(s), torch "
             f"{result.environment.get('torch')}, {result.environment.get('cpu') or 'cpu'}",
             "",
             table([("", "before", "after", ""),
                    ("size (saved)", mb(b.size_bytes), mb(a.size_bytes), f"ratio {ratio}"),
                    ("size (memory)", mb(b.memory_bytes), mb(a.memory_bytes), ""),
                    ("latency median [p10-p90]", lat(b.latency), lat(a.latency),
                     f"{t.rounds} interleaved rounds"),
                    ("first call", f"{b.latency.first_call_ms:.1f} ms",
                     f"{a.latency.first_call_ms:.1f} ms", ""),
                    ("accuracy", pct(b.accuracy), pct(a.accuracy), "")]),
             "",
             f"speedup: {t.speedup:.2f}x (95% CI {t.ci95[0]:.2f}-{t.ci95[1]:.2f})",
             f"fidelity: top-1 agreement {pct(f.top1_agreement)}, cosine {num(f.cosine)} "
             f"(min {num(f.cosine_min)}), max abs error {num(f.max_abs_error, '.4g')}, SQNR "
             + ("inf (identical)" if math.isinf(f.sqnr_db) and f.sqnr_db > 0
                else f"{num(f.sqnr_db, '.1f')} dB"),
             *data_lines(result),
             f"verdict: {v.summary.replace(v.label, v.label.upper(), 1)}"]
    if v.inconclusive_reason:
        again = (f" (run again with --time-budget {v.suggested_budget_s:g})"
                 if v.suggested_budget_s else "")
        lines.append(f"  ? {v.inconclusive_reason}{again}")
    lines += [f"  - {r}" for r in v.reasons]
    lines += [f"  ! {w}" for w in v.warnings]
    lines += budget_lines(result)
    said = v.reasons + v.warnings + [v.inconclusive_reason or ""]
    if t.noisy and not any("noisy" in r for r in said):
        lines.append(f"  ! noisy measurement: {t.noisy_reason}")
    if result.steps:
        lines.append("steps:")
        for i, s in enumerate(result.steps, 1):
            params = ", ".join(f"{k}={'auto' if val is None else val}"
                               for k, val in s.params.items())
            lines.append(f"  {i}. {s.name}" + (f" ({params})" if params else "")
                         + f"  {s.seconds:.2f} s")
            lines += [f"     - {n}" for n in s.notes]
            if s.metrics:
                lines.append("     " + ", ".join(f"{k}={val}" for k, val in s.metrics.items()))
    return "\n".join(lines)


def budget_lines(result: Any) -> list[str]:
    """'budget (accuracy drop <= 0.5 pt): MEETS' and one line per bound."""
    check = getattr(result, "budget", None)
    if check is None or not check.criteria:
        return []
    return ([f"budget ({check.budget.describe()}): {check.status.upper()}"]
            + [f"  {c.status}: {c.words}" for c in check.criteria])


#: Per-class lines printed at most (the JSON has them all).
MAX_CLASS_LINES = 20


def data_lines(result: Any) -> list[str]:
    """The accuracy change with its paired interval, compact per-class lines, flips, the
    similarity check and skipped samples (only what the run has)."""
    lines = []
    change = getattr(result, "accuracy_change", None)
    if change is not None:
        lines.append(f"accuracy change: {change.words()} on {change.samples:,} samples")
        named = [c for c in change.per_class if not c.name.isdigit()]
        if named:
            shown = named[:MAX_CLASS_LINES]
            width = max(len(c.name) for c in shown)
            lines += [f"  {c.name:<{width}}  {pct(c.before)} -> {pct(c.after)}  "
                      f"({c.samples:,})" for c in shown]
            if len(named) > len(shown):
                lines.append(f"  ... {len(named) - len(shown)} more classes (--json has all)")
        if change.flips_total:
            lines.append(f"flipped: {change.flips_total:,} predictions changed "
                         f"({change.broken:,} right -> wrong, {change.fixed:,} wrong -> right)")
    similarity = getattr(result, "similarity", None)
    if similarity is not None:
        lines.append(f"similarity: {similarity.words()}")
    if getattr(result, "skipped_samples", 0):
        lines.append(f"skipped: {result.skipped_samples:,} unreadable samples")
    return lines

