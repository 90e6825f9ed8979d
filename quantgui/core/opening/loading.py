"""Open a plain PyTorch model as it is: `open_model(source, ...) -> LoadedModel`.

Sources (told apart by content, not by extension):

- `example:NAME`: a built-in digits example (trained once, then cached); its example input is
  the first `EXAMPLE_BATCH` (64) test digits, `test`/`train` are its fixed splits.
- a TorchScript archive (torch.jit.save): a zip with `code/` and `constants.pkl` entries.
- a torch.export program (torch.export.save, usually `.pt2`): a zip with `archive_format`;
  its example input is the one it was exported with.
- a state_dict (torch.save, or `.safetensors`) plus an architecture `arch`
  (`file.py:Factory` or `package.module:Factory`, see arch.py) with `arch_kwargs`.
- a whole pickled nn.Module (torch.save(model)): unpickling runs code from the file, so it is
  only done with `trust=True`; detection never unpickles (a weights-only load is tried first and
  its refusal of a non-tensor GLOBAL is what marks the file as needing trust).
- a Hugging Face folder (config.json + weights), offline (see hf.py).

Example input, first that applies: the one the model carries (examples, exported programs), an
`example_input` file (tensor / tuple / dict of tensors), `input_shape` (randn, seed 0; token ids
for a Hugging Face model), the first `DATA_EXAMPLE_BATCH` (8) samples of `data`, a Hugging Face
folder's own (tokenized sentences). Its batch size is the default batch size of a run.

`data` (see data.py) becomes `test`; when the model has no training split of its own (every
source but the examples) it is also `train`, i.e. calibration/QAT run on the evaluation data,
which a note in ModelInfo says. Every failure caused by the input is a one-line `UserError`:
weights holding NaN/Inf, an input shape too large for the memory, the model's own code exiting
or failing (see usercode.py), and data the model cannot run on (naming the data file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from . import arch as arch_specs, hf
from .. import examples, safeload
from ..errors import TrustRequired, UserError
from ..data.dataset import Dataset
from ..model.inputs import Inputs, primary_output
from ..model.loaded import LoadedModel
from ..model.usercode import ModelCode, ModelCodeError, ours
from ..model.variant import Variant
from ..progress import Task, quiet_task
from ..safeload import short_reason as _reason
from .example_input import (DATA_EXAMPLE_BATCH, HOW_TO_GIVE, ExampleInputRequired,
                            _describe_object, input_kinds, load_example_file,
                            resolve as _resolve_example)
from .inspection import check_weights, model_info
from .state_dicts import load_strict, strip_prefix

EXAMPLE_BATCH = 64          # built-in examples: the first 64 test digits
NO_EXAMPLE = f"no example input: {HOW_TO_GIVE}"
ARCH_HINT = ("--arch path/to/model.py:ClassName (and --arch-kwargs '{\"width\": 64}' if it takes "
             "arguments) on the command line, or choose the architecture file in the dialog")
# Keys under which training checkpoints commonly keep the model's weights.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")


class ArchitectureRequired(UserError):
    """The file holds only weights; the user must say which architecture they belong to."""


@dataclass
class _Opened:
    """A module plus what its source told us, before the example input is settled."""
    module: nn.Module
    format: str
    origin: dict[str, Any]
    carried: Optional[Inputs] = None        # an example input that comes with the model
    hf_model: Optional[hf.HFModel] = None
    train: Optional[Dataset] = None
    test: Optional[Dataset] = None
    name: Optional[str] = None
    notes: list[str] = field(default_factory=list)
    user_files: dict[str, str] = field(default_factory=dict)  # see LoadedModel.user_files


# --- small helpers ----------------------------------------------------------------------------

def _unreadable(path: Path, exc: BaseException) -> UserError:
    return UserError(f"{path}: cannot read this file: corrupt, truncated or not a PyTorch model "
                     f"({type(exc).__name__}: {_reason(exc)})")


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and any(isinstance(v, torch.Tensor) for v in obj.values())
            and not any(isinstance(v, Mapping) for v in obj.values()))


# --- sniffing ---------------------------------------------------------------------------------

def _sniff(path: Path) -> str:
    """'torchscript', 'exported', 'torch_save' or 'safetensors', from the file's content."""
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: the file is empty")
    infos = safeload.check_archive(path, "model file")
    if infos is not None:
        names = [i.filename for i in infos]
        if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
            return "exported"
        if any(n.endswith("data.pkl") for n in names):
            return "torch_save"
        raise UserError(f"{path}: a zip archive, but not one PyTorch wrote (no TorchScript code, "
                        f"export program or torch.save data inside)")
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "safetensors"
    if path.suffix == ".safetensors":
        raise UserError(f"{path}: not a valid safetensors file (bad header)")
    return "torch_save"  # legacy (non-zip) torch.save, or garbage: torch.load tells which


