"""recommend(): tries candidates, keeps the fastest within the quality bound, anytime on cancel."""

import json

import pytest

from quantgui.core import recommend as rec_mod
from quantgui.core.model import LoadedModel
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe
from quantgui.core.run import RunOptions

# Tiny budgets: these tests check behaviour, not speed.
FAST = RunOptions(time_budget_s=0.3, min_rounds=4, warmup=1, eval_limit=2)


@pytest.fixture(scope="module")
def mlp(digits):
    from quantgui.core.loading import open_model
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
    assert rec.best is not None, rec.table()
    assert rec.best.meets_bound and rec.best.accuracy_drop <= 0.01
    assert rec.best.speedup > 1.0
    assert len(rec.trials) == len(rec.rows) == rec.candidates == 3
    for row in rec.rows:
        assert {"recipe", "speedup", "ci95", "size_ratio", "accuracy", "cosine", "verdict",
                "meets_bound"} <= set(row)
    assert [p.done for p in seen] == [0, 1, 2, 3] and all(p.total == 3 for p in seen)
    assert seen[0].message == rec.trials[0].recipe.describe()  # the recipe being tried
    assert seen[0].values["recipe"]["steps"]
    data = rec.to_json()
    json.dumps(data, allow_nan=False)
    assert data["best"]["recipe"]["steps"] and not data["cancelled"]


def test_cosine_bound_without_labels(digits):
    model, train, test = digits["digits-mlp"]
    from quantgui.core.data import Dataset
    unlabeled = Dataset(test.inputs.slice(0, 64), None, "unlabeled")
    loaded = LoadedModel(model, None, test.inputs.slice(0, 64), unlabeled, None)
    rec = rec_mod.recommend(loaded, options=FAST,
                            candidates=[Recipe.of("dynamic_int8", "inference_mode")])
    assert rec.bound["by"] == "cosine" and rec.bound["min_cosine"] == 0.99
    assert rec.trials[0].cosine is not None and "cosine" in rec.trials[0].quality_note


def test_impossible_bound_recommends_nothing(mlp):
    rec = rec_mod.recommend(mlp, min_cosine=1.01, options=FAST,
                            candidates=[Recipe.of("inference_mode")])
    assert rec.best is None and not rec.trials[0].meets_bound
    assert "keep the original" in rec.message


def test_cancel_after_first_trial_returns_best_so_far(mlp):
    token = CancelToken()

    def on_progress(p):
        if p.phase == "recommend" and p.done == 1:
            token.cancel()
    rec = rec_mod.recommend(mlp, options=FAST, task=Task(on_progress, token),
                            candidates=[Recipe.of("dynamic_int8", "inference_mode"),
                                        Recipe.of("inference_mode")])
    assert rec.cancelled
    assert len(rec.trials) == 1
    assert rec.best is not None and rec.best.recipe.describe() == "dynamic_int8 + inference_mode"
    assert rec.to_json()["cancelled"] is True


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
    assert len(data["trials"]) == 2 and data["best"] is not None
    assert Recipe.load(recipe).steps
