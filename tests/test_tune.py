"""The auto-tune (issue 12): a deliberately sensitive layer ends up in the kept set (the fewest
units), Stop and the time limit keep the best so far with every trial, the trial log resumes
without measuring any trial twice and tolerates a torn last line, and the chosen recipe
round-trips through JSON, a project and the standalone script."""

from __future__ import annotations

import json
import runpy
import types

import pytest
import torch

import quantgui.core.tune as tune_mod
from quantgui.core.budget import QualityBudget
from quantgui.core.errors import UserError
from quantgui.core.export import ProjectEntry, load_project, save_project, write_script
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe
from quantgui.core.results.tune import TuneResult, explain
from quantgui.core.run import RunOptions, optimize
from quantgui.core.tune import TuneOptions, tune
from tests import sensitive_model as sm
from tests import tune_models as tm

INT8 = {"api": "torch.ao", "engine": "x86"}  # fixed: no engine timing in tests
PER_TENSOR = dict(INT8, activation="per_tensor")  # stated: no per-token variant to try
#: Short trials; no slow cap (a tiny model's INT8 is often 3x slower: it must still be judged).
FAST = RunOptions(time_budget_s=0.4, min_rounds=6, warmup=1, slow_cap=1e9, threads=1)
COSINE = QualityBudget(min_cosine=0.99)
NO_BF16 = ("AVX2", "AVX512", "VNNI")  # a CPU whose BF16 is emulated: no mixed precision tried


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QUANTGUI_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def sensitive_tune():
    options = TuneOptions(run=FAST, candidates=[Recipe.of(("dynamic_int8", PER_TENSOR))],
                          sensitivity_samples=32, steps=(), refine_slower=True,
                          capabilities=NO_BF16)
    return tune(sm.loaded(), COSINE, options)


@pytest.fixture
def calls(monkeypatch):
    """How many trials were measured: every one goes through run.run_recipe."""
    import quantgui.core.run as run
    count = []
    real = run.run_recipe

    def counted(*args, **kwargs):
        count.append(args[1].describe())
        return real(*args, **kwargs)
    monkeypatch.setattr(run, "run_recipe", counted)
    return count


def test_the_sensitive_layer_is_kept_and_nothing_more(sensitive_tune):
    trials = sensitive_tune.trials
    assert trials[0].stage == "candidate" and trials[0].trial.budget_status == "fails"
    fallbacks = [t for t in trials if t.stage == "fallback"]
    assert [t.kept for t in fallbacks] == [["sensitive"]]  # k = 1 held: refining stops there
    kept = fallbacks[0]
    assert kept.trial.budget_status == "meets" and kept.format == "dynamic_int8"
    assert kept.trial.recipe.steps[0].params == dict(PER_TENSOR, skip=["sensitive"])
    assert [t.stage for t in trials] == ["candidate", "fallback"]  # no BF16 variant here
    assert any("no native BF16" in n for n in sensitive_tune.notes)
    # what keeping it bought: the trial with it against the plain format without it
    [choice] = explain(trials, trials.index(kept))
    assert choice.kind == "keep" and choice.what == ["sensitive"]
    assert (choice.with_.budget, choice.without.budget) == ("meets", "fails")
    assert choice.without.trial == 0 and choice.without.recipe == "dynamic_int8:" \
        "api=torch.ao,engine=x86,activation=per_tensor"
    assert "kept in higher precision: sensitive" in choice.words()


