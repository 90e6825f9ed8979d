"""The engine's methods: each takes the request's params and a `Call` (its task, the store, a
way to send partial results) and returns the JSON value of its answer. They do what the GUI's
jobs did in-process (main_window `_load_job`/`_run_job`, export_actions, recommend_actions,
open_flow), with typed records' `to_json` on the way out. protocol.py documents each one."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
from typing import Any, Callable, Optional

from . import protocol
from .calls import Call, CancelledWith, _count, _need, _only
from .protocol import ProtocolError
from .state import PeakMemory, check_memory, estimate_run_bytes


# --- hello --------------------------------------------------------------------------------------

def engine_info(keep: int) -> dict[str, Any]:
    import platform

    import torch

    import quantgui
    from quantgui.core import DEFAULT_EXAMPLE, EXAMPLES, env, technique_specs
    return {"version": quantgui.__version__, "protocol": protocol.PROTOCOL_VERSION,
            "pid": os.getpid(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_capabilities": env.cpu_capabilities(),
            "threads": torch.get_num_threads(),
            "techniques": [s.to_json() for s in technique_specs().values()],
            "examples": [{"name": n, "description": s.description,
                          "suggested": list(s.suggested)} for n, s in EXAMPLES.items()],
            "default_example": DEFAULT_EXAMPLE, "keep_variants": keep}


# --- opening ------------------------------------------------------------------------------------

OPEN_PARAMS = ("source", "arch", "arch_kwargs", "trust", "example_input", "input_shape",
               "input_dtype", "example_text", "data", "task", "fashion_mnist")


def _opened(call: Call, loaded: Any) -> dict[str, Any]:
    from quantgui.core import DataInfo, env, input_kinds
    from quantgui.core.export import model_source
    info = loaded.info

    def data(ds: Any) -> Optional[dict]:
        d = DataInfo.of(ds)
        return None if d is None else d.to_json()
    return {"model_id": call.store.add_model(loaded), "info": info.to_json(),
            "data": {"test": data(loaded.test), "train": data(loaded.train)},
            "source": protocol.json_safe(model_source(loaded)),
            "input_kinds": list(input_kinds(info.format, info.source)),
            "cpu_capabilities": env.cpu_capabilities()}


def open_(params: dict, call: Call, need_example: bool = True) -> dict[str, Any]:
    from quantgui.core import DEFAULT_EXAMPLE, all_techniques, open_model
    kwargs = _only(params, OPEN_PARAMS)
    all_techniques()
    source = kwargs.pop("source", "") or f"example:{DEFAULT_EXAMPLE}"
    if "input_shape" in kwargs:
        shape = kwargs["input_shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise ProtocolError("\"input_shape\" must be a list of integers")
        kwargs["input_shape"] = tuple(shape)
    if kwargs.get("trust") is False:
        del kwargs["trust"]
    if isinstance(kwargs.get("data"), dict):  # a data reference (DataSpec JSON), not a path
        from quantgui.core import DataSpec
        kwargs["data"] = DataSpec.from_json(kwargs["data"])
    fashion = kwargs.pop("fashion_mnist", None)
    if fashion:  # the folder of the user's Fashion-MNIST files (example:fashion-cnn)
        from quantgui.core import fashion_info
        os.environ[fashion_info.ENV] = str(fashion)
    loaded = open_model(source, task=call.task, need_example=need_example, **kwargs)
    return _opened(call, loaded)


def inspect(params: dict, call: Call) -> dict[str, Any]:
    return open_(params, call, need_example=False)


def drop_labels(params: dict, call: Call) -> dict[str, Any]:
    _only(params, ("model_id",))
    loaded = call.store.model(_need(params, "model_id"))

    def unlabeled(ds: Any) -> Any:
        return None if ds is None else dataclasses.replace(ds, labels=None)
    return _opened(call, dataclasses.replace(loaded, test=unlabeled(loaded.test),
                                             train=unlabeled(loaded.train)))


def classes(params: dict, call: Call) -> dict[str, Any]:
    from quantgui.core import module_classes
    _only(params, ("path",))
    return {"classes": list(module_classes(_need(params, "path")))}


# --- running ------------------------------------------------------------------------------------

def run_options(data: Any, **defaults: Any) -> Any:
    from quantgui.core import RunOptions
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProtocolError("\"options\" must be a JSON object")
    # the budget travels in the recipe (run) or as recommend's own "budget" parameter
    names = tuple(f.name for f in dataclasses.fields(RunOptions) if f.name != "budget")
    values = {**defaults, **_only(data, names)}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError(f"option \"{name}\" must be a number, got {value!r:.40}")
        if name != "time_budget_s" and value != int(value):
            raise ProtocolError(f"option \"{name}\" must be a whole number, got {value!r:.40}")
        values[name] = float(value) if name == "time_budget_s" else int(value)
    return RunOptions(**values)


def _recipe(data: Any) -> Any:
    from quantgui.core import Recipe
    return Recipe.from_json(data, "recipe")


def run(params: dict, call: Call) -> dict[str, Any]:
    from quantgui.core import run_recipe
    _only(params, ("model_id", "recipe", "options", "label"))
    model_id = str(_need(params, "model_id"))
    loaded = call.store.model(model_id)
    recipe = _recipe(_need(params, "recipe"))
    options = run_options(params.get("options"))
    check_memory(estimate_run_bytes(loaded, options.batch_size), "this run")
    with PeakMemory() as peak:
        result = run_recipe(loaded, recipe, options, call.task)
    result.peak_rss_bytes = peak.peak
    call.task.check()  # cancelled as it ended: answered "cancelled", so nothing is kept
    _, evicted = call.store.add_variant(model_id, result,
                                        params.get("label") or recipe.describe())
    return {"result": result.to_json(), "evicted": evicted}


def recommend(params: dict, call: Call) -> dict[str, Any]:
    from quantgui.core import recommend_recipe
    from quantgui.core.budget import QualityBudget
    _only(params, ("model_id", "options", "max_accuracy_drop", "min_cosine", "max_candidates",
                   "include_compile", "budget"))
    budget = None if params.get("budget") is None else \
        QualityBudget.from_json(params["budget"], "budget")
    model_id = str(_need(params, "model_id"))
    loaded = call.store.model(model_id)
    options = None if params.get("options") is None else run_options(params["options"])
    check_memory(estimate_run_bytes(loaded, getattr(options, "batch_size", None)),
                 "this search")
    evicted: list[str] = []

    def on_trial(trial: Any) -> None:
        if trial.result is not None:
            _, gone = call.store.add_variant(model_id, trial.result, trial.recipe.describe())
            evicted.extend(gone)
        call.partial({"trial": trial.to_json()})

    with PeakMemory() as peak:
        rec = recommend_recipe(loaded, params.get("max_accuracy_drop"),
                               params.get("min_cosine"), options, call.task,
                               max_candidates=params.get("max_candidates"),
                               include_compile=bool(params.get("include_compile")),
                               on_trial=on_trial, budget=budget)
    value = {"recommendation": rec.to_json(), "evicted": evicted, "peak_rss_bytes": peak.peak}
    if rec.cancelled or call.task.cancelled:
        raise CancelledWith(value)
    return value


def sweep(params: dict, call: Call) -> dict[str, Any]:
    """Every point measured here (the store's model) or on a cluster (`model`: the open
    parameters, each node opens it itself); a partial event per point, the points so far in
    the "cancelled" error's data."""
    from quantgui.core.cluster import MODEL_PARAMS, LocalExecutor, executor_for
    from quantgui.core.sweep import SweepSpec
    _only(params, ("model_id", "model", "recipes", "batches", "threads", "time_budget_s",
                   "cluster"))
    recipes, batches, threads = (_need(params, k) for k in ("recipes", "batches", "threads"))
    if not all(isinstance(v, list) for v in (recipes, batches, threads)):
        raise ProtocolError("\"recipes\", \"batches\" and \"threads\" must be lists")
    budget = params.get("time_budget_s", 0.5)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise ProtocolError(f"\"time_budget_s\" must be a positive number, got {budget!r:.40}")
    spec = SweepSpec([_recipe(r) for r in recipes], batches, threads, float(budget))
    cluster = params.get("cluster") or "local"
    if cluster == "local":
        loaded = call.store.model(str(_need(params, "model_id")))
        check_memory(estimate_run_bytes(loaded, max(spec.batches)), "this sweep")
        executor, model = LocalExecutor(loaded), {}
    else:
        model = _need(params, "model")
        if not isinstance(model, dict) or not model.get("source"):
            raise ProtocolError("\"model\" must be the open parameters, with a \"source\"")
        _only(model, MODEL_PARAMS)
        executor = executor_for(cluster)
    result = executor.run(model, spec, call.task,
                          lambda point: call.partial({"point": point.to_json()}))
    if result.cancelled:
        raise CancelledWith({"sweep": result.to_json()})
    return {"sweep": result.to_json()}


