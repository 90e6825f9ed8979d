"""A small model with one deliberately sensitive layer, for the skip-list and sensitivity tests.

`sensitive` reads its hidden features next to a constant 30000.0 feature it gives zero weight:
its output is exact in FP32, but dynamic INT8 quantizes its input with one scale per tensor,
and a scale set by 30000 (below FP16's limit) rounds the real features (~0-3) to nothing.
Every other layer sees ordinary activations, so INT8 there costs little.
"""

from __future__ import annotations

import torch
from torch import nn

from quantgui.core.model.inputs import Inputs
from quantgui.core.model.loaded import LoadedModel
from quantgui.core.opening.inspection import model_info

LAYERS = ("fc1", "sensitive", "fc2", "head")


class SensitiveNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.sensitive = nn.Linear(33, 32)
        self.fc2 = nn.Linear(32, 32)
        self.head = nn.Linear(32, 8)
        with torch.no_grad():
            self.sensitive.weight[:, 32] = 0.0
            for layer in (self.fc1, self.sensitive, self.fc2, self.head):
                layer.bias.zero_()  # predictions follow the input, not the initial biases

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = torch.cat([h, torch.full_like(h[:, :1], 30000.0)], -1)
        h = torch.relu(self.sensitive(h))
        return self.head(torch.relu(self.fc2(h)))


def build() -> SensitiveNet:
    torch.manual_seed(0)
    return SensitiveNet().eval()


def example(batch: int = 32) -> Inputs:
    return Inputs.of(torch.randn(batch, 16, generator=torch.Generator().manual_seed(1)))


def loaded(batch: int = 32) -> LoadedModel:
    model, x = build(), example(batch)
    info = model_info(model, "tests/sensitive_model.py:SensitiveNet", "example", x)
    return LoadedModel(model, info, x, None, None,
                       {"arch": "tests.sensitive_model:build"})


def converted(module: nn.Module) -> set[str]:
    """The names of LAYERS whose weights are no longer plain FP32 Linear weights."""
    out = set()
    for name, m in module.named_modules():
        if name.split(".")[-1] not in LAYERS:
            continue
        weight = getattr(m, "weight", None)
        plain = (type(m) is nn.Linear and type(weight) is nn.Parameter
                 and weight.dtype == torch.float32)
        if not plain:
            out.add(name.split(".")[-1])
    return out
