"""Sweeps on this machine: the local executor's points, their JSON, crossovers and the
per-type recommendation, the per-layer profile, and `quantgui-cli sweep`."""

import csv
import io
import json
import math

import pytest

from quantgui import cli
from quantgui.core.cluster import LocalExecutor, executor_for
from quantgui.core.errors import UserError
from quantgui.core.export.sweep_report import sweep_text
from quantgui.core.measure.latency import bootstrap_ratio_ci
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe, Step
from quantgui.core.results import LatencyStats
from quantgui.core.results.profile import LayerProfile
from quantgui.core.results.sweep import SweepPoint, SweepResult
from quantgui.core.sweep import SweepSpec, crossovers, format_sweep, recommend_per_type

MLP = "example:digits-mlp"
INT8 = Recipe([Step("dynamic_int8", {})])


@pytest.fixture(scope="module")
def local_sweep():
    spec = SweepSpec([INT8], [1, 16], [1], time_budget_s=0.05, min_rounds=2)
    streamed = []
    result = LocalExecutor().run({"source": MLP}, spec, Task(), streamed.append)
    return spec, result, streamed


def test_local_sweep_measures_every_point_with_the_interleaved_timer(local_sweep):
    spec, result, streamed = local_sweep
    assert [(p.recipe, p.batch, p.threads) for p in result.points] == [
        ("dynamic_int8", 1, 1), ("dynamic_int8", 16, 1)]
    assert streamed == result.points  # each point was streamed as it was measured
    for p in result.points:
        assert p.ok and p.machine == "local" and p.rounds >= 2
        assert p.before.median_ms > 0 and p.after.median_ms > 0
        assert p.speedup == pytest.approx(p.before.median_ms / p.after.median_ms)
        assert p.ci95[0] <= p.speedup <= p.ci95[1]
        assert p.throughput("after") == pytest.approx(p.batch * 1000 / p.after.median_ms)
        assert p.load is None or p.load >= 0
    assert [t.machine for t in result.types] == ["local"]
    assert result.types[0].environment["cores"] >= 1
    assert result.types[0].environment["cpu_capabilities"] is not None
    assert len(result.crossovers) == 1 and result.crossovers[0].threads == 1
    assert not result.cancelled and result.executor == "local"


def test_sweep_json_round_trips_and_is_strict(local_sweep):
    _, result, _ = local_sweep
    data = result.to_json()
    json.dumps(data, allow_nan=False)
    assert data["schema"] == 1 and data["kind"] == "sweep"
    assert SweepResult.from_json(data).to_json() == data
    rows = list(csv.reader(io.StringIO(sweep_text(result, "csv"))))
    assert tuple(rows[0]) == SweepResult.CSV_COLUMNS and len(rows) == 3
    with pytest.raises(UserError, match="newer QuantGUI"):
        SweepResult.from_json({**data, "schema": 9})


def _point(recipe, batch, before, after, machine="local"):
    """A point built the way the timer builds one, from per-sample milliseconds."""
    b, a = LatencyStats.of(before, 1), LatencyStats.of(after, 1)
    return SweepPoint(recipe, batch, 1, machine, b, a, b.median_ms / a.median_ms,
                      bootstrap_ratio_ci(before, after), len(before))


def test_crossover_is_the_batch_from_which_the_recipe_pays():
    slow = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0]
    same = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0]
    fast = [0.5, 0.51, 0.49, 0.5, 0.52, 0.5]
    points = [_point("int8", 1, slow, same), _point("int8", 8, slow, fast),
              _point("int8", 32, slow, fast), _point("bf16", 1, slow, fast),
              _point("bf16", 8, slow, fast), _point("fp16", 1, fast, slow),
              _point("fp16", 8, slow, fast), _point("fp16", 32, fast, slow)]
    found = {c.recipe: c for c in crossovers(points)}
    assert (found["int8"].batch, found["int8"].smallest) == (8, False)
    assert found["int8"].text == "int8 pays from batch 8 at 1 thread(s)"
    assert (found["bf16"].batch, found["bf16"].smallest) == (1, True)
    assert found["fp16"].batch is None  # faster at 8 only: not from any batch on
    assert found["fp16"].text == "fp16 does not pay at 1 thread(s)"
    recommended, why = recommend_per_type(points, "local")
    assert recommended == "bf16" and "2.00x" in why
    assert recommend_per_type(points, "other") == (None, recommend_per_type([], "x")[1])


def test_a_recipe_that_does_not_apply_fails_its_points_and_the_sweep_goes_on():
    bad = Recipe([Step("transformer_fastpath", {})])  # the MLP has no transformer layers
    spec = SweepSpec([bad, INT8], [2], [1], time_budget_s=0.05, min_rounds=2)
    result = LocalExecutor().run({"source": MLP}, spec, Task())
    assert [p.ok for p in result.points] == [False, True]
    assert "transformer" in result.points[0].error
    assert "failed:" in format_sweep(result)


def test_cancel_keeps_the_points_measured():
    token = CancelToken()
    spec = SweepSpec([INT8], [1, 2, 4, 8], [1], time_budget_s=0.05, min_rounds=2)
    result = LocalExecutor().run({"source": MLP}, spec, Task(None, token),
                                 lambda point: token.cancel())
    assert result.cancelled and len(result.points) == 1 and result.points[0].ok


