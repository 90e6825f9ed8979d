"""recommend's fixes from third-party models: candidates from `applies_to` on TorchScript, a cap
on slow candidates' timing, "keep the original" as a structured answer, the budget."""

import json

import torch
from torch import nn

from quantgui.core import recommend as rec_mod
from quantgui.core.budget import QualityBudget
from quantgui.core.errors import TooSlow
from quantgui.core.measure.latency import time_interleaved
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.loaded import LoadedModel
from quantgui.core.model.variant import Variant
from quantgui.core.recipe import Recipe
from quantgui.core.results import Recommendation
from quantgui.core.run import RunOptions
from quantgui.core.techniques import _engines

FAST = RunOptions(time_budget_s=0.2, min_rounds=4, warmup=1)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


class Loop(nn.Module):
    """Many tiny Linear calls in a Python loop: per-call overhead is everything."""

    def __init__(self, repeats=30):
        super().__init__()
        self.lin = nn.Linear(8, 8)
        self.repeats = repeats

    def forward(self, x):
        for _ in range(self.repeats):
            x = torch.tanh(self.lin(x))
        return x


def test_torchscript_cnn_gets_freeze_from_applies_to(tmp_path):
    from quantgui.core.opening.loading import open_model
    path = tmp_path / "cnn.pt"
    torch.jit.script(SmallCNN().eval()).save(str(path))
    loaded = open_model(str(path), input_shape=(2, 3, 16, 16))
    assert loaded.info.applicability["freeze"] is None  # what `inspect` says
    assert rec_mod.model_traits(loaded.module).conv == 1  # by the scripted class's name
    names = [r.describe() for r in rec_mod.candidate_recipes(loaded)]
    assert "freeze + inference_mode" in names
    for recipe in rec_mod.candidate_recipes(loaded):
        recipe.validate()


def test_a_candidate_3x_slower_after_its_first_calls_is_dropped():
    torch.manual_seed(0)
    loaded = LoadedModel(Loop().eval(), None, Inputs.of(torch.randn(4, 8)), None, None)
    # torchao's INT8 tensor subclass dispatches every op in Python: on 8x8 layers it costs
    # tens of times the FP32 call (a real slow path, not a sleep)
    slow = Recipe.of(("dynamic_int8", {"api": "torchao"}))
    rec = rec_mod.recommend(loaded, options=FAST, candidates=[slow])
    trial = rec.trials[0]
    assert trial.result is None and trial.error is None
    assert trial.dropped.startswith("3x slower after 2 calls (")
    assert trial.verdict == "dropped" and not trial.meets_bound
    assert rec.decision == "keep_original"
    assert rec.message.startswith("keep the original: nothing tried is faster within the bound")
    assert "1 dropped as too slow" in rec.message
    again = Recommendation.from_json(json.loads(json.dumps(rec.to_json())))
    assert again.trials[0].dropped == trial.dropped and again.to_json() == rec.to_json()


def test_interleaved_timer_and_engine_search_stop_slow_variants():
    x = Inputs.of(torch.randn(4, 8))
    fast, slow = Variant(Loop(1).eval()), Variant(Loop(200).eval())
    try:
        time_interleaved(fast, slow, x, budget_s=0.2, warmup=1, slow_cap=3.0)
    except TooSlow as exc:
        assert exc.calls == 2 and exc.ratio >= 3
    else:
        raise AssertionError("a 200x slower variant was timed to the end")
    dropped = {}
    timings = _engines.time_variants({"fast": fast, "slow": slow}, x, budget_s=0.1,
                                     dropped=dropped)
    assert list(dropped) == ["slow"] and dropped["slow"].startswith("3x slower after 1 call")
    assert set(timings) == {"fast", "slow"} and timings["slow"] > timings["fast"]


def test_recommend_judges_by_the_budget():
    torch.manual_seed(0)
    loaded = LoadedModel(Loop(2).eval(), None, Inputs.of(torch.randn(16, 8)), None, None)
    rec = rec_mod.recommend(loaded, options=FAST, candidates=[Recipe.of("bf16")],
                            budget=QualityBudget(min_cosine=0.9999999, min_sqnr=80))
    assert rec.bound["budget"] == {"min_cosine": 0.9999999, "min_sqnr": 80}
    trial = rec.trials[0]
    assert trial.budget_status == "fails" and not trial.meets_bound and rec.best is None
    assert "fails the budget" in trial.quality_note
    assert "fails" in rec.table().splitlines()[-1]
