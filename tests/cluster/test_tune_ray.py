"""The auto-tune on every machine type of the shared Ray cluster (conftest's): every trial
measured in a worker on the type's node, a trial log per type that resumes without measuring a
trial twice, and a node dying mid-tune leaving its type one line while the others finish.

Runs after test_ray.py in the whole suite (the "alpha" nodes have joined by then, one left),
alone with the head only: every assertion holds per type, whichever types there are."""

import json
import os

from quantgui.core.cluster import tuner_for
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe, Step
from quantgui.core.results.cluster_tune import ClusterTuneResult

from .conftest import ray, rx

MLP = "example:digits-mlp"
INT8 = Recipe([Step("dynamic_int8", {})])
MODE = Recipe([Step("inference_mode", {})])
#: Two candidates, no steps on top, a budget every candidate meets (no fallback search):
#: two short trials per type.
REQUEST = {"candidates": [INT8.to_json(), MODE.to_json()], "steps": [],
           "budget": {"max_accuracy_drop": 50.0},
           "run": {"time_budget_s": 0.05, "min_rounds": 2, "warmup": 1}}


def _tune(request=REQUEST, remote=None, **kwargs):
    streamed = []
    tuner = tuner_for("auto")
    if remote is not None:
        tuner.remote = remote
    result = tuner.run({"source": MLP}, request, kwargs.pop("task", Task()),
                       on_trial=lambda machine, t: streamed.append((machine, t)), **kwargs)
    return result, streamed


