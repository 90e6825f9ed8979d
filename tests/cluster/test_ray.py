"""Sweeps through Ray: the same points as the local executor, on every machine type of a
simulated heterogeneous cluster, with workers killed, a node removed, and a cancel.

Order matters: the first tests use the head node alone; `typed_nodes` then adds two "alpha"
nodes for the rest of the session (the last test removes one). The Ray Client test runs before
them: a client connection is a new job, which starts its own workers on every node it probes and
times (each importing torch), and the head alone is all that test needs."""

import json
import math
import os
from pathlib import Path

import pytest

from quantgui.core.cluster import LocalExecutor, local_environment, machine_type
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe, Step
from quantgui.core.results.sweep import SweepResult
from quantgui.core.sweep import SweepSpec

from .conftest import ray, ray_processes, rx

MLP = "example:digits-mlp"
INT8 = Recipe([Step("dynamic_int8", {})])
SMALL = dict(time_budget_s=0.05, min_rounds=2)
HEAD = machine_type(local_environment())  # the head node's type, as probed


def _keys(data):
    """The shape of a JSON object: its keys, nested (leaf values vary from run to run)."""
    if isinstance(data, dict):
        return {k: _keys(v) for k, v in data.items()}
    return "*"


def test_ray_started_here_stays_on_loopback(ray_cluster):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert [n["NodeManagerAddress"] for n in nodes] == [rx.loopback_address()]
    assert ray_cluster.address.startswith("127.")
    assert not any("dashboard" in p for p in ray_processes(ray_cluster.temp))


def test_ray_sweep_has_the_local_schema_and_values_within_noise(ray_cluster):
    # More rounds than the other tests: its medians are compared (3 samples on a loaded
    # machine once differed 7x).
    spec = SweepSpec([INT8], [1, 16], [1], time_budget_s=0.1, min_rounds=6)
    streamed = []
    remote = rx.RayExecutor("auto").run({"source": MLP}, spec, Task(), streamed.append)
    local = LocalExecutor().run({"source": MLP}, spec, Task())
    assert remote.error is None and not remote.cancelled
    assert [t.machine for t in remote.types] == [HEAD]
    assert len(remote.types[0].nodes) == 1
    assert sorted(p.key()[1:] for p in streamed) == [p.key()[1:] for p in remote.points]
    for r, l in zip(remote.points, local.points):
        assert r.ok and r.attempts == 1 and r.node
        assert _keys(r.to_json()) == _keys(l.to_json())
        for p in (r, l):
            assert math.isfinite(p.speedup) and p.speedup > 0 and p.before.median_ms > 0
        # Two processes on a shared machine: the same order of magnitude, not the same number.
        assert 0.2 < r.before.median_ms / l.before.median_ms < 5
    data = remote.to_json()
    json.dumps(data, allow_nan=False)
    assert SweepResult.from_json(data).to_json() == data
    assert _keys(data)["types"] and data["executor"] == "ray (auto)"


def listening(port: int) -> list[str]:
    """The local addresses a TCP socket listens on at `port` (from /proc/net/tcp)."""
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            ip_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            if set(ip_hex) == {"0"}:
                found.append("0.0.0.0" if table == "tcp" else "::")
            elif table == "tcp" or ip_hex.startswith("0000000000000000FFFF0000"):
                v4 = ip_hex[-8:]  # an IPv4 address (IPv4-mapped in tcp6), little-endian hex
                found.append(".".join(str(int(v4[i:i + 2], 16)) for i in (6, 4, 2, 0)))
            else:
                found.append(ip_hex)
    return found


def test_ray_client_address_runs_the_sweep_end_to_end(ray_cluster):
    """`--cluster ray://HOST:PORT` from another process (this one is already a driver):
    the Ray Client connects to the head's client server and measures there."""
    import subprocess
    import sys
    port = ray_cluster.client_port
    # Ray 2.60's client server listens on 127.0.0.1 and the node's address (loopback here).
    where = listening(port)
    assert where and all(a.startswith("127.") for a in where), where
    for _attempt in range(2):
        out = subprocess.run(
            [sys.executable, "-m", "quantgui.cli", "sweep", MLP, "--recipe", "dynamic_int8",
             "--batch", "1", "--threads", "1", "--time-budget", "0.05", "--json", "-",
             "--cluster", f"ray://{rx.loopback_address()}:{port}"],
            capture_output=True, text=True, timeout=240)
        # Ray starts one server process per client connection on a port from 23000 up,
        # shared with every other Ray on the machine: when that start fails, Ray says so
        # (one line here, exit 2) and a second connection gets another port.
        if "Starting Ray client server failed" not in out.stderr:
            break
    assert out.returncode == 0, out.stderr[-2000:]
    result = SweepResult.from_json(json.loads(out.stdout))
    assert result.executor == f"ray (ray://{rx.loopback_address()}:{port})"
    # One point per machine type (the head's, and "alpha" when the typed nodes joined before).
    assert HEAD in [t.machine for t in result.types]
    assert sorted(p.machine for p in result.points) == sorted(t.machine for t in result.types)
    assert all(p.ok and p.batch == 1 for p in result.points)
    lines = out.stderr.strip().splitlines()
    # Progress lines only: the Ray Client server's "SIGTERM handler is not set because current
    # thread is not the main thread.", which Ray streams back to the client, is filtered out.
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == len(result.points), out.stderr
    assert lines == progress, out.stderr
    assert "SIGTERM" not in out.stderr
    assert "client_builder" not in out.stderr
    print(f"Ray Client server listens on {where} port {port}")


