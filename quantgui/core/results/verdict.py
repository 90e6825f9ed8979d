"""The verdict on a run (measure/verdict.py decides it): the speed label, the quality beside
it, why, and what to do when the timing cannot decide. The words come from verdict_words."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..verdict_words import LABELS, Quality, compose
from . import _json as j


@dataclass
class Verdict:
    label: str                                  # one of LABELS ("?" for a result without one)
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quality: Quality = field(default_factory=Quality)
    #: Why the timing cannot decide (label "inconclusive" only), and the budget to try.
    inconclusive_reason: Optional[str] = None
    suggested_budget_s: Optional[float] = None

    @property
    def summary(self) -> str:
        """'faster, but outputs diverge (cosine 0.952)'."""
        return compose(self.label, self.quality.summary)

    def words(self, upper: bool = False) -> str:
        """The summary, its label in capitals with `upper` (the CLI and the report's banner)."""
        return compose(self.label, self.quality.summary, upper)

    @property
    def known(self) -> bool:
        """The label is one of LABELS (a result saved without a verdict has none)."""
        return self.label in LABELS

    @property
    def degraded(self) -> bool:
        return self.quality.degraded

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"label": self.label, "summary": self.summary,
                            "quality": self.quality.to_json(),
                            "inconclusive_reason": self.inconclusive_reason,
                            "suggested_budget_s": self.suggested_budget_s,
                            "reasons": list(self.reasons), "warnings": list(self.warnings)})

    @classmethod
    def from_json(cls, data: Any) -> "Verdict":
        """The verdict object of a result's JSON ("summary" and "headline" are derived and not
        read). A result saved without quality or with an older label rule is read by
        RunResult.from_json, which judges it again first."""
        return cls(j.text(data, "label", "?") or "?", j.texts(data, "reasons"),
                   j.texts(data, "warnings"), quality_from_json(j.obj(data, "quality")),
                   j.maybe_text(data, "inconclusive_reason"),
                   j.number(data, "suggested_budget_s"))


def quality_from_json(data: Any) -> Quality:
    status = j.text(data, "status", "ok")
    return Quality(status if status in ("ok", "degraded") else "ok", j.text(data, "summary"),
                   j.texts(data, "reasons"))
