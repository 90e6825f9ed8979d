"""The quality budget: how much quality the user will trade for speed, stated once and judged
with the uncertainty of the measurement. Torch-free (the GUI and the recipe files use it).

A `QualityBudget` holds up to four bounds: the largest accuracy drop in *points* (with labeled
data), or, without labels, the smallest cosine / top-1 agreement / SQNR (dB) to the original's
outputs. `judge` turns a run's numbers into a `BudgetCheck`:

- accuracy: the paired 95% interval of the change (measure/paired.py). "meets" only when the
  interval's lower end is within the budget, "fails" when its upper end is below it, else
  "undecided" with about how many samples would decide (an interval's width shrinks as
  1/sqrt(n), so n * (half width / distance to the budget)^2 puts the budget outside it);
- top-1 agreement: the same rule on a Wilson 95% interval of the agreement over the samples;
- cosine: the *minimum over the samples* must clear the bound. A minimum cosine is a floor every
  output must keep (an embedding that drifted is a wrong answer for that input), so one sample
  below it is a failure, not noise, and no interval can make it pass; the mean would hide the
  drifting samples that made the issue's encoder unusable (mean 0.952, min 0.935);
- SQNR: one ratio of total signal to total noise power over all outputs, compared as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from . import schema
from .params import shown

MEETS, FAILS, UNDECIDED = "meets", "fails", "undecided"

#: (name, lowest, highest, unit words): the bounds a budget may hold, in the JSON's order.
BOUNDS = {
    "max_accuracy_drop": (0.0, 100.0, "accuracy points"),
    "min_cosine": (-1.0, 1.0, "cosine"),
    "min_agreement": (0.0, 1.0, "top-1 agreement (fraction)"),
    "min_sqnr": (-100.0, 200.0, "SQNR (dB)"),
}


@dataclass(frozen=True)
class Bound(schema.Node):
    """A finite number within [low, high]."""
    low: float
    high: float

    def check(self, value: Any, parts: tuple) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise schema.Invalid(parts, f"must be a number, got {schema.kind(value)}")
        if not math.isfinite(value):
            raise schema.Invalid(parts, f"must be a finite number, got {shown(value)}")
        if not self.low <= value <= self.high:
            raise schema.Invalid(parts, f"must be at least {self.low:g} and at most "
                                        f"{self.high:g}, got {value:g}")
        return float(value)


SCHEMA = schema.Obj({k: schema.Nullable(Bound(lo, hi)) for k, (lo, hi, _) in BOUNDS.items()})


@dataclass(frozen=True)
class QualityBudget:
    max_accuracy_drop: Optional[float] = None  # points: 0.5 = half a point of top-1 accuracy
    min_cosine: Optional[float] = None         # every sample's cosine to the original
    min_agreement: Optional[float] = None      # top-1 agreement with the original, 0..1
    min_sqnr: Optional[float] = None           # dB

    @property
    def empty(self) -> bool:
        return all(getattr(self, k) is None for k in BOUNDS)

    def to_json(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in BOUNDS if getattr(self, k) is not None}

    @classmethod
    def from_json(cls, data: Any, where: str = "budget", parts: tuple = ()) -> "QualityBudget":
        """A UserError "<where>: <JSON path>: <reason>" for a bad value (NaN, negative drop,
        cosine above 1, unknown key)."""
        return cls(**schema.check(SCHEMA, data, where, parts))

    def describe(self) -> str:
        """'accuracy drop <= 0.5 pt, cosine >= 0.99'."""
        parts = []
        if self.max_accuracy_drop is not None:
            parts.append(f"accuracy drop <= {self.max_accuracy_drop:g} pt")
        if self.min_cosine is not None:
            parts.append(f"cosine >= {self.min_cosine:g}")
        if self.min_agreement is not None:
            parts.append(f"top-1 agreement >= {self.min_agreement:g}")
        if self.min_sqnr is not None:
            parts.append(f"SQNR >= {self.min_sqnr:g} dB")
        return ", ".join(parts) or "no budget"


@dataclass
class Criterion:
    """One bound judged: the measured value and, where it has one, its 95% interval."""
    name: str                       # a key of BOUNDS
    status: str                     # meets / fails / undecided
    bound: float
    value: Optional[float]
    ci95: Optional[tuple[float, float]] = None
    samples: int = 0
    samples_needed: Optional[int] = None  # undecided: about this many would decide
    words: str = ""

    def to_json(self) -> dict[str, Any]:
        def f(x: Optional[float]) -> Optional[float]:
            return None if x is None or not math.isfinite(x) else float(x)
        return {"name": self.name, "status": self.status, "bound": f(self.bound),
                "value": f(self.value),
                "ci95": None if self.ci95 is None else [f(self.ci95[0]), f(self.ci95[1])],
                "samples": self.samples, "samples_needed": self.samples_needed,
                "words": self.words}

    @classmethod
    def from_json(cls, data: Any) -> "Criterion":
        from .results import _json as j
        ci = j.numbers(j.items(data, "ci95"))
        return cls(j.text(data, "name"), j.text(data, "status", UNDECIDED),
                   j.real(data, "bound"), j.number(data, "value"),
                   (ci[0], ci[1]) if len(ci) == 2 else None, j.whole(data, "samples"),
                   j.maybe_whole(data, "samples_needed"), j.text(data, "words"))


@dataclass
class BudgetCheck:
    """The budget and each bound's verdict; `status` is the worst of them (fails, then
    undecided, then meets)."""
    budget: QualityBudget
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def status(self) -> str:
        states = {c.status for c in self.criteria}
        return FAILS if FAILS in states else UNDECIDED if UNDECIDED in states or not states \
            else MEETS

    @property
    def meets(self) -> bool:
        return self.status == MEETS

    def words(self) -> str:
        """'fails the budget: accuracy -2.1 pt (95% CI -2.9 to -1.3), budget -0.5 pt'."""
        status = self.status
        shown_ = [c for c in self.criteria if c.status == status] or self.criteria
        head = {MEETS: "meets the budget", FAILS: "fails the budget",
                UNDECIDED: "budget undecided"}[status]
        return head + (": " + "; ".join(c.words for c in shown_) if shown_ else "")

    def to_json(self) -> dict[str, Any]:
        return {"budget": self.budget.to_json(), "status": self.status,
                "criteria": [c.to_json() for c in self.criteria], "words": self.words()}

    @classmethod
    def from_json(cls, data: Any) -> Optional["BudgetCheck"]:
        if not isinstance(data, dict):
            return None
        from .results import _json as j
        raw = j.obj(data, "budget")
        budget = QualityBudget(**{k: j.number(raw, k) for k in BOUNDS})
        return cls(budget, [Criterion.from_json(c) for c in j.items(data, "criteria")
                            if isinstance(c, dict)])


# --- judging ------------------------------------------------------------------------------------

def samples_to_decide(n: int, center: float, ci95: tuple[float, float],
                      threshold: float) -> Optional[int]:
    """About how many samples would put `threshold` outside the interval: its half width
    shrinks as 1/sqrt(n). None when the estimate sits on the threshold (no count decides)."""
    half = (ci95[1] - ci95[0]) / 2
    distance = abs(center - threshold)
    if n <= 0 or distance <= 1e-12 or not math.isfinite(half):
        return None
    return max(n + 1, math.ceil(n * (half / distance) ** 2))


def _interval_status(lo: float, hi: float, threshold: float) -> str:
    if lo >= threshold - 1e-12:
        return MEETS
    if hi < threshold - 1e-12:
        return FAILS
    return UNDECIDED


def _needed_words(needed: Optional[int]) -> str:
    return ("the change sits on the budget: no sample count decides it" if needed is None
            else f"about {needed:,} samples would decide")


def wilson(successes: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of a proportion."""
    if n <= 0:
        return math.nan, math.nan
    z = 1.959963984540054
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def judge(budget: QualityBudget, accuracy_change: Any = None, fidelity: Any = None) -> BudgetCheck:
    """The budget's verdict on a run: `accuracy_change` an AccuracyChange (or None without
    labels), `fidelity` a Fidelity. A bound whose number was not measured (no labels for an
    accuracy budget, no class axis for agreement) is "undecided" and says why; NaN/Inf outputs
    fail every fidelity bound (a number computed from them is never shown)."""
    out = BudgetCheck(budget)
    add = out.criteria.append
    nonfinite = getattr(fidelity, "nonfinite", 0) if fidelity is not None else 0
    samples = getattr(fidelity, "samples", 0) if fidelity is not None else 0

    if budget.max_accuracy_drop is not None:
        limit = -budget.max_accuracy_drop / 100  # the change may go down to this
        ac = accuracy_change
        if ac is None or not math.isfinite(ac.change):
            add(Criterion("max_accuracy_drop", UNDECIDED, budget.max_accuracy_drop, None,
                          words="no labeled test data to measure accuracy on"))
        else:
            lo, hi = ac.ci95
            status = _interval_status(lo, hi, limit) if math.isfinite(lo) and math.isfinite(hi) \
                else UNDECIDED
            needed = samples_to_decide(ac.samples, ac.change, (lo, hi), limit) \
                if status == UNDECIDED else None
            words = (f"accuracy {ac.words()}, budget -{budget.max_accuracy_drop:g} pt")
            if status == UNDECIDED:
                words += f" — {_needed_words(needed)}"
            add(Criterion("max_accuracy_drop", status, budget.max_accuracy_drop,
                          100 * ac.change, (100 * lo, 100 * hi), ac.samples, needed, words))

    def garbage(name: str, bound: float) -> bool:
        if nonfinite:
            add(Criterion(name, FAILS, bound, None, samples=samples,
                          words=f"outputs hold {nonfinite:,} NaN/Inf values"))
        return bool(nonfinite)

    if budget.min_cosine is not None and not garbage("min_cosine", budget.min_cosine):
        low = getattr(fidelity, "cosine_min", math.nan) if fidelity is not None else math.nan
        if not math.isfinite(low) or samples == 0:
            add(Criterion("min_cosine", UNDECIDED, budget.min_cosine, None,
                          words="the outputs' cosine was not measured"))
        else:
            status = MEETS if low >= budget.min_cosine else FAILS
            add(Criterion("min_cosine", status, budget.min_cosine, low, samples=samples,
                          words=f"lowest cosine over {samples:,} samples {low:.4f}, budget "
                                f">= {budget.min_cosine:g}"))

    if budget.min_agreement is not None and not garbage("min_agreement", budget.min_agreement):
        agree = getattr(fidelity, "top1_agreement", None) if fidelity is not None else None
        if agree is None or not math.isfinite(agree) or samples == 0:
            add(Criterion("min_agreement", UNDECIDED, budget.min_agreement, None,
                          words="the outputs have no class axis to agree on"))
        else:
            lo, hi = wilson(agree * samples, samples)
            status = _interval_status(lo, hi, budget.min_agreement)
            needed = samples_to_decide(samples, agree, (lo, hi), budget.min_agreement) \
                if status == UNDECIDED else None
            words = (f"top-1 agreement {agree:.2%} (95% CI {lo:.2%} to {hi:.2%}), budget "
                     f">= {budget.min_agreement:.2%}")
            if status == UNDECIDED:
                words += f" — {_needed_words(needed)}"
            add(Criterion("min_agreement", status, budget.min_agreement, agree, (lo, hi),
                          samples, needed, words))

    if budget.min_sqnr is not None and not garbage("min_sqnr", budget.min_sqnr):
        sqnr = getattr(fidelity, "sqnr_db", math.nan) if fidelity is not None else math.nan
        if math.isnan(sqnr):
            add(Criterion("min_sqnr", UNDECIDED, budget.min_sqnr, None,
                          words="the SQNR could not be measured"))
        else:
            status = MEETS if sqnr >= budget.min_sqnr else FAILS
            said = "identical outputs" if sqnr == math.inf else f"SQNR {sqnr:.1f} dB"
            add(Criterion("min_sqnr", status, budget.min_sqnr, sqnr, samples=samples,
                          words=f"{said}, budget >= {budget.min_sqnr:g} dB"))
    return out
