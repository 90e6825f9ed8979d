"""Save an optimized model in a format that holds it, reload it, and prove it still matches.

Which format fits depends on what the steps made of the model (see docs torch-cpu.md
"Serialization"):

| the variant | tried in order | why |
|---|---|---|
| TorchScript already (freeze) | TorchScript | it is its own artifact |
| legacy `torch.ao` quantized (dynamic/static INT8) | TorchScript (script, then trace), state_dict | `torch.export` fails on packed params |
| torchao tensor-subclass weights, PT2E graphs | torch.export `.pt2`, state_dict | whole-model pickling of torchao fails |
| float (FP32/BF16/FP16, pruned, channels-last) | torch.export `.pt2`, TorchScript, state_dict | a `.pt2` loads without the architecture code |
| compiled (`torch.compile`) | the eager module underneath, as above | compiled kernels live in the process only |
| another runtime (ONNX Runtime, OpenVINO, AOTInductor) | its own artifact: `.onnx`, IR `.xml/.bin`, `.pt2` package (runtime_artifact.py) | that is what was measured |

How a variant is called (input dtype cast, channels-last inputs) is baked into TorchScript and
`.pt2` files, so they take the same inputs as the original model. A state_dict cannot carry
that, so it is written with a sidecar JSON (recipe + how to call) next to it.

Every file is serialized into memory, written from Python to a temp file (torch's own zip
writer aborts the process when the disk fills under it; Python's write raises a clean ENOSPC),
reloaded from there and run on the example input; only when its output matches the in-memory
variant (max abs difference within a tolerance set by the lowest precision involved) is it moved
into place. Cancel or failure leaves nothing behind.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
import io
import json
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from .. import safeload
from ..errors import Cancelled, TrustRequired, UserError
from ..measure import eager_module, has_tensor_subclass_weights
from ..model.inputs import Inputs
from ..model.variant import Variant
from ..progress import Task, quiet_task
from .atomic import PathLike, _folder_error, ensure_writable_dir, staged
from .runtime_artifact import ARTIFACTS, is_runtime, save_runtime
from .space import NoSpace, is_no_space
from .variant_io import (ORDER, TOLERANCE, WHY, CallAs, ReloadCheck, _flat, classify, compare,
                         deployable, precision_of)

FORMATS = ("torchscript", "exported", "state_dict")
FILE_NAMES = {"torchscript": "{name}.torchscript.pt", "exported": "{name}.pt2",
              "state_dict": "{name}.state_dict.pt"}


class ExportCheckFailed(RuntimeError):
    """The saved file, reloaded, does not reproduce the in-memory model's outputs."""


@dataclass
class SavedModel:
    path: Path                      # the model file
    format: str                     # "torchscript" | "exported" | "state_dict"
    reason: str                     # why this format (and why earlier ones were not used)
    check: ReloadCheck
    files: list[Path] = field(default_factory=list)   # every file written (model + sidecar)
    attempts: list[dict] = field(default_factory=list)  # [{"format", "ok", "detail"}]
    how_to_load: str = ""            # a few lines of Python
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "reason": self.reason,
                "check": self.check.to_json(), "files": [str(f) for f in self.files],
                "attempts": list(self.attempts), "how_to_load": self.how_to_load,
                "notes": list(self.notes)}

    def describe(self) -> str:
        lines = [f"saved {self.path} as {self.format}: {self.reason}", self.check.describe()]
        lines += self.notes
        return "\n".join(lines)


# ---- writers and loaders ---------------------------------------------------------------------

