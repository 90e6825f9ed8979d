"""The auto-tune on every machine type of a Ray cluster: one tune per type, on one node of that
type, every trial measured there (tune_worker.tune_on_node in a task), never here.

The model travels as the sweep's does (worker.pack: files as bytes through the object store,
opened on the node by the same safe loaders). Each trial comes back as it is measured, through a
`Mailbox` actor (the Ray Client has no streaming tasks; an actor works through it and on a
joined driver alike), so the driver always holds every type's trials: a cancel, the time limit
or a node dying mid-tune leaves each type's best so far (a dead node's type says so in one line,
the others go on). With a trial
log, each type has its own file (`per_type_path`), written here one durable line per trial and
resumable per type; its entries go to the node so no trial is measured twice.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import re
import time
from typing import Any, Callable, Optional

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..budget import QualityBudget
from ..errors import UserError
from ..progress import Task
from ..results.cluster_tune import ClusterTuneResult, MachineTune
from ..results.tune import TuneResult, TuneTrial
from .ray_executor import HEARTBEAT_S, HEARTBEAT_TIMEOUT_S, TIMING_RESOURCE, RayExecutor
from .tune_worker import tune_on_node


@ray.remote(num_cpus=0)
class Mailbox:
    """Where the nodes' tunes leave their messages, in order, and the driver takes them."""

    def __init__(self) -> None:
        self.messages: list = []

    def put(self, machine: str, message: dict) -> None:
        self.messages.append((machine, message))

    def take(self) -> list:
        out, self.messages = self.messages, []
        return out


def forward(mailbox: Any, machine: str, messages: Any) -> None:
    """Each message into the mailbox, delivered before the next one is made (a node dying
    after a trial has already handed that trial over)."""
    for message in messages:
        ray.get(mailbox.put.remote(machine, message))


def tune_task(mailbox: Any, ref: dict, names: list, request: dict, machine: str, node: str,
              *blobs: bytes) -> None:
    forward(mailbox, machine, tune_on_node(ref, names, request, machine, node, *blobs))


#: The task each type's tune runs; Ray never retries it (a retry would measure trials twice).
TUNE = ray.remote(max_retries=0)(tune_task)
#: How long past the time limit the driver waits for a node's tune to stop on its own.
LIMIT_GRACE_S = 30.0


def per_type_path(path: Any, machine: str) -> Path:
    """`trials.jsonl` -> `trials.<machine type, readable>-<hash>.jsonl`: one log per type, the
    same name for the same type (a resume finds it), different for different types."""
    path = Path(path).expanduser()
    slug = re.sub(r"[^a-z0-9]+", "-", machine.lower()).strip("-")[:48] or "type"
    digest = hashlib.sha256(machine.encode()).hexdigest()[:6]
    return path.with_name(f"{path.stem}.{slug}-{digest}{path.suffix or '.jsonl'}")


def existing_type_logs(path: Any) -> list[Path]:
    """The per-type logs of `path` already there (any machine type): a new tune refuses them
    before it connects to anything."""
    path = Path(path).expanduser()
    suffix = re.escape(path.suffix or ".jsonl")
    pattern = re.compile(rf"^{re.escape(path.stem)}\.[a-z0-9-]*-[0-9a-f]{{6}}{suffix}$")
    try:
        return sorted(p for p in path.parent.iterdir() if pattern.match(p.name))
    except OSError:  # no such folder: nothing there yet (writing will say why it cannot)
        return []


