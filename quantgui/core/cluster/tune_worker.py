"""What a cluster node runs for one machine type's auto-tune: the model files it received as
bytes opened by the same safe loaders (worker.unpack, open_reference), then `core.tune.tune`
here, every trial measured in this process. Ray-free: ray_tune.py wraps `tune_on_node` in a
streaming task.

It yields messages (plain dicts) as the tune goes, so the driver keeps every trial even when
this node dies or the tune is cancelled: {"start": {...}} first (this process, its machine, the
budget and, with a log, the log header it must have), then {"trial": TuneTrial JSON} per trial (its
`from_log` says whether it was measured here), then {"result": TuneResult
JSON}; a bad model or log instead ends with {"error": one line}. The trial log's file stays on
the driver: the node gets its entries (`ShippedLog`) and sends each new trial back."""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Iterator, Optional

from ..errors import UserError

#: How long the stream waits for the tune's next message before checking it is still alive.
POLL_S = 0.2


class ShippedLog:
    """The driver's trial log as the tune sees it on a node: lookups from the entries the
    driver read; a new trial goes back to the driver as every trial does, and the driver
    appends it to the file (one line, made durable, as a local tune does)."""

    def __init__(self, name: str, entries: dict[str, dict], torn: bool) -> None:
        self.path, self.entries, self.torn = name, dict(entries), torn

    def lookup(self, key: str) -> Optional[dict]:
        return self.entries.get(key)

    def append(self, key: str, entry: Any) -> None:
        self.entries[key] = entry.to_json()

    def close(self) -> None:
        pass


def _options(request: dict[str, Any], loaded: Any) -> Any:
    from ..recipe import Recipe
    from ..recommend import candidate_recipes
    from ..run import RunOptions
    from ..tune import STEPS, TuneOptions
    plan = request.get("candidates")
    plan = [Recipe.from_json(r, "candidate") for r in plan] if plan is not None else \
        candidate_recipes(loaded, include_compile=bool(request.get("include_compile")))
    if request.get("max_candidates") is not None:
        plan = plan[:max(0, int(request["max_candidates"]))]
    steps = request.get("steps")
    return TuneOptions(run=RunOptions(**(request.get("run") or {})), candidates=plan,
                       include_compile=bool(request.get("include_compile")),
                       sensitivity_samples=request.get("samples"),
                       steps=STEPS if steps is None else tuple(steps))


def tune_on_node(ref: dict[str, Any], names: list[str], request: dict[str, Any], machine: str,
                 node: str, *blobs: bytes) -> Iterator[dict[str, Any]]:
    """The tune of `ref` on this node, as messages (see the module's docstring). `request`:
    "budget" (QualityBudget JSON or None), "run" (RunOptions fields), "candidates" (recipe
    JSON list or None: recommend's), "max_candidates", "include_compile", "samples", "steps",
    "time_limit_s", and "log" ({"name", "header", "entries", "torn"} or None)."""
    from . import local_environment, open_reference
    from .worker import unpack
    from ..budget import QualityBudget
    from ..progress import CancelToken, Task
    from ..recommend import budget_for
    from ..tune import content_hashes, tune
    from ..tune_log import check_header, header
    try:
        model, _ = unpack(ref, names, blobs)
        loaded = open_reference(model)
        budget = None if request.get("budget") is None else \
            QualityBudget.from_json(request["budget"], "budget")
        resolved, _ = budget_for(loaded, budget=budget)
        options = _options(request, loaded)
        shipped = request.get("log")
        want = None
        if shipped is not None:
            want = header(*content_hashes(loaded), resolved)
            if shipped.get("header") is not None:
                check_header(shipped["name"], shipped["header"], want, resolved)
    except UserError as exc:
        yield {"error": str(exc).splitlines()[0]}
        return
    yield {"start": {"pid": os.getpid(), "node": node, "machine": machine,
                     "environment": local_environment(), "header": want,
                     "budget": resolved.to_json(), "candidates": len(options.candidates)}}
    out: queue.Queue = queue.Queue()
    log = None if shipped is None else ShippedLog(
        shipped["name"], shipped.get("entries") or {}, bool(shipped.get("torn")))
    token = CancelToken()
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            result = tune(loaded, budget, options, Task(None, token),
                          time_limit_s=request.get("time_limit_s"),
                          on_trial=lambda t: out.put({"trial": t.to_json()}), log=log)
            done["result"] = result.to_json()
        except UserError as exc:
            done["error"] = str(exc).splitlines()[0]
        except BaseException as exc:  # noqa: BLE001 - said to the driver, not lost here
            done["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            out.put(None)
    worker = threading.Thread(target=run, name="quantgui-tune", daemon=True)
    worker.start()
    try:
        while True:
            try:
                message = out.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if message is None:
                break
            yield message
    finally:  # a cancelled stream stops the tune too (Ray may reuse this process)
        token.cancel()
        worker.join(timeout=5.0)
    yield {"result": done["result"]} if "result" in done else {"error": done["error"]}
