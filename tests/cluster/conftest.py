"""One Ray for the whole session (it takes seconds to start): a `ray.cluster_utils.Cluster`
whose head node is what `start_local` starts (loopback, no dashboard, no usage statistics, its
own temporary folder), with 2 CPUs and the Ray Client server on a free port. `typed_nodes` adds worker nodes labelled as two CPU types.
At the end every Ray process started under that folder must be gone."""

import os
from pathlib import Path
import shutil
import tempfile

import pytest

ray = pytest.importorskip("ray")  # the test extra installs it; see tests/test_packaging.py

from quantgui.core.cluster import ray_executor as rx  # noqa: E402


def ray_processes(marker: str) -> list[str]:
    """Running raylet / gcs_server / Ray worker processes whose command line names `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if marker in cmd and any(k in cmd for k in ("raylet", "gcs_server", "ray::",
                                                     "default_worker", "ray/_private")):
            found.append(f"{proc.name}: {cmd[:120]}")
    return found


def free_port(host: str) -> int:
    import socket
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster():
    from ray.cluster_utils import Cluster
    temp = tempfile.mkdtemp(prefix="qgray-")
    saved = {k: os.environ.get(k) for k in ("RAY_USAGE_STATS_ENABLED", "RAY_TMPDIR",
                                            "RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    rx.private_environment(temp)  # usage stats off, address file and token kept to us
    client_port = free_port(rx.loopback_address())
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "resources": {rx.TIMING_RESOURCE: 1}, "include_dashboard": False,
        "node_ip_address": rx.loopback_address(), "temp_dir": temp,
        "ray_client_server_port": client_port})  # the Ray Client's door (ray://)
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False,
             namespace="quantgui-tests")
    cluster.temp = temp
    cluster.client_port = client_port
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    left = ray_processes(temp)
    shutil.rmtree(temp, ignore_errors=True)
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    assert not left, f"Ray processes left after the suite: {left}"


@pytest.fixture(scope="session")
def typed_nodes(ray_cluster):
    """Two more nodes of a type named by a resource, "alpha" (a second node of the head's type
    would be "probed" as the same hardware, so the type is named instead): two types in all,
    and alpha has two nodes, so a retry has another node to go to."""
    nodes = [ray_cluster.add_node(
        num_cpus=1, resources={rx.TYPE_PREFIX + "alpha": 1, rx.TIMING_RESOURCE: 1},
        node_ip_address=rx.loopback_address(), temp_dir=ray_cluster.temp) for _ in range(2)]
    ray_cluster.wait_for_nodes()
    return nodes
