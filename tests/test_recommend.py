"""recommend(): tries candidates, keeps the fastest within the quality bound, anytime on cancel."""

from collections import Counter
from dataclasses import replace
import json

import pytest
import torch

from quantgui.core import recommend as rec_mod
from quantgui.core.model.loaded import LoadedModel
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe
from quantgui.core.results import Recommendation
from quantgui.core.run import RunOptions

# Tiny budgets: these tests check behaviour, not speed.
FAST = RunOptions(time_budget_s=0.3, min_rounds=4, warmup=1, eval_limit=2)


@pytest.fixture(scope="module")
def mlp(digits):
    from quantgui.core.opening.loading import open_model
    return open_model("example:digits-mlp")  # the digits fixture has trained and cached it


def test_candidates_follow_the_model_and_cpu(digits, mlp):
    names = [r.describe() for r in rec_mod.candidate_recipes(mlp, capabilities=["AVX512-BF16"])]
    assert names[0] == "bf16 + inference_mode"          # native BF16 first
    assert "dynamic_int8 + inference_mode" in names      # Linear-heavy
    no_bf16 = [r.describe() for r in rec_mod.candidate_recipes(mlp, capabilities=["AVX2"])]
    assert no_bf16[0] != "bf16 + inference_mode"
    model, train, test = digits["digits-cnn"]
    cnn = LoadedModel(model, None, test.inputs.slice(0, 64), test, train)
    cnn_names = [r.describe() for r in rec_mod.candidate_recipes(cnn, capabilities=["AMX-BF16"])]
    assert cnn_names[0] == "bf16 + channels_last + inference_mode"
    for recipe in rec_mod.candidate_recipes(cnn):
        recipe.validate()  # every candidate is a valid recipe


def test_recommend_meets_the_bound_on_digits_mlp(mlp):
    seen = []
    task = Task(lambda p: seen.append(p) if p.phase == "recommend" else None)
    rec = rec_mod.recommend(mlp, options=FAST, task=task, max_candidates=3)
    winners = [t for t in rec.trials if t.verdict == "faster" and t.meets_bound]
    # Whether a candidate proves faster in 0.3 s depends on the machine's load (a loaded one
    # gives inconclusive verdicts); what must hold is the rule: the fastest proven one wins,
    # by the final race when it proved one (screening's 0.3 s can rank two close ones wrong).
    if winners:
        raced = rec.race.winner if rec.race is not None else None
        if raced is not None:
            assert rec.best.recipe.describe() == raced.recipe, rec.table()
        else:
            assert rec.best is max(winners, key=lambda t: t.speedup), rec.table()
        assert rec.best.meets_bound and rec.best.accuracy_drop <= 0.01
        assert rec.best.ci95[0] > 1.03
    else:
        assert rec.best is None and "keep the original" in rec.message, rec.table()
    assert len(rec.trials) == len(rec.rows) == rec.candidates == 3
    for row in rec.rows:
        assert {"recipe", "speedup", "ci95", "size_ratio", "accuracy", "cosine", "verdict",
                "meets_bound"} <= set(row)
    assert [p.done for p in seen] == [0, 1, 2, 3] and all(p.total == 3 for p in seen)
    assert seen[0].message == rec.trials[0].recipe.describe()  # the recipe being tried
    assert seen[0].values["recipe"]["steps"]
    data = rec.to_json()
    json.dumps(data, allow_nan=False)
    assert not data["cancelled"]
    assert data["best"] is None or data["best"]["recipe"]["steps"]


def test_cosine_bound_without_labels(digits):
    model, train, test = digits["digits-mlp"]
    from quantgui.core.model.data import Dataset
    unlabeled = Dataset(test.inputs.slice(0, 64), None, "unlabeled")
    loaded = LoadedModel(model, None, test.inputs.slice(0, 64), unlabeled, None)
    # no slow cap: on a busy machine the INT8 trial's first calls can look 3x slower and be
    # dropped unmeasured (failed CI once); this test is about the bound, not the speed
    rec = rec_mod.recommend(loaded, options=replace(FAST, slow_cap=1e9),
                            candidates=[Recipe.of("dynamic_int8", "inference_mode")])
    assert rec.bound["by"] == "cosine" and rec.bound["min_cosine"] == 0.99
    assert rec.trials[0].cosine is not None and "cosine" in rec.trials[0].quality_note


def test_impossible_bound_recommends_nothing(mlp):
    rec = rec_mod.recommend(mlp, min_cosine=1.01, options=FAST,
                            candidates=[Recipe.of("inference_mode")])
    assert rec.best is None and not rec.trials[0].meets_bound
    assert "keep the original" in rec.message


