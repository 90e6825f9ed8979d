"""Activation-aware dynamic INT8 (torchao per-token activations, SmoothQuant) against torch.ao's
per-tensor activations, on an input with one outlier token: per-tensor gives every token of the
batch the outlier's scale, per-token gives each its own."""

import pytest
import torch
from torch import nn

from quantgui.core.errors import UserError
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.loaded import LoadedModel
from quantgui.core.recipe import Recipe
from quantgui.core.run import RunOptions, run_recipe

OPTIONS = RunOptions(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1)


class Block(nn.Module):
    """A transformer feed-forward block: Linear -> GELU -> Linear, over (batch, tokens, dim)."""

    def __init__(self, dim=64):
        super().__init__()
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return self.down(nn.functional.gelu(self.up(x)))


@pytest.fixture(scope="module")
def outlier_model():
    torch.manual_seed(0)
    x = torch.randn(8, 16, 64)
    x[0, 3] *= 200.0  # one outlier token, as attention sinks / [CLS] produce
    return LoadedModel(Block().eval(), None, Inputs.of(x), None, None)


def fidelity(loaded, **params):
    result = run_recipe(loaded, Recipe.of(("dynamic_int8", params)), OPTIONS)
    return result.fidelity, result.steps[0].decisions


def test_per_token_and_smoothquant_keep_outlier_inputs(outlier_model):
    per_tensor, d0 = fidelity(outlier_model, api="torch.ao", engine="x86")
    per_token, d1 = fidelity(outlier_model, activation="per_token")
    smooth, d2 = fidelity(outlier_model, smoothquant=0.5, calibration_batches=1)
    assert d0["activation"] == "per_tensor" and d0["api"] == "torch.ao"
    assert d1["activation"] == "per_token" and d1["api"] == "torchao"
    assert d2["activation"] == "per_token" and d2["calibration_batches"] == 1
    # the samples without the outlier lose their resolution under one per-tensor scale
    assert per_token.cosine_min >= per_tensor.cosine_min
    assert per_token.sqnr_db >= per_tensor.sqnr_db
    assert smooth.cosine_min >= per_tensor.cosine_min
    assert per_token.cosine_min > 0.99 > per_tensor.cosine_min  # and by a wide margin here


def test_per_token_needs_torchao(outlier_model):
    with pytest.raises(UserError, match="per-token activations and SmoothQuant are torchao's"):
        run_recipe(outlier_model, Recipe.of(("dynamic_int8", {"api": "torch.ao",
                                                              "activation": "per_token"})),
                   OPTIONS)
