"""Outputs never write over inputs.

An input is anything the user gave: the model (a file or a Hugging Face folder), the
architecture file, the data, the recipe, the example input (including the `example_input.pt`
found beside an exported model). Inputs travel as `(what, path)` pairs so a refusal can say
which one would have been lost. An output is refused when it

- is an input (links resolved, `os.path.samefile`),
- is a folder that holds an input anywhere beneath it (a whole-folder export replaces it), or
- already exists inside an input folder (it would change the model folder).

    check_outputs([("--json", "r.json", False), ("--save", "out", True)], inputs)
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from ..errors import UserError

PathLike = Union[str, "os.PathLike[str]"]
Input = tuple[str, str]   # (what it is, its path)

#: A bare path in a `protected` list: the model the user opened (what older callers pass).
DEFAULT_WHAT = "original model file"


def _real(path: PathLike) -> str:
    return os.path.realpath(os.path.abspath(Path(path).expanduser()))


def labeled(protected: Optional[Iterable[Any]]) -> list[Input]:
    out = []
    for item in protected or ():
        what, path = item if isinstance(item, tuple) else (DEFAULT_WHAT, item)
        if path:
            out.append((str(what), str(path)))
    return out


def sidecar_example(model: PathLike) -> Optional[str]:
    """The example input an export left beside a model (the loader uses it when present)."""
    from ..opening.example_input import _sidecar_example
    found = _sidecar_example(str(model))
    return str(found) if found is not None else None


def arch_file(spec: Optional[str]) -> Optional[str]:
    """The file of an architecture spec `path/file.py:Name` (None for `package.module:Name`)."""
    if not spec:
        return None
    from ..opening.arch import _split, is_file_spec
    target, _ = _split(spec)
    return target if is_file_spec(target) else None


def input_paths(model: Optional[str] = None, arch: Optional[str] = None,
                data: Optional[PathLike] = None, example_input: Optional[PathLike] = None,
                recipe: Optional[PathLike] = None) -> list[Input]:
    """The user's inputs named on a command line, before anything is opened."""
    inputs: list[Input] = []
    if model and not str(model).startswith("example:"):
        inputs.append(("model", str(model)))
        side = sidecar_example(model)
        if side:
            inputs.append(("example input", side))
    for what, path in (("architecture file", arch_file(arch)), ("data file", data),
                       ("example input", example_input), ("recipe", recipe)):
        if path:
            inputs.append((what, str(path)))
    return inputs


def protected_paths(loaded: Any) -> list[Input]:
    """The files a `LoadedModel` was opened from: an export never writes over them."""
    paths: list[Input] = []
    info = getattr(loaded, "info", None)
    source = getattr(info, "source", "") or ""
    if source and not source.startswith("example:"):
        paths.append(("model", source))
    origin = dict(getattr(loaded, "origin", None) or {})
    for key, what in (("weights", "model weights"), ("path", "model"), ("file", "model"),
                      ("source", "model")):
        if isinstance(origin.get(key), str):
            paths.append((what, origin[key]))
    paths += [(what, path) for what, path in
              dict(getattr(loaded, "user_files", None) or {}).items() if isinstance(path, str)]
    file = arch_file(origin.get("arch") if isinstance(origin.get("arch"), str) else None)
    if file and not file.startswith("quantgui."):
        paths.append(("architecture file", file))
    return paths


def same_path(a: PathLike, b: PathLike) -> bool:
    """True when both name the same file or folder (links resolved)."""
    try:
        pa, pb = Path(a).expanduser(), Path(b).expanduser()
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
        return _real(pa) == _real(pb)
    except (OSError, ValueError):
        return False


def inside(path: PathLike, folder: PathLike) -> bool:
    """True when `path` lies strictly beneath `folder` (links resolved)."""
    p, f = _real(path), _real(folder)
    return p != f and p.startswith(f.rstrip(os.sep) + os.sep)


def refuse_output(target: PathLike, protected: Optional[Iterable[Any]], folder: bool = False,
                  flag: str = "") -> None:
    """UserError when writing `target` (a file, or with `folder` a folder replaced whole)
    could change one of the `protected` inputs."""
    by = f"{flag} " if flag else ""
    for what, path in labeled(protected):
        if same_path(target, path):
            also = "" if str(target) == path else f" ({path})"
            raise UserError(f"{target}: {by}would overwrite the {what} you gave{also}; QuantGUI "
                            f"never writes over its inputs — choose another "
                            f"{'folder' if folder else 'name'}")
        if inside(path, target):
            reason = (f"{by}would replace this folder, which holds the {what} {path}"
                      if folder else f"is a folder holding the {what} {path}, not a file")
            raise UserError(f"{target}: {reason}; QuantGUI never writes over its inputs — "
                            f"choose another {'folder' if folder else 'name'}")
        if os.path.isdir(path) and inside(target, path) and os.path.lexists(target):
            raise UserError(f"{target}: is part of the {what} folder {path}; QuantGUI never "
                            f"writes over its inputs — choose another path")


def check_outputs(outputs: Sequence[tuple[str, Optional[str], bool]],
                  inputs: Iterable[Any]) -> None:
    """Every `(flag, path, is_folder)` against the inputs and against each other: two outputs
    may not name one file, and nothing may be written inside a folder an export replaces.
    Two folders may be the same (one export holds both). Paths None or '-' are skipped."""
    inputs = labeled(inputs)
    given = [(flag, path, folder) for flag, path, folder in outputs if path not in (None, "-")]
    for flag, path, folder in given:
        refuse_output(path, inputs, folder, flag)
    for (f1, p1, d1), (f2, p2, d2) in itertools.combinations(given, 2):
        if same_path(p1, p2):
            if d1 and d2:
                continue
            raise UserError(f"{p1}: {f1} and {f2} name the same path; give each its own")
        for (fo, po, do), (fi, pi, _) in (((f1, p1, d1), (f2, p2, d2)),
                                          ((f2, p2, d2), (f1, p1, d1))):
            if do and inside(pi, po):
                raise UserError(f"{pi}: {fi} points inside the {fo} folder {po}, which an "
                                f"export replaces whole; put it elsewhere")
