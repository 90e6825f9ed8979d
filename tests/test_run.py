"""The runner: a private copy is optimized, the original is never touched, progress and
cancellation behave, and the result serializes to strict JSON."""

from dataclasses import dataclass
import json

import pytest
import torch
from torch import nn

from quantgui.core.errors import Cancelled, UserError
from quantgui.core.params import param
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe, Step
from quantgui.core.run import RunOptions, StepError, batched_example, optimize, run_recipe
from quantgui.core.techniques import Technique, all_techniques

FAST = dict(time_budget_s=0.3, min_rounds=10)


def load(name="digits-mlp"):
    try:
        from quantgui.core.opening.loading import open_model
    except ImportError:  # TEMPORARY until loading.py lands
        from quantgui.core import examples
        from quantgui.core.model.loaded import LoadedModel, ModelInfo
        model, train, test = examples.build(name)
        info = ModelInfo(f"example:{name}", "example", type(model).__name__, 0, 0, {}, "")
        return LoadedModel(model, info, test.inputs.slice(0, 8), test, train)
    return open_model(f"example:{name}")


@dataclass
class ScaleParams:
    factor: float = param(0.5, "Multiply every weight by this.", min=0.0, max=2.0)


class Scale(Technique):
    """A test technique that modifies its variant's weights in place, as real steps may."""
    name = "test_scale"
    title = "Scale weights"
    summary = "test only"
    Params = ScaleParams
    stage = 30

    def apply(self, variant, params, ctx):
        with torch.no_grad():
            for p in variant.module.parameters():
                p.mul_(params.factor)
        ctx.note(f"scaled by {params.factor}")
        ctx.metrics["factor"] = params.factor
        return variant


class Broken(Scale):
    name = "test_broken"

    def apply(self, variant, params, ctx):
        raise ValueError("kernel exploded")


class NotHere(Scale):
    name = "test_not_here"

    def applies_to(self, model):
        return "this model has no widgets"


@pytest.fixture
def test_techniques(monkeypatch):
    registry = all_techniques()
    for tech in (Scale(), Broken(), NotHere()):
        monkeypatch.setitem(registry, tech.name, tech)


