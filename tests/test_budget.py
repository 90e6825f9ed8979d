"""The quality budget: stored in recipes, judged by the paired interval, carried by RunResult."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from quantgui.cli import main
from quantgui.core.budget import FAILS, MEETS, UNDECIDED, QualityBudget, judge
from quantgui.core.errors import UserError
from quantgui.core.measure.paired import accuracy_change
from quantgui.core.measure.quality import fidelity
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.loaded import LoadedModel
from quantgui.core.recipe import Recipe
from quantgui.core.results import RunResult
from quantgui.core.run import RunOptions, run_recipe


def change_of(n, broken, fixed=0):
    """A real paired accuracy change: n samples, `broken` right before and wrong after,
    `fixed` the reverse (the rest right both times)."""
    labels = np.zeros(n, dtype=np.int64)
    before = np.zeros(n, dtype=np.int64)
    after = np.zeros(n, dtype=np.int64)
    after[:broken] = 1
    before[broken:broken + fixed] = 1
    return accuracy_change(labels, before, after, np.arange(n))


def test_budget_round_trips_through_recipe_json():
    budget = QualityBudget(max_accuracy_drop=0.5, min_cosine=0.99, min_sqnr=20.0)
    recipe = Recipe.of("dynamic_int8")
    recipe.budget = budget
    data = json.loads(json.dumps(recipe.to_json()))
    assert data["budget"] == {"max_accuracy_drop": 0.5, "min_cosine": 0.99, "min_sqnr": 20.0}
    again = Recipe.from_json(data)
    assert again.budget == budget and again.to_json() == recipe.to_json()
    old = Recipe.from_json({"version": 1, "steps": [{"name": "dynamic_int8"}]})
    assert old.budget is None and "budget" not in old.to_json()


@pytest.mark.parametrize("budget, fragment", [
    ({"min_cosine": float("nan")}, "$.budget.min_cosine: must be a finite number, got NaN"),
    ({"max_accuracy_drop": -1}, "$.budget.max_accuracy_drop: must be at least 0 and at most "
                                "100, got -1"),
    ({"min_cosine": 1.2}, "$.budget.min_cosine: must be at least -1 and at most 1, got 1.2"),
    ({"min_agreement": "high"}, "$.budget.min_agreement: must be a number, got the text"),
    ({"max_drop": 1}, "$.budget.max_drop: unknown key"),
])
def test_bad_budget_values_are_one_line_errors(budget, fragment):
    with pytest.raises(UserError) as err:
        Recipe.from_json({"steps": [], "budget": budget}, "r.json")
    assert str(err.value).startswith("r.json: ") and fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_accuracy_budget_uses_the_paired_interval():
    budget = QualityBudget(max_accuracy_drop=2.0)
    # 1000 samples, nothing flipped: the interval is (0, 0), within a 2 pt budget
    assert judge(budget, change_of(1000, 0)).status == MEETS
    # 10 of 100 broken: -10 pt, the whole interval below -2 pt
    check = judge(budget, change_of(100, 10))
    assert check.status == FAILS and check.criteria[0].ci95[1] < -2
    assert "fails the budget: accuracy -10.0 pt" in check.words()
    # 3 broken, 1 fixed of 100: -2 pt +- ~3: neither side; says how many samples would decide
    small = change_of(100, 3, 1)
    check = judge(budget, small)
    crit = check.criteria[0]
    assert check.status == UNDECIDED and crit.samples_needed is None  # sits on the budget
    assert "no sample count decides it" in check.words()
    # -1 pt on 200 samples: undecided; at about the estimated count it is decided
    near = change_of(200, 3, 1)
    crit = judge(budget, near).criteria[0]
    assert crit.status == UNDECIDED and crit.samples_needed > 200
    assert f"about {crit.samples_needed:,} samples would decide" in crit.words
    scale = math.ceil(crit.samples_needed * 1.3 / 200)
    bigger = change_of(200 * scale, 3 * scale, scale)  # the same rates on more samples
    assert judge(budget, bigger).status == MEETS


def test_fidelity_budgets_min_cosine_agreement_sqnr():
    torch.manual_seed(0)
    ref = torch.randn(50, 10)
    out = ref.clone()
    out[7] = -ref[7]  # one sample flipped: mean cosine 0.96, the minimum -1
    fid = fidelity(ref, out)
    check = judge(QualityBudget(min_cosine=0.9), fidelity=fid)
    assert fid.cosine > 0.9 and check.status == FAILS  # the minimum decides, not the mean
    assert "lowest cosine over 50 samples -1.0000" in check.words()
    same = fidelity(ref, ref.clone())
    assert judge(QualityBudget(min_cosine=0.999, min_sqnr=40), fidelity=same).status == MEETS
    # agreement 49/50 on 50 samples: Wilson interval ~(0.89, 1.0) straddles 0.95
    check = judge(QualityBudget(min_agreement=0.95), fidelity=fid)
    assert check.status == UNDECIDED and check.criteria[0].samples_needed > 50
    nan = ref.clone()
    nan[0, 0] = float("nan")
    check = judge(QualityBudget(min_cosine=0.5), fidelity=fidelity(ref, nan))
    assert check.status == FAILS and "NaN/Inf" in check.words()
    # an accuracy budget without labels cannot be decided, and says why
    check = judge(QualityBudget(max_accuracy_drop=1), None, same)
    assert check.status == UNDECIDED and "no labeled test data" in check.words()


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Linear(32, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_run_result_carries_the_budget_verdict():
    torch.manual_seed(0)
    x = torch.randn(32, 16)
    loaded = LoadedModel(Tiny().eval(), None, Inputs.of(x[:8]), None, None)
    recipe = Recipe.of("bf16")
    recipe.budget = QualityBudget(min_cosine=0.9999999)  # bf16 cannot hold that
    options = RunOptions(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1)
    result = run_recipe(loaded, recipe, options)
    assert result.budget.status == FAILS
    assert "fails the budget: lowest cosine" in result.headline()
    again = RunResult.from_json(json.loads(json.dumps(result.to_json(), allow_nan=False)))
    assert again.budget.to_json() == result.budget.to_json()
    assert again.recipe.budget == recipe.budget
    assert again.to_json() == result.to_json()
    # options override the recipe's own budget
    loose = run_recipe(loaded, recipe, RunOptions(time_budget_s=0.05, min_rounds=2,
                                                  max_rounds=4, warmup=1,
                                                  budget=QualityBudget(min_cosine=0.9)))
    assert loose.budget.status == MEETS and "meets the budget" in loose.headline()


def test_cli_run_prints_the_budget(digits, capsys):
    code = main(["run", "example:digits-mlp", "--step", "inference_mode", "--time-budget",
                 "0.1", "--eval-limit", "2", "--max-accuracy-drop", "0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "budget (accuracy drop <= 0.5 pt): MEETS" in out
    assert "meets: accuracy 0.0 pt (95% CI +0.0 to +0.0): within noise, budget -0.5 pt" in out