# --- the formats --------------------------------------------------------------------------------

def _open_example(source: str, task: Task) -> _Opened:
    name = source.split(":", 1)[1].strip()
    if name == "fashion-cnn":  # needs the user's Fashion-MNIST files (examples/fashion.py)
        from ..examples import fashion
        module, train, test = fashion.build(task)
    else:
        module, train, test = examples.build(name, task)
    cls = type(module).__name__
    return _Opened(module.eval(), "example",
                   {"example": name, "arch": f"quantgui.core.examples.models:{cls}", "kwargs": {}},
                   carried=test.head(EXAMPLE_BATCH).inputs, train=train, test=test,
                   notes=[f"built-in example {name}: example input is the first "
                          f"{EXAMPLE_BATCH} test "
                          f"{'images' if name == 'fashion-cnn' else 'digits'}"])


def _open_torchscript(path: Path, trust: bool) -> _Opened:
    module = safeload.load_torchscript(path, trust)
    return _Opened(module.eval(), "torchscript", {"path": str(path.resolve())})


def _frozen_mode(self: nn.Module, mode: bool = True) -> nn.Module:
    return self


def _frozen_eval(self: nn.Module) -> nn.Module:
    return self


def _open_exported(path: Path, trust: bool) -> _Opened:
    program = safeload.load_exported(path, trust)
    try:
        module = program.module()
    except Exception as exc:
        raise _unreadable(path, exc) from None
    # An exported graph is fixed in the mode it was exported in and torch raises on eval();
    # make eval()/train() harmless so the engine can treat it like any module.
    module.eval = _frozen_eval.__get__(module)
    module.train = _frozen_mode.__get__(module)
    carried = None
    if program.example_inputs is not None:
        args, kwargs = program.example_inputs
        carried = Inputs(tuple(args), dict(kwargs or {}))
    notes = ["exported program: runs in the mode it was exported in, with the shapes it was "
             "exported for"]
    return _Opened(module, "exported", {"path": str(path.resolve())}, carried=carried,
                   notes=notes)


def _from_state_dict(state: Mapping, path: Path, arch: Optional[str],
                     arch_kwargs: Optional[dict], notes: list[str]) -> _Opened:
    if not arch:
        what = f"{path}: holds only weights (a state_dict of {len(state)} entries), not a model"
        raise ArchitectureRequired(f"{what}; say which architecture they belong to: "
                                   f"{ARCH_HINT}").for_gui(what)
    model, canonical = arch_specs.build(arch, arch_kwargs)
    state, note = strip_prefix(state, model)
    if note:
        notes.append(note)
    load_strict(model, state, path, arch)
    origin = {"arch": canonical, "kwargs": dict(arch_kwargs or {}), "weights": str(path.resolve())}
    return _Opened(model.eval(), "state_dict", origin, notes=notes)


def _open_safetensors(path: Path, arch: Optional[str], arch_kwargs: Optional[dict]) -> _Opened:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise UserError(f"{path}: reading .safetensors needs the safetensors package: "
                        f"{hf.INSTALL_HINT}") from None
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:
        raise _unreadable(path, exc) from None
    if not state:
        raise UserError(f"{path}: the safetensors file holds no tensors")
    return _from_state_dict(state, path, arch, arch_kwargs, ["weights from a safetensors file"])


def _open_torch_save(path: Path, arch: Optional[str], arch_kwargs: Optional[dict],
                     trust: bool) -> _Opened:
    try:
        obj = safeload.load_weights(path, "model file", can_trust=True)
    except TrustRequired:
        if not trust:
            raise
        obj = safeload.unpickle_trusted(path, "model file")

    origin = {"path": str(path.resolve())}
    if isinstance(obj, nn.Module):
        notes = ["whole pickled model, unpickled because you trusted it"]
        if arch:
            notes.append("--arch ignored: the file holds the whole model")
        return _Opened(obj.eval(), "pickled", origin, notes=notes)
    if _is_state_dict(obj):
        return _from_state_dict(obj, path, arch, arch_kwargs, [])
    if isinstance(obj, Mapping):
        for key in CHECKPOINT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return _Opened(inner.eval(), "pickled", {**origin, "key": key},
                               notes=[f"the model stored under '{key}' in the checkpoint"])
            if _is_state_dict(inner):
                return _from_state_dict(inner, path, arch, arch_kwargs,
                                        [f"weights from the '{key}' entry of the checkpoint"])
    raise UserError(f"{path}: holds {_describe_object(obj)}, not a model or a state_dict")


