"""What the user's labeled data says about the change, beyond two accuracies: the accuracy
change with a paired 95% interval (is the evaluation set large enough to tell?), accuracy per
class before vs after, and which samples flipped. `Similarity` is the sentence-embedding check
(Spearman correlation of cosine similarity with the pairs' scores, before vs after).
measure/paired.py computes them."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from . import _json as j

#: Flipped samples kept in a result (the count says how many there were in all).
MAX_FLIPS = 200


@dataclass
class ClassAccuracy:
    name: str
    samples: int
    before: float
    after: float

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"name": self.name, "samples": self.samples, "before": self.before,
                            "after": self.after})

    @classmethod
    def from_json(cls, data: Any) -> "ClassAccuracy":
        return cls(j.text(data, "name"), j.whole(data, "samples"), j.real(data, "before"),
                   j.real(data, "after"))


@dataclass
class Flip:
    """A sample whose predicted class changed: its id in the data source, its label, the class
    predicted before and after, and what a person sees of it (an image's path, a sentence)."""

    id: int
    label: Optional[int]
    before: int
    after: int
    item: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "before": self.before, "after": self.after,
                "item": self.item}

    @classmethod
    def from_json(cls, data: Any) -> "Flip":
        return cls(j.whole(data, "id"), j.maybe_whole(data, "label"), j.whole(data, "before"),
                   j.whole(data, "after"), j.maybe_text(data, "item"))

    @property
    def fixed(self) -> bool:
        return self.label is not None and self.after == self.label

    @property
    def broken(self) -> bool:
        return self.label is not None and self.before == self.label


@dataclass
class AccuracyChange:
    """After minus before on the same samples: `change` (a fraction: -0.003 is -0.3 points)
    and its paired bootstrap 95% interval `ci95`."""

    samples: int
    change: float
    ci95: tuple[float, float]
    per_class: list[ClassAccuracy] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)
    flips_total: int = 0
    #: Flips of the prediction that were wrong before and right after / right before, wrong
    #: after (the rest changed between two wrong classes).
    fixed: int = 0
    broken: int = 0

    @property
    def within_noise(self) -> bool:
        lo, hi = self.ci95
        return math.isfinite(lo) and math.isfinite(hi) and lo <= 0 <= hi

    def verdict(self) -> str:
        lo, hi = self.ci95
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return "unknown"
        if self.within_noise:
            return "within noise"
        return "a real drop" if hi < 0 else "a real gain"

    def words(self) -> str:
        """'-0.3 pt (95% CI -0.8 to +0.2): within noise'."""
        lo, hi = self.ci95
        if not math.isfinite(self.change):
            return "unknown"
        text = f"{100 * self.change:+.1f} pt"
        if math.isfinite(lo) and math.isfinite(hi):
            text += f" (95% CI {100 * lo:+.1f} to {100 * hi:+.1f}): {self.verdict()}"
        return text.replace("+0.0 pt", "0.0 pt")

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"samples": self.samples, "change": self.change,
                            "ci95": list(self.ci95),
                            "per_class": [c.to_json() for c in self.per_class],
                            "flips": [f.to_json() for f in self.flips],
                            "flips_total": self.flips_total, "fixed": self.fixed,
                            "broken": self.broken, "words": self.words()})

    @classmethod
    def from_json(cls, data: Any) -> Optional["AccuracyChange"]:
        if not isinstance(data, dict):
            return None
        ci = j.numbers(j.items(data, "ci95"))
        ci95 = (ci[0], ci[1]) if len(ci) == 2 else (math.nan, math.nan)
        return cls(j.whole(data, "samples"), j.real(data, "change"), ci95,
                   [ClassAccuracy.from_json(c) for c in j.items(data, "per_class")
                    if isinstance(c, dict)],
                   [Flip.from_json(f) for f in j.items(data, "flips") if isinstance(f, dict)],
                   j.whole(data, "flips_total"), j.whole(data, "fixed"), j.whole(data, "broken"))


@dataclass
class Similarity:
    """Spearman correlation between the pairs' scores and the cosine similarity of their
    embeddings, before and after (the sentence-embedding quality check)."""

    pairs: int
    spearman_before: float
    spearman_after: float

    def words(self) -> str:
        return (f"Spearman {self.spearman_before:.3f} -> {self.spearman_after:.3f} "
                f"({self.spearman_after - self.spearman_before:+.3f}) on {self.pairs:,} pairs")

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"pairs": self.pairs, "spearman_before": self.spearman_before,
                            "spearman_after": self.spearman_after})

    @classmethod
    def from_json(cls, data: Any) -> Optional["Similarity"]:
        if not isinstance(data, dict):
            return None
        return cls(j.whole(data, "pairs"), j.real(data, "spearman_before"),
                   j.real(data, "spearman_after"))
