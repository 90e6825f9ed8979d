"""A runnable model variant: the module plus how it must be called.

Some optimizations change the module (quantization, pruning, casting); others change how it is
called (grad mode, autocast, input dtype, memory format). A `Variant` carries both, so the
timer, the evaluator and the exporter all call it the same way. Outputs come back as float32.

A variant of the user's model carries `code` (usercode.ModelCode): every call counts, and a
failure of the model's own code (an exception, sys.exit, an output shape that changes between
calls) becomes a one-line `ModelCodeError` naming the model instead of an internal error.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

import torch

from ..errors import Cancelled, UserError
from .inputs import EngineModule, FedInputs, Inputs, call, primary_output
from .usercode import ModelCode


@contextlib.contextmanager
def quantized_engine(name: str):
    previous = torch.backends.quantized.engine
    if previous != name:
        torch.backends.quantized.engine = name
    try:
        yield
    finally:
        if torch.backends.quantized.engine != previous:
            torch.backends.quantized.engine = previous


@dataclass
class Variant:
    module: Callable[..., Any]
    #: Floating-point inputs are cast to this dtype before the call (bf16/fp16 casts).
    input_dtype: Optional[torch.dtype] = None
    #: 4-D inputs are converted to channels-last before the call.
    channels_last: bool = False
    #: "no_grad" (the baseline: a sensible user's eval call) or "inference_mode".
    grad_mode: str = "no_grad"
    #: Run under torch.autocast("cpu", dtype) when set.
    autocast_dtype: Optional[torch.dtype] = None
    #: torch.backends.quantized.engine the module's packed weights were made for; it is a
    #: process-wide setting, so it is set around every call (before/after interleave).
    quantized_engine: Optional[str] = None
    #: Free-form facts steps leave for later steps, the verdict and the exporter,
    #: e.g. {"quantized_api": "torch.ao eager", "engine": "onednn", "compiled": True}.
    tags: dict[str, Any] = field(default_factory=dict)
    #: Whose code this runs (None: nobody's to blame but QuantGUI, e.g. in tests).
    code: Optional[ModelCode] = None

    @classmethod
    def baseline(cls, module: Callable[..., Any], code: Optional[ModelCode] = None) -> "Variant":
        return cls(module=module, code=code)

    def evolve(self, **changes: Any) -> "Variant":
        return replace(self, tags=dict(self.tags), **changes)

    def prepare(self, inputs: Inputs) -> Inputs:
        def conv(t: torch.Tensor) -> torch.Tensor:
            if self.input_dtype is not None and t.is_floating_point():
                t = t.to(self.input_dtype)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if self.input_dtype is not None or self.channels_last:
            inputs = inputs.map(conv)
        if isinstance(self.module, EngineModule):  # another engine, fed its own arrays
            return FedInputs(inputs.args, inputs.kwargs, self.module.feeds(inputs), self.module)
        return inputs

    def context(self) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode() if self.grad_mode == "inference_mode"
                            else torch.no_grad())
        if self.autocast_dtype is not None:
            stack.enter_context(torch.autocast("cpu", dtype=self.autocast_dtype))
        if self.quantized_engine is not None:
            stack.enter_context(quantized_engine(self.quantized_engine))
        return stack

    def run_prepared(self, prepared: Inputs) -> Any:
        """Call on inputs already passed through `prepare` (what the timer measures).

        Without autocast the ExitStack of `context()` is skipped: at batch 1 a model call can
        take ~0.1 ms, and its few microseconds per call measured 3-10% slower than the same
        model called by hand (tests/benchmarks/bench.py --batch 1). The try costs nothing
        until something is raised.
        """
        code = self.code
        if code is not None:
            code.calls += 1
        try:
            fed = isinstance(prepared, FedInputs) and prepared.owner is self.module
            if fed and not self.module.in_torch:
                # another engine: no autograd to switch off, inputs already in its form
                return self.module.run_feeds(prepared.feeds)
            if self.autocast_dtype is not None:
                with self.context():
                    return call(self.module, prepared)
            grad = torch.inference_mode if self.grad_mode == "inference_mode" else torch.no_grad
            if fed:  # AOTInductor: torch ops, under the grad mode
                with grad():
                    return self.module.run_feeds(prepared.feeds)
            engine = self.quantized_engine
            previous = torch.backends.quantized.engine if engine is not None else None
            if previous == engine:  # no engine, or already the right one
                with grad():
                    return call(self.module, prepared)
            torch.backends.quantized.engine = engine
            try:
                with grad():
                    return call(self.module, prepared)
            finally:
                torch.backends.quantized.engine = previous
        except (Cancelled, UserError):
            raise
        except (Exception, SystemExit) as exc:
            blamed = code.blame(exc, prepared) if code is not None else None
            if blamed is None:
                raise
            raise blamed from exc

    def timed(self, prepared: Inputs) -> Any:
        """What the timer calls: `run_prepared`, except that another engine's outputs stay in
        its own arrays. Turning them into torch tensors (for QuantGUI's quality checks) is the
        mirror of feeding it, not the engine's latency: a deployment of the saved .onnx or IR
        gets the arrays. Measured: 5-13 us a call, 5-7% of ONNX Runtime's call on a small
        transformer at batch 1 (tests/benchmarks/peers.py against the same file run by hand)."""
        if isinstance(prepared, FedInputs) and prepared.owner is self.module \
                and not self.module.in_torch:
            return self.module.run_engine(prepared.feeds)
        return self.run_prepared(prepared)

    def checked(self, prepared: Inputs) -> Any:
        """`run_prepared`, plus the check that the output shape for this input never changes
        (outside the timed calls: it costs about a microsecond)."""
        out = self.run_prepared(prepared)
        if self.code is not None:
            self.code.record(prepared, out)
        return out

    def __call__(self, inputs: Inputs) -> torch.Tensor:
        """Call and reduce to one float32 tensor (what quality is measured on)."""
        out = primary_output(self.checked(self.prepare(inputs)))
        return out.detach().float() if out.is_floating_point() else out.detach()

    def copy(self) -> "Variant":
        """A deep copy of the module; what steps receive so the original is never touched."""
        return self.evolve(module=copy.deepcopy(self.module),
                           code=self.code.copy() if self.code is not None else None)
