"""Per-layer sensitivity of a model to one numeric format (core/sensitivity.py measures it):
for each unit (a layer, or a transformer block), the quality when only it is converted and when
all but it are, and its share of the model's time before vs after. Torch-free, JSON
round-trippable like every result.

`rank(report)` is the order the auto-tune falls layers back in (most sensitive first) and
`fallback_skip(report, k)` the skip patterns of the k most sensitive units."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from ..layer_names import escape
from . import _json as j
from .accuracy import AccuracyChange
from .quality import Fidelity


@dataclass
class UnitQuality:
    """The converted model's quality against the original: fidelity always, the accuracy
    change (with its paired 95% interval) when the data has labels."""

    fidelity: Fidelity
    accuracy: Optional[AccuracyChange] = None

    @property
    def loss(self) -> float:
        """How much worse than the original, one number where bigger is worse: the accuracy
        drop in points when labels exist, else 1 - mean cosine (NaN: unknown)."""
        if self.accuracy is not None and math.isfinite(self.accuracy.change):
            return -100.0 * self.accuracy.change
        cos = self.fidelity.cosine
        return 1.0 - cos if math.isfinite(cos) else math.nan

    @property
    def fidelity_loss(self) -> float:
        """1 - mean cosine (NaN: unknown): what ranks units whose accuracy did not move."""
        cos = self.fidelity.cosine
        return 1.0 - cos if math.isfinite(cos) else math.nan

    def words(self) -> str:
        """'cos 0.9512, agree 93.8%' or '-1.2 pt (95% CI ...)' for the table."""
        f = self.fidelity
        if self.accuracy is not None and math.isfinite(self.accuracy.change):
            cos = f", cos {f.cosine:.4f}" if math.isfinite(f.cosine) else ""
            return self.accuracy.words() + cos
        parts = [f"cos {f.cosine:.4f}" if math.isfinite(f.cosine) else "cos -"]
        if f.top1_agreement is not None and math.isfinite(f.top1_agreement):
            parts.append(f"agree {100 * f.top1_agreement:.1f}%")
        if math.isfinite(f.sqnr_db):
            parts.append(f"SQNR {f.sqnr_db:.1f} dB")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"fidelity": self.fidelity.to_json(),
                "accuracy": self.accuracy.to_json() if self.accuracy is not None else None}

    @classmethod
    def from_json(cls, data: Any) -> Optional["UnitQuality"]:
        if not isinstance(data, dict) or not isinstance(data.get("fidelity"), dict):
            return None
        return cls(Fidelity.from_json(data["fidelity"]), AccuracyChange.from_json(
            data.get("accuracy")))


@dataclass
class UnitSensitivity:
    name: str                     # module path: a layer, or a block ("encoder.layer.3")
    kind: str                     # "Linear", "Conv2d", ... or "block (4 Linear)"
    layers: list[str]             # the converted layers it holds
    params: int                   # parameters of those layers
    params_share: float           # of all parameters of the model
    time_share_before: float      # of the model's time per call (forward hooks), FP32
    time_share_after: float       # ... with every unit converted
    only: Optional[UnitQuality] = None     # only this unit converted
    all_but: Optional[UnitQuality] = None  # every unit but this one converted

    @property
    def pattern(self) -> str:
        """The skip pattern that keeps exactly this unit."""
        return escape(self.name)

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"name": self.name, "kind": self.kind, "layers": list(self.layers),
                            "params": self.params, "params_share": self.params_share,
                            "time_share_before": self.time_share_before,
                            "time_share_after": self.time_share_after,
                            "only": self.only.to_json() if self.only else None,
                            "all_but": self.all_but.to_json() if self.all_but else None})

    @classmethod
    def from_json(cls, data: Any) -> "UnitSensitivity":
        return cls(j.text(data, "name"), j.text(data, "kind"), j.texts(data, "layers"),
                   j.whole(data, "params"), j.real(data, "params_share"),
                   j.real(data, "time_share_before"), j.real(data, "time_share_after"),
                   UnitQuality.from_json(data.get("only")),
                   UnitQuality.from_json(data.get("all_but")))


@dataclass
class SensitivityReport:
    source: str                   # the model (ModelInfo.source)
    format: str                   # the technique measured ("dynamic_int8", ...)
    params: dict[str, Any]        # its parameters, as the measured conversions used them
    data: str                     # what quality was measured on ("test data (360 samples)")
    metric: str                   # "accuracy" (labels) or "fidelity"
    units: list[UnitSensitivity] = field(default_factory=list)
    full: Optional[UnitQuality] = None  # every unit converted
    total_units: int = 0          # units to measure (len(units) < total_units: cut short)
    cancelled: bool = False
    cached: bool = False          # read from the cache, not measured now
    seconds: float = math.nan
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.cancelled and len(self.units) >= self.total_units

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"schema": j.SCHEMA, "kind": "sensitivity", "source": self.source,
                            "format": self.format, "params": dict(self.params),
                            "data": self.data, "metric": self.metric,
                            "units": [u.to_json() for u in self.units],
                            "full": self.full.to_json() if self.full else None,
                            "total_units": self.total_units, "cancelled": self.cancelled,
                            "cached": self.cached, "seconds": self.seconds,
                            "notes": list(self.notes)})

    @classmethod
    def from_json(cls, data: Any, where: str = "sensitivity") -> "SensitivityReport":
        data = j.check_schema(data, where, "sensitivity report")
        return cls(j.text(data, "source"), j.text(data, "format"),
                   dict(j.obj(data, "params")), j.text(data, "data"), j.text(data, "metric"),
                   [UnitSensitivity.from_json(u) for u in j.items(data, "units")
                    if isinstance(u, dict)],
                   UnitQuality.from_json(data.get("full")), j.whole(data, "total_units"),
                   data.get("cancelled") is True, data.get("cached") is True,
                   j.real(data, "seconds"), j.texts(data, "notes"))

    def unit(self, name: str) -> Optional[UnitSensitivity]:
        return next((u for u in self.units if u.name == name), None)


def _score(unit: UnitSensitivity) -> tuple:
    """Bigger is more sensitive: what converting only this unit costs (accuracy drop, then
    fidelity), then how little an otherwise converted model loses without it; unknown counts
    as least sensitive."""
    def known(x: float, sign: float = 1.0) -> float:
        return sign * x if math.isfinite(x) else -math.inf
    only, but = unit.only, unit.all_but
    return (known(only.loss) if only else -math.inf,
            known(only.fidelity_loss) if only else -math.inf,
            known(but.loss, -1.0) if but else -math.inf,
            known(but.fidelity_loss, -1.0) if but else -math.inf)


def rank(report: SensitivityReport) -> list[str]:
    """Unit names, most sensitive first (ties keep the model's order)."""
    order = sorted(enumerate(report.units), key=lambda iu: (_score(iu[1]), -iu[0]),
                   reverse=True)
    return [u.name for _, u in order]


def fallback_skip(report: SensitivityReport, k: int) -> list[str]:
    """Skip patterns that keep the k most sensitive units in higher precision (the `skip`
    parameter of the format's step)."""
    by_name = {u.name: u for u in report.units}
    return [by_name[name].pattern for name in rank(report)[:max(int(k), 0)]]
