"""A model one recipe makes deterministically faster, for the auto-tune's anytime tests.

`GradSlowNet` does three discarded matrix products as large as its one layer unless it runs
under `torch.inference_mode`: the `inference_mode` step removes them (about 4x faster on any CPU,
with identical outputs; a modest ratio, so the interleaved timer fits its rounds), so
"faster and within the budget" does not depend on the machine's speed or load."""

from __future__ import annotations

import torch
from torch import nn

from quantgui.core.model.inputs import Inputs
from quantgui.core.model.loaded import LoadedModel
from quantgui.core.opening.inspection import model_info


class GradSlowNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(256, 256)
        self.register_buffer("waste", torch.randn(256, 256) / 16)

    def forward(self, x):
        if not torch.is_inference_mode_enabled():
            w = x @ self.waste
            for _ in range(2):
                w = torch.tanh(w @ self.waste)  # discarded: outside inference mode only
        return self.fc(x)


def loaded() -> LoadedModel:
    torch.manual_seed(0)
    model = GradSlowNet().eval()
    x = Inputs.of(torch.randn(32, 256, generator=torch.Generator().manual_seed(1)))
    info = model_info(model, "tests/tune_models.py:GradSlowNet", "example", x)
    return LoadedModel(model, info, x, None, None, {"arch": "tests.tune_models:build"})


def build() -> GradSlowNet:
    torch.manual_seed(0)
    return GradSlowNet().eval()
