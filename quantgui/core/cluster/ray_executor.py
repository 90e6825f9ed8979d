"""A sweep on a Ray cluster: every point on every machine type, one timing task per node.

Nodes are grouped by what they are (cluster.machine_type of a probe run on each node), or by a
custom resource `quantgui_type_<NAME>` a node was started with (`ray start --resources
'{"quantgui_type_avx512": 1}'`), which names its type. A node with the resource
`quantgui_timing` (1 per node) gets timing tasks that take it, so other drivers' timings never
share its cores; otherwise a task reserves every CPU of its node. The driver hands each node one
point at a time, so a node never times two points at once either.

Faults: a point whose worker or node died is retried once on another node of its type (the same
node when it is the only one), then reported failed with the reason; cancel force-cancels every
running task; a cluster that stops answering ends the sweep with the points measured so far.
Started here (`start_local`), Ray binds to 127.0.0.1, without dashboard or usage statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import os
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Optional

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..errors import Cancelled, UserError
from ..progress import Task
from ..results.sweep import SweepPoint, SweepResult
from . import Executor, local_environment, machine_type
from .worker import measure_point, pack

TIMING_RESOURCE = "quantgui_timing"
TYPE_PREFIX = "quantgui_type_"
#: How often the driver checks the cluster still answers, and how long it waits for it.
HEARTBEAT_S = 2.0
HEARTBEAT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 120.0


def loopback_address() -> str:
    """The address a local Ray advertises. Ray rewrites 127.0.0.1 (and localhost) to this
    machine's external address (services.resolve_ip_for_localhost), so on Linux, where the whole
    of 127.0.0.0/8 is loopback, another loopback address keeps every advertised address local.
    Ray 2.60's gRPC servers still listen on all interfaces whatever is given (README says so)."""
    return "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"