def test_kept_units_are_also_tried_in_bf16_where_the_cpu_has_native_bf16(monkeypatch):
    # the technique's own check reads the real CPU; the tune's choice reads `capabilities`
    monkeypatch.setattr("quantgui.core.env.has_fast_bf16", lambda: True)
    options = TuneOptions(run=FAST, candidates=[Recipe.of(("dynamic_int8", PER_TENSOR))],
                          sensitivity_samples=32, steps=(), refine_slower=True,
                          capabilities=("AVX512", "AMX-BF16"))
    result = tune(sm.loaded(), COSINE, options)
    trials = result.trials
    assert [t.stage for t in trials] == ["candidate", "fallback", "mixed"]
    mixed = trials[2]
    assert mixed.base == 1 and mixed.kept == ["sensitive"] and mixed.format == "dynamic_int8"
    assert mixed.trial.recipe.steps[0].params == dict(PER_TENSOR, skip=["sensitive"],
                                                      bf16=["*"])
    assert mixed.trial.result.steps[0].decisions["bf16_layers"] == ["sensitive"]
    assert mixed.trial.budget_status == "meets", why(mixed)
    assert not any("no native BF16" in n for n in result.notes)
    # what BF16 bought: the mixed trial against the FP32-kept one, after the keep itself
    keep, bf16 = explain(trials, 2)
    assert (keep.kind, keep.what) == ("keep", ["sensitive"])
    assert (bf16.kind, bf16.what) == ("bf16", ["sensitive"])
    assert (bf16.with_.trial, bf16.without.trial) == (2, 1)
    assert "kept units in BF16 instead of FP32 (mixed precision): sensitive" in bf16.words()
    assert TuneResult.from_json(result.to_json()).trials[2].stage == "mixed"


class ThreeSensitive(torch.nn.Module):
    """Three layers INT8 breaks (each reads a constant 30000 feature, see sensitive_model) and
    a head it does not: the budget holds only with all three kept, 3 of 4 units."""

    def __init__(self) -> None:
        super().__init__()
        self.s1, self.s2, self.s3 = (torch.nn.Linear(17, 16) for _ in range(3))
        self.head = torch.nn.Linear(16, 8)
        with torch.no_grad():
            for layer in (self.s1, self.s2, self.s3):
                layer.weight[:, 16] = 0.0

    def forward(self, x):
        for layer in (self.s1, self.s2, self.s3):
            x = torch.relu(layer(torch.cat([x, torch.full_like(x[:, :1], 30000.0)], -1)))
        return self.head(x)


def test_the_fallback_tries_all_but_one_unit_before_giving_up():
    from quantgui.core.model.loaded import LoadedModel
    from quantgui.core.opening.inspection import model_info
    torch.manual_seed(0)
    model, x = ThreeSensitive().eval(), sm.example()
    loaded = LoadedModel(model, model_info(model, "ThreeSensitive", "example", x), x)
    options = TuneOptions(run=FAST, candidates=[Recipe.of(("dynamic_int8", PER_TENSOR))],
                          sensitivity_samples=32, steps=(), refine_slower=True,
                          capabilities=NO_BF16)
    trials = tune(loaded, COSINE, options).trials
    fallbacks = [t for t in trials if t.stage == "fallback"]
    # k = 1, 2, then 3 = all but one of the 4 units (doubling would have stopped at 4)
    assert [len(t.kept) for t in fallbacks] == [1, 2, 3], [why(t) for t in trials]
    assert [t.trial.budget_status for t in fallbacks] == ["fails", "fails", "meets"]
    assert sorted(fallbacks[-1].kept) == ["s1", "s2", "s3"]


def test_result_json_round_trips_exactly(sensitive_tune):
    data = sensitive_tune.to_json()
    assert data["schema"] == 1 and data["kind"] == "tune"
    text = json.dumps(data, allow_nan=False)
    assert TuneResult.from_json(json.loads(text)).to_json() == data
    with pytest.raises(UserError, match="newer QuantGUI"):
        TuneResult.from_json(dict(data, schema=2))


