"""What the auto-tune found (core/tune.py searches): every trial with why it was tried, the pick,
and the explanation of the pick as structured fields. Torch-free; `to_json` / `from_json` are an
exact round trip (the pick and the explanation are derived again from the trials by the same
rules, like `Recommendation.best`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import math
from typing import Any, Optional

from ..budget import BOUNDS, QualityBudget
from ..recipe import Recipe
from . import _json as j
from .race import Race
from .recommendation import Trial, pick

#: Why a trial was tried: a candidate from recommend's order, a variant of a format that missed
#: the budget (activation scheme), a fallback (units kept in higher precision), mixed (the
#: fallback that held with its kept units in BF16 instead of FP32), a graph / layout / call-mode
#: step added to the best so far.
STAGES = ("candidate", "variant", "fallback", "mixed", "step")


@dataclass
class TuneTrial:
    trial: Trial
    stage: str = "candidate"
    format: Optional[str] = None      # the numeric format step it refines (fallback/variant)
    kept: list[str] = field(default_factory=list)  # units kept in higher precision
    base: Optional[int] = None        # index of the trial it refines (its "without")
    added: Optional[str] = None       # the step a "step" trial added
    from_log: bool = False            # read from the trial log, not measured in this run

    def to_json(self) -> dict[str, Any]:
        return {"stage": self.stage, "format": self.format, "kept": list(self.kept),
                "base": self.base, "added": self.added, "from_log": self.from_log,
                "trial": self.trial.to_json()}

    @classmethod
    def from_json(cls, data: Any, where: str = "trial") -> "TuneTrial":
        stage = j.text(data, "stage", "candidate")
        return cls(Trial.from_json(j.obj(data, "trial"), where),
                   stage if stage in STAGES else "candidate", j.maybe_text(data, "format"),
                   j.texts(data, "kept"), j.maybe_whole(data, "base"),
                   j.maybe_text(data, "added"), data.get("from_log") is True)


@dataclass
class Effect:
    """One side of a choice: the trial's recipe and what it measured."""
    trial: int
    recipe: str
    speedup: Optional[float]
    ci95: Optional[list]
    size_ratio: Optional[float]
    quality: str
    budget: Optional[str]
    verdict: str

    @classmethod
    def of(cls, index: int, trial: Trial) -> "Effect":
        row = trial.row()
        quality = row["quality"]
        if trial.result is None:  # why it has no numbers, not "not measured"
            quality = (f"failed: {row['error']}" if row["error"] else
                       f"dropped: {row['dropped']}" if row["dropped"] else quality)
        return cls(index, row["recipe"], row["speedup"], row["ci95"], row["size_ratio"],
                   quality, row["budget"], row["verdict"])

    def words(self) -> str:
        if self.speedup is None:
            return self.quality or self.verdict
        speed = f"{self.speedup:.2f}x"
        if self.ci95 and None not in self.ci95:
            speed += f" (95% CI {self.ci95[0]:.2f}-{self.ci95[1]:.2f})"
        size = "" if self.size_ratio is None else f", size {self.size_ratio:.2f}x"
        return f"{speed}{size}, {self.quality or self.verdict}"

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Choice:
    """One decision in the chosen recipe and what it bought: `kind` "keep" (units kept in
    higher precision: `what` are their names), "bf16" (kept units in BF16 instead of FP32),
    "variant" (an activation scheme) or "step" (a graph / layout / call-mode step), with the
    trial that has it and the one without."""
    kind: str
    what: list[str]
    with_: Effect
    without: Effect

    def words(self) -> str:
        head = {"keep": "kept in higher precision: ",
                "bf16": "kept units in BF16 instead of FP32 (mixed precision): ",
                "variant": "changed: ",
                "step": "added step: "}.get(self.kind, "")
        return (f"{head}{', '.join(self.what)} -> with: {self.with_.words()}; "
                f"without: {self.without.words()}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": list(self.what), "with": self.with_.to_json(),
                "without": self.without.to_json()}


def explain(trials: list[TuneTrial], best: Optional[int]) -> list[Choice]:
    """The choices that led to trial `best`, first made first: walk back through each trial's
    `base` (the trial it refined)."""
    out: list[Choice] = []
    seen: set[int] = set()
    i = best
    while i is not None and 0 <= i < len(trials) and i not in seen:
        seen.add(i)
        t = trials[i]
        base = t.base
        if base is None or not 0 <= base < len(trials):
            break
        b = trials[base]
        if t.stage == "fallback":
            what = [u for u in t.kept if u not in b.kept]
            kind = "keep"
        elif t.stage == "mixed":
            what, kind = list(t.kept), "bf16"
        elif t.stage == "step":
            what, kind = [t.added or "?"], "step"
        else:
            what, kind = [t.trial.recipe.describe()], "variant"
        out.append(Choice(kind, what, Effect.of(i, t.trial), Effect.of(base, b.trial)))
        i = base
    return out[::-1]