def test_failing_candidate_is_a_row_not_a_crash(mlp):
    rec = rec_mod.recommend(mlp, options=FAST,
                            candidates=[Recipe.of("channels_last"), Recipe.of("inference_mode")])
    assert rec.trials[0].error and rec.trials[0].verdict == "failed"
    assert len(rec.trials) == 2


def test_cli_recommend_prints_the_table_and_writes_json(digits, tmp_path, capsys):
    from quantgui import cli
    out, recipe = tmp_path / "rec.json", tmp_path / "best.json"
    code = cli.main(["recommend", "example:digits-mlp", "--max-candidates", "2",
                     "--time-budget", "0.3", "--json", str(out), "--save-recipe", str(recipe)])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "recommendation:" in text.out and "[1/2]" in text.err
    data = json.loads(out.read_text())
    assert len(data["trials"]) == 2
    if data["best"] is not None:  # proven faster on this machine now: saved
        assert data["best"]["row"]["verdict"] == "faster"
        assert Recipe.load(recipe).steps
    else:
        assert not recipe.exists() and "keep the original" in text.out


# --- the pick rule, on a clock the tests control --------------------------------------------------
# A model whose forward advances a fake clock by 2 ms in FP32 and 1 ms in BF16: the bf16 recipe
# is exactly 2x faster, inference_mode exactly 1x, so the verdicts are known in advance.

class _Clock:
    now = 0.0

    def __call__(self):
        return self.now


_CLOCK = _Clock()


class _Timed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        _CLOCK.now += 0.002 if self.fc.weight.dtype == torch.float32 else 0.001
        return self.fc(x)


@pytest.fixture
def timed(monkeypatch):
    from quantgui.core.measure import latency
    from quantgui.core.model.data import Dataset
    from quantgui.core.model.inputs import Inputs
    monkeypatch.setattr(latency, "clock", _CLOCK)
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    data = Dataset(Inputs.of(x), None, "random inputs")
    return LoadedModel(_Timed().eval(), None, Inputs.of(x), data, data)


def test_only_a_faster_verdict_is_recommended(timed):
    options = RunOptions(time_budget_s=0.2, min_rounds=10, warmup=1)
    rec = rec_mod.recommend(timed, options=options,
                            candidates=[Recipe.of("inference_mode"), Recipe.of("bf16")])
    assert [t.verdict for t in rec.trials] == ["not faster", "faster"], rec.table()
    assert rec.best is rec.trials[1] and rec.best.speedup == pytest.approx(2.0)
    assert rec.message.startswith("bf16: 2.00x faster (95% CI 2.00-2.00)")


def test_a_trial_short_of_rounds_is_decided_by_the_final_race(timed):
    # 3 ms per round in a 0.008 s budget: 2 rounds, too few for a 95% claim, however fast;
    # the final race's samples are >= 20 ms (20 calls here) and it may take 3x its 3x budget
    # to reach its 10 rounds: 3 rounds fit, enough when every round agrees
    options = RunOptions(time_budget_s=0.008, min_rounds=10, warmup=1)
    rec = rec_mod.recommend(timed, options=options, candidates=[Recipe.of("bf16")])
    trial = rec.trials[0]
    assert trial.verdict == "inconclusive" and trial.speedup == pytest.approx(2.0)
    assert trial.result.verdict.suggested_budget_s is not None
    race = rec.race
    assert race is not None and race.rounds == 3 and race.calls_per_sample == 20
    assert race.baseline_ms == pytest.approx(2.0)
    (entry,) = race.entries
    assert entry.recipe == "bf16" and entry.speedup == pytest.approx(2.0) and entry.faster
    assert rec.best is trial and rec.decision == "recipe"
    assert rec.message.startswith("bf16: 2.00x faster (95% CI 2.00-2.00, final race of 1 over "
                                  "3 rounds)")
    back = Recommendation.from_json(json.loads(json.dumps(rec.to_json())))
    assert back.race == race and back.best.recipe.describe() == "bf16"
    assert "final race of 1 over 3 rounds, order balanced: bf16 2.00x" in rec.table()


def test_nothing_above_1x_is_not_raced_nor_recommended(timed):
    options = RunOptions(time_budget_s=0.05, min_rounds=4, warmup=1)
    rec = rec_mod.recommend(timed, options=options, candidates=[Recipe.of("inference_mode")])
    assert rec.race is None and rec.best is None
    assert rec.decision == "keep_original" and rec.to_json()["decision"] == "keep_original"
    assert rec.message.startswith("keep the original: nothing tried is faster within the bound")


class _Shifty(torch.nn.Module):
    """FP32 2 ms, FP16 1.5 ms; BF16 1 ms while candidates are screened, 1.8 ms in the final race:
    the screening ranks bf16 first, the race ranks fp16 first."""
    racing = False

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        dtype = self.fc.weight.dtype
        _CLOCK.now += (0.002 if dtype == torch.float32 else 0.0015 if dtype == torch.float16
                       else 0.0018 if _Shifty.racing else 0.001)
        return self.fc(x)