def _open_path(path: Path, arch: Optional[str], arch_kwargs: Optional[dict],
               trust: bool) -> _Opened:
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        if not hf.is_hf_folder(path):
            raise UserError(f"{path}: a folder, but not a Hugging Face model (no config.json)")
        model = hf.load(path, trust)
        return _Opened(model.module, "huggingface", model.origin, hf_model=model,
                       name=model.name, notes=list(model.notes))
    kind = _sniff(safeload.regular_file(path, "model file"))
    if kind in ("torchscript", "exported"):
        opened = (_open_torchscript(path, trust) if kind == "torchscript"
                  else _open_exported(path, trust))
        if arch:
            opened.notes.append("--arch ignored: the file carries its own architecture")
        return opened
    if kind == "safetensors":
        return _open_safetensors(path, arch, arch_kwargs)
    return _open_torch_save(path, arch, arch_kwargs, trust)


# --- example input and data -------------------------------------------------------------------

def _check_example(baseline: Variant, example: Inputs, source: str,
                   data_path: Any = None) -> list[int]:
    """Run the model once: a wrong input shape is caught now, with a clear message naming the
    data file when the example came from it (then --input-shape is no help). Returns the
    output's shape (preflight checks labels against it)."""
    try:
        out = baseline.checked(example)
    except ModelCodeError as exc:
        if not exc.new_input:
            raise
        cause = exc.__cause__ or exc
        if data_path is not None:
            raise UserError(f"{data_path}: the model fails on this data's inputs "
                            f"{example.describe()} ({type(cause).__name__}: {_reason(cause)})") \
                from None
        what = (f"{source}: the model fails on the example input {example.describe()} "
                f"({type(cause).__name__}: {_reason(cause)})")
        raise UserError(f"{what}; give a matching --example-input or --input-shape"
                        ).for_gui(what) from None
    try:
        return [int(n) for n in primary_output(out).shape]
    except TypeError as exc:
        raise UserError(f"{source}: {exc}") from None


def _check_data(baseline: Variant, data: Dataset, path: Any, samples: int) -> None:
    head = data.head(samples)
    try:
        out = primary_output(baseline.checked(head.inputs))
    except ModelCodeError as exc:
        if not exc.new_input:
            raise
        cause = exc.__cause__ or exc
        raise UserError(f"{path}: the model fails on this data's inputs "
                        f"{head.inputs.describe()} ({type(cause).__name__}: {_reason(cause)})") \
            from None
    classes = data.classes or []
    if classes and out.dim() == 2 and len(classes) != out.shape[-1]:
        names = ", ".join(classes[:4]) + (", ..." if len(classes) > 4 else "")
        raise UserError(f"{path}: {len(classes)} classes ({names}) but the model has "
                        f"{int(out.shape[-1])} outputs; labels must match the model's classes")
    if data.labels is None or len(data.labels) == 0:
        return
    low, high = int(data.labels.min()), int(data.labels.max())
    if low < 0:
        raise UserError(f"{path}: labels must be class indices from 0 (found {low})")
    if out.dim() >= 2 and high >= out.shape[-1]:
        n = int(out.shape[-1])
        raise UserError(f"{path}: labels do not match the model's {n} outputs "
                        f"(labels go up to {high})")


def _data_path(data: Any) -> Any:
    return getattr(data, "path", data)


def _open_data(opened: _Opened, data: Any, task: Task) -> Any:
    """The user's data (a path or a DataSpec) as data.OpenedData, or None."""
    if data is None:
        return None
    from ..data.open import open_data
    from ..data.spec import is_code_spec
    user_data = open_data(data, opened.hf_model, task)
    path = str(_data_path(data))
    if not is_code_spec(path):
        opened.user_files["data file"] = str(Path(path).expanduser().resolve())
    calib = getattr(data, "calib_path", None)
    if calib:
        opened.user_files["calibration data"] = str(Path(calib).expanduser().resolve())
    opened.origin["data"] = (data.to_json() if hasattr(data, "to_json")
                             else {"path": path})
    return user_data


