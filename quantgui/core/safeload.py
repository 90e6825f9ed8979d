"""The one place where QuantGUI reads a file that could run code while it is loaded.

Unpickling runs whatever the pickle says, so every `torch.load`, `torch.jit.load`,
`torch.export.load` and `np.load` in QuantGUI goes through this module (a test reads the source
and fails on any other call). The rules:

- A model, data, example-input, recipe or project file is data: it is read weights-only
  (`torch.load(weights_only=True)`, `np.load(allow_pickle=False)`, JSON). Anything that would
  need unpickling raises `TrustRequired`, and only `unpickle_trusted` (called after the user
  said yes) unpickles.
- A torch.export `.pt2` can hold pickles (weights or constants marked `use_pickle`, opaque
  objects, a sample input that only loads with `weights_only=False`) and AOTInductor packages
  (native code). They are found in the archive's directory before anything is loaded, and the
  load itself runs with `torch.load` held to `weights_only=True`, so nothing torch would
  silently fall back to can unpickle either.
- TorchScript and exported graphs are programs in a restricted language, but a few operators
  reach the file system (`from_file` maps a file writable, `save` writes one). An archive whose
  code or graph names one of them needs trust like a pickle.
- Files are regular files (a FIFO would block forever), within size limits, and zip archives
  are checked against their directory before they are expanded (a 1 MB zip bomb is refused
  without unpacking it).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import threading
import zipfile
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch

from .errors import TrustRequired, UserError, clean_message
# The plain-file readers live in a torch-free module (the GUI reads recipes with them); they
# are this module's API as well.
from .safefiles import (JSON_MAX_BYTES, JSON_MAX_DEPTH, _mb, available_memory,  # noqa: F401
                        parse_json, read_json, regular_file)

TRUST_HINT = "--trust on the command line, or confirm in the dialog"
#: A zip whose entries expand to more than this many times its own size is treated as a zip
#: bomb once the expanded size is also large (torch and numpy archives are stored, not deflated,
#: or deflate real data by small factors).
BOMB_RATIO = 200
BOMB_MIN_BYTES = 256 * 2**20

# Operators that reach the file system from TorchScript code or an exported graph.
_FILE_OPS = re.compile(r"\b(from_file|load_tensor|_load_for_mobile)\b|\b(torch|aten)\s*\.\s*save\b")

_lock = threading.RLock()   # the weights-only guard patches torch.load process-wide


# --- files --------------------------------------------------------------------------------------

def check_archive(path: Path, what: str = "file") -> Optional[list[zipfile.ZipInfo]]:
    """For a zip file: its entries, after checking from the directory alone that expanding
    them is sane (fits in memory, is not a zip bomb). None when the file is not a zip."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: a damaged zip archive ({exc})") from None
    expanded = sum(max(0, i.file_size) for i in infos)
    size = max(1, path.stat().st_size)
    if expanded > BOMB_MIN_BYTES and expanded > BOMB_RATIO * size:
        raise UserError(f"{path}: refused: this {_mb(size)} archive would expand to "
                        f"{_mb(expanded)} ({expanded // size:,}x), the signature of a zip bomb")
    free = available_memory()
    if expanded > free:
        raise UserError(f"{path}: its contents need {_mb(expanded)} of memory but only "
                        f"{_mb(free)} is available")
    return infos


# --- weights-only loading -------------------------------------------------------------------------