def profile(params: dict, call: Call) -> dict[str, Any]:
    """Per-layer time before vs after for one configuration of the store's model."""
    from quantgui.core.measure.profile import profile_layers
    _only(params, ("model_id", "recipe", "batch", "threads", "calls"))
    loaded = call.store.model(str(_need(params, "model_id")))
    recipe = _recipe(_need(params, "recipe"))
    batch, threads = _count(params, "batch"), _count(params, "threads")
    calls = _count(params, "calls") if "calls" in params else 20
    check_memory(estimate_run_bytes(loaded, batch), "this profile")
    result = profile_layers(loaded, recipe, batch, threads, min(calls, 1000), task=call.task)
    return {"profile": result.to_json()}


def sweep_report(params: dict, call: Call) -> dict[str, Any]:
    """The report into a folder (`what` "report", the default), or the sweep as one JSON or
    CSV file (`what` "json" / "csv", at `path`): the GUI process writes no file itself (the
    writers' package imports torch)."""
    from quantgui.core import SweepResult, write_sweep_report, write_text_atomic
    from quantgui.core.export.sweep_report import sweep_text
    p = _only(params, ("what", "folder", "path", "sweep", "profile", "plots"))
    what = p.get("what", "report")
    if what not in ("report", "json", "csv"):
        raise ProtocolError("\"what\" must be report, json or csv")
    if what != "report":
        text = sweep_text(SweepResult.from_json(_need(p, "sweep")), what)
        path = write_text_atomic(str(_need(p, "path")), text, call.task)
        return {"path": str(path), "text": f"wrote {path}", "export": {"path": str(path)}}
    files = write_sweep_report(str(_need(p, "folder")), _need(p, "sweep"), p.get("profile"),
                               plots=_plots(p.get("plots")), task=call.task)
    return {"path": str(files.html), "text": "\n".join(files.lines()),
            "export": files.to_json()}