@pytest.mark.parametrize("values, message", [
    ({"batches": []}, "at least one batch"), ({"batches": [0]}, "from 1, got 0"),
    ({"threads": [True]}, "from 1"), ({"batches": [10**6]}, "batch sizes go up to")])
def test_spec_refuses_bad_values(values, message):
    kwargs = {"recipes": [INT8], "batches": [1], "threads": [1], **values}
    with pytest.raises(UserError, match=message):
        SweepSpec(**kwargs)


def test_unknown_cluster_is_one_line():
    with pytest.raises(UserError, match="expected local, auto, HOST:PORT or ray://HOST:PORT"):
        executor_for("tcp://x")


def test_a_cluster_without_the_ray_extra_names_what_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    monkeypatch.delitem(sys.modules, "quantgui.core.cluster.ray_executor", raising=False)
    for cluster in ("auto", "127.0.0.2:6379", "ray://127.0.0.2:10001"):
        with pytest.raises(UserError) as err:
            executor_for(cluster)
        assert str(err.value).startswith(f"--cluster {cluster}: Ray is not installed")
        assert str(err.value).endswith('install it with pip install "quantgui[ray]"')
        assert "\n" not in str(err.value)


def test_profile_per_layer_lines_up_before_and_after(capsys):
    code = cli.main(["sweep", MLP, "--recipe", "inference_mode", "--batch", "4", "--threads",
                     "1", "--time-budget", "0.05", "--profile", "--json", "-"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    profile = LayerProfile.from_json(data["profile"])
    assert profile.to_json() == data["profile"]
    names = [x.name for x in profile.layers]
    assert "net.1" in names and names[-1] == ""  # the MLP's first Linear; time outside layers
    linear = next(x for x in profile.layers if x.name == "net.1")
    assert linear.kind_before == linear.kind_after == "Linear"
    assert linear.before_ms > 0 and linear.after_ms > 0
    assert profile.total_before_ms >= sum(x.before_ms for x in profile.layers[:-1])
    assert [p["recipe"] for p in data["points"]] == ["inference_mode"]
    assert "[1/1] inference_mode, batch 4" in err
    # The GUI's chart: the top layers and "other", adding up to the totals.
    bars = profile.bars(top=2)
    assert len(bars) == 3 and bars[-1][0] == "other"
    assert bars[0][1] >= bars[1][1] or bars[0][2] >= bars[1][2]
    assert sum(b for _, b, _ in bars) == pytest.approx(
        sum(x.before_ms for x in profile.layers))
    assert sum(a for _, _, a in bars) == pytest.approx(sum(x.after_ms for x in profile.layers))
    assert len(profile.bars(top=100)) == len(profile.layers)


def test_cli_sweep_table_and_csv(capsys, tmp_path):
    out_csv = tmp_path / "sweep.csv"
    code = cli.main(["sweep", MLP, "--recipe", "dynamic_int8", "--batch", "2,1",
                     "--threads", "1", "--time-budget", "0.05", "--csv", str(out_csv)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "machine type: local" in out and "crossover: dynamic_int8" in out
    assert "recommended:" in out and f"wrote {out_csv}" in out
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["batch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["speedup"])) for r in rows)


@pytest.mark.parametrize("argv, fragment", [
    (["--recipe", "dynamic_int8", "--batch", "1,x"], "--batch: expected whole numbers"),
    (["--recipe", "nope"], "--recipe nope: "),
    ([], "give at least one --recipe"),
    (["--recipe", "dynamic_int8", "--cluster", "tcp://h"], "--cluster: expected local"),
    (["--recipe", "dynamic_int8", "--json", "-", "--csv", "-"], "both want stdout"),
])
def test_cli_sweep_bad_input_is_one_line_exit_2(capsys, argv, fragment):
    code = cli.main(["sweep", MLP, *argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("quantgui-cli: error: "), err
    assert fragment in lines[0], err


def test_a_model_file_travels_as_bytes_and_the_node_opens_it_safely(tmp_path, monkeypatch):
    """What a cluster node does for one point, without Ray: the file's bytes written to a
    private folder, opened by the same loaders (TorchScript here), measured."""
    import tempfile

    import torch
    node_tmp = tmp_path / "node"
    node_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(node_tmp))  # the node's folder lands here

    from quantgui.core.cluster.worker import measure_point, pack
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    path = tmp_path / "net.pt"
    torch.jit.script(net.eval()).save(str(path))
    ref, names, blobs = pack({"source": str(path), "input_shape": [2, 16], "trust": False})
    assert ref["source"] == "net.pt" and names == ["source"]
    assert blobs == [path.read_bytes()]
    point = {"recipe": {"steps": []}, "batch": 2, "threads": 1, "time_budget_s": 0.05,
             "min_rounds": 2}
    data = measure_point(ref, names, point, "typeA", "node1", *blobs)
    got = SweepPoint.from_json(data)
    assert got.ok and (got.machine, got.node, got.batch) == ("typeA", "node1", 2)
    written = list(node_tmp.glob("quantgui-node-*/net.pt"))
    assert len(written) == 1 and written[0].read_bytes() == path.read_bytes()
    with pytest.raises(UserError, match="no such model file"):
        pack({"source": str(tmp_path / "missing.pt")})
    bad = measure_point(ref, names, point, "typeA", "node1", b"not a model")
    assert SweepPoint.from_json(bad).error  # a damaged file is the point's one-line error
