"""Where a sweep's points are measured: an `Executor` runs a `SweepSpec` on a model reference
and streams `SweepPoint`s. `LocalExecutor` measures in this process (the engine process when
the engine serves it); `RayExecutor` (ray_executor.py, the `ray` extra) on every machine type of
a Ray cluster. Importing this package never imports ray (nor torch).

A model reference is the open parameters (`source`, `arch`, `arch_kwargs`, `trust`, `data`,
`example_input`, `input_shape`, `input_dtype`): on a cluster the files it names travel as bytes
and each node opens them with the same safe loaders, so no pickled module crosses the wire
unless the user trusted the model (`trust`)."""

from __future__ import annotations

from typing import Any, Optional

from ..errors import UserError
from ..progress import Task
from ..results.sweep import LOCAL, SweepResult

#: The open parameters a model reference may hold.
MODEL_PARAMS = ("source", "arch", "arch_kwargs", "trust", "data", "example_input",
                "input_shape", "input_dtype")


class Executor:
    """Runs a sweep; `run` returns a SweepResult with every point it measured (all of them,
    or those before a cancel or a failure, said in `cancelled` / `error`)."""

    name = "executor"

    def run(self, model: dict[str, Any], spec: Any, task: Task,
            on_point: Optional[Any] = None) -> SweepResult:
        raise NotImplementedError


def open_reference(model: dict[str, Any], task: Optional[Task] = None) -> Any:
    from ..opening.loading import open_model
    kwargs = {k: v for k, v in model.items() if k in MODEL_PARAMS and v not in (None, False)}
    if "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    source = kwargs.pop("source")
    return open_model(source, task=task, **kwargs)


def local_environment() -> dict[str, Any]:
    """What makes a machine type: CPU model, its flags that matter, usable cores, torch."""
    from .. import env
    from ..cpus import usable_cpus
    e = env.environment()
    return {"cpu": e["cpu"], "cpu_capabilities": e["cpu_capabilities"],
            "cores": usable_cpus(), "torch": e["torch"], "python": e["python"],
            "quantized_engine": e["quantized_engine"]}


def machine_type(environment: dict[str, Any]) -> str:
    """A readable key: nodes with the same key are interchangeable for timing."""
    caps = "+".join(environment.get("cpu_capabilities") or []) or "baseline ISA"
    return (f"{environment.get('cpu', '?')} [{caps}] {environment.get('cores', '?')} cores, "
            f"torch {environment.get('torch', '?')}")


class LocalExecutor(Executor):
    """This process: the model opened here (or the one given), points measured in order."""

    name = "local"

    def __init__(self, loaded: Any = None) -> None:
        self.loaded = loaded

    def run(self, model: dict[str, Any], spec: Any, task: Task,
            on_point: Optional[Any] = None) -> SweepResult:
        from ..sweep import Measurer, measure_all, recipe_name, summarize
        loaded = self.loaded if self.loaded is not None else open_reference(model, task)
        measurer = Measurer(loaded)
        result = SweepResult(loaded.info.source, [recipe_name(r) for r in spec.recipes],
                             spec.batches, spec.threads, executor=self.name)
        result.points, result.cancelled = measure_all(measurer, spec, task, on_point)
        environment = local_environment()
        return summarize(result, {LOCAL: environment}, {LOCAL: [measurer.node]})


def is_address(text: str) -> bool:
    """HOST:PORT (a Ray head's GCS address, which this machine joins as a driver)."""
    host, sep, port = text.rpartition(":")
    return bool(sep and host and "/" not in text and port.isdigit())


def executor_for(cluster: Optional[str]) -> Executor:
    """`local` (or None), `auto` (the Ray cluster $RAY_ADDRESS names, else a private local Ray
    on loopback), `HOST:PORT` (a head's address, as RAY_ADDRESS would give it) or
    `ray://HOST:PORT` (the Ray Client)."""
    if cluster in (None, "", "local"):
        return LocalExecutor()
    if cluster != "auto" and not cluster.startswith("ray://") and not is_address(cluster):
        raise UserError(f"--cluster: expected local, auto, HOST:PORT or ray://HOST:PORT, "
                        f"got {cluster!r:.60}")
    try:
        from .ray_executor import RayExecutor
    except ImportError as exc:  # the extra is not installed
        raise UserError(f"--cluster {cluster}: Ray is not installed ({exc}); install it with "
                        f"pip install \"quantgui[ray]\"") from None
    return RayExecutor(cluster)


def tuner_for(cluster: Optional[str]) -> Any:
    """The auto-tune's runner on every machine type of `cluster` (ray_tune.RayTuner), None for
    this machine; the same parsing and messages as `executor_for`."""
    executor = executor_for(cluster)
    if isinstance(executor, LocalExecutor):
        return None
    from .ray_tune import RayTuner
    return RayTuner(executor)
