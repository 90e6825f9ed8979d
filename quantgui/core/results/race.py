"""The final race of a search: its best candidates timed together against the original.

A search screens each candidate alone for about a second against the original; that ranks
candidates less surely than their CIs suggest (each pair sees a different moment of the
machine, and a slow model gets too few rounds to decide at all). So the few best that meet the
budget are raced in one interleaved run, each following every other equally often, and the
pick is read from that run (measure/race.py). JSON: `Recommendation.race`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..verdict_words import FASTER_ABOVE
from . import _json as j


@dataclass
class RaceEntry:
    """One finalist: its recipe (as described), speedup = median over rounds of
    original/finalist, and the 95% bootstrap CI over whole rounds."""

    recipe: str
    speedup: float
    ci95: tuple[float, float]
    median_ms: float

    @property
    def faster(self) -> bool:
        return self.ci95[0] > FASTER_ABOVE

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"recipe": self.recipe, "speedup": self.speedup,
                            "ci95": list(self.ci95), "median_ms": self.median_ms})

    @classmethod
    def from_json(cls, data: Any) -> "RaceEntry":
        ci = j.numbers(j.items(data, "ci95"))
        return cls(j.text(data, "recipe"), j.real(data, "speedup"),
                   (ci[0], ci[1]) if len(ci) == 2 else (float("nan"), float("nan")),
                   j.real(data, "median_ms"))


@dataclass
class Race:
    """What the race measured: per finalist, in the order they entered (screening's order)."""

    rounds: int
    calls_per_sample: int
    baseline_ms: float
    entries: list[RaceEntry] = field(default_factory=list)

    @property
    def winner(self) -> Optional[RaceEntry]:
        """The fastest finalist whose race CI clears the "faster" threshold; None: no finalist
        is faster by the race (the search falls back on its screening pick)."""
        ok = [e for e in self.entries if e.faster]
        return max(ok, key=lambda e: e.speedup) if ok else None

    def entry(self, recipe: str) -> Optional[RaceEntry]:
        return next((e for e in self.entries if e.recipe == recipe), None)

    def words(self) -> str:
        """'final race of 3 over 12 rounds: A 8.1x (7.9-8.3), B 6.0x (5.8-6.1), ...'."""
        parts = [f"{e.recipe} {e.speedup:.2f}x ({e.ci95[0]:.2f}-{e.ci95[1]:.2f})"
                 for e in sorted(self.entries, key=lambda e: -e.speedup)]
        return (f"final race of {len(self.entries)} over {self.rounds} rounds, order balanced: "
                + ", ".join(parts))

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"rounds": self.rounds, "calls_per_sample": self.calls_per_sample,
                            "baseline_ms": self.baseline_ms,
                            "entries": [e.to_json() for e in self.entries]})

    @classmethod
    def from_json(cls, data: Any) -> Optional["Race"]:
        if not isinstance(data, dict):
            return None
        return cls(j.whole(data, "rounds", 0), j.whole(data, "calls_per_sample", 1),
                   j.real(data, "baseline_ms"),
                   [RaceEntry.from_json(e) for e in j.items(data, "entries")
                    if isinstance(e, dict)])