def test_every_machine_type_gets_its_table_and_one_recommendation(typed_nodes):
    spec = SweepSpec([INT8], [1, 8], [1], **SMALL)
    result = rx.RayExecutor("auto").run({"source": MLP}, spec, Task())
    types = {t.machine: t for t in result.types}
    assert set(types) == {"alpha", HEAD}
    assert len(types["alpha"].nodes) == 2 and len(types[HEAD].nodes) == 1
    assert types[HEAD].environment["cores"] >= 1 and "torch" in types[HEAD].environment
    for name, summary in types.items():
        points = [p for p in result.points if p.machine == name]
        assert sorted(p.batch for p in points) == [1, 8] and all(p.ok for p in points)
        assert summary.recommended in (None, "dynamic_int8") and summary.reason
        assert [c.machine for c in result.crossovers].count(name) == 1
    alpha_nodes = {n[:12] for n in types["alpha"].nodes}
    assert {p.node for p in result.points if p.machine == "alpha"} <= alpha_nodes


def _dying(machine, markers, died):
    """The point task, but on `machine` at batch 8 the first attempt that finds a marker file
    removes it and kills its own worker process (as an OOM kill or a segfault would), writing
    which node it was on."""
    def task(ref, names, point, on, node, *blobs):
        import os
        if on == machine and point["batch"] == 8:
            for marker in markers:
                try:
                    os.remove(marker)
                except FileNotFoundError:
                    continue
                Path(died).write_text(node)
                os._exit(1)
        from quantgui.core.cluster.worker import measure_point
        return measure_point(ref, names, point, on, node, *blobs)
    return ray.remote(max_retries=0)(task)


def test_a_killed_worker_is_retried_once_on_another_node_of_its_type(typed_nodes, tmp_path):
    marker, died = tmp_path / "marker", tmp_path / "died"
    marker.write_text("")
    spec = SweepSpec([INT8], [1, 8], [1], **SMALL)
    executor = rx.RayExecutor("auto", remote=_dying("alpha", [str(marker)], str(died)))
    result = executor.run({"source": MLP}, spec, Task())
    assert not marker.exists() and died.read_text()  # it did die
    retried = [p for p in result.points if p.machine == "alpha" and p.batch == 8]
    assert len(retried) == 1 and retried[0].ok and retried[0].attempts == 2
    assert retried[0].node != died.read_text()  # the other alpha node measured it
    assert all(p.ok for p in result.points) and len(result.points) == 4


def test_a_worker_dying_twice_fails_its_point_with_the_reason(typed_nodes, tmp_path):
    markers = [tmp_path / "marker-1", tmp_path / "marker-2"]
    for m in markers:
        m.write_text("")
    spec = SweepSpec([INT8], [1, 8], [1], **SMALL)
    # The head is the only node of its type: the retry runs there again, and dies again.
    executor = rx.RayExecutor("auto", remote=_dying(HEAD, [str(m) for m in markers],
                                                    str(tmp_path / "died")))
    result = executor.run({"source": MLP}, spec, Task())
    failed = result.failed
    assert [(p.machine, p.batch) for p in failed] == [(HEAD, 8)]
    assert failed[0].attempts == 2 and failed[0].error.startswith("worker died twice: ")
    assert failed[0].error.count("on node") == 2, failed[0].error
    assert len(result.points) == 4  # every other point was kept
    head = next(t for t in result.types if t.machine == HEAD)
    assert head.reason  # a recommendation (or why none) from the point it has


