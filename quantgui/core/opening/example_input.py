"""Example inputs from files and shapes, and the short error texts loading shares.

Split from loading.py: reading a user's example-input file (a tensor, tuple or dict of tensors,
or the {"args", "kwargs"} form QuantGUI's exports write beside a saved model) is its own job, as
are random inputs of a shape and dtype, and `ExampleInputRequired`, the refusal that says what
would do when a model (TorchScript, a pickled module, a state_dict) carries no input of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .. import safeload
from ..errors import UserError
from ..model.inputs import Inputs
from .shapes import DTYPE_NAMES, dtype_key, parse_shape  # noqa: F401 (parse_shape: API)

#: What an example input can come from (the GUI's dialog offers these; "text" only for a
#: Hugging Face folder with a tokenizer).
KINDS = ("file", "shape", "data")
#: The data types an input shape can be made in (--input-dtype); token ids are int64.
DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
INPUT_SHAPE_SEED = 0
DATA_EXAMPLE_BATCH = 8      # example input taken from a data file
#: Random integer inputs are drawn from [0, this) unless the model has an embedding (then its
#: smallest vocabulary bounds them: an index past it would fail, not measure).
DEFAULT_INT_HIGH = 100
#: How to give one, in the CLI's words (the GUI's dialog offers the same).
HOW_TO_GIVE = ("give --example-input FILE, --input-shape 8,3,224,224 [--input-dtype int64], "
               "or --data FILE")


class ExampleInputRequired(UserError):
    """The model opened, but nothing says what to feed it (a TorchScript archive, a pickled
    module, a state_dict carry no input). `info` is the ModelInfo computed without running it;
    `kinds` what would do (see KINDS)."""

    def __init__(self, message: str, info: Any = None, kinds: Sequence[str] = KINDS) -> None:
        super().__init__(message)
        self.info = info
        self.kinds = tuple(kinds)


def _few(keys: Sequence[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _describe_object(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {_few([str(k) for k in obj])}"
    return f"a {type(obj).__name__}"


def load_example_file(path: str | Path) -> Inputs:
    """A tensor, tuple/list or dict of tensors saved with torch.save (or an .npz of arrays);
    one without samples or holding NaN/Inf is refused (timings and fidelity would be garbage)."""
    from ..model.data import check_inputs
    inputs = _read_example_file(path)
    check_inputs(inputs, path)
    return inputs


def _read_example_file(path: str | Path) -> Inputs:
    what = "example input file"
    path = safeload.regular_file(path, what)
    if path.suffix == ".npz":
        arrays = {k: torch.from_numpy(a) for k, a in safeload.load_npz(path, what).items()}
        value: Any = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    else:
        value = safeload.load_weights(path, what)
    if isinstance(value, Mapping) and set(value) == {"args", "kwargs"}:
        # The {"args": (...), "kwargs": {...}} form QuantGUI's exports write.
        args, kwargs = value["args"], value["kwargs"]
        if isinstance(args, (tuple, list)) and isinstance(kwargs, Mapping) and all(
                isinstance(t, torch.Tensor) for t in (*args, *kwargs.values())):
            return Inputs(tuple(args), dict(kwargs))
    items = (value.values() if isinstance(value, Mapping)
             else value if isinstance(value, (tuple, list)) else [value])
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise UserError(f"{path}: the example input must be a tensor, a tuple or a dict of "
                        f"tensors, not {_describe_object(value)}")
    if isinstance(value, Mapping) and not all(isinstance(k, str) for k in value):
        raise UserError(f"{path}: a dict example input needs string keys (argument names)")
    return Inputs.of(dict(value) if isinstance(value, Mapping) else value)


def parse_dtype(name: "str | torch.dtype | None") -> torch.dtype:
    """An --input-dtype name ("float32", "int64", ...; None: float32); a UserError lists the
    choices."""
    if name is None:
        return torch.float32
    if isinstance(name, torch.dtype):
        if name in DTYPES.values():
            return name
        raise UserError(f"input dtype {name}: expected one of {', '.join(DTYPES)}")
    return DTYPES[dtype_key(name)]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _index_limit(module: nn.Module) -> Optional[int]:
    """The smallest vocabulary of the model's embeddings (scripted and traced ones too: their
    weight is (vocabulary, width)), or None without one."""
    sizes = []
    for m in module.modules():
        kind = getattr(m, "original_name", None) or type(m).__name__
        weight = getattr(m, "weight", None)
        if kind in ("Embedding", "EmbeddingBag") and isinstance(weight, torch.Tensor) \
                and weight.dim() == 2:
            sizes.append(int(weight.shape[0]))
    return min(sizes) if sizes else None


def random_input(shape: Sequence[int], dtype: torch.dtype, module: nn.Module
                 ) -> tuple[Inputs, str]:
    """A seeded random input of `shape` and `dtype`, and a note saying what it holds: normal
    values for floats, 0/1 for bool, integers below the smallest embedding's vocabulary (token
    ids) for integer types."""
    gen = torch.Generator().manual_seed(INPUT_SHAPE_SEED)
    shape = tuple(shape)
    what = f"shape {shape}, {dtype_name(dtype)}, seed {INPUT_SHAPE_SEED}"
    if dtype.is_floating_point:
        return (Inputs((torch.randn(shape, generator=gen).to(dtype),), {}),
                f"example input: random normal values ({what})")
    if dtype == torch.bool:
        return (Inputs((torch.rand(shape, generator=gen) < 0.5,), {}),
                f"example input: random booleans ({what})")
    vocab = _index_limit(module)
    high = vocab or DEFAULT_INT_HIGH
    why = "the smallest embedding's vocabulary" if vocab else "no embedding to bound them"
    return (Inputs((torch.randint(0, high, shape, generator=gen, dtype=dtype),), {}),
            f"example input: random integers in [0, {high}) ({why}; {what})")


#: QuantGUI's exports write the run's example batch under this name next to the model, so a
#: saved model reopens without the user having to find an input again.
SIDECAR_EXAMPLE = "example_input.pt"


def _sidecar_example(source: str) -> Optional[Path]:
    path = Path(source)
    candidate = (path if path.is_dir() else path.parent) / SIDECAR_EXAMPLE
    return candidate if candidate.is_file() and candidate != path else None


def _dims(shape: Sequence[int]) -> str:
    return ",".join(str(d) for d in shape)


def _shape_example(opened: Any, source: str, shape: tuple[int, ...],
                   input_dtype: Any) -> Inputs:
    from .. import memory
    hf_model = opened.hf_model
    dtype = parse_dtype(input_dtype)
    if hf_model is not None:
        if input_dtype is not None and (dtype.is_floating_point or dtype == torch.bool):
            raise UserError(f"{source}: a Hugging Face model takes token ids: leave the input "
                            f"dtype at int64, not {dtype_name(dtype)}")
        dtype = torch.long
    memory.check_fits(memory.tensor_bytes(shape, dtype), f"input shape {_dims(shape)}")
    if hf_model is not None:
        return hf_model.random_ids(shape)
    inputs, note = random_input(shape, dtype, opened.module)
    opened.notes.append(note)
    return inputs


def resolve(opened: Any, source: str, example_input: Any = None,
            input_shape: Optional[Sequence[int]] = None, input_dtype: Any = None,
            example_text: Optional[Sequence[str]] = None, data: Any = None) -> Optional[Inputs]:
    """The example input, first that applies (see loading.py), or None when nothing gives one.
    `opened` is loading's _Opened: notes and user files are recorded on it."""
    given = [example_input is not None, input_shape is not None, example_text is not None]
    if sum(given) > 1:
        raise UserError("give one example input: a file, a shape or sentences, not several")
    if input_dtype is not None and input_shape is None:
        parse_dtype(input_dtype)  # a bad name is still named
        raise UserError("an input dtype goes with an input shape (--input-shape)")
    if opened.carried is not None:
        if any(given):
            opened.notes.append("the model carries its own example input; the one given was "
                                "not used")
        return opened.carried
    if example_input is not None:
        opened.notes.append(f"example input from {example_input}")
        opened.user_files["example input"] = str(Path(example_input).resolve())
        return load_example_file(example_input)
    if example_text is not None:
        if opened.hf_model is None:
            raise UserError(f"{source}: typed sentences need a Hugging Face model folder with "
                            f"a tokenizer; give an input shape or a file instead")
        inputs = opened.hf_model.tokenize(example_text)
        opened.notes.append(f"example input: {inputs.batch_size} typed sentence(s) through the "
                            f"folder's tokenizer ({inputs.describe()})")
        return inputs
    if input_shape is not None:
        return _shape_example(opened, source, parse_shape(input_shape), input_dtype)
    if data is not None:
        opened.notes.append(f"example input: the first {DATA_EXAMPLE_BATCH} samples of "
                            f"{data.name}")
        return data.head(DATA_EXAMPLE_BATCH).inputs
    if opened.hf_model is not None:
        return opened.hf_model.example
    sidecar = _sidecar_example(source)
    if sidecar is not None:
        opened.notes.append(f"example input from {sidecar} (saved beside the model by an export)")
        opened.user_files["example input"] = str(sidecar.resolve())
        return load_example_file(sidecar)
    return None


def input_kinds(format: str, source: str) -> tuple[str, ...]:
    """What an example input for this model can come from (the GUI's dialog offers these)."""
    from . import hf
    if format == "huggingface" and hf.has_tokenizer_files(Path(source)):
        return KINDS + ("text",)
    return KINDS
