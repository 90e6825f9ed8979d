"""A per-layer latency profile of one configuration, before vs after: where the time went and
what the recipe changed (measure/profile.py measures it). Torch-free, JSON round-trippable."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any

from . import _json as j

#: The bar that sums the layers below the top N.
OTHER = "other"


@dataclass
class LayerTime:
    name: str                 # the module's path in the model ("" for time outside any layer)
    kind_before: str          # its class before and after ("" where the side has no such layer)
    kind_after: str
    before_ms: float          # mean per call; NaN where the side has no such layer
    after_ms: float

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"name": self.name, "kind_before": self.kind_before,
                            "kind_after": self.kind_after, "before_ms": self.before_ms,
                            "after_ms": self.after_ms})

    @classmethod
    def from_json(cls, data: Any) -> "LayerTime":
        return cls(j.text(data, "name"), j.text(data, "kind_before"), j.text(data, "kind_after"),
                   j.real(data, "before_ms"), j.real(data, "after_ms"))


@dataclass
class LayerProfile:
    recipe: str
    batch: int
    threads: int
    calls: int
    total_before_ms: float
    total_after_ms: float
    layers: list[LayerTime] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"schema": j.SCHEMA, "kind": "layer_profile", "recipe": self.recipe,
                            "batch": self.batch, "threads": self.threads, "calls": self.calls,
                            "total_before_ms": self.total_before_ms,
                            "total_after_ms": self.total_after_ms,
                            "layers": [layer.to_json() for layer in self.layers]})

    @classmethod
    def from_json(cls, data: Any, where: str = "profile") -> "LayerProfile":
        data = j.check_schema(data, where, "profile")
        return cls(j.text(data, "recipe"), j.whole(data, "batch"), j.whole(data, "threads"),
                   j.whole(data, "calls"), j.real(data, "total_before_ms"),
                   j.real(data, "total_after_ms"),
                   [LayerTime.from_json(x) for x in j.items(data, "layers")
                    if isinstance(x, dict)])

    def bars(self, top: int = 8) -> list[tuple[str, float, float]]:
        """(label, before ms, after ms) of the `top` layers that take the most time on either
        side, largest first, then "other" (every remaining row summed; a side without the layer
        counts 0), so the bars add up to the totals. The time outside layers is a row like any
        other, labelled "(outside layers)"."""
        def ms(x: float) -> float:
            return x if math.isfinite(x) else 0.0
        rows = sorted(self.layers, key=lambda x: -max(ms(x.before_ms), ms(x.after_ms)))
        out = [(x.name or "(outside layers)", ms(x.before_ms), ms(x.after_ms))
               for x in rows[:top]]
        rest = rows[top:]
        if rest:
            out.append((OTHER, sum(ms(x.before_ms) for x in rest),
                        sum(ms(x.after_ms) for x in rest)))
        return out

    def table(self) -> str:
        def ms(x: float) -> str:
            return f"{x:9.3f}" if math.isfinite(x) else f"{'-':>9}"
        lines = [f"per-layer profile: {self.recipe}, batch {self.batch}, {self.threads} "
                 f"thread(s), mean of {self.calls} calls (hooks add a little to each layer)",
                 f"  {'layer':<28} {'before':<18} {'after':<22} {'before ms':>9} "
                 f"{'after ms':>9}"]
        for x in self.layers:
            lines.append(f"  {(x.name or '(outside layers)')[:28]:<28} {x.kind_before[:18]:<18} "
                         f"{x.kind_after[:22]:<22} {ms(x.before_ms)} {ms(x.after_ms)}")
        lines.append(f"  {'total':<28} {'':<18} {'':<22} {ms(self.total_before_ms)} "
                     f"{ms(self.total_after_ms)}")
        return "\n".join(lines)