def test_the_tuned_recipe_round_trips_through_file_project_and_script(sensitive_tune, tmp_path):
    kept = next(t for t in sensitive_tune.trials if t.stage == "fallback")
    recipe = Recipe(kept.trial.recipe.steps, budget=COSINE)  # what a tune hands out
    recipe.save(tmp_path / "recipe.json")
    again = Recipe.load(tmp_path / "recipe.json")
    assert again.to_json() == recipe.to_json() and again.budget == COSINE
    loaded = sm.loaded()
    save_project(tmp_path / "p.quantgui", [ProjectEntry.from_run(loaded, again)])
    reopened = load_project(tmp_path / "p.quantgui").entries[0].recipe
    assert reopened.to_json() == recipe.to_json()
    variant, steps = optimize(loaded, reopened)
    export = write_script(tmp_path / "script", loaded, reopened, steps, variant, loaded.example)
    ns = runpy.run_path(str(export.script), run_name="rebuilt")
    rebuilt = ns["optimize"](ns["load_original"](), ns["new_call"]())
    assert sm.converted(rebuilt) == {"fc1", "fc2", "head"}  # "sensitive" stayed FP32
    torch.testing.assert_close(rebuilt(*loaded.example.args), variant(loaded.example),
                               rtol=0, atol=1e-5)


CHEAP = [Recipe.of("inference_mode"), Recipe.of("fp16")]


def why(t) -> str:
    r = t.trial.result
    return f"{t.trial.row()} {r.verdict.inconclusive_reason if r else ''}"


def cheap(**kw) -> TuneOptions:
    return TuneOptions(run=FAST, candidates=CHEAP, steps=(), **kw)


def test_stop_keeps_the_best_so_far_and_every_trial(calls):
    token = CancelToken()
    seen = []

    def on_trial(t):
        seen.append(t)
        if len(seen) == 2:
            token.cancel()
    result = tune(tm.loaded(), COSINE, cheap(), Task(None, token), on_trial=on_trial)
    assert result.cancelled and result.stopped == "cancelled"
    assert len(result.trials) == 2 == len(calls) and seen == result.trials
    assert result.best is not None, why(result.trials[0])
    assert result.best.trial.recipe.describe() == "inference_mode"  # the waste it skips
    assert result.best.trial.verdict == "faster" and result.best.trial.meets_bound
    assert result.recipe.budget == COSINE and result.recipe.describe() == "inference_mode"
    assert "then stopped (cancelled)" in result.message


def test_the_time_limit_stops_the_same_way(monkeypatch):
    clock = {"late": False}
    real = tune_mod.time

    def monotonic():
        return real.monotonic() + (1e6 if clock["late"] else 0)
    monkeypatch.setattr(tune_mod, "time", types.SimpleNamespace(
        monotonic=monotonic, perf_counter=real.perf_counter))
    result = tune(tm.loaded(), COSINE, cheap(), time_limit_s=600,
                  on_trial=lambda t: clock.update(late=True))
    assert result.cancelled and result.stopped == "time limit" and len(result.trials) == 1
    assert result.best is not None, why(result.trials[0])
    assert result.best.trial.recipe.describe() == "inference_mode"


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_resume_measures_no_trial_twice(tmp_path, calls):
    log = tmp_path / "trials.jsonl"
    token = CancelToken()
    first = tune(tm.loaded(), COSINE, cheap(), Task(None, token), log_path=log,
                 on_trial=lambda t: token.cancel())
    assert len(first.trials) == 1 and len(calls) == 1
    header, *rows = lines(log)
    assert header["kind"] == "quantgui-tune-log" and header["budget"] == {"min_cosine": 0.99}
    assert len(rows) == 1 and len(header["model"]) == len(header["data"]) == 64

    second = tune(tm.loaded(), COSINE, cheap(), log_path=log, resume=True)
    assert [t.from_log for t in second.trials] == [True, False]
    assert len(calls) == 2  # only the one not in the log
    assert len(lines(log)) == 3

    third = tune(tm.loaded(), COSINE, cheap(), log_path=log, resume=True)
    assert all(t.from_log for t in third.trials) and len(calls) == 2 and len(lines(log)) == 3
    assert third.best.trial.recipe.describe() == "inference_mode"
    assert [t.trial.to_json() for t in third.trials] == [t.trial.to_json()
                                                         for t in second.trials]