def _cli(argv, capsys):
    from quantgui.cli import main
    code = main(["tune", MLP, "--cluster", "auto", "--max-candidates", "1", "--threads", "1",
                 "--time-budget", "0.05", "--max-accuracy-drop", "50", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_each_type_is_tuned_on_its_node_and_its_log_resumes(ray_cluster, tmp_path, capsys):
    from quantgui.core.cluster.ray_tune import per_type_path
    log, out = tmp_path / "trials.jsonl", tmp_path / "all.json"
    code, stdout, stderr = _cli(["--log", str(log), "--json", str(out), "--out",
                                 str(tmp_path / "recipe.json")], capsys)
    assert code == 0, stderr
    result = ClusterTuneResult.from_json(json.loads(out.read_text()))
    assert result.error is None and not result.cancelled and result.types
    alive = {n["NodeID"][:12] for n in ray.nodes() if n["Alive"]}
    for entry in result.types:
        assert entry.error is None, entry.error
        # Measured in a Ray worker of that type's node, not in this (the driver's) process.
        assert entry.pid and entry.pid != os.getpid() and entry.node in alive
        assert entry.environment["torch"] and "cpu_capabilities" in entry.environment
        tuned = entry.result
        assert tuned.trials and tuned.measured == len(tuned.trials)
        assert all(t.trial.result is not None and t.trial.result.after for t in tuned.trials)
        assert tuned.environment["cpu"] == entry.environment["cpu"]
        lines = open(entry.log).read().splitlines()
        assert len(lines) == 1 + len(tuned.trials)
        assert json.loads(lines[0])["kind"] == "quantgui-tune-log"
        saved = per_type_path(tmp_path / "recipe.json", entry.machine)  # one recipe per type
        if tuned.recipe is None:
            assert not saved.exists()
        else:
            assert Recipe.load(saved).to_json() == tuned.recipe.to_json()
            assert f"saved {entry.machine}'s recipe to {saved}" in stdout
    assert len({e.log for e in result.types}) == len(result.types)  # one log per type
    data = result.to_json()
    assert data["driver_pid"] == os.getpid() and data["kind"] == "cluster-tune"
    assert ClusterTuneResult.from_json(data).to_json() == data

    # One block per type: its machine type, CPU flags, the tuned recipe or why none.
    blocks = stdout.split("== machine type: ")[1:]
    assert [b.splitlines()[0] for b in blocks] == [t.machine for t in result.types]
    for block, entry in zip(blocks, result.types):
        assert f"flags {entry.flags}, " in block and f"worker pid {entry.pid})" in block
        assert "accuracy drop <= 50 pt" in block
        assert ("speed: " in block) == (entry.result.best is not None), block
        assert ("keep the original" in block) == (entry.result.best is None), block
    trials = [line for line in stderr.splitlines() if ": [" in line]
    assert len(trials) == sum(len(t.result.trials) for t in result.types)
    assert f"wrote {out}\n" in stdout

    # One type's log loses its last trial (as if stopped there): the resume measures exactly
    # that trial on that type, and nothing on the others.
    cut = result.types[0]
    lines = open(cut.log).read().splitlines()
    with open(cut.log, "w") as f:
        f.write("\n".join(lines[:-1]) + "\n")
    code, stdout, stderr = _cli(["--log", str(log), "--resume", "--json", "-"], capsys)
    assert code == 0, stderr
    again = ClusterTuneResult.from_json(json.loads(stdout))
    for entry, before in zip(again.types, result.types):
        trials, kept = entry.result.trials, before.result.trials
        names = [t.trial.recipe.describe() for t in trials]
        if entry.machine != cut.machine:
            assert not any(not t.from_log for t in trials), entry.machine
            assert names == [t.trial.recipe.describe() for t in kept]
        else:
            # The logged trials are read, not measured; the cut one is measured again. Its new
            # verdict may differ on a busy machine (e.g. inconclusive, then faster), and then the
            # search may go on from it (steps added to a new best): only the start is fixed.
            n = len(kept) - 1
            assert all(t.from_log for t in trials[:n]) and not trials[n].from_log
            assert names[:n + 1] == [t.trial.recipe.describe() for t in kept]
            assert not any(t.from_log for t in trials[n:])
        assert len(open(entry.log).read().splitlines()) == 1 + len(trials)


def test_a_log_without_resume_is_refused_before_any_work(ray_cluster, tmp_path):
    from quantgui.core.cluster.ray_tune import per_type_path
    from quantgui.core.errors import UserError
    import pytest
    machine = rx.machine_type(rx.local_environment())
    path = per_type_path(tmp_path / "t.jsonl", machine)
    path.write_text("{}\n")
    with pytest.raises(UserError, match="already exists; pass --resume"):
        _tune(log_path=tmp_path / "t.jsonl")
    assert path.read_text() == "{}\n"


def _dying(machine):
    """The tune's task, but on `machine` the worker kills itself (as an OOM kill or a segfault
    would) right after its first trial went back."""
    def task(mailbox, ref, names, request, on, node, *blobs):
        import os
        from quantgui.core.cluster.ray_tune import forward
        from quantgui.core.cluster.tune_worker import tune_on_node
        for message in tune_on_node(ref, names, request, on, node, *blobs):
            forward(mailbox, on, [message])
            if on == machine and "trial" in message:
                os._exit(1)
    return ray.remote(max_retries=0)(task)


def test_a_node_dying_mid_tune_is_one_line_and_the_other_types_finish(typed_nodes):
    result, streamed = _tune(remote=_dying("alpha"))
    types = {e.machine: e for e in result.types}
    assert "alpha" in types and len(types) == 2
    dead = types.pop("alpha")
    assert dead.error.startswith("the node died mid-tune (") and "\n" not in dead.error
    assert dead.error.endswith("the 1 trial measured before is kept"), dead.error
    assert len(dead.result.trials) == 1 and dead.result.stopped == "node died"
    (other,) = types.values()
    assert other.error is None and len(other.result.trials) == 2 and not other.result.cancelled
    assert not result.cancelled and result.error is None


def test_cancel_keeps_each_types_trials_so_far(ray_cluster):
    token = CancelToken()
    hit = []

    def first(machine, t):  # cancel as soon as one type's first trial is back
        hit.append(machine)
        token.cancel()
    result = tuner_for("auto").run({"source": MLP}, REQUEST, Task(None, token),
                                   on_trial=first)
    assert result.cancelled and result.stopped == "cancelled" and hit
    got = next(e for e in result.types if e.machine == hit[0])
    assert got.result.stopped == "cancelled" and got.result.trials[0].trial.result
    assert 1 <= len(got.result.trials) < 2  # the second trial was stopped, not awaited
    assert all(e.result is None or e.result.cancelled for e in result.types)