def short_reason(exc: BaseException) -> str:
    """One short line out of an exception (torch's messages run to paragraphs)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = clean_message(lines[0]) if lines else type(exc).__name__
    if text.startswith("The following operation failed in the TorchScript interpreter"):
        # The cause is the last line ("RuntimeError: mat1 and mat2 shapes cannot be ..."),
        # after the TorchScript traceback; the caller names the exception type already.
        text = clean_message(re.sub(r"^\w+(Error|Exception): ", "", lines[-1]))
    return re.split(r"(?<=[.:])\s+(?=This |If |Please )", text)[0][:200]


def _refused_global(exc: BaseException) -> Optional[str]:
    """The class/function a weights-only load refused, if that is why it failed."""
    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return found.group(1)
    if "Unsupported class" in text or "Unsupported operand" in text:
        return "a Python object"
    return None


def trust_required(path: Path, what: str, detail: str) -> TrustRequired:
    return TrustRequired(
        f"{path}: refused because opening this {what} runs code stored in it ({detail}); "
        f"such code can do anything your account can, so open it only if you trust where it "
        f"came from: {TRUST_HINT}")


def never_unpickled(path: Path, what: str, detail: str) -> UserError:
    """For files QuantGUI reads as plain data only (data, example inputs, caches): no trust
    can make them unpickle."""
    return UserError(
        f"{path}: refused because opening this {what} would run code stored in it ({detail}); "
        f"QuantGUI reads a {what} as plain tensors only: save tensors, tuples or dicts of "
        f"tensors with torch.save, or arrays with numpy.savez")


@contextlib.contextmanager
def weights_only_guard() -> Iterator[dict]:
    """While active, every `torch.load` in this process is weights-only, whatever its caller
    asked (torch.export and transformers fall back to full unpickling on their own), and
    `refused` in the yielded dict names what a load had to refuse."""
    state: dict[str, Any] = {"refused": None}
    original = torch.load

    def load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        try:
            return original(f, *args, **kwargs)
        except pickle.UnpicklingError as exc:
            state["refused"] = state["refused"] or _refused_global(exc) or "a pickle"
            raise

    def no_pickle(*args: Any, **kwargs: Any) -> Any:
        state["refused"] = state["refused"] or "a pickled Python object"
        raise pickle.UnpicklingError("refused: unpickling is not allowed here")

    with _lock:
        torch.load = load  # type: ignore[assignment]
        package = _export_package()
        saved_pickle = getattr(package, "pickle", None) if package is not None else None
        if saved_pickle is not None:
            package.pickle = _NoPickle(no_pickle)  # type: ignore[union-attr]
        try:
            yield state
        finally:
            torch.load = original  # type: ignore[assignment]
            if saved_pickle is not None:
                package.pickle = saved_pickle  # type: ignore[union-attr]


class _NoPickle:
    """Stands in for the `pickle` module inside torch's .pt2 reader while a load is guarded."""

    def __init__(self, refuse: Any) -> None:
        self.loads = self.load = refuse
        self.UnpicklingError = pickle.UnpicklingError

    def __getattr__(self, name: str) -> Any:
        return getattr(pickle, name)


def _export_package() -> Any:
    try:
        from torch.export.pt2_archive import _package
        return _package
    except ImportError:  # older torch: no pt2 archive reader, nothing to patch
        return None


def load_weights(path: str | os.PathLike, what: str = "file", can_trust: bool = False) -> Any:
    """`torch.load(weights_only=True)` of a regular file: tensors, containers, plain values.
    A file that needs more (a pickled class) is refused naming what it references: with
    `can_trust` (a model file, which the user may choose to trust) as TrustRequired."""
    path = regular_file(path, what)
    check_archive(path, what)
    try:
        with _lock:
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        needed = _refused_global(exc)
        if needed is None:
            raise _unreadable(path, what, exc) from None
        refuse = trust_required if can_trust else never_unpickled
        raise refuse(path, what, f"it is a pickle that references {needed}") from None
    except (MemoryError, OverflowError) as exc:
        raise UserError(f"{path}: this {what} declares more data than fits in memory "
                        f"({type(exc).__name__})") from None
    except Exception as exc:
        raise _unreadable(path, what, exc) from None


def unpickle_trusted(path: str | os.PathLike, what: str = "file") -> Any:
    """Full unpickling. Only for a file the user explicitly trusted, or one QuantGUI itself
    has just written (its own export, reloaded to check it)."""
    path = regular_file(path, what)
    check_archive(path, what)
    try:
        with _lock:
            return torch.load(str(path), map_location="cpu", weights_only=False)
    except (AttributeError, ModuleNotFoundError, ImportError) as exc:
        raise UserError(f"{path}: the pickled model's code cannot be imported ({short_reason(exc)}); "
                        f"run from the project that defines it, or save a state_dict and open "
                        f"it with --arch") from None
    except Exception as exc:
        raise _unreadable(path, what, exc) from None


def load_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    """Every array of an .npz, without pickles (object arrays are refused)."""
    path = regular_file(path, what)
    check_archive(path, what)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise never_unpickled(path, what, "it holds arrays of Python objects, which "
                                              "numpy stores as pickles") from None
        raise _unreadable(path, what, exc) from None
    except Exception as exc:
        raise _unreadable(path, what, exc) from None


