"""What a run produced: `RunResult` with its `Measurement`s, `StepReport`s, timing, fidelity
and verdict. `to_json()` is what `quantgui-cli run --json` writes, projects store and (next)
the engine process sends; `RunResult.from_json` is the one reader of all of them, old project
files included. The optimized model itself (`variant`) stays in the engine: it is neither
serialized nor compared; `variant_id` names it across the process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from ..budget import BudgetCheck, QualityBudget
from ..recipe import Recipe, Step
from ..verdict_words import (INCONCLUSIVE, MIN_DECISIVE_ROUNDS, NOT_FASTER, Quality,
                             assess_quality, label_for)
from . import _json as j
from .accuracy import AccuracyChange, Similarity
from .quality import Fidelity
from .timing import LatencyStats, Timing
from .verdict import Verdict, quality_from_json


@dataclass
class StepReport:
    """One applied step: its parameters, what it did (notes, measured metrics), how long it
    took, and the choices it made.

    `decisions` is JSON-safe data the step's technique fills (its keys are documented by the
    technique); shared keys: "engine" (quantized kernel engine, e.g. "x86"), "api" (the
    quantization API used, e.g. "torch.ao", "pt2e", "torchao"), "fastpath" (bool: a native fast
    path ran), "compiled" (bool: the step compiled the model). The script writer reads these,
    never note text."""

    name: str
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    decisions: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"name": self.name, "params": dict(self.params),
                            "notes": list(self.notes), "metrics": dict(self.metrics),
                            "seconds": self.seconds, "decisions": dict(self.decisions)})

    @classmethod
    def from_json(cls, data: Any) -> "StepReport":
        return cls(j.text(data, "name", "?"), dict(j.obj(data, "params")), j.texts(data, "notes"),
                   dict(j.obj(data, "metrics")), j.number(data, "seconds") or 0.0,
                   dict(j.obj(data, "decisions")))


@dataclass
class Measurement:
    """One side (before or after): sizes, latency and accuracy (None without labels)."""

    size_bytes: Optional[int]
    memory_bytes: Optional[int]
    latency: LatencyStats
    accuracy: Optional[float] = None

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"size_bytes": self.size_bytes, "memory_bytes": self.memory_bytes,
                            "latency_ms": self.latency.to_json(), "accuracy": self.accuracy})

    @classmethod
    def from_json(cls, data: Any) -> "Measurement":
        return cls(j.maybe_whole(data, "size_bytes"), j.maybe_whole(data, "memory_bytes"),
                   LatencyStats.from_json(j.obj(data, "latency_ms")), j.number(data, "accuracy"))


@dataclass
class RunResult:
    before: Measurement
    after: Measurement
    timing: Timing
    size_ratio: Optional[float]
    fidelity: Fidelity
    verdict: Verdict
    steps: list[StepReport]
    environment: dict[str, Any]
    recipe: Recipe
    batch_size: int
    threads: int
    source: str = ""
    #: The optimized model's name in the engine that holds it (None: not kept there).
    variant_id: Optional[str] = None
    #: Highest resident memory of the process that ran it, in bytes (None: not measured).
    peak_rss_bytes: Optional[int] = None
    #: The optimized model itself, in the process that ran it only: never serialized/compared.
    variant: Any = field(default=None, compare=False, repr=False)
    #: With labeled data: the accuracy change with its paired 95% interval, per class, flips.
    accuracy_change: Optional[AccuracyChange] = None
    #: With sentence pairs and scores: the Spearman check before vs after.
    similarity: Optional[Similarity] = None
    #: Samples of the evaluation data that could not be read (unreadable images, skipped).
    skipped_samples: int = 0
    #: The quality budget's verdict (None: the run had no budget).
    budget: Optional[BudgetCheck] = None

    @property
    def noisy(self) -> bool:
        return self.timing.noisy

    @property
    def noisy_reason(self) -> Optional[str]:
        return self.timing.noisy_reason

    @property
    def quality(self) -> Quality:
        return self.verdict.quality

    def speed_text(self) -> str:
        """'speedup 1.39x (95% CI 1.30–1.48x)' ('' when the speedup is unknown)."""
        t = self.timing
        if not math.isfinite(t.speedup):
            return ""
        text = f"speedup {t.speedup:.2f}x"
        if t.ci_known:
            text += f" (95% CI {t.ci95[0]:.2f}–{t.ci95[1]:.2f}x)"
        return text

    def summary(self, upper: bool = False) -> str:
        """'faster, but outputs diverge (cosine 0.952)'."""
        return self.verdict.words(upper)

    def headline(self, upper: bool = False) -> str:
        """The one line every face shows: the verdict with its quality, then the speed it rests
        on."""
        speed = self.speed_text()
        text = self.summary(upper) + (f" — {speed}" if speed else "")
        if self.budget is not None and self.budget.criteria:
            # A budget that fails is a quality loss: it is said here, never only in a tooltip.
            text += f"; {self.budget.words()}"
        return text

    def to_json(self) -> dict[str, Any]:
        """A dict `json.dumps(..., allow_nan=False)` accepts (non-finite numbers become None)."""
        data = j.json_safe({
            "schema": j.SCHEMA,
            "source": self.source,
            "recipe": self.recipe.to_json(),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "speedup": self.timing.speedup_json(),
            "size_ratio": self.size_ratio,
            "fidelity": self.fidelity.to_json(),
            "verdict": self.verdict.to_json(),
            "noisy": self.timing.noisy,
            "noisy_reason": self.timing.noisy_reason,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "steps": [s.to_json() for s in self.steps],
            "environment": self.environment,
            "variant_id": self.variant_id,
            "peak_rss_bytes": self.peak_rss_bytes,
            "accuracy_change": (self.accuracy_change.to_json()
                                if self.accuracy_change is not None else None),
            "similarity": self.similarity.to_json() if self.similarity is not None else None,
            "skipped_samples": self.skipped_samples,
            "budget": self.budget.to_json() if self.budget is not None else None,
        })
        data["verdict"]["headline"] = self.headline()
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "result") -> "RunResult":
        """The result of `to_json()` (or one saved by an older QuantGUI); a UserError naming
        `where` for a result of a newer schema or one that is not a JSON object. Fields that
        are missing or of the wrong type read as unknown (None, NaN, empty): see _json.py."""
        data = j.check_schema(data, where, "result")
        verdict = Verdict.from_json(j.obj(data, "verdict"))
        verdict.label = _label(data)
        verdict.quality = _quality(data)
        return cls(Measurement.from_json(j.obj(data, "before")),
                   Measurement.from_json(j.obj(data, "after")),
                   Timing.from_result_json(data), j.number(data, "size_ratio"),
                   Fidelity.from_json(j.obj(data, "fidelity")), verdict,
                   [StepReport.from_json(s) for s in j.items(data, "steps")
                    if isinstance(s, dict)],
                   dict(j.obj(data, "environment")), recipe_from_json(j.obj(data, "recipe")),
                   j.whole(data, "batch_size"), j.whole(data, "threads"),
                   j.text(data, "source"), j.maybe_text(data, "variant_id"),
                   j.maybe_whole(data, "peak_rss_bytes"),
                   accuracy_change=AccuracyChange.from_json(data.get("accuracy_change")),
                   similarity=Similarity.from_json(data.get("similarity")),
                   skipped_samples=j.whole(data, "skipped_samples"),
                   budget=BudgetCheck.from_json(data.get("budget")))

    def copy(self) -> "RunResult":
        """An independent copy (through JSON), without the in-memory variant."""
        return RunResult.from_json(self.to_json())


def recipe_from_json(data: Any) -> Recipe:
    """The recipe a result ran, as recorded: steps are read, not validated (a technique this
    QuantGUI does not know still names what was run)."""
    steps = [Step(j.text(s, "name", "?"), dict(j.obj(s, "params")))
             for s in j.items(data, "steps") if isinstance(s, dict)]
    raw = j.obj(data, "budget")
    budget = QualityBudget(**{k: j.number(raw, k) for k in QualityBudget.__dataclass_fields__})
    return Recipe(steps, budget=None if budget.empty else budget)


# --- results saved before the verdict had a quality or an "inconclusive" label -------------------

def _label(data: dict) -> str:
    """Results saved before "inconclusive" existed called a wide interval "not faster"; those
    are judged again from their interval (which can only make them inconclusive: the old rule
    for faster and slower was the same)."""
    verdict = j.obj(data, "verdict")
    label = j.text(verdict, "label") or "?"
    if label != NOT_FASTER or isinstance(verdict.get("quality"), dict):
        return label
    speed = j.obj(data, "speedup")
    ci = j.items(speed, "ci95")
    bounds = [j.number({"v": v}, "v") for v in ci] if len(ci) == 2 else [None]
    if None in bounds:
        return label
    rounds = j.maybe_whole(speed, "rounds")
    reliable = not j.flag(data, "noisy") and not speed.get("few_rounds")
    steps = data.get("steps")
    again = label_for(bounds, MIN_DECISIVE_ROUNDS if rounds is None else rounds, reliable,
                      has_steps=bool(steps) if isinstance(steps, list) else True)
    return INCONCLUSIVE if again == INCONCLUSIVE else label


def _quality(data: dict) -> Quality:
    """The stored quality, or for a result saved without one, judged again from its numbers."""
    q = j.obj(j.obj(data, "verdict"), "quality")
    if q.get("status") in ("ok", "degraded"):
        return quality_from_json(q)
    fid, before, after = j.obj(data, "fidelity"), j.obj(data, "before"), j.obj(data, "after")
    return assess_quality(j.number(before, "accuracy"), j.number(after, "accuracy"),
                          j.number(fid, "cosine"), j.number(fid, "cosine_min"),
                          j.whole(fid, "nonfinite"))