@dataclass
class TuneResult:
    budget: QualityBudget
    trials: list[TuneTrial] = field(default_factory=list)
    cancelled: bool = False
    stopped: Optional[str] = None     # "cancelled", "time limit" or None (finished)
    candidates: int = 0               # candidates planned (fallbacks and steps come on top)
    log: Optional[str] = None         # the trial log's path
    notes: list[str] = field(default_factory=list)
    seconds: float = math.nan
    environment: dict[str, Any] = field(default_factory=dict)
    #: the best few timed together at the end, as in recommend (None: nothing to decide)
    race: Optional[Race] = None

    @property
    def best_index(self) -> Optional[int]:
        """The final race's winner, else the fastest trial whose verdict is "faster" and that
        meets the budget (`pick`)."""
        chosen = pick([t.trial for t in self.trials], self.race)
        return None if chosen is None else next(
            i for i, t in enumerate(self.trials) if t.trial is chosen)

    @property
    def best(self) -> Optional[TuneTrial]:
        i = self.best_index
        return None if i is None else self.trials[i]

    @property
    def recipe(self) -> Optional[Recipe]:
        """The chosen recipe with the budget it was tuned for (None: keep the original)."""
        best = self.best
        return None if best is None else replace(best.trial.recipe, budget=self.budget)

    @property
    def explanation(self) -> list[Choice]:
        return explain(self.trials, self.best_index)

    @property
    def kept(self) -> list[str]:
        best = self.best
        return [] if best is None else list(best.kept)

    @property
    def measured(self) -> int:
        return sum(not t.from_log for t in self.trials)

    @property
    def message(self) -> str:
        best = self.best
        tried = f"{len(self.trials)} trials"
        resumed = len(self.trials) - self.measured
        if resumed:
            tried += f", {resumed} read from the log"
        if self.stopped:
            tried += f", then stopped ({self.stopped})"
        if best is None:
            return (f"keep the original: nothing tried is faster and meets the budget "
                    f"({self.budget.describe()}; {tried})")
        e = Effect.of(self.best_index, best.trial)
        raced = None if self.race is None else self.race.entry(e.recipe)
        if raced is not None:
            tried += (f"; final race of {len(self.race.entries)} over {self.race.rounds} "
                      f"rounds: {raced.speedup:.2f}x")
        return f"{e.recipe}: {e.words()} ({tried})"

    def lines(self) -> list[str]:
        """The explanation as plain lines (strings from files are not in it: recipe texts
        are technique names and glob patterns, printed through the CLI's safe stream)."""
        out = [c.words() for c in self.explanation]
        if self.race is not None:
            out.append(self.race.words())
        best = self.best
        if best is not None and best.format and not best.kept:
            out.insert(0, f"no layer kept in higher precision: every layer {best.format} "
                          f"converts is converted")
        return out

    def to_json(self) -> dict[str, Any]:
        best = self.best_index
        recipe = self.recipe
        return j.json_safe({
            "schema": j.SCHEMA, "kind": "tune", "budget": self.budget.to_json(),
            "best": best, "recipe": None if recipe is None else recipe.to_json(),
            "kept": self.kept, "explanation": [c.to_json() for c in self.explanation],
            "message": self.message, "cancelled": self.cancelled, "stopped": self.stopped,
            "candidates": self.candidates, "log": self.log, "notes": list(self.notes),
            "seconds": self.seconds, "environment": dict(self.environment),
            "race": None if self.race is None else self.race.to_json(),
            "trials": [t.to_json() for t in self.trials]})

    @classmethod
    def from_json(cls, data: Any, where: str = "tune result") -> "TuneResult":
        data = j.check_schema(data, where, "tune result")
        raw = j.obj(data, "budget")
        budget = QualityBudget(**{k: j.number(raw, k) for k in BOUNDS})
        trials = [TuneTrial.from_json(t, f"{where}: trial {i}")
                  for i, t in enumerate(j.items(data, "trials"), 1) if isinstance(t, dict)]
        stopped = j.maybe_text(data, "stopped")
        return cls(budget, trials, data.get("cancelled") is True, stopped,
                   j.whole(data, "candidates", 0), j.maybe_text(data, "log"),
                   j.texts(data, "notes"), j.real(data, "seconds"),
                   dict(j.obj(data, "environment")), Race.from_json(data.get("race")))