def _code_of(opened: _Opened, source: str) -> ModelCode:
    arch = str(opened.origin.get("arch") or "")
    arch_file = arch.rsplit(":", 1)[0] if ":" in arch else ""
    files = (arch_file,) if arch_file and Path(arch_file).is_file() else ()
    return ModelCode.of(opened.module, source, files)


def _open(source: str, arch: Optional[str], arch_kwargs: Optional[dict], trust: bool,
          task: Task) -> _Opened:
    """Open the model; its own code (an architecture file, a trusted pickle, a Hugging Face
    folder's code) calling sys.exit is reported, not obeyed."""
    try:
        if source.startswith("example:"):
            return _open_example(source, task)
        return _open_path(Path(source).expanduser(), arch, arch_kwargs, trust)
    except SystemExit as exc:
        if ours(exc):
            raise
        raise UserError(f"{arch or source}: opening the model ran code that called "
                        f"sys.exit({exc.code!r}); QuantGUI stopped instead of exiting") from None


# --- the entry point ----------------------------------------------------------------------------

def open_model(source: str | Path, arch: Optional[str] = None,
               arch_kwargs: Optional[dict] = None, trust: bool = False,
               example_input: Optional[str | Path] = None,
               input_shape: Optional[Sequence[int]] = None,
               data: Any = None, task: Optional[Task] = None,
               input_dtype: Optional[str] = None, example_text: Optional[Sequence[str]] = None,
               need_example: bool = True) -> LoadedModel:
    """Open `source` with its example input (see the module docstring). Without one:
    `ExampleInputRequired` (carrying the ModelInfo computed without running the model), or,
    with `need_example=False` (inspecting), a LoadedModel whose `example` is None."""
    task = task or quiet_task()
    source = str(source)
    task.report("load", 0, None, f"opening {source}")
    if arch_kwargs is not None and not isinstance(arch_kwargs, dict):
        raise UserError("architecture arguments must be a JSON object like {\"width\": 64}")
    opened = _open(source, arch, arch_kwargs, trust, task)
    task.check()
    check_weights(opened.module, source)
    code = _code_of(opened, source)
    baseline = Variant.baseline(opened.module, code)

    user_data = _open_data(opened, data, task)
    dataset = user_data.test if user_data is not None else None
    example = _resolve_example(opened, source, example_input, input_shape, input_dtype,
                               example_text, dataset)
    if example is None:
        # What can be said without running the model (format, size, layers, applicability).
        task.report("load", 0, None, "inspecting the model")
        info = model_info(opened.module, source, opened.format, None, name=opened.name,
                          notes=opened.notes)
        if need_example:
            raise ExampleInputRequired(f"{source}: {NO_EXAMPLE}", info,
                                       input_kinds(opened.format, source))
        task.report("load", 1, 1, f"opened {info.name} (no example input)")
        return LoadedModel(opened.module, info, None, origin=opened.origin,
                           user_files=opened.user_files, code=code)
    from_data = _data_path(data) if (dataset is not None and opened.carried is None and example_input is None
                         and input_shape is None and example_text is None) else None
    output_shape = _check_example(baseline, example, source, from_data)
    test, train = opened.test, opened.train
    if dataset is not None:
        # An exported graph is specialised to its example's shapes, batch included.
        samples = example.batch_size if opened.format == "exported" else 2
        _check_data(baseline, dataset, _data_path(data), samples)
        test = dataset
        shared = user_data.train is user_data.test
        if train is None or not shared:
            train = user_data.train
            opened.notes += user_data.notes
        else:
            opened.notes += [n for n in user_data.notes if not n.startswith("no separate")]
    task.check()
    task.report("load", 0, None, "inspecting the model")
    info = model_info(opened.module, source, opened.format, example, name=opened.name,
                      notes=opened.notes)
    info.output_shape = output_shape
    task.report("load", 1, 1, f"opened {info.name}")
    return LoadedModel(opened.module, info, example, test=test, train=train,
                       origin=opened.origin, user_files=opened.user_files, code=code)


__all__ = ["open_model", "load_example_file", "TrustRequired", "ArchitectureRequired",
           "ExampleInputRequired", "EXAMPLE_BATCH", "DATA_EXAMPLE_BATCH"]
