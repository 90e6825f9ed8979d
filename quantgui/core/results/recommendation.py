"""What "Suggest a recipe" found (recommend.py searches): every candidate tried (`Trial`) and
the pick (`Recommendation`). JSON: `quantgui-cli recommend --json`; each trial row carries its
full result, so `Recommendation.from_json` rebuilds the search a face shows."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from ..recipe import Recipe
from ..verdict_words import FASTER, INCONCLUSIVE
from . import _json as j
from .race import Race
from .run import RunResult, recipe_from_json


@dataclass
class Trial:
    """One candidate recipe and what it measured (or why it failed)."""

    recipe: Recipe
    result: Optional[RunResult] = None     # None when the run failed
    error: Optional[str] = None
    meets_bound: bool = False
    quality_note: str = ""
    seconds: float = 0.0
    #: Why it was not measured to the end ("3x slower after 2 calls ..."), or None.
    dropped: Optional[str] = None

    @property
    def speedup(self) -> Optional[float]:
        return None if self.result is None else float(self.result.timing.speedup)

    @property
    def ci95(self) -> Optional[tuple[float, float]]:
        return None if self.result is None else tuple(float(v) for v in self.result.timing.ci95)

    @property
    def size_ratio(self) -> Optional[float]:
        return None if self.result is None else self.result.size_ratio

    @property
    def accuracy(self) -> Optional[float]:
        return None if self.result is None else self.result.after.accuracy

    @property
    def accuracy_drop(self) -> Optional[float]:
        if self.result is None:
            return None
        b, a = self.result.before.accuracy, self.result.after.accuracy
        return None if a is None or b is None else b - a

    @property
    def cosine(self) -> Optional[float]:
        return None if self.result is None else float(self.result.fidelity.cosine)

    @property
    def budget_status(self) -> Optional[str]:
        """meets / fails / undecided (None: not judged: no result)."""
        check = None if self.result is None else self.result.budget
        return None if check is None else check.status

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "dropped" if self.dropped is not None else "failed"
        return self.result.verdict.label

    def row(self) -> dict[str, Any]:
        """One row of the trial table (what the GUI and `recommend --json` show)."""
        def f(x: Optional[float]) -> Optional[float]:
            return None if x is None or not math.isfinite(x) else float(x)
        ci = self.ci95
        return {"recipe": self.recipe.describe(), "steps": self.recipe.to_json()["steps"],
                "speedup": f(self.speedup), "ci95": None if ci is None else [f(ci[0]), f(ci[1])],
                "size_ratio": f(self.size_ratio), "accuracy": f(self.accuracy),
                "accuracy_drop": f(self.accuracy_drop), "cosine": f(self.cosine),
                "verdict": self.verdict, "meets_bound": self.meets_bound,
                "quality": self.quality_note, "error": self.error,
                "dropped": self.dropped, "budget": self.budget_status,
                "seconds": round(self.seconds, 2)}

    def to_json(self) -> dict[str, Any]:
        """The row plus the full result (None for a failed candidate)."""
        return j.json_safe({**self.row(),
                            "result": None if self.result is None else self.result.to_json()})

    @classmethod
    def from_json(cls, data: Any, where: str = "trial") -> "Trial":
        result = data.get("result") if isinstance(data, dict) else None
        return cls(recipe_from_json(data),
                   None if result is None else RunResult.from_json(result, where),
                   j.maybe_text(data, "error"), j.flag(data, "meets_bound"),
                   j.text(data, "quality"), j.number(data, "seconds") or 0.0,
                   j.maybe_text(data, "dropped"))


def pick(trials: list[Trial], race: Optional[Race] = None) -> Optional[Trial]:
    """The final race's winner when it has one (its finalists all met the budget; races are
    what decides between them, see results/race.py); otherwise the fastest trial whose
    verdict is "faster" (its whole CI clears the threshold) within the quality bound: an
    inconclusive 3x is no recommendation, whatever its point estimate."""
    winner = None if race is None else race.winner
    if winner is not None:
        raced = [t for t in trials if t.meets_bound and t.recipe.describe() == winner.recipe]
        if raced:
            return raced[0]
    ok = [t for t in trials if t.meets_bound and t.verdict == FASTER]
    return max(ok, key=lambda t: t.speedup or 0.0) if ok else None


@dataclass
class Recommendation:
    best: Optional[Trial]                  # None: nothing beat the original within the bound
    trials: list[Trial] = field(default_factory=list)
    cancelled: bool = False
    bound: dict[str, Any] = field(default_factory=dict)
    candidates: int = 0                    # how many were planned
    environment: dict[str, Any] = field(default_factory=dict)
    #: the best few timed together at the end (None: fewer than two finalists, or cancelled)
    race: Optional[Race] = None

    @property
    def decision(self) -> str:
        """"recipe" (the best is faster by its interval and meets the budget) or
        "keep_original" (nothing tried is)."""
        return "keep_original" if self.best is None else "recipe"

    @property
    def recipe(self) -> Optional[Recipe]:
        return None if self.best is None else self.best.recipe

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [t.row() for t in self.trials]

    @property
    def tried(self) -> str:
        """'3 of 9 candidates tried, then cancelled; 1 inconclusive: measure longer to decide'."""
        text = f"{len(self.trials)} of {self.candidates} candidates tried"
        if self.cancelled:
            text += ", then cancelled"
        dropped = sum(t.dropped is not None for t in self.trials)
        if dropped:
            text += f"; {dropped} dropped as too slow"
        unsure = sum(t.verdict == INCONCLUSIVE for t in self.trials)
        if unsure:
            text += f"; {unsure} inconclusive: measure longer to decide"
        return text

    @property
    def detail(self) -> str:
        """The result without the recipe's name: speed, quality and what was tried."""
        if self.best is None:
            return f"nothing tried is faster within the bound ({self.tried})"
        raced = None if self.race is None else self.race.entry(self.best.recipe.describe())
        if raced is not None and raced.faster:
            return (f"{raced.speedup:.2f}x faster (95% CI {raced.ci95[0]:.2f}-"
                    f"{raced.ci95[1]:.2f}, final race of {len(self.race.entries)} over "
                    f"{self.race.rounds} rounds), {self.best.quality_note} ({self.tried})")
        ci = self.best.ci95 or (math.nan, math.nan)
        return (f"{self.best.speedup:.2f}x faster (95% CI {ci[0]:.2f}-{ci[1]:.2f}), "
                f"{self.best.quality_note} ({self.tried})")

    @property
    def message(self) -> str:
        if self.best is None:
            return f"keep the original: {self.detail}"
        return f"{self.best.recipe.describe()}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({
            "schema": j.SCHEMA,
            "best": None if self.best is None else {
                "recipe": self.best.recipe.to_json(), "row": self.best.row(),
                "result": self.best.result.to_json()},
            "message": self.message,
            "decision": self.decision,
            "cancelled": self.cancelled,
            "bound": dict(self.bound),
            "candidates": self.candidates,
            "trials": [t.to_json() for t in self.trials],
            "environment": self.environment,
            "race": None if self.race is None else self.race.to_json(),
        })

    @classmethod
    def from_json(cls, data: Any, where: str = "recommendation") -> "Recommendation":
        """What `to_json` wrote ("best" and "message" are derived: the best is picked again
        from the trials by the same rule)."""
        data = j.check_schema(data, where, "recommendation")
        trials = [Trial.from_json(t, f"{where}: trial {i}")
                  for i, t in enumerate(j.items(data, "trials"), 1) if isinstance(t, dict)]
        race = Race.from_json(data.get("race"))
        return cls(pick(trials, race), trials, j.flag(data, "cancelled"),
                   dict(j.obj(data, "bound")), j.whole(data, "candidates", len(trials)),
                   dict(j.obj(data, "environment")), race)

    def table(self) -> str:
        """Plain aligned text of the trial table."""
        from ..run.text import num, pct, table
        rows = [("recipe", "speedup", "95% CI", "size", "accuracy", "cosine", "verdict",
                 "budget")]
        for t in self.trials:
            ci = t.ci95
            rows.append((t.recipe.describe(),
                         "-" if t.speedup is None else f"{t.speedup:.2f}x",
                         "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}",
                         "-" if t.size_ratio is None else f"{t.size_ratio:.2f}x",
                         pct(t.accuracy), num(t.cosine),
                         (f"failed: {t.error[:60]}" if t.error is not None else
                          f"dropped: {t.dropped[:60]}" if t.dropped is not None else t.verdict),
                         t.budget_status or "-"))
        marker = "" if self.race is None else f"\n{self.race.words()}"
        marker += "" if self.best is None else f"\nbest: {self.best.recipe.describe()}"
        return table(rows) + marker