def _unreadable(path: Path, what: str, exc: BaseException) -> UserError:
    return UserError(f"{path}: cannot read this {what}: corrupt, truncated or not what it "
                     f"should be ({type(exc).__name__}: {short_reason(exc)})")


# --- programs: TorchScript archives and torch.export .pt2 ------------------------------------------

def _archive_names(path: Path, what: str) -> list[str]:
    infos = check_archive(path, what)
    if infos is None:
        raise UserError(f"{path}: not a zip archive")
    return [i.filename for i in infos]


def _read_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(name)


def _file_ops(text: str) -> Optional[str]:
    found = _FILE_OPS.search(text)
    return found.group(0).replace(" ", "") if found else None


def load_torchscript(path: str | os.PathLike, trust: bool = False) -> Any:
    """torch.jit.load, after checking the archive's code for file-system operators."""
    path = regular_file(path, "TorchScript model")
    names = _archive_names(path, "TorchScript model")
    if not trust:
        for name in names:
            if "/code/" in name and name.endswith(".py"):
                op = _file_ops(_read_member(path, name).decode("utf-8", "replace"))
                if op:
                    raise trust_required(path, "TorchScript model",
                                         f"its code calls {op}, which reads or writes files")
    try:
        with _lock:
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        refused = _torchscript_refusal(path, exc)
        raise (refused or _unreadable(path, "TorchScript model", exc)) from None


def _torchscript_refusal(path: Path, exc: BaseException) -> Optional[UserError]:
    """TorchScript's own unpickler resolves TorchScript types only: a pickle in the archive
    naming a Python callable (os.system) fails as an "Unknown type name". That is a refusal of
    code, not a corrupt file, and trust cannot change it (torch never runs such a pickle)."""
    found = re.search(r"Unknown type name '([\w.]+)'", str(exc))
    if not found or found.group(1).startswith(("__torch__", "torch.")):
        return None
    return UserError(f"{path}: refused because opening this TorchScript model would run code "
                     f"stored in it (a pickle inside references {found.group(1)}); TorchScript "
                     f"never loads such a pickle, so it cannot be opened, trusted or not")


def _pt2_needs_code(path: Path, names: list[str]) -> Optional[str]:
    """Why loading this .pt2 would run code (None: it holds only graphs, tensors, JSON)."""
    for name in names:
        low = name.lower()
        if "/aotinductor/" in low or low.endswith((".so", ".dll", ".dylib", ".cpp", ".wrapper")):
            return f"it holds compiled native code ({name})"
    for name in names:
        if name.endswith("_config.json") and ("/weights/" in name or "/constants/" in name):
            try:
                config = json.loads(_read_member(path, name)).get("config", {})
            except (ValueError, AttributeError, KeyError):
                return None  # malformed: let the load fail and say so
            for fqn, meta in (config.items() if isinstance(config, dict) else ()):
                if not isinstance(meta, dict):
                    continue
                if meta.get("use_pickle"):
                    return f"'{fqn}' is stored as a pickle"
                file = str(meta.get("path_name", ""))
                if file.startswith(("custom_obj", "opaque_obj")):
                    return f"'{fqn}' is a Python object stored as a pickle"
        if (name.endswith(".json") and "/models/" in name) or name.endswith(
                "serialized_exported_program.json"):
            op = _file_ops(_read_member(path, name).decode("utf-8", "replace"))
            if op:
                return f"its graph calls {op}, which reads or writes files"
    return None


def load_exported(path: str | os.PathLike, trust: bool = False) -> Any:
    """torch.export.load kept on its weights-only path; see the module docstring."""
    path = regular_file(path, "exported program")
    names = _archive_names(path, "exported program")
    if trust:
        try:
            with _lock:
                return torch.export.load(str(path))
        except Exception as exc:
            raise _unreadable(path, "exported program", exc) from None
    why = _pt2_needs_code(path, names)
    if why:
        raise trust_required(path, "exported program", why)
    with weights_only_guard() as guard:
        try:
            return torch.export.load(str(path))
        except Exception as exc:
            if guard["refused"]:
                raise trust_required(path, "exported program",
                                     f"part of it is a pickle that references "
                                     f"{guard['refused']}") from None
            raise _unreadable(path, "exported program", exc) from None