def _write_torchscript(variant: Variant, module: Any, example: Inputs, buf: io.BytesIO) -> str:
    target, flat, wrapped = deployable(variant, module, example)
    with variant.context():
        if isinstance(module, torch.jit.ScriptModule):
            if isinstance(variant.tags.get("eager_module"), nn.Module):
                return _refreeze(variant, example, buf)
            torch.jit.save(module, buf)
            return "saved as it is"
        errors = []
        if not wrapped:
            try:
                torch.jit.save(torch.jit.script(target), buf)
                return "torch.jit.script"
            except Exception as exc:  # scripting fails on much Python; tracing is next
                errors.append(f"script: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        try:
            traced = torch.jit.trace(target, flat, check_trace=False, strict=False)
        except Exception as exc:
            errors.append(f"trace: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            raise RuntimeError("; ".join(errors)) from exc
        torch.jit.save(traced, buf)
        return "torch.jit.trace" + (" (scripting failed)" if errors else "")


def _refreeze(variant: Variant, example: Inputs, buf: io.BytesIO) -> str:
    """Freeze again from the eager module, with the input conversion traced in.

    Two reasons not to save the frozen module itself: a frozen ScriptModule cannot be wrapped
    (TorchScript refuses it as a submodule), and `optimize_for_inference` leaves prepacked
    oneDNN weights that `torch.jit.save` writes but `torch.jit.load` cannot read back
    ("required keyword attribute 'value' is undefined"). So the file is frozen, not optimized.
    """
    eager = variant.tags["eager_module"]
    wrapper, flat, _ = deployable(variant, eager, example)
    traced = torch.jit.trace(wrapper.eval(), flat, check_trace=False, strict=False)
    torch.jit.save(torch.jit.freeze(traced), buf)
    return "torch.jit.trace + freeze, rebuilt from the eager module"


def _write_exported(variant: Variant, module: Any, example: Inputs, buf: io.BytesIO) -> str:
    target, flat, _ = deployable(variant, module, example)
    with variant.context():
        try:  # a dynamic batch dimension makes the file useful at other batch sizes
            shapes = torch.export.ShapesCollection()
            for t in flat:
                if t.dim() > 0:
                    shapes[t] = {0: torch.export.Dim.AUTO}
            program = torch.export.export(target, flat, strict=False,
                                          dynamic_shapes=shapes.dynamic_shapes(target, flat))
            how = "torch.export, dynamic batch"
        except Exception:
            program = torch.export.export(target, flat, strict=False)
            how = "torch.export, fixed batch size"
    torch.export.save(program, buf)
    return how


def _load_state_dict(path: Path) -> tuple[dict, bool]:
    try:
        return safeload.load_weights(path, "exported state_dict", can_trust=True), True
    except TrustRequired:
        # Legacy packed INT8 params are not plain tensors; this file is the one we just wrote.
        return safeload.unpickle_trusted(path, "exported state_dict"), False


def _write_state_dict(variant: Variant, module: Any, example: Inputs, buf: io.BytesIO) -> str:
    if not hasattr(module, "state_dict"):
        raise RuntimeError("the model has no state_dict")
    torch.save(module.state_dict(), buf)
    return "torch.save(state_dict)"


def _state_dict_note(tmp: Path) -> str:
    _, safe = _load_state_dict(tmp)
    return "" if safe else "; loads only with weights_only=False"


def _reloaded(fmt: str, tmp: Path, variant: Variant, module: Any) -> Callable[[Inputs], Any]:
    """A function running the reloaded file on raw (unprepared) inputs."""
    if fmt in ("torchscript", "exported"):
        with variant.context():  # legacy packed weights are re-packed for the engine at load
            # The file QuantGUI has just written: trusted (its own INT8 packing may pickle).
            loaded = (safeload.load_torchscript(tmp, trust=True) if fmt == "torchscript"
                      else safeload.load_exported(tmp, trust=True).module())
        def run(inputs: Inputs) -> Any:
            flat, _ = _flat(inputs)
            with variant.context():
                return loaded(*flat)
        return run
    state, _ = _load_state_dict(tmp)
    fresh = copy.deepcopy(module)
    # Zero the plain float tensors first, so the check proves the values came from the file.
    with torch.no_grad():
        for t in fresh.state_dict().values():
            if type(t) in (torch.Tensor, nn.Parameter) and t.is_floating_point():
                t.zero_()
    try:
        fresh.load_state_dict(state)
    except Exception:
        fresh.load_state_dict(state, assign=True)  # torchao subclasses replace the params
    rebuilt = variant.evolve(module=fresh)
    return lambda inputs: rebuilt.run_prepared(rebuilt.prepare(inputs))



HOW_TO_LOAD = {
    "torchscript": "import torch\n{engine}model = torch.jit.load({path!r})\nout = model({args})",
    "exported": "import torch\n{torchao}model = torch.export.load({path!r}).module()\n"
                "out = model({args})",
    "state_dict": "import torch\n# rebuild the architecture and apply the recipe in {sidecar} "
                  "(or run the exported script), then:\n{engine}state = torch.load({path!r}, "
                  "weights_only={safe})\nmodel.load_state_dict(state)",
}


WRITERS = {"torchscript": _write_torchscript, "exported": _write_exported,
           "state_dict": _write_state_dict}


def save_model(variant: Variant, example: Inputs, out_dir: PathLike, *, name: str = "model",
               fmt: str = "auto", recipe: Any = None, steps: Optional[list] = None,
               protected: Optional[list] = None, task: Optional[Task] = None) -> SavedModel:
    """Save `variant` into `out_dir`, verified by reloading; see the module docstring.

    `fmt` is "auto" (the order in the table above) or one format to force. `protected` lists
    files never to overwrite (the model the user opened). A forced format that does not match
    on reload raises `ExportCheckFailed`; in "auto" a mismatch rejects that format (recorded in
    `attempts` and `reason`) and the next one is tried, raising only when none works.
    """
    task = task or quiet_task()
    example = Inputs.of(example)
    out_dir = ensure_writable_dir(out_dir)
    if is_runtime(variant):  # another runtime's model: its own artifact (runtime_artifact.py)
        if fmt not in ("auto", ARTIFACTS[variant.tags["runtime"]][0]):
            raise UserError(f"this model runs in {variant.tags['runtime']}: it saves only as "
                            f"{ARTIFACTS[variant.tags['runtime']][0]} (format auto)")
        return save_runtime(variant, example, out_dir, name, protected, task, "float32")
    kind, module, notes = classify(variant)
    if fmt == "auto":
        order = ORDER[kind]
    elif fmt in FORMATS:
        order = (fmt,)
    else:
        raise UserError(f"unknown model format '{fmt}'; choose auto, {', '.join(FORMATS)}")
    precision = precision_of(variant, module, kind)
    reference = variant(example)
    attempts: list[dict] = []
    total = 3 * len(order)
    for i, fmt_i in enumerate(order):
        target = out_dir / FILE_NAMES[fmt_i].format(name=name)
        try:
            with staged(task, protected) as stage:
                task.report("export", 3 * i, total, f"saving as {fmt_i}")
                buf = io.BytesIO()
                try:
                    how = WRITERS[fmt_i](variant, module, example, buf)
                except (UserError, Cancelled, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    if isinstance(exc, OSError) and exc.errno is not None:
                        # a disk problem (full, read-only) is not a format problem
                        if is_no_space(exc):
                            raise NoSpace(target) from exc
                        raise _folder_error(out_dir, exc) from exc
                    attempts.append({"format": fmt_i, "ok": False,
                                     "detail": f"could not save: {type(exc).__name__}: "
                                               f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"})
                    raise _Skip() from exc
                tmp = stage.write_bytes(target, buf.getbuffer())
                del buf  # the bytes are on disk: do not hold a second copy of the model
                task.report("export", 3 * i + 1, total, f"reloading the {fmt_i} file to check it")
                try:
                    if fmt_i == "state_dict":
                        how += _state_dict_note(tmp)
                    check = compare(reference, _reloaded(fmt_i, tmp, variant, module)(example),
                                    precision)
                except Cancelled:
                    raise
                except Exception as exc:
                    attempts.append({"format": fmt_i, "ok": False,
                                     "detail": f"saved, but reloading failed: "
                                               f"{type(exc).__name__}: {str(exc)[:300]}"})
                    raise _Skip() from exc
                if not check.passed:
                    attempts.append({"format": fmt_i, "ok": False,
                                     "detail": f"reloaded output differs: {check.describe()}"})
                    if fmt != "auto" or i == len(order) - 1:
                        raise ExportCheckFailed(
                            f"the {fmt_i} file does not reproduce the model: "
                            f"{check.describe()}; nothing was saved")
                    raise _Skip()
                attempts.append({"format": fmt_i, "ok": True, "detail": how})
                files = [target]
                if fmt_i == "state_dict":
                    sidecar = out_dir / f"{name}.recipe.json"
                    stage.write_text(sidecar, json.dumps(
                        _sidecar(variant, recipe, steps, target, precision), indent=2))
                    files.append(sidecar)
                task.report("export", 3 * i + 2, total, f"writing {target.name}")
        except _Skip:
            continue
        if not task.cancelled:  # the file is in place: a late cancel must not claim otherwise
            task.report("export", total, total, f"saved {target.name}")
        reason = _reason(kind, fmt_i, how, attempts)
        return SavedModel(target, fmt_i, reason, check, files, attempts,
                          _how_to_load(fmt_i, target, variant, example, files, attempts),
                          notes + _call_notes(variant, fmt_i))
    tried = "; ".join(f"{a['format']}: {a['detail']}" for a in attempts)
    raise ExportCheckFailed(f"no format could save this model ({tried})")


class _Skip(Exception):
    """This format did not work; its staged file is discarded and the next one is tried."""


def _reason(kind: str, fmt: str, how: str, attempts: list[dict]) -> str:
    failed = [f"{a['format']} was tried first ({a['detail']})" for a in attempts if not a["ok"]]
    text = f"{fmt} via {how}: {WHY[kind]}"
    if fmt == "state_dict":
        text = ("state_dict plus the recipe: neither TorchScript nor torch.export "
                "reproduced this model" if failed else f"state_dict ({how})")
    return text + (". " + "; ".join(failed) if failed else "")


def _call_notes(variant: Variant, fmt: str) -> list[str]:
    notes = []
    if variant.quantized_engine:
        notes.append(f"set torch.backends.quantized.engine = '{variant.quantized_engine}' before "
                     f"loading and calling it (the engine its INT8 weights were packed for)")
    baked = [what for what, on in (("a cast of float inputs to "
                                    f"{str(variant.input_dtype).replace('torch.', '')}",
                                    variant.input_dtype is not None),
                                   ("channels-last inputs", variant.channels_last),
                                   ("autocast", variant.autocast_dtype is not None)) if on]
    if baked:
        where = ("is baked into the file: call it with the original inputs"
                 if fmt != "state_dict" else "is NOT in a state_dict: see the sidecar JSON")
        verb = "is" if len(baked) == 1 else "are"
        notes.append(f"{' and '.join(baked)} {verb} {where.split(' ', 1)[1]}")
    graph = str(variant.tags.get("graph", ""))
    if fmt == "torchscript" and "optimize_for_inference" in graph \
            and "optimize_for_inference failed" not in graph:
        notes.append("the file is frozen but not passed through optimize_for_inference (its "
                     "prepacked oneDNN weights do not reload): call "
                     "torch.jit.optimize_for_inference(model) after loading")
    if variant.grad_mode == "inference_mode":
        notes.append("call it under torch.inference_mode() as the optimized run did")
    return notes


def _sidecar(variant: Variant, recipe: Any, steps: Optional[list], target: Path,
             precision: str) -> dict:
    return {"state_dict": target.name,
            "recipe": recipe.to_json() if hasattr(recipe, "to_json") else recipe,
            "steps": [s.to_json() if hasattr(s, "to_json") else s for s in (steps or [])],
            "call": {"input_dtype": str(variant.input_dtype) if variant.input_dtype else None,
                     "channels_last": variant.channels_last, "grad_mode": variant.grad_mode,
                     "autocast_dtype": (str(variant.autocast_dtype)
                                        if variant.autocast_dtype else None),
                     "quantized_engine": variant.quantized_engine},
            "precision": precision,
            "how": "rebuild the architecture, apply the recipe's steps, then load_state_dict"}


def _how_to_load(fmt: str, target: Path, variant: Variant, example: Inputs, files: list,
                 attempts: list) -> str:
    flat, names = _flat(example)
    args = ", ".join([f"x{i}" for i in range(len(flat) - len(names))] + list(names))
    engine = (f"torch.backends.quantized.engine = {variant.quantized_engine!r}\n"
              if variant.quantized_engine else "")
    safe = "weights_only=False" not in attempts[-1]["detail"]
    return HOW_TO_LOAD[fmt].format(
        path=str(target), args=args, engine=engine, safe=safe,
        sidecar=files[-1].name if len(files) > 1 else "the recipe",
        torchao="import torchao  # its tensor subclasses must be registered\n"
        if has_tensor_subclass_weights(eager_module(variant.module, variant.tags)) else "")


__all__ = ["CallAs", "ExportCheckFailed", "FORMATS", "ReloadCheck", "SavedModel", "TOLERANCE",
           "classify", "compare", "precision_of", "save_model"]