# --- writing out --------------------------------------------------------------------------------

def _plots(data: Any) -> dict[str, bytes]:
    if not data:
        return {}
    if not isinstance(data, dict):
        raise ProtocolError("\"plots\" must be an object of base64 PNGs")
    try:
        return {str(k): base64.b64decode(v, validate=True) for k, v in data.items()}
    except (binascii.Error, TypeError, ValueError):
        raise ProtocolError("\"plots\" must hold base64 text") from None


def sensitivity(params: dict, call: Call) -> dict[str, Any]:
    """Per-unit sensitivity of the store's model to a format (core/sensitivity.py); a partial
    event per unit, the units so far in the "cancelled" error's data."""
    from quantgui.core.sensitivity import sensitivity as measure
    _only(params, ("model_id", "format", "params", "expand", "samples", "batch_size",
                   "use_cache"))
    loaded = call.store.model(str(_need(params, "model_id")))
    values = params.get("params") or {}
    if not isinstance(values, dict):
        raise ProtocolError("\"params\" must be an object of the format's parameters")
    for key in ("samples", "batch_size"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ProtocolError(f"\"{key}\" must be a whole number from 1, got {value!r:.40}")
    check_memory(estimate_run_bytes(loaded, params.get("batch_size")), "this measurement")
    report = measure(loaded, str(params.get("format") or "dynamic_int8"), values,
                     expand=bool(params.get("expand")),
                     samples=params.get("samples") or SENSITIVITY_SAMPLES,
                     batch_size=params.get("batch_size"), task=call.task,
                     use_cache=params.get("use_cache") is not False,
                     on_unit=lambda unit: call.partial({"unit": unit.to_json()}))
    if report.cancelled:
        raise CancelledWith({"sensitivity": report.to_json()})
    return {"sensitivity": report.to_json()}


SENSITIVITY_SAMPLES = 256


def tune(params: dict, call: Call) -> dict[str, Any]:
    """The anytime auto-tune (core/tune.py) of the store's model: a partial event {"trial":
    TuneTrial} per trial (each with a result keeps a variant), then {"tune": TuneResult}; a
    cancel's error data holds the result so far (its best is the best so far). The time limit
    ends it normally, with `stopped` "time limit"."""
    from quantgui.core.budget import QualityBudget
    from quantgui.core.tune import TuneOptions, tune as search
    _only(params, ("model_id", "options", "budget", "max_candidates", "include_compile",
                   "time_limit_s", "samples", "log", "resume", "cluster", "model"))
    budget = None if params.get("budget") is None else \
        QualityBudget.from_json(params["budget"], "budget")
    for key in ("max_candidates", "samples"):
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ProtocolError(f"\"{key}\" must be a whole number from 1, got {value!r:.40}")
    limit = params.get("time_limit_s")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                              or not limit > 0):
        raise ProtocolError(f"\"time_limit_s\" must be a positive number, got {limit!r:.40}")
    options = None if params.get("options") is None else run_options(params["options"])
    if (params.get("cluster") or "local") != "local":
        from .cluster_tune import cluster_tune
        return cluster_tune(params, call, budget, options)
    model_id = str(_need(params, "model_id"))
    loaded = call.store.model(model_id)
    check_memory(estimate_run_bytes(loaded, getattr(options, "batch_size", None)), "this tune")
    evicted: list[str] = []

    def on_trial(t: Any) -> None:
        if t.trial.result is not None and not t.from_log:
            _, gone = call.store.add_variant(model_id, t.trial.result,
                                             t.trial.recipe.describe())
            evicted.extend(gone)
        call.partial({"trial": t.to_json()})

    with PeakMemory() as peak:
        result = search(loaded, budget, TuneOptions(
            run=options, max_candidates=params.get("max_candidates"),
            include_compile=bool(params.get("include_compile")),
            sensitivity_samples=params.get("samples")), call.task, params.get("log"),
            bool(params.get("resume")), limit, on_trial)
    value = {"tune": result.to_json(), "evicted": evicted, "peak_rss_bytes": peak.peak}
    if result.stopped == "cancelled" or call.task.cancelled:
        raise CancelledWith(value)
    return value


