"""Model inputs: one normalized form for a tensor, a tuple of tensors or a dict of tensors.

`Inputs(args, kwargs)` is what every engine part passes around; `call(model, inputs)` calls the
model with it and `primary_output(...)` reduces whatever the model returns (tensor, tuple, HF
ModelOutput) to the one tensor that fidelity and accuracy are computed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class Inputs:
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    @classmethod
    def of(cls, value: Any) -> "Inputs":
        if isinstance(value, Inputs):
            return value
        if isinstance(value, torch.Tensor):
            return cls((value,), {})
        if isinstance(value, dict):
            return cls((), dict(value))
        if isinstance(value, (tuple, list)):
            return cls(tuple(value), {})
        raise TypeError(f"an example input must be a tensor, a tuple or a dict of tensors, "
                        f"not {type(value).__name__}")

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (*self.args, *self.kwargs.values()) if isinstance(t, torch.Tensor)]

    @property
    def batch_size(self) -> int:
        ts = self.tensors()
        return int(ts[0].shape[0]) if ts and ts[0].dim() > 0 else 1

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "Inputs":
        conv = lambda t: fn(t) if isinstance(t, torch.Tensor) else t  # noqa: E731
        return Inputs(tuple(conv(a) for a in self.args),
                      {k: conv(v) for k, v in self.kwargs.items()})

    def slice(self, start: int, stop: int) -> "Inputs":
        return self.map(lambda t: t[start:stop] if t.dim() > 0 else t)

    def describe(self) -> str:
        parts = [f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}" for t in self.args
                 if isinstance(t, torch.Tensor)]
        parts += [f"{k}: {tuple(v.shape)} {str(v.dtype).replace('torch.', '')}"
                  for k, v in self.kwargs.items() if isinstance(v, torch.Tensor)]
        return ", ".join(parts) or "none"

    def value(self) -> Any:
        """Back to the plain form (tensor, tuple or dict) for saving."""
        if self.kwargs and not self.args:
            return dict(self.kwargs)
        if len(self.args) == 1 and not self.kwargs:
            return self.args[0]
        return tuple(self.args)


@dataclass
class FedInputs(Inputs):
    """Inputs plus the same tensors already in another engine's form (`feeds`, e.g. the numpy
    arrays ONNX Runtime and OpenVINO take), made once by `Variant.prepare` for the module that
    `owner` names: converting per call is feeding, not the engine's latency (a deployment
    holds its inputs in the engine's form), and at batch 1 it was 10-25% of a call."""
    feeds: list = field(default_factory=list)
    owner: Any = None


class EngineModule(torch.nn.Module):
    """A module that hands its inputs to another engine (techniques/_runtime_util.py's
    RuntimeModule): `Variant.prepare` feeds it `feeds(inputs)` once per batch and calls
    `run_feeds`. Declared here so the variant knows it without importing the techniques."""

    #: the engine runs torch ops (AOTInductor): call it under the variant's grad mode
    in_torch = False

    def feeds(self, inputs: Inputs) -> list:
        raise NotImplementedError

    def run_feeds(self, feeds: list) -> Any:
        raise NotImplementedError

    def run_engine(self, feeds: list) -> Any:
        """The engine's own call, its outputs left in its own form (what a deployment of the
        saved file runs; `run_feeds` also makes them torch tensors)."""
        return self.run_feeds(feeds)


def call(model: Callable, inputs: Inputs) -> Any:
    return model(*inputs.args, **inputs.kwargs)


def primary_output(out: Any) -> torch.Tensor:
    """The tensor quality is measured on: logits / last hidden state / first tensor returned."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "last_hidden_state", "pooler_output"):
        value = getattr(out, key, None) if not isinstance(out, dict) else out.get(key)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
            try:
                return primary_output(item)
            except TypeError:
                continue
    raise TypeError(f"the model returned {type(out).__name__}, which holds no tensor to measure")
