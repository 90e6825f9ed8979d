"""What the runtime steps (ONNX Runtime, OpenVINO, AOTInductor) share.

A runtime step hands the model to another engine and returns a `RuntimeModule`: a small
nn.Module that takes the same inputs as the original (positional and keyword tensors bound by
the forward's parameter names), runs the engine, and gives back the same output structure
(the eager output's pytree spec, recorded on the example). The engine's artifact (.onnx,
OpenVINO IR .xml/.bin, AOTInductor .pt2) is written by the step into its own temporary folder,
which lives as long as the module: the exporter copies it from there, and the size shown is its
size on disk. No file a user gives is ever loaded by these steps.

Thread counts are equal in every runtime: intra-op = the measurement's torch threads, inter-op 1.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import logging
from pathlib import Path
import re
import tempfile
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence
import warnings

import torch
from torch import nn
from torch.utils import _pytree as pytree

from ..errors import UserError, clean_message
from ..model.inputs import EngineModule, Inputs

#: The extras that bring each runtime (pyproject.toml [project.optional-dependencies]).
INSTALL = {"onnx": 'pip install "quantgui[onnx]"', "openvino": 'pip install "quantgui[openvino]"'}


def missing(modules: Sequence[str], extra: str) -> Optional[str]:
    """None when every module imports, else the one-line reason with the install command.

    `find_spec` does not import: asking costs nothing at startup. A module set to None in
    sys.modules (how tests simulate an uninstalled package) counts as missing."""
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"{name} is not installed: {INSTALL[extra]}"
    return None


def exporter_reason(exc: BaseException) -> str:
    """What the ONNX exporter failed on, in one line: the op without a conversion when it says
    so (its message is a page of next steps, with terminal colour codes), else its summary."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    op = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)', overload='([^']+)'",
                   text)
    if op:
        return f"no ONNX conversion for the op {op.group(1)}.{op.group(2)}"
    summary = re.search(r"## Exception summary\s+<class '[\w.]*?(\w+)'>: ([^\n]+)", text)
    if summary:
        return clean_message(f"{summary.group(1)}: {summary.group(2)}")[:240]
    return first_line(exc)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return (clean_message(line) if line else type(exc).__name__)[:240]


@contextlib.contextmanager
def quiet():
    """Exporters and quantizers print progress bars, hints and warnings to stdout/stderr: the
    CLI's stdout is for results only (--json), so they are swallowed; failures still raise."""
    sink = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), \
                contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield sink
    finally:
        logging.disable(previous)