class _Run:
    """One type's tune as the driver sees it: its task and what came back so far."""

    def __init__(self, machine: str, node: Any, log_path: Optional[Path]) -> None:
        self.machine, self.node, self.log_path = machine, node, log_path
        self.entry = MachineTune(machine, node=node.node_id[:12],
                                 log=None if log_path is None else str(log_path))
        self.start: dict[str, Any] = {}
        self.trials: list[TuneTrial] = []
        self.log: Any = None
        self.stream: Any = None   # the task's reference
        self.over = False         # its end (or cancel) is handled: later messages are ignored

    def partial(self, stopped: str) -> None:
        """The result from the trials back so far (the node's own result never came)."""
        if not self.start:
            return
        budget = QualityBudget.from_json(self.start["budget"], "budget")
        self.entry.result = TuneResult(
            budget, list(self.trials), cancelled=True, stopped=stopped,
            candidates=int(self.start.get("candidates", 0)),
            log=self.entry.log, environment=dict(self.entry.environment))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


class RayTuner:
    """`run(model, request, task, ...)` -> ClusterTuneResult. `executor` finds the nodes and
    their types (the sweep's RayExecutor); `remote` replaces the task (tests)."""

    def __init__(self, executor: RayExecutor, remote: Any = None) -> None:
        self.executor = executor
        self.remote = remote or TUNE

    def run(self, model: dict[str, Any], request: dict[str, Any], task: Task,
            log_path: Any = None, resume: bool = False,
            on_trial: Optional[Callable[[str, TuneTrial], None]] = None) -> ClusterTuneResult:
        ex = self.executor
        ref, names, blobs = ex.ship(model)
        runs = []
        for machine, nodes in sorted(ex.types().items()):
            path = None if log_path is None else per_type_path(log_path, machine)
            if path is not None and path.exists() and not resume:
                raise UserError(f"{path}: already exists; pass --resume to continue that "
                                f"tune, or name a new log file")
            runs.append(_Run(machine, ex.nodes[nodes[0]], path))
        result = ClusterTuneResult(f"ray ({ex.address})", [r.entry for r in runs],
                                   driver_pid=os.getpid())
        limit = request.get("time_limit_s")
        deadline = None if limit is None else time.monotonic() + limit + LIMIT_GRACE_S
        mailbox = Mailbox.remote()
        try:
            for r in runs:
                r.stream = self._submit(r, mailbox, request, ref, names, blobs, resume)
            self._follow(runs, mailbox, result, task, deadline, on_trial)
        except (TimeoutError, ConnectionError, ray.exceptions.RaySystemError) as exc:
            result.error = f"the cluster stopped answering ({exc}); the trials measured are kept"
            for r in runs:
                if r.stream is not None and r.entry.result is None:
                    r.partial("cluster gone")
                    self._cancel(r)
        finally:
            for r in runs:
                r.close()
            try:
                ray.kill(mailbox)
            except Exception:  # noqa: BLE001 - the cluster is gone
                pass
        stops = {r.entry.result.stopped for r in runs if r.entry.result is not None}
        result.stopped = "cancelled" if result.cancelled else \
            "time limit" if "time limit" in stops else None
        return result

    def _submit(self, r: _Run, mailbox: Any, request: dict[str, Any], ref: dict, names: list,
                blobs: list, resume: bool) -> Any:
        request = dict(request)
        if r.log_path is not None:
            shipped: dict[str, Any] = {"name": str(r.log_path), "header": None, "entries": {},
                                       "torn": False}
            if resume and r.log_path.exists():
                from ..tune_log import read
                entries, torn, _ = read(r.log_path)
                shipped.update(header=entries.pop(None, None), entries=entries, torn=torn)
            request["log"] = shipped
        node = r.node
        threads = (request.get("run") or {}).get("threads")
        cpus = min(float(threads), node.cpus) if threads and node.timing_resource else node.cpus
        node.busy = True
        return self.remote.options(
            num_cpus=cpus, resources={TIMING_RESOURCE: 1} if node.timing_resource else None,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        ).remote(mailbox, ref, names, request, r.machine, node.node_id[:12], *blobs)

    def _follow(self, runs: list[_Run], mailbox: Any, result: ClusterTuneResult, task: Task,
                deadline: Optional[float], on_trial: Any) -> None:
        live = {r.stream: r for r in runs}
        by_machine = {r.machine: r for r in runs}

        def drain() -> None:
            for machine, message in ray.get(mailbox.take.remote(), timeout=HEARTBEAT_TIMEOUT_S):
                r = by_machine.get(machine)
                if r is not None and not r.over:
                    self._handle(r, message, on_trial)
        last_beat = time.monotonic()
        while live:
            late = deadline is not None and time.monotonic() > deadline
            if task.cancelled or late:
                drain()  # what already came back counts
                result.cancelled = result.cancelled or task.cancelled
                for r in live.values():
                    if not r.over:
                        r.partial("cancelled" if task.cancelled else "time limit")
                        self._cancel(r)
                return
            ready, _ = ray.wait(list(live), num_returns=len(live), timeout=0.2)
            drain()  # after the wait: every message of a task that ended is in
            for done in ready:
                self._ended(live.pop(done))
            if time.monotonic() - last_beat > HEARTBEAT_S:
                last_beat = time.monotonic()
                self.executor._discover()
                for stream, r in list(live.items()):
                    if not r.node.alive:  # its node left: the task never answers
                        live.pop(stream)
                        if not r.over:
                            self._died(r, "left the cluster")
                            self._cancel(r)

    def _ended(self, r: _Run) -> None:
        """`r`'s task is over: how (its messages are already handled)."""
        if r.over:
            return
        r.over = True
        r.node.busy = False
        try:
            ray.get(r.stream, timeout=HEARTBEAT_TIMEOUT_S)
        except ray.exceptions.TaskCancelledError:
            pass
        except ray.exceptions.RayTaskError as exc:  # the task itself raised
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            r.entry.error = f"{type(cause).__name__}: {str(cause).splitlines()[0][:200]}"
            r.partial("failed")
            return
        except ray.exceptions.RayError as exc:  # the worker or its node died
            self._died(r, type(exc).__name__)
            return
        if r.entry.result is None and r.entry.error is None:
            self._died(r, "ended without a result")

    def _handle(self, r: _Run, message: dict[str, Any], on_trial: Any) -> None:
        if "start" in message:
            self._started(r, message["start"])
        elif "trial" in message:
            trial = TuneTrial.from_json(message["trial"])
            r.trials.append(trial)
            if r.log is not None and not trial.from_log:
                from ..tune_log import recipe_key
                r.log.append(recipe_key(trial.trial.recipe), trial)
            if on_trial is not None:
                on_trial(r.machine, trial)
        elif "result" in message:
            r.entry.result = TuneResult.from_json(message["result"])
            r.entry.result.log = r.entry.log
        else:
            r.entry.error = str(message.get("error", "no result"))
            r.partial("failed")

    def _started(self, r: _Run, start: dict[str, Any]) -> None:
        r.start = start
        r.entry.pid = start.get("pid")
        r.entry.environment = dict(start.get("environment") or {})
        if r.log_path is not None and start.get("header"):
            from ..tune_log import TrialLog
            head = start["header"]
            try:
                r.log = TrialLog.open(r.log_path, head["model"], head["data"],
                                      QualityBudget.from_json(head["budget"], "budget"),
                                      resume=True)
            except UserError as exc:  # this type stops; the others go on
                r.entry.error = str(exc).splitlines()[0]
                self._cancel(r)

    def _died(self, r: _Run, what: str) -> None:
        n = len(r.trials)
        r.entry.error = (f"the node died mid-tune ({what} on node {r.node.node_id[:12]}); "
                         f"the {n} trial{'s' if n != 1 else ''} measured before "
                         f"{'are' if n != 1 else 'is'} kept")
        r.partial("node died")

    @staticmethod
    def _cancel(r: _Run) -> None:
        r.over = True
        r.node.busy = False
        try:
            ray.cancel(r.stream, force=True)
        except Exception:  # noqa: BLE001 - already over, or the cluster is gone
            pass