def test_cancel_stops_every_task_and_keeps_the_points(typed_nodes):
    token = CancelToken()
    # 0.5 s a point: the other node's point is still being timed when the first one lands.
    spec = SweepSpec([INT8], [1, 2, 4, 8, 16], [1], time_budget_s=0.5, min_rounds=4)
    result = rx.RayExecutor("auto").run({"source": MLP}, spec, Task(None, token),
                                        lambda point: token.cancel())
    assert result.cancelled and 1 <= len(result.points) < 15
    # Every node's timing slot is free again: the running tasks were cancelled, not awaited.
    probe = ray.remote(num_cpus=0, resources={rx.TIMING_RESOURCE: 1})(lambda: 1)
    refs = [probe.options(scheduling_strategy=rx.NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote() for n in ray.nodes() if n["Alive"]]
    assert ray.get(refs, timeout=60) == [1] * len(refs)


def test_a_node_going_away_mid_sweep_leaves_the_others_to_finish(ray_cluster, typed_nodes):
    gone = typed_nodes[1]
    spec = SweepSpec([INT8], [1, 2, 4, 8], [1], **SMALL)
    removed = []

    def on_point(point):
        if point.machine == "alpha" and not removed:
            ray_cluster.remove_node(gone)  # its running point, if any, goes to the other
            removed.append(point)
    result = rx.RayExecutor("auto").run({"source": MLP}, spec, Task(), on_point)
    assert removed and result.error is None and not result.cancelled
    assert len(result.points) == 8 and all(p.ok for p in result.points), result.failed
    alpha = next(t for t in result.types if t.machine == "alpha")
    assert len(alpha.nodes) == 1  # the one left
    for p in result.points:
        assert p.attempts == 1 or p.node == alpha.nodes[0][:12]


@pytest.mark.perf
def test_cancel_returns_within_two_seconds(typed_nodes):
    import time
    token = CancelToken()
    cancelled_at = []

    def on_point(point):
        token.cancel()
        cancelled_at.append(time.monotonic())
    spec = SweepSpec([INT8], [1, 2, 4, 8, 16], [1], time_budget_s=3.0, min_rounds=4)
    result = rx.RayExecutor("auto").run({"source": MLP}, spec, Task(None, token), on_point)
    assert result.cancelled and time.monotonic() - cancelled_at[0] < 2.0


def test_rays_thread_notice_is_dropped_and_its_other_records_pass():
    """The filter connect() puts on the loggers that carry Ray's "SIGTERM handler is not set"
    notice (ray.init off the main thread, here or in the Ray Client server) drops that record
    only."""
    import logging
    rx.quiet_ray_notices()
    rx.quiet_ray_notices()  # once per logger, however often Ray is connected
    for name in rx.RAY_NOISY_LOGGERS:
        logger = logging.getLogger(name)
        assert sum(isinstance(f, rx._DropRayNoise) for f in logger.filters) == 1

        def passes(msg):
            return bool(logger.filter(logger.makeRecord(name, logging.WARNING, __file__, 1,
                                                        msg, (), None)))
        assert not passes("SIGTERM handler is not set because current thread is not the "
                          "main thread.")
        assert passes("Log channel is reconnecting.") and passes("SIGTERM received")


def test_a_cluster_address_where_nothing_listens_is_one_line_at_once():
    from quantgui.core.errors import UserError
    with pytest.raises(UserError, match=r"--cluster auto: nothing answers at 127\.0\.0\.2:1 "):
        rx.reachable("127.0.0.2:1", "auto")
    with pytest.raises(UserError, match="expected HOST:PORT"):
        rx.reachable("ray://nohost", "ray://nohost")


def test_connect_to_another_address_is_not_answered_by_the_old_connection(tmp_path):
    """A process that joined one cluster and is asked for another (the engine outlives a sweep)
    does not silently keep the first: it tries the new one, and where nothing answers there it
    says so and keeps the first. Asked for the same one again, it keeps it. A subprocess: this
    one is already a driver of the suite's cluster."""
    import subprocess
    import sys
    code = (
        "import ray\n"
        "from quantgui.core.cluster import ray_executor as rx\n"
        "from quantgui.core.errors import UserError\n"
        "rx.connect('auto')\n"
        "first = ray.get_runtime_context().get_node_id()\n"
        "try:\n"
        "    rx.connect('127.0.0.2:1')\n"
        "    print('kept silently')\n"
        "except UserError as exc:\n"
        "    print('refused:', exc)\n"
        "assert ray.is_initialized() and ray.get_runtime_context().get_node_id() == first\n"
        "rx.connect('auto')\n"
        "assert ray.get_runtime_context().get_node_id() == first\n"
        "print('same kept')\n"
        "ray.shutdown()\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused: --cluster 127.0.0.2:1: nothing answers at 127.0.0.2:1" in proc.stdout
    assert "same kept" in proc.stdout and "kept silently" not in proc.stdout