class Phases:
    """Seconds spent in each startup phase (export, optimize, quantize, load), checked for
    cancel between phases: a C++ export or compile cannot be interrupted midway, so a cancel
    takes effect when the phase in hand ends (the engine process will kill longer ones)."""

    def __init__(self, ctx: Any, label: str) -> None:
        self.ctx, self.label, self.seconds = ctx, label, {}

    @contextlib.contextmanager
    def phase(self, name: str, message: str):
        self.ctx.task.check()
        self.ctx.task.report("convert", len(self.seconds), len(self.seconds) + 1,
                             f"{self.label}: {message}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        self.ctx.task.check()

    def record(self) -> float:
        """Into the step report: a metric per phase and `startup_s`, also as a decision (what
        faces read to show startup apart from steady-state latency)."""
        total = sum(self.seconds.values())
        for name, secs in self.seconds.items():
            self.ctx.metrics[f"{name}_s"] = round(secs, 3)
        self.ctx.metrics["startup_s"] = round(total, 3)
        self.ctx.decide("startup_s", round(total, 3))
        self.ctx.note(f"{self.label}: startup {total:.1f} s (" + ", ".join(
            f"{k} {v:.1f} s" for k, v in self.seconds.items()) + "), shown apart from latency")
        return total


def check_plain(variant: Any, label: str) -> None:
    """Runtime steps take the FP32 eager model: what an earlier format or graph step made
    (bf16 casts, autocast, packed INT8, compiled/scripted graphs) cannot be exported to another
    engine, and the runtime's own options do quantization."""
    if variant.tags.get("compiled") or variant.tags.get("torchscript"):
        raise UserError("the model is already compiled/frozen by an earlier step; a runtime "
                        f"step ({label}) takes the eager model")
    if variant.input_dtype is not None or variant.autocast_dtype is not None \
            or variant.quantized_engine is not None or variant.tags.get("quantized_api"):
        raise UserError(f"{label} runs the FP32 model: remove the numeric-format step before "
                        f"it (use this step's own INT8 option)")
    if not isinstance(variant.module, nn.Module):
        raise UserError(f"{label} needs an nn.Module")


class Binder:
    """Binds a call's args/kwargs to the forward's parameter names, so an engine's named
    inputs are fed the right tensors whichever way the caller passed them."""

    def __init__(self, module: nn.Module, example: Inputs) -> None:
        try:
            self.signature: Optional[inspect.Signature] = inspect.signature(module.forward)
        except (TypeError, ValueError):
            self.signature = None
        self.names = list(self.bind(tuple(example.args), dict(example.kwargs)))

    def bind(self, args: tuple, kwargs: dict) -> dict[str, torch.Tensor]:
        """{parameter name: tensor} in call order (positional fallbacks named arg0, arg1...)."""
        if self.signature is not None:
            try:
                bound = self.signature.bind(*args, **kwargs).arguments
                flat: dict[str, torch.Tensor] = {}
                for name, value in bound.items():
                    param = self.signature.parameters[name]
                    if param.kind is inspect.Parameter.VAR_POSITIONAL:
                        flat.update({f"{name}_{i}": v for i, v in enumerate(value)
                                     if isinstance(v, torch.Tensor)})
                    elif param.kind is inspect.Parameter.VAR_KEYWORD:
                        flat.update({k: v for k, v in value.items()
                                     if isinstance(v, torch.Tensor)})
                    elif isinstance(value, torch.Tensor):
                        flat[name] = value
                return flat
            except TypeError:
                pass
        out = {f"arg{i}": a for i, a in enumerate(args) if isinstance(a, torch.Tensor)}
        out.update({k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
        return out

    def order(self, graph_names: Sequence[str]) -> list[Optional[str]]:
        """For each engine input (by its name), the bound name that feeds it; engines that
        renamed their inputs are fed positionally."""
        if all(n in self.names for n in graph_names):
            return list(graph_names)
        if len(graph_names) > len(self.names):
            raise UserError(f"the exported graph expects {len(graph_names)} inputs, the model "
                            f"takes {len(self.names)} tensors")
        return list(self.names[:len(graph_names)])


def output_spec(reference: Any) -> pytree.TreeSpec:
    leaves, spec = pytree.tree_flatten(reference)
    if not all(isinstance(v, torch.Tensor) for v in leaves):
        kinds = sorted({type(v).__name__ for v in leaves if not isinstance(v, torch.Tensor)})
        raise UserError(f"the model returns non-tensor values ({', '.join(kinds)}); a runtime "
                        f"step needs tensor outputs")
    return spec


class RuntimeModule(EngineModule):
    """The model as another engine runs it; called like the original.

    `run_flat(list of numpy arrays in engine input order) -> list of numpy arrays`. The module
    owns the folder its artifact lives in (deleted when the module is)."""

    def __init__(self, runtime: str, run_flat: Callable[[list], list], binder: Binder,
                 input_names: Sequence[str], spec: pytree.TreeSpec,
                 folder: Optional[tempfile.TemporaryDirectory], files: dict[str, Path],
                 fixed_shape: bool = False,
                 reopen: Optional[Callable[[dict], Callable[[list], list]]] = None,
                 in_torch: bool = False) -> None:
        super().__init__()
        self.in_torch = in_torch
        self.runtime, self.run_flat, self.binder = runtime, run_flat, binder
        self.input_names = list(input_names)
        self.feed_names = binder.order(input_names)
        self.spec, self.folder, self.files, self.fixed_shape = spec, folder, files, fixed_shape
        #: files -> a fresh run_flat: how the exporter proves a saved copy runs the same
        self.reopen = reopen

    def reopened(self, files: dict[str, Path]) -> "RuntimeModule":
        """The same model run from other copies of its files (the exporter's reload check)."""
        if self.reopen is None:
            raise RuntimeError(f"{self.runtime}: cannot reopen its files")
        return RuntimeModule(self.runtime, self.reopen(files), self.binder, self.input_names,
                             self.spec, None, dict(files), self.fixed_shape, self.reopen,
                             self.in_torch)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.run_feeds(self.feeds(Inputs(args, kwargs)))

    def feeds(self, inputs: Inputs) -> list:
        """The inputs as the engine takes them (numpy arrays in its input order); what
        `Variant.prepare` makes once per batch."""
        bound = self.binder.bind(tuple(inputs.args), dict(inputs.kwargs))
        return [bound[n].detach().cpu().contiguous().numpy() for n in self.feed_names]

    def run_feeds(self, feeds: list) -> Any:
        outs = [torch.from_numpy(o) for o in self.run_flat(feeds)]
        if len(outs) != self.spec.num_leaves:
            raise RuntimeError(f"{self.runtime} returned {len(outs)} outputs, the model "
                               f"{self.spec.num_leaves}")
        return pytree.tree_unflatten(outs, self.spec)

    def run_engine(self, feeds: list) -> Any:
        return self.run_flat(feeds)

    def artifact_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.values() if p.exists())

    def __deepcopy__(self, memo: dict) -> "RuntimeModule":
        return self  # engine sessions do not copy; nothing mutates this module after the step

    def extra_repr(self) -> str:
        return f"runtime={self.runtime}, files={[p.name for p in self.files.values()]}"


def new_folder(runtime: str) -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix=f"quantgui-{runtime}-")


class Start(NamedTuple):
    module: nn.Module
    threads: int
    folder: tempfile.TemporaryDirectory
    base: Path
    phases: "Phases"
    spec: pytree.TreeSpec


def start(variant: Any, ctx: Any, label: str, folder_name: str) -> Start:
    """What every runtime step begins with: the plain FP32 model in eval mode, the measurement's
    thread count, the step's own artifact folder, its phase timer, and the output structure
    the wrapper must rebuild (from one reference call on the example)."""
    check_plain(variant, label)
    module = variant.module.eval()
    folder = new_folder(folder_name)
    with torch.no_grad():
        reference = module(*ctx.example.args, **ctx.example.kwargs)
    return Start(module, torch.get_num_threads(), folder, Path(folder.name), Phases(ctx, label),
                 output_spec(reference))


def export_inputs(example: Inputs) -> Inputs:
    """The example grown to a batch of at least 2: torch.export specializes a dimension of
    size 1, and a batch-1 example would make a graph that only takes batch 1."""
    if example.batch_size >= 2:
        return example
    return example.map(lambda t: t.repeat(2, *([1] * (t.dim() - 1))) if t.dim() > 0 else t)


def dynamic_shapes(binder: Binder, module: nn.Module, inputs: Inputs) -> Any:
    """Batch (dim 0) of every tensor, and the sequence (dim 1) of 2-D integer inputs (token
    ids, masks) marked dynamic; Dim.AUTO lets the exporter keep a dimension static where the
    model needs it (then the graph is shape-specialized and evaluation says so)."""
    auto = torch.export.Dim.AUTO

    def dims(t: torch.Tensor) -> Optional[dict]:
        if t.dim() == 0:
            return None
        d = {0: auto}
        if t.dim() == 2 and not t.is_floating_point() and t.shape[1] > 1:
            d[1] = auto
        return d
    shapes = torch.export.ShapesCollection()
    for t in inputs.tensors():
        spec = dims(t)
        if spec:
            shapes[t] = spec
    return shapes.dynamic_shapes(module, tuple(inputs.args), dict(inputs.kwargs))


def export_onnx(module: nn.Module, example: Inputs, path: Path,
                dynamic_axes: bool = True) -> dict[str, Any]:
    """torch.onnx.export with the dynamo exporter, dynamic batch/sequence axes when asked and
    the model allows (else fixed to the example's shapes); a UserError naming the exporter's
    first line when it fails."""
    binder = Binder(module, example)
    grown = export_inputs(example)
    errors = []
    for dynamic in ((True, False) if dynamic_axes else (False,)):
        inputs = grown if dynamic else example
        try:
            with quiet():
                program = torch.onnx.export(
                    module, tuple(inputs.args), kwargs=dict(inputs.kwargs) or None, dynamo=True,
                    dynamic_shapes=dynamic_shapes(binder, module, inputs) if dynamic else None,
                    verbose=False, optimize=True)
                program.save(str(path))
            opset = _opset(program)
            return {"exporter": "torch.onnx.export (dynamo)", "opset": opset,
                    "dynamic": dynamic}
        except Exception as exc:  # noqa: BLE001 - the exporter fails in many ways; say which
            if isinstance(exc, UserError):
                raise
            errors.append(exporter_reason(exc))
    raise UserError(f"the ONNX exporter failed: {errors[-1]}")


def _opset(program: Any) -> Optional[int]:
    try:
        return int(program.model.opset_imports[""])
    except Exception:  # noqa: BLE001 - informative only
        return None


def graph_is_dynamic(shapes: Sequence[Sequence[Any]]) -> bool:
    """Engine input shapes with a symbolic batch dimension everywhere."""
    return all(len(s) == 0 or not isinstance(s[0], int) or s[0] < 0 for s in shapes)


def max_abs_diff(reference: Any, got: Any) -> float:
    ref = [t for t in pytree.tree_leaves(reference) if isinstance(t, torch.Tensor)]
    new = [t for t in pytree.tree_leaves(got) if isinstance(t, torch.Tensor)]
    diffs = [(a.float() - b.float()).abs().max().item() for a, b in zip(ref, new)
             if a.shape == b.shape and a.numel()]
    return max(diffs) if diffs else 0.0


SHAPES_HELP = ("dynamic: the saved model takes any batch size (and sequence length where the "
               "model allows). fixed: the graph is fixed to the run's example shapes; its shape "
               "arithmetic folds away, which is faster at small batches (a small transformer at "
               "batch 1 in ONNX Runtime: 122 us fixed vs 147 us dynamic), but the saved file "
               "takes only that shape.")


def calibration_batches(ctx: Any, samples: int, fixed: bool, runtime: str) -> list[Inputs]:
    """The user's training data in batches of the run's batch size (else the example), for an
    INT8 calibration; a graph `fixed` to the example's shape takes full batches only."""
    data = ctx.train
    if data is None or len(data) == 0:
        ctx.note(f"{runtime}: no training data; INT8 calibrated on the example input")
        return [ctx.example]
    bs = ctx.batch_size
    if fixed:  # round up to whole batches so a small sample count still gives one
        samples = -(-samples // bs) * bs
    batches = [inputs for inputs, _ in data.head(samples).batches(bs)]
    if fixed:
        batches = [b for b in batches if b.batch_size == bs]
        if not batches:
            ctx.note(f"{runtime}: fewer training samples than one batch; INT8 calibrated on "
                     f"the example input")
            return [ctx.example]
    return batches


def fixed_shapes(binder: Binder, example: Inputs, graph_names: Sequence[str]) -> dict:
    """Graph input name -> the example's shape for that input."""
    bound = binder.bind(tuple(example.args), dict(example.kwargs))
    return {g: list(bound[b].shape) for g, b in zip(graph_names, binder.order(graph_names))}
