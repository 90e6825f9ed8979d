"""What a run produced: the result types that cross every boundary (CLI JSON, GUI, files).

`RunResult.to_json()` is what the CLI writes, the GUI plots and projects store."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

import torch

from .. import measure
from ..model.variant import Variant
from ..recipe import Recipe


@dataclass
class StepReport:
    name: str
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: What the step chose (engine, API, compiled, ...), as data; see StepContext.decide.
    decisions: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "notes": list(self.notes),
                "metrics": dict(self.metrics), "seconds": self.seconds,
                "decisions": dict(self.decisions)}


@dataclass
class Measurement:
    size_bytes: Optional[int]
    memory_bytes: Optional[int]
    latency: measure.LatencyStats
    accuracy: Optional[float] = None

    def to_json(self) -> dict[str, Any]:
        return {"size_bytes": self.size_bytes, "memory_bytes": self.memory_bytes,
                "latency_ms": self.latency.to_json(), "accuracy": self.accuracy}


@dataclass
class RunResult:
    before: Measurement
    after: Measurement
    timing: measure.Timing
    size_ratio: Optional[float]
    fidelity: measure.Fidelity
    verdict: measure.Verdict
    steps: list[StepReport]
    environment: dict[str, Any]
    recipe: Recipe
    batch_size: int
    threads: int
    source: str = ""
    variant: Optional[Variant] = None  # the optimized model; not serialized

    @property
    def speedup(self) -> dict[str, Any]:
        return {"median": self.timing.speedup, "ci95": list(self.timing.ci95)}

    @property
    def noisy(self) -> bool:
        return self.timing.noisy

    @property
    def noisy_reason(self) -> Optional[str]:
        return self.timing.noisy_reason

    def to_json(self) -> dict[str, Any]:
        """A dict `json.dumps(..., allow_nan=False)` accepts (non-finite numbers become None)."""
        data = json_safe({
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
        })
        data["verdict"]["headline"] = measure.headline_of(data)
        return data


def json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return json_safe(value.item())
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)
