"""The verdict's words, torch-free: the speed label from a confidence interval, the quality
beside it, and how the two compose into the sentence every face shows (CLI, GUI, history,
report). measure/verdict.py explains the rules and builds the `Verdict` of a run from them;
`results.Verdict` and `RunResult.headline()` say them.
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
