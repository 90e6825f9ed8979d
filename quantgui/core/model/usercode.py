"""Telling the user's model code failing apart from QuantGUI failing.

A model's forward is the user's code, run many times by the timer and the evaluator. When it
misbehaves (raises on its second call, returns a different shape each call, calls sys.exit) that
is the user's problem and is reported as one line naming the model (exit 2), not as an internal
error (exit 1, a QuantGUI bug). The rules, applied where the model is called (Variant):

- a failure raised in QuantGUI's own code is QuantGUI's (a signal handler's SystemExit too);
- SystemExit raised by the model's code is reported, never obeyed: the run stops with an error;
- anything the original model raises is the model's failure: it is called as the user calls it;
- an optimized copy's failure is the model's only when it was raised in the model's own source
  files (a `raise` in its forward); elsewhere (torch, torchao) a step may have broken it;
- when the model had already run on inputs of the same shapes, a failure is its own; on inputs
  it never ran on, a caller that took them from a data file names that file instead
  (`ModelCodeError.new_input`; only for the original: its copy fails where the original ran).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import functools
import importlib.util
import inspect
import os
from typing import Any, Optional

import torch

from ..errors import UserError, clean_message
from .inputs import Inputs, primary_output

#: Packages whose code is not the user's model code: a failure raised inside them on an
#: optimized copy is more likely a step's doing than the model's.
LIBRARIES = ("torch", "torchao", "transformers", "quantgui")


class ModelCodeError(UserError):
    """The model's own code failed; `new_input`: on inputs of a shape it had never run on;
    `in_copy`: in an optimized copy (a step may have provoked it), not the original."""

    def __init__(self, message: str, new_input: bool = False, in_copy: bool = False) -> None:
        super().__init__(message)
        self.new_input = new_input
        self.in_copy = in_copy


@functools.lru_cache(maxsize=None)
def _package_dir(name: str) -> Optional[str]:
    try:  # find_spec of a top-level package does not import it (torchao imports slowly)
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    locations = list(getattr(spec, "submodule_search_locations", None) or [])
    return os.path.realpath(locations[0]) + os.sep if locations else None


def _in_package(filename: str, names: tuple[str, ...]) -> bool:
    real = os.path.realpath(filename)
    return any((d := _package_dir(n)) is not None and real.startswith(d) for n in names)


def _innermost(exc: BaseException) -> Optional[tuple[str, int]]:
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def ours(exc: BaseException) -> bool:
    """A SystemExit raised by QuantGUI itself (the CLI's SIGTERM handler), not by the model's
    code: it must end the process, not become an error about the model."""
    place = _innermost(exc)
    return isinstance(exc, SystemExit) and place is not None \
        and _in_package(place[0], ("quantgui",))


def _source_files(module: Any) -> frozenset[str]:
    """The files defining the model's module classes, libraries left out."""
    files = set()
    modules = module.modules() if isinstance(module, torch.nn.Module) else [module]
    for m in modules:
        try:
            path = inspect.getsourcefile(type(m))
        except (TypeError, OSError):
            continue
        if path and not _in_package(path, LIBRARIES):
            files.add(os.path.realpath(path))
    return frozenset(files)


def signature(inputs: Inputs) -> tuple:
    """What makes two inputs "the same input" for a model: shapes and dtypes, in order."""
    def sig(t: Any) -> Any:
        return (tuple(t.shape), t.dtype) if isinstance(t, torch.Tensor) else type(t).__name__
    return (tuple(sig(a) for a in inputs.args),
            tuple((k, sig(v)) for k, v in inputs.kwargs.items()))


def _reason(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return clean_message(lines[0])[:200] if lines else "(no message)"


@dataclass(eq=False)
class ModelCode:
    """Whose code a variant runs: the name errors give, and what the model did so far."""

    name: str                                   # the model as the user gave it (file, example)
    files: frozenset[str] = frozenset()         # its own source files (realpaths)
    original: bool = True                       # False: an optimized copy of it
    calls: int = 0
    #: input signature -> output shape, for every input the model ran on without failing
    shapes: dict[tuple, tuple] = field(default_factory=dict)

    @classmethod
    def of(cls, module: Any, name: str, extra_files: tuple[str, ...] = ()) -> "ModelCode":
        files = _source_files(module) | {os.path.realpath(f) for f in extra_files if f}
        return cls(name, frozenset(files))

    def copy(self) -> "ModelCode":
        """For an optimized copy: the same name and files, its own calls and shapes."""
        return ModelCode(self.name, self.files, original=False)

    def _where(self, exc: BaseException) -> str:
        place = _innermost(exc)
        if place is None or os.path.realpath(place[0]) not in self.files:
            return ""
        return f" ({os.path.basename(place[0])}, line {place[1]})"

    def _error(self, message: str, new_input: bool = False) -> ModelCodeError:
        return ModelCodeError(f"{self.name}: {message}", new_input, in_copy=not self.original)

    def blame(self, exc: BaseException, inputs: Optional[Inputs] = None
              ) -> Optional[ModelCodeError]:
        """The one-line error when `exc` is the model's fault, else None (QuantGUI's)."""
        if ours(exc):
            return None
        where = self._where(exc)
        # A copy's own count would mislead: the user's code counts every call of the model.
        call = f" on call {self.calls}" if inputs is not None and self.original else ""
        who = "the model's forward" if self.original else \
            "the model's forward (in the optimized copy)"
        if isinstance(exc, SystemExit):
            return self._error(f"the model's code called sys.exit({exc.code!r}){call}{where}; "
                               f"QuantGUI stopped instead of exiting")
        if not self.original and not where:
            return None
        kind = type(exc).__name__
        if inputs is None:
            return self._error(f"the model's code raised {kind}{where}: {_reason(exc)}")
        # A copy fails where its original ran: not a question of which inputs it was given.
        if signature(inputs) in self.shapes or not self.original:
            return self._error(f"{who} raised {kind}{call}{where}: {_reason(exc)} (it had run "
                               f"on the same input shapes before)")
        return self._error(f"the model fails on inputs {inputs.describe()} ({kind}{where}: "
                           f"{_reason(exc)})", new_input=True)

    def record(self, inputs: Inputs, out: Any) -> None:
        """Remember the output shape for these inputs; a different one later is an error."""
        try:
            shape = tuple(primary_output(out).shape)
        except TypeError:
            return  # no tensor to measure: said elsewhere, where it matters
        key = signature(inputs)
        seen = self.shapes.setdefault(key, shape)
        if seen != shape:
            who = "model's" if self.original else "model's (optimized copy)"
            raise self._error(f"the {who} output shape changed between calls on the same "
                              f"input: {seen} before, {shape} on call {self.calls}")
