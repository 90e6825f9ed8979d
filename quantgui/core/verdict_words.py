"""The verdict's words, torch-free: the speed label from a confidence interval, the quality
beside it, and the sentences every face shows (CLI, GUI, history, report), composed from a
result's JSON too (the GUI must not import torch to show them). measure/verdict.py explains the
rules and builds the `Verdict` of a run from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

FASTER_ABOVE = 1.03     # the CI's lower bound must clear this to call it faster
SLOWER_BELOW = 0.97     # the CI's upper bound must be below this to call it slower
NEGLIGIBLE_GAIN = 1.05  # a CI whose upper bound stays at or below this rules out a real gain
ACCURACY_DROP = 0.01    # more than one point of top-1 accuracy lost is a quality loss
MIN_COSINE = 0.99
#: Fewer paired rounds cannot support a 95% claim (see measure/verdict.py).
MIN_DECISIVE_ROUNDS = 6

FASTER, SLOWER, NOT_FASTER, INCONCLUSIVE = "faster", "slower", "not faster", "inconclusive"
LABELS = (FASTER, SLOWER, NOT_FASTER, INCONCLUSIVE)


@dataclass
class Quality:
    """"ok" or "degraded"; `summary` is the short phrase the headline carries."""

    status: str = "ok"
    summary: str = ""
    reasons: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        return self.status == "degraded"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary or None,
                "reasons": list(self.reasons)}


# --- the speed label ----------------------------------------------------------------------------

def label_for(ci95: Sequence[float], rounds: int = MIN_DECISIVE_ROUNDS, reliable: bool = True,
              has_steps: bool = True) -> str:
    """The label from the interval (see the module docstring); `reliable` is False for a
    noisy timing or one short of its wanted rounds."""
    lo, hi = float(ci95[0]), float(ci95[1])
    if not has_steps:
        return NOT_FASTER
    if rounds < MIN_DECISIVE_ROUNDS or not (math.isfinite(lo) and math.isfinite(hi)):
        return INCONCLUSIVE
    if lo > FASTER_ABOVE:
        return FASTER
    if hi < SLOWER_BELOW:
        return SLOWER
    if hi <= NEGLIGIBLE_GAIN and reliable:
        return NOT_FASTER
    return INCONCLUSIVE


# --- quality ------------------------------------------------------------------------------------

def assess_quality(before_accuracy: Optional[float], after_accuracy: Optional[float],
                   cosine: Optional[float], cosine_min: Optional[float] = None,
                   nonfinite: int = 0) -> Quality:
    """"degraded" on NaN/Inf outputs, an accuracy drop beyond the bound or a low cosine."""
    short, reasons = [], []
    if nonfinite:
        short.append(f"outputs hold {nonfinite:,} NaN/Inf values")
        reasons.append(f"the optimized model produced {nonfinite:,} NaN/Inf output values")
    if before_accuracy is not None and after_accuracy is not None \
            and before_accuracy - after_accuracy > ACCURACY_DROP:
        drop = 100 * (before_accuracy - after_accuracy)
        short.append(f"accuracy dropped {drop:.1f} points")
        reasons.append(f"accuracy dropped {drop:.1f} points ({before_accuracy:.2%} -> "
                       f"{after_accuracy:.2%})")
    if cosine is not None and not math.isfinite(cosine):
        if not nonfinite:  # NaN outputs already said why; a cosine of garbage is never shown
            short.append("outputs cannot be compared with the original's")
            reasons.append("the outputs' cosine similarity to the original is undefined")
    elif cosine is not None and cosine < MIN_COSINE:
        short.append(f"outputs diverge (cosine {cosine:.3f})")
        low = f" (min {cosine_min:.4f})" if cosine_min is not None else ""
        reasons.append(f"outputs diverge from the original: mean cosine {cosine:.4f}{low}, "
                       f"below {MIN_COSINE}")
    if not short:
        return Quality()
    # The headline names the gravest loss (NaN, then accuracy, then cosine); `reasons` has all.
    return Quality("degraded", short[0], reasons)


# --- words --------------------------------------------------------------------------------------

def compose(label: str, quality_summary: str = "", upper: bool = False) -> str:
    """'faster, but outputs diverge (cosine 0.952)'; 'slower, and accuracy dropped 2.1 points'."""
    word = label.upper() if upper else label
    if not quality_summary:
        return word
    return f"{word}, {'but' if label == FASTER else 'and'} {quality_summary}"


def _num(x: Any) -> Optional[float]:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) \
        and math.isfinite(x) else None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def label_of(r: dict) -> str:
    """The label of a result's JSON. Results saved before "inconclusive" existed called a wide
    interval "not faster"; those are judged again from their interval (which can only make
    them inconclusive: the old rule for faster and slower was the same)."""
    label = _get(r, "verdict", "label")
    label = label if isinstance(label, str) and label else "?"
    if label != NOT_FASTER or isinstance(_get(r, "verdict", "quality"), dict):
        return label
    ci = _get(r, "speedup", "ci95")
    if not (isinstance(ci, list) and len(ci) == 2 and None not in map(_num, ci)):
        return label
    rounds = _get(r, "speedup", "rounds")
    reliable = not r.get("noisy") and not _get(r, "speedup", "few_rounds")
    steps = r.get("steps")
    again = label_for(ci, rounds if isinstance(rounds, int) else MIN_DECISIVE_ROUNDS, reliable,
                      has_steps=bool(steps) if isinstance(steps, list) else True)
    return INCONCLUSIVE if again == INCONCLUSIVE else label


def result_quality(r: dict) -> Quality:
    """The quality of a result's JSON (computed again for results saved without it)."""
    q = _get(r, "verdict", "quality")
    if isinstance(q, dict) and q.get("status") in ("ok", "degraded"):
        reasons = q.get("reasons")
        return Quality(q["status"], str(q.get("summary") or ""),
                       [str(x) for x in reasons] if isinstance(reasons, list) else [])
    nonfinite = _get(r, "fidelity", "nonfinite")
    return assess_quality(_num(_get(r, "before", "accuracy")), _num(_get(r, "after", "accuracy")),
                          _num(_get(r, "fidelity", "cosine")),
                          _num(_get(r, "fidelity", "cosine_min")),
                          nonfinite if isinstance(nonfinite, int) else 0)


def summary_of(r: dict, upper: bool = False) -> str:
    """'faster, but outputs diverge (cosine 0.952)' from a result's JSON."""
    return compose(label_of(r), result_quality(r).summary, upper)


def speed_text(r: dict) -> str:
    """'speedup 1.39x (95% CI 1.30-1.48x)' from a result's JSON ('' when unknown)."""
    med = _num(_get(r, "speedup", "median"))
    if med is None:
        return ""
    text = f"speedup {med:.2f}x"
    ci = _get(r, "speedup", "ci95")
    if isinstance(ci, list) and len(ci) == 2 and None not in map(_num, ci):
        text += f" (95% CI {ci[0]:.2f}–{ci[1]:.2f}x)"
    return text


def headline_of(r: dict, upper: bool = False) -> str:
    """The one line every face shows: summary, then the speed it rests on."""
    speed = speed_text(r)
    return summary_of(r, upper) + (f" — {speed}" if speed else "")