def test_the_final_race_picks_among_the_finalists_in_one_rotated_run(timed):
    from quantgui.core.model.data import Dataset
    from quantgui.core.model.inputs import Inputs
    x = timed.example.args[0]
    data = Dataset(Inputs.of(x), None, "random inputs")
    loaded = LoadedModel(_Shifty().eval(), None, Inputs.of(x), data, data)
    phases = []

    def on_progress(p):
        phases.append(p.phase)
        _Shifty.racing = p.phase == "race"
    options = RunOptions(time_budget_s=0.1, min_rounds=10, warmup=1)
    try:
        rec = rec_mod.recommend(loaded, options=options, task=Task(on_progress),
                                candidates=[Recipe.of("bf16"), Recipe.of("fp16")])
    finally:
        _Shifty.racing = False
    assert [t.verdict for t in rec.trials] == ["faster", "faster"]
    assert rec.trials[0].speedup == pytest.approx(2.0)  # screening: bf16 first
    assert "race" in phases
    entries = {e.recipe: e.speedup for e in rec.race.entries}
    assert entries["fp16"] == pytest.approx(2 / 1.5, rel=0.02)
    assert entries["bf16"] < entries["fp16"]
    assert rec.best.recipe.describe() == "fp16"
    assert Recommendation.from_json(rec.to_json()).best.recipe.describe() == "fp16"


def test_race_balances_the_order_and_pairs_rounds(monkeypatch):
    """Each round times every contender once; over the rounds each one directly follows every
    other one equally often (a rotation would put the same one after the baseline each time)."""
    from quantgui.core.measure import latency
    from quantgui.core.measure.race import BASELINE, race
    from quantgui.core.model.inputs import Inputs
    from quantgui.core.model.variant import Variant
    monkeypatch.setattr(latency, "clock", _CLOCK)
    order = []

    class Costs(torch.nn.Module):
        def __init__(self, name, ms):
            super().__init__()
            self.name, self.ms = name, ms

        def forward(self, x):
            order.append(self.name)
            _CLOCK.now += self.ms / 1e3
            return x
    base = Variant.baseline(Costs(BASELINE, 4.0))
    out = race(base, {"a": Variant.baseline(Costs("a", 2.0)),
                      "b": Variant.baseline(Costs("b", 1.0))},
               Inputs.of(torch.zeros(2, 2)), budget_s=0.02, min_rounds=6, warmup=1,
               min_sample_s=5e-4)
    assert out.rounds == 6 and out.calls_per_sample == 1
    assert [(e.recipe, e.speedup, e.ci95) for e in out.entries] == [
        ("a", pytest.approx(2.0), (pytest.approx(2.0), pytest.approx(2.0))),
        ("b", pytest.approx(4.0), (pytest.approx(4.0), pytest.approx(4.0)))]
    assert out.winner.recipe == "b"
    # the timed calls (each re-warmed by one untimed call before it)
    timed_calls = order[-2 * 3 * 6:][1::2]
    rounds = [timed_calls[i:i + 3] for i in range(0, len(timed_calls), 3)]
    names = [BASELINE, "a", "b"]
    assert all(sorted(r) == sorted(names) for r in rounds)
    follows = Counter((r[i], r[i + 1]) for r in rounds for i in range(2))
    assert follows == {(x, y): 2 for x in names for y in names if x != y}


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_balanced_orders_put_each_after_each_other_equally_often(n):
    from quantgui.core.measure.race import balanced_orders
    orders = balanced_orders(n)
    assert all(sorted(o) == list(range(n)) for o in orders)
    follows = Counter((o[i], o[i + 1]) for o in orders for i in range(n - 1))
    assert len(follows) == n * (n - 1) and len(set(follows.values())) == 1


def test_cancel_after_first_trial_returns_best_so_far(timed):
    token = CancelToken()

    def on_progress(p):
        if p.phase == "recommend" and p.done == 1:
            token.cancel()
    options = RunOptions(time_budget_s=0.2, min_rounds=10, warmup=1)
    rec = rec_mod.recommend(timed, options=options, task=Task(on_progress, token),
                            candidates=[Recipe.of("bf16"), Recipe.of("inference_mode")])
    assert rec.cancelled
    assert len(rec.trials) == 1
    assert rec.best is not None and rec.best.recipe.describe() == "bf16"
    assert rec.to_json()["cancelled"] is True
    # said once, without nested brackets: "(1 of 2 candidates tried, then cancelled)"
    assert rec.message.endswith("(1 of 2 candidates tried, then cancelled)")
    assert "((" not in rec.message and "))" not in rec.message