def private_environment(temp_dir: str) -> None:
    """What a Ray started by this process inherits: no usage statistics; its cluster address
    file under `temp_dir` ($RAY_TMPDIR/ray, default /tmp/ray, is shared by every user of the
    machine); token authentication with a token of its own in the environment (Ray 2.60 would
    otherwise generate one into ~/.ray/auth_token, outside anything this process owns)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_TMPDIR", temp_dir)
    os.makedirs(os.path.join(os.environ["RAY_TMPDIR"], "ray"), exist_ok=True)
    if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        import secrets
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        try:  # Ray read its config when imported: re-read it (what ray.init does itself)
            from ray._raylet import Config
            Config.initialize("")
        except (ImportError, AttributeError):  # another Ray version: it reads env at start
            pass


def start_local(num_cpus: int = 2, resources: Optional[dict] = None,
                temp_dir: Optional[str] = None) -> dict[str, Any]:
    """A Ray instance on this machine only: advertised on loopback, no dashboard, no usage
    statistics, its logs and sockets in a private temporary folder. Returns ray.init's
    address info (its "address" is the one it really uses)."""
    temp_dir = temp_dir or tempfile.mkdtemp(prefix="qgray-")
    private_environment(temp_dir)
    quiet_ray_notices()
    ctx = ray.init(num_cpus=num_cpus, resources=resources, include_dashboard=False,
                   _node_ip_address=loopback_address(), _temp_dir=temp_dir,
                   configure_logging=False, log_to_driver=False, namespace="quantgui")
    return dict(ctx.address_info)


#: Ray's notices that say nothing to the user, and the loggers that carry them: ray.init on a
#: thread other than the main one (the engine's worker thread; the Ray Client server, whose own
#: log lines the Ray Client streams back to this process's stderr through its logsclient).
RAY_NOISE = ("SIGTERM handler is not set because current thread is not the main thread",)
RAY_NOISY_LOGGERS = ("ray._private.worker", "ray.util.client.logsclient")


class _DropRayNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).lstrip().startswith(RAY_NOISE)


def quiet_ray_notices() -> None:
    """Drop RAY_NOISE on the loggers that emit it (their other records pass); once each."""
    for name in RAY_NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropRayNoise) for f in logger.filters):
            logger.addFilter(_DropRayNoise())


def reachable(target: str, flag: str, timeout_s: float = 5.0) -> None:
    """UserError unless something listens at HOST:PORT: Ray itself retries a missing head for
    minutes (printing a warning every few seconds) before it gives up."""
    import socket
    host, sep, port = target.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--cluster {flag}: expected HOST:PORT, got {target!r:.80}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"--cluster {flag}: nothing answers at {target} "
                        f"({exc.strerror or exc})") from None


#: The cluster this process joined through `connect` ("" for its private local one); None
#: when it did not join one, or the connection was made by someone else (then it is kept).
_joined: Optional[str] = None


def connect(address: str) -> None:
    """Join the cluster `address` names (`auto`: the one $RAY_ADDRESS names, else a private
    local one on loopback; never one found by scanning this machine's processes, which may be
    another user's). Already connected to it, or to one this function did not make: keep that
    connection. Connected here to another one (the engine process outlives a sweep): leave it,
    once the new one answers, and join the new one."""
    global _joined
    target = os.environ.get("RAY_ADDRESS", "") if address == "auto" else address
    if ray.is_initialized() and (_joined is None or _joined == target):
        return
    if target:
        reachable(target, address)
    if ray.is_initialized():
        ray.shutdown()
        _joined = None
    quiet_ray_notices()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # never report usage, whoever started it
    # Ray's C++ side logs retries and warnings straight to stderr: the CLI owes one line.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        if not target:
            start_local(num_cpus=max(1, (os.cpu_count() or 1)))
        elif not address.startswith("ray://"):  # auto via $RAY_ADDRESS, or HOST:PORT
            ray.init(address=target, configure_logging=False, log_to_driver=False,
                     namespace="quantgui")
        else:
            import logging  # Ray Client logs the kwargs it forwards at INFO: not the user's
            logging.getLogger("ray.client_builder").setLevel(logging.WARNING)
            ray.init(address=address, log_to_driver=False, namespace="quantgui")
        _joined = target
    except ValueError as exc:
        if "ray[client]" in str(exc):  # ray:// is the Ray Client: its own extra dependencies
            raise UserError(f"--cluster {address}: ray:// needs the Ray Client (pip install "
                            f"\"ray[client]\"), or run from a machine that joined the cluster "
                            f"with --cluster auto and RAY_ADDRESS=HOST:PORT") from None
        raise UserError(f"--cluster {address}: cannot connect ({exc})") from None
    except (ConnectionError, RuntimeError) as exc:
        raise UserError(f"--cluster {address}: cannot connect ({exc})") from None


@ray.remote(num_cpus=0, max_retries=0)
def _probe() -> dict[str, Any]:
    return local_environment()


#: The task each point runs; Ray itself never retries it (the driver picks the node).
MEASURE = ray.remote(max_retries=0)(measure_point)


@dataclass
class _Node:
    node_id: str
    machine: str
    cpus: float
    timing_resource: bool
    alive: bool = True
    busy: bool = False


@dataclass
class _Item:
    index: int
    point: dict[str, Any]
    recipe: str
    batch: int
    threads: int
    machine: str
    attempts: int = 0
    failed_on: list = field(default_factory=list)
    reasons: list = field(default_factory=list)


def _with_timeout(fn: Callable[[], Any], seconds: float) -> Any:
    """fn() in a daemon thread; TimeoutError when it does not answer (a cluster gone away can
    make Ray calls block)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
    t = threading.Thread(target=target, daemon=True, name="quantgui-ray-call")
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"the cluster did not answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _alive_nodes() -> list[dict]:
    return [n for n in ray.nodes() if n.get("Alive")]


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str = "auto", remote: Any = None) -> None:
        self.address = address
        self.remote = remote or MEASURE
        self.nodes: dict[str, _Node] = {}
        self.environments: dict[str, dict] = {}

    # --- nodes and their types ------------------------------------------------------------------
    def _discover(self) -> None:
        """Probe nodes not seen yet (nodes joining later are picked up here)."""
        fresh = [n for n in _with_timeout(_alive_nodes, HEARTBEAT_TIMEOUT_S)
                 if n["NodeID"] not in self.nodes]
        alive = {n["NodeID"] for n in _with_timeout(_alive_nodes, HEARTBEAT_TIMEOUT_S)}
        for node in self.nodes.values():
            node.alive = node.node_id in alive
        if not fresh:
            return
        refs = [_probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote() for n in fresh]
        envs = ray.get(refs, timeout=PROBE_TIMEOUT_S)
        for n, e in zip(fresh, envs):
            res = n.get("Resources", {})
            named = [k[len(TYPE_PREFIX):] for k in res if k.startswith(TYPE_PREFIX)]
            key = named[0] if named else machine_type(e)
            self.environments.setdefault(key, e)
            self.nodes[n["NodeID"]] = _Node(n["NodeID"], key, float(res.get("CPU", 1)),
                                            TIMING_RESOURCE in res)

    def types(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in self.nodes.values():
            if n.alive:
                out.setdefault(n.machine, []).append(n.node_id)
        return out

    # --- the sweep -------------------------------------------------------------------------------
    def ship(self, model: dict[str, Any]) -> tuple[dict, list, list]:
        """Pack the model (a missing file fails before any connecting), connect, put its files
        into the object store once (each node takes them out once) and find the nodes:
        (reference, file names, object refs), what every task on the cluster is given."""
        ref, names, files = pack(model)
        connect(self.address)
        blobs = [ray.put(b) for b in files]
        try:
            self._discover()
        except (TimeoutError, ray.exceptions.GetTimeoutError, ray.exceptions.RayError) as exc:
            raise UserError(f"--cluster {self.address}: the nodes did not answer "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                            ) from None
        return ref, names, blobs

    def _submit(self, item: _Item, node: _Node, ref: dict, names: list, blobs: list) -> Any:
        resources = {TIMING_RESOURCE: 1} if node.timing_resource else None
        cpus = min(float(item.threads), node.cpus) if node.timing_resource else node.cpus
        item.attempts += 1
        node.busy = True
        return self.remote.options(
            num_cpus=cpus, resources=resources,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
        ).remote(ref, names, item.point, item.machine, node.node_id[:12], *blobs)

    def _next_for(self, node: _Node, queue: list[_Item]) -> Optional[_Item]:
        """The first point this node should take: a retry goes to another node of its type
        when one is alive."""
        others = [n for n in self.nodes.values()
                  if n.alive and n.machine == node.machine and n.node_id != node.node_id]
        for item in queue:
            if node.node_id not in item.failed_on or not others:
                queue.remove(item)
                return item
        return None

    def run(self, model: dict[str, Any], spec: Any, task: Task,
            on_point: Optional[Any] = None) -> SweepResult:
        from ..sweep import recipe_name, summarize
        ref, names, blobs = self.ship(model)
        result = SweepResult(model.get("source", ""), [recipe_name(r) for r in spec.recipes],
                             spec.batches, spec.threads, executor=f"ray ({self.address})")
        queues: dict[str, list[_Item]] = {}

        def plan(machine: str) -> None:
            queues[machine] = [
                _Item(i, {"recipe": r.to_json(), "batch": b, "threads": t,
                          "time_budget_s": spec.time_budget_s, "min_rounds": spec.min_rounds},
                      recipe_name(r), b, t, machine)
                for i, (r, b, t) in enumerate(spec.points())]
        for machine in self.types():
            plan(machine)
        flight: dict[Any, tuple[_Item, _Node]] = {}
        total = sum(len(q) for q in queues.values())
        last_beat = time.monotonic()

        def done(point: SweepPoint) -> None:
            result.points.append(point)
            if on_point is not None:
                on_point(point)
            try:
                task.report("sweep", len(result.points) - 1, total,
                            f"{point.machine}: {point.recipe}, batch {point.batch}")
            except Cancelled:  # the loop cancels the running tasks at its next turn
                pass
        try:
            while True:
                if task.cancelled:
                    for r in flight:
                        ray.cancel(r, force=True)
                    result.cancelled = True
                    break
                for node in self.nodes.values():
                    if node.alive and not node.busy and queues.get(node.machine):
                        item = self._next_for(node, queues[node.machine])
                        if item is not None:
                            flight[self._submit(item, node, ref, names, blobs)] = (item, node)
                if not flight:
                    # Points whose type has no node left alive cannot be measured.
                    for machine, queue in queues.items():
                        for item in queue:
                            done(self._failed(item, "no node of this type is left"))
                        queue.clear()
                    break
                ready, _ = ray.wait(list(flight), num_returns=1, timeout=0.2)
                for r in ready:
                    item, node = flight.pop(r)
                    node.busy = False
                    point = self._collect(r, item, node, queues)
                    if point is not None:
                        done(point)
                if time.monotonic() - last_beat > HEARTBEAT_S:
                    last_beat = time.monotonic()
                    self._discover()
                    for r in [r for r, (_, n) in flight.items() if not n.alive]:
                        item, node = flight.pop(r)  # its node left: the task never answers
                        node.busy = False
                        ray.cancel(r, force=True)
                        point = self._lost(item, node, "left the cluster", queues)
                        if point is not None:
                            done(point)
                    for machine in self.types():
                        if machine not in queues:  # a new type joined: it gets the sweep too
                            plan(machine)
                            total += len(queues[machine])
        except (TimeoutError, ConnectionError, ray.exceptions.RaySystemError) as exc:
            result.error = f"the cluster stopped answering ({exc}); the points measured are kept"
            for r in flight:
                try:
                    ray.cancel(r, force=True)
                except Exception:  # the cluster is gone: nothing left to cancel
                    pass
        types = self.types()
        envs = {m: self.environments.get(m, {}) for m in
                dict.fromkeys(list(types) + [p.machine for p in result.points])}
        result.points.sort(key=lambda p: (p.machine, p.recipe, p.threads, p.batch))
        return summarize(result, envs, types)

    def _failed(self, item: _Item, reason: str) -> SweepPoint:
        return SweepPoint(item.recipe, item.batch, item.threads, item.machine,
                          attempts=item.attempts, error=reason)

    def _collect(self, ref: Any, item: _Item, node: _Node,
                 queues: dict[str, list[_Item]]) -> Optional[SweepPoint]:
        """The point of a finished task, None when it went back in the queue to be retried."""
        try:
            point = SweepPoint.from_json(ray.get(ref, timeout=HEARTBEAT_TIMEOUT_S))
            point.attempts = item.attempts
            return point
        except ray.exceptions.TaskCancelledError:
            return self._failed(item, "cancelled")
        except ray.exceptions.RayTaskError as exc:  # the measurement itself raised: no retry
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            return self._failed(item, f"{type(cause).__name__}: {str(cause).splitlines()[0]}")
        except ray.exceptions.RayError as exc:  # the worker or its node died
            return self._lost(item, node, type(exc).__name__, queues)

    def _lost(self, item: _Item, node: _Node, what: str,
              queues: dict[str, list[_Item]]) -> Optional[SweepPoint]:
        """A point whose worker died: back in its queue once, then failed with the reasons."""
        item.reasons.append(f"{what} on node {node.node_id[:12]}")
        item.failed_on.append(node.node_id)
        if item.attempts < 2:
            queues[item.machine].insert(0, item)
            return None
        return self._failed(item, "worker died twice: " + "; ".join(item.reasons))