def export(params: dict, call: Call) -> dict[str, Any]:
    from quantgui.core import (RunResult, export_run, protected_paths, recipe_json,
                               write_report, write_script_for_run, write_text_atomic)
    p = _only(params, ("what", "variant_id", "result", "model_id", "folder", "path", "plots",
                       "fmt"))
    what = p.get("what")
    if what not in protocol.EXPORT_WHAT:
        raise ProtocolError(f"\"what\" must be one of {', '.join(protocol.EXPORT_WHAT)}")
    if "variant_id" in p or what in ("model", "script", "all"):
        kept = call.store.variant(_need(p, "variant_id"))
        loaded, result = kept.loaded, kept.result
    else:
        result = RunResult.from_json(_need(p, "result"))
        loaded = call.store.model(p["model_id"]) if "model_id" in p else None
    protected = protected_paths(loaded) if loaded is not None else []
    task = call.task
    if what == "recipe":
        task.report("export", 0, 1, "writing the recipe")
        path = write_text_atomic(_need(p, "path"), json.dumps(recipe_json(result), indent=2)
                                 + "\n", task, protected)
        return {"what": what, "path": str(path), "text": f"wrote {path}",
                "export": {"path": str(path)}}
    folder = str(_need(p, "folder"))
    if what == "script":
        out = write_script_for_run(folder, loaded, result, protected=protected, task=task)
        return {"what": what, "path": str(out.script), "text": out.describe(),
                "export": out.to_json()}
    if what == "report":
        files = write_report(folder, result, plots=_plots(p.get("plots")), protected=protected,
                             task=task)
        return {"what": what, "path": str(files.html), "text": f"wrote {files.html}",
                "export": files.to_json()}
    only_model = what == "model"
    out = export_run(folder, loaded, result, model=True, script=not only_model,
                     report=not only_model, fmt=p.get("fmt", "auto"),
                     plots=_plots(p.get("plots")), task=task)
    text = out.describe()
    if out.model is not None and out.model.how_to_load:
        text += "\n\n" + out.model.how_to_load
    path = out.model.path if only_model and out.model is not None else out.out_dir
    return {"what": what, "path": str(path), "text": text, "export": out.to_json()}


def save_project(params: dict, call: Call) -> dict[str, Any]:
    from quantgui.core import ProjectEntry, save_project as save
    _only(params, ("path", "entries"))
    entries = params.get("entries")
    if not isinstance(entries, list):
        raise ProtocolError("\"entries\" must be a list of project entries")
    typed = [ProjectEntry.from_json(e, f"entry {i}") for i, e in enumerate(entries, 1)]
    return {"path": str(save(_need(params, "path"), typed, task=call.task))}


def load_project(params: dict, call: Call) -> dict[str, Any]:
    from pathlib import Path

    from quantgui.core import load_project as load
    _only(params, ("path",))
    path = str(_need(params, "path"))
    call.task.report("export", 0, 1, f"opening {Path(path).name}")
    return {"project": load(path).to_json()}


def variants(params: dict, call: Call) -> dict[str, Any]:
    _only(params, ())
    return {"variants": call.store.variants(), "keep": call.store.keep}


def forget(params: dict, call: Call) -> dict[str, Any]:
    p = _only(params, ("variant_id", "model_id"))
    if not p:
        raise ProtocolError("forget needs \"variant_id\" or \"model_id\"")
    return {"forgotten": call.store.forget(p.get("variant_id"), p.get("model_id"))}


#: method -> handler run in order on the worker thread ("hello", "variants", "forget",
#: "shutdown" are answered by the server at once).
WORK: dict[str, Callable[[dict, Call], dict]] = {
    "open": open_, "inspect": inspect, "drop_labels": drop_labels, "classes": classes,
    "run": run, "recommend": recommend, "sweep": sweep, "profile": profile,
    "sweep_report": sweep_report, "sensitivity": sensitivity, "tune": tune, "export": export,
    "save_project": save_project,
    "load_project": load_project,
}