def test_a_torn_last_line_is_ignored_and_cut(tmp_path, calls):
    log = tmp_path / "trials.jsonl"
    tune(tm.loaded(), COSINE, cheap(max_candidates=1), log_path=log)
    assert len(calls) == 1
    whole = log.read_text()
    log.write_text(whole + '{"key": "[{\\"name\\":\\"inf')  # a crash mid-write
    result = tune(tm.loaded(), COSINE, cheap(max_candidates=1), log_path=log, resume=True)
    assert len(calls) == 1 and all(t.from_log for t in result.trials)
    assert any("torn last line was ignored" in n for n in result.notes)
    assert log.read_text() == whole  # cut before appending anything


def test_log_refusals_are_one_line(tmp_path):
    log = tmp_path / "trials.jsonl"
    tune(tm.loaded(), COSINE, cheap(max_candidates=1), log_path=log)
    with pytest.raises(UserError, match=r"already exists; pass --resume"):
        tune(tm.loaded(), COSINE, cheap(), log_path=log)
    with pytest.raises(UserError) as err:
        tune(tm.loaded(), QualityBudget(min_cosine=0.9), cheap(), log_path=log, resume=True)
    assert str(err.value) == (f"{log}: this trial log was written for another budget (cosine "
                              f">= 0.99, not cosine >= 0.9); resume it with the same model, "
                              f"data and budget, or start a new log")
    with pytest.raises(UserError, match="written for another model"):
        tune(sm.loaded(), COSINE, cheap(), log_path=log, resume=True)
    header, row = log.read_text().splitlines()
    log.write_text(f"{header}\n{row[:40]}\n{row}\n")  # damaged in the middle: not a torn end
    with pytest.raises(UserError, match=r"trials.jsonl: line 2: not a trial log line"):
        tune(tm.loaded(), COSINE, cheap(), log_path=log, resume=True)


def test_the_final_race_decides_between_the_best_few(calls):
    """As in recommend: the best trials within the budget are timed together at the end, and
    the race's winner is the pick; the race round-trips with the result and is in its lines."""
    twins = [Recipe.of("inference_mode"),
             Recipe.of(("prune", {"amount": 0.05}), "inference_mode")]  # the same speed
    result = tune(tm.loaded(), COSINE, TuneOptions(run=FAST, candidates=twins, steps=()))
    assert not result.cancelled and len(calls) == 2
    assert all(t.trial.meets_bound for t in result.trials), [why(t) for t in result.trials]
    race = result.race
    assert race is not None and race.rounds >= 2
    assert {e.recipe for e in race.entries} == {r.describe() for r in twins}
    assert result.best.trial.recipe.describe() == race.winner.recipe
    assert "final race of 2 over" in result.message
    assert any(line.startswith("final race of 2 over") for line in result.lines())
    data = json.loads(json.dumps(result.to_json(), allow_nan=False))
    again = TuneResult.from_json(data)
    assert again.to_json() == result.to_json() and again.race.winner.recipe == race.winner.recipe


def test_no_race_without_the_variants_of_logged_trials(tmp_path, calls):
    """A resumed tune's logged trials have no variant to run again: no race (racing only the
    fresh ones could crown one its own timing put below a logged one)."""
    log = tmp_path / "trials.jsonl"
    twins = [Recipe.of("inference_mode"),
             Recipe.of(("prune", {"amount": 0.05}), "inference_mode")]
    token = CancelToken()
    tune(tm.loaded(), COSINE, TuneOptions(run=FAST, candidates=twins, steps=()),
         Task(None, token), log_path=log, on_trial=lambda t: token.cancel())
    resumed = tune(tm.loaded(), COSINE, TuneOptions(run=FAST, candidates=twins, steps=()),
                   log_path=log, resume=True)
    assert [t.from_log for t in resumed.trials] == [True, False]
    assert resumed.race is None and resumed.best is not None