@pytest.fixture(scope="module")
def mlp():
    return load("digits-mlp")


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_empty_recipe_result_and_json(mlp):
    events = []
    result = run_recipe(mlp, Recipe(), RunOptions(batch_size=32, **FAST), Task(events.append))
    data = result.to_json()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN/Infinity anywhere
    assert json.loads(text) == data
    for side in ("before", "after"):
        assert set(data[side]) >= {"size_bytes", "memory_bytes", "latency_ms", "accuracy"}
        assert set(data[side]["latency_ms"]) >= {"median", "p10", "p90", "mean", "samples"}
        assert data[side]["accuracy"] == pytest.approx(0.969, abs=0.02)
    assert set(data) >= {"speedup", "size_ratio", "fidelity", "verdict", "steps", "environment",
                         "batch_size", "threads", "noisy", "recipe"}
    assert set(data["speedup"]) >= {"median", "ci95"}
    assert set(data["fidelity"]) >= {"top1_agreement", "cosine", "max_abs_error", "sqnr_db"}
    assert data["fidelity"]["top1_agreement"] == 1.0 and data["fidelity"]["max_abs_error"] == 0
    assert data["fidelity"]["sqnr_db"] is None  # identical outputs: infinite SQNR
    assert data["size_ratio"] == 1.0 and data["batch_size"] == 32
    assert data["verdict"]["label"] != "faster"
    assert "no steps" in data["verdict"]["reasons"][0]
    assert data["environment"]["torch"] == torch.__version__
    assert result.variant is not None and "variant" not in data
    phases = [e.phase for e in events]
    assert {"apply", "size", "time", "evaluate"} <= set(phases)
    assert phases.index("size") < phases.index("time") < phases.index("evaluate")
    size = next(e for e in events if e.phase == "size")
    assert size.values == {"before_bytes": data["before"]["size_bytes"],
                           "after_bytes": data["after"]["size_bytes"]}
    evals = [e for e in events if e.phase == "evaluate"]
    assert len(evals) == 2 * -(-360 // 32)  # before + after per batch of the test split
    assert evals[-1].values["which"] == "after" and evals[-1].values["agreement"] == 1.0


def test_original_is_never_modified(mlp, test_techniques):
    before = snapshot(mlp.module)
    ids = [id(p) for p in mlp.module.parameters()]
    events = []
    recipe = Recipe([Step("test_scale", {"factor": "0.25"})])
    result = run_recipe(mlp, recipe, RunOptions(batch_size=16, threads=1, eval_limit=3, **FAST),
                        Task(events.append))
    assert same(snapshot(mlp.module), before)
    assert [id(p) for p in mlp.module.parameters()] == ids
    assert not mlp.module.training
    changed = result.variant.module.state_dict()
    assert torch.allclose(changed["net.1.weight"], before["net.1.weight"] * 0.25)
    step = result.steps[0]
    assert (step.name, step.params, step.notes, step.metrics) == (
        "test_scale", {"factor": 0.25}, ["scaled by 0.25"], {"factor": 0.25})
    assert result.fidelity.max_abs_error > 0 and result.fidelity.sqnr_db < 20
    assert result.threads == 1 and result.to_json()["steps"][0]["notes"] == ["scaled by 0.25"]
    applies = [e for e in events if e.phase == "apply" and "step" in e.values]
    assert applies[0].values == {"step": "test_scale"} and applies[0].total == 1


def test_real_dynamic_int8_leaves_original_alone(mlp):
    before = snapshot(mlp.module)
    recipe = Recipe([Step("dynamic_int8", {"api": "torch.ao", "engine": "x86"})])
    result = run_recipe(mlp, recipe, RunOptions(batch_size=64, eval_limit=2, **FAST))
    assert same(snapshot(mlp.module), before)
    assert type(mlp.module.net[1]) is nn.Linear
    assert 0.2 < result.size_ratio < 0.3
    assert result.fidelity.cosine > 0.99 and result.fidelity.top1_agreement > 0.95
    assert result.steps[0].notes  # the step says which engine/API ran
    print(f"dynamic_int8 batch 64: {result.timing.speedup:.2f}x CI {result.timing.ci95}, "
          f"{result.verdict.label}")


def test_cancel_during_timing_raises_and_restores_threads(mlp):
    token = CancelToken()
    times = []

    def on_progress(p):
        if p.phase == "time":
            times.append(p)
            if len(times) == 5:
                token.cancel()
    previous = torch.get_num_threads()
    threads = 1 if previous != 1 else 2
    with pytest.raises(Cancelled):
        run_recipe(mlp, Recipe(), RunOptions(batch_size=8, threads=threads, **FAST),
                   Task(on_progress, token))
    assert len(times) == 5  # stopped at the very next sample
    assert torch.get_num_threads() == previous


def test_failing_step_is_named_and_chained(mlp, test_techniques):
    with pytest.raises(StepError, match=r"step 2 \(test_broken\) failed: ValueError: kernel "
                                        r"exploded") as info:
        optimize(mlp, Recipe.of("test_scale", "test_broken"), RunOptions(batch_size=4))
    assert isinstance(info.value.__cause__, ValueError) and info.value.step == "test_broken"


def test_inapplicable_and_invalid_steps_are_user_errors(mlp, test_techniques):
    with pytest.raises(UserError, match=r"step 1 \(test_not_here\): does not apply to this "
                                        r"model: this model has no widgets"):
        optimize(mlp, Recipe.of("test_not_here"))
    with pytest.raises(UserError, match="above its maximum"):
        optimize(mlp, Recipe([Step("test_scale", {"factor": 5})]))
    with pytest.raises(UserError, match=r"step 2 \(prune\): must come before"):
        optimize(mlp, Recipe.of("dynamic_int8", "prune"))
    with pytest.raises(UserError, match="unknown technique 'nope'"):
        optimize(mlp, Recipe.of("nope"))


def test_example_is_rebatched(mlp):
    assert batched_example(mlp, None) is mlp.example
    for bs in (1, 5, 100):
        ex = batched_example(mlp, bs)
        assert ex.batch_size == bs
    big = batched_example(mlp, 400)  # more than the 360 test digits: repeated
    assert big.batch_size == 400
    # more than the test split holds: the example's rows repeat in order
    ex, n = mlp.example.args[0], mlp.example.batch_size
    assert torch.equal(big.args[0], ex.repeat(-(-400 // n), 1)[:400])
    assert torch.equal(batched_example(mlp, 100).args[0][:n], ex[:min(n, 100)]) or n > 100
    with pytest.raises(UserError):
        batched_example(mlp, 0)


def test_foreign_labels_fail_before_any_step_runs(mlp, test_techniques):
    from dataclasses import replace

    from quantgui.core.model.data import Dataset
    bad = Dataset(mlp.test.inputs.slice(0, 20), torch.full((20,), 11), "foreign.npz")
    with pytest.raises(UserError, match="foreign.npz: label 11 is out of range for a model "
                                        "with 10 outputs"):
        run_recipe(replace(mlp, test=bad), Recipe.of("test_broken"), RunOptions(**FAST))
