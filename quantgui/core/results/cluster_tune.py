"""The auto-tune on every machine type of a cluster: one `TuneResult` per type, each measured on
a node of that type (core/cluster/ray_tune.py). Torch-free; `to_json` / `from_json` are an exact
round trip like every result type.

A type whose node died, or whose log was refused, has `error` (one line) and the trials its node
streamed before (`result`, possibly None when none came)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from . import _json as j
from .tune import TuneResult


@dataclass
class MachineTune:
    machine: str                      # the machine type key (cluster.machine_type or its name)
    environment: dict[str, Any] = field(default_factory=dict)  # the node's CPU, flags, torch
    node: str = ""                    # the Ray node that ran the tune (id prefix)
    pid: Optional[int] = None         # the worker process that measured every trial
    result: Optional[TuneResult] = None
    error: Optional[str] = None       # one line: why this type's tune did not finish
    log: Optional[str] = None         # this type's trial log

    @property
    def flags(self) -> str:
        return "+".join(self.environment.get("cpu_capabilities") or []) or "baseline ISA"

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({
            "machine": self.machine, "environment": dict(self.environment), "node": self.node,
            "pid": self.pid, "error": self.error, "log": self.log,
            "result": None if self.result is None else self.result.to_json()})

    @classmethod
    def from_json(cls, data: Any, where: str = "machine type") -> "MachineTune":
        raw = data.get("result")
        return cls(j.text(data, "machine"), dict(j.obj(data, "environment")),
                   j.text(data, "node"), j.maybe_whole(data, "pid"),
                   None if not isinstance(raw, dict) else TuneResult.from_json(raw, where),
                   j.maybe_text(data, "error"), j.maybe_text(data, "log"))


@dataclass
class ClusterTuneResult:
    executor: str                     # "ray (ADDRESS)"
    types: list[MachineTune] = field(default_factory=list)
    driver_pid: Optional[int] = None  # the process that asked (no trial is measured there)
    cancelled: bool = False
    stopped: Optional[str] = None     # "cancelled", "time limit" or None
    error: Optional[str] = None       # the cluster stopped answering

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({
            "schema": j.SCHEMA, "kind": "cluster-tune", "executor": self.executor,
            "driver_pid": self.driver_pid, "cancelled": self.cancelled,
            "stopped": self.stopped, "error": self.error,
            "types": [t.to_json() for t in self.types]})

    @classmethod
    def from_json(cls, data: Any, where: str = "cluster tune result") -> "ClusterTuneResult":
        data = j.check_schema(data, where, "cluster tune result")
        types = [MachineTune.from_json(t, f"{where}: type {i}")
                 for i, t in enumerate(j.items(data, "types"), 1) if isinstance(t, dict)]
        return cls(j.text(data, "executor"), types, j.maybe_whole(data, "driver_pid"),
                   data.get("cancelled") is True, j.maybe_text(data, "stopped"),
                   j.maybe_text(data, "error"))
