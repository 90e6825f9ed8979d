"""Architecture specs: build the model a state_dict belongs to.

A spec is `path/to/file.py:ClassOrFactory` (the user's own file, executed as a module: giving it
is the user's decision to run it) or `package.module:ClassOrFactory` (imported). The name may be
left out for a file that defines exactly one nn.Module subclass. Keyword arguments come as a dict.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from pathlib import Path
import sys
from typing import Any, Optional

from torch import nn

from ..errors import UserError
from ..model.usercode import ours

USAGE = "give it as path/to/model.py:ClassName or package.module:ClassName"


def _split(spec: str) -> tuple[str, Optional[str]]:
    spec = spec.strip()
    target, sep, name = spec.rpartition(":")
    # "C:\models\net.py" or "net.py" has no usable ":Name" part.
    if not sep or not name.replace(".", "_").isidentifier() or not target:
        return spec, None
    return target, name


def is_file_spec(target: str) -> bool:
    """`target` (the part before ':Name') names a file, not an importable module."""
    return target.endswith(".py") or "/" in target or "\\" in target


def _import_file(path: Path, what: str = "architecture file", flag: str = "--arch") -> Any:
    if not path.is_file():
        raise UserError(f"{flag} {path}: no such {what}")
    # A unique module name per file: two files both called model.py must not collide, and the
    # module must sit in sys.modules so dataclasses / pickling inside it can find it.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    mod_name = f"quantgui_arch_{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"{path}: cannot import this file as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    # Let the file import its sibling modules (e.g. `from layers import Block`) while it loads.
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # sys.exit() in the file stops the import, not us
        sys.modules.pop(mod_name, None)
        if ours(exc):
            raise
        raise UserError(f"{path}: importing the {what} failed "
                        f"({_what_happened(exc)})") from None
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _import_module(target: str) -> Any:
    try:
        return importlib.import_module(target)
    except (Exception, SystemExit) as exc:
        if ours(exc):
            raise
        raise UserError(f"--arch {target}: cannot import module "
                        f"({_what_happened(exc)}); {USAGE}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _what_happened(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _module_classes(module: Any) -> list[str]:
    return [n for n, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, nn.Module)
            and getattr(obj, "__module__", None) == module.__name__]


def module_classes(path: str | Path) -> list[str]:
    """The nn.Module classes a Python file defines, in the file's order. Importing the file runs
    it: call this only for a file the user chose as their architecture."""
    return _module_classes(_import_file(Path(path).expanduser().resolve()))


def resolve(spec: str) -> tuple[Any, str]:
    """(the class or factory, the canonical spec with an absolute file path)."""
    target, name = _split(spec)
    if is_file_spec(target):
        path = Path(target).expanduser().resolve()
        module = _import_file(path)
        where = str(path)
    elif name is None:
        raise UserError(f"--arch {spec}: no class or factory named; {USAGE}")
    else:
        module = _import_module(target)
        where = target
    if name is None:
        classes = _module_classes(module)
        if len(classes) != 1:
            found = ", ".join(classes) or "none"
            raise UserError(f"{where}: name the class or factory to build "
                            f"(nn.Module classes found: {found}); {USAGE}")
        name = classes[0]
    obj: Any = module
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            found = ", ".join(_module_classes(module)) or "no nn.Module classes"
            raise UserError(f"{where}: defines no '{name}' (found: {found})")
    if not callable(obj):
        raise UserError(f"{where}:{name} is not a class or a function")
    return obj, f"{where}:{name}"


def build(spec: str, kwargs: Optional[dict] = None) -> tuple[nn.Module, str]:
    """Instantiate the architecture: (module, canonical spec)."""
    factory, canonical = resolve(spec)
    kwargs = dict(kwargs or {})
    try:
        model = factory(**kwargs)
    except (Exception, SystemExit) as exc:
        if ours(exc):
            raise
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UserError(f"{canonical}({shown}) failed: {_what_happened(exc)}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"{canonical} returned {type(model).__name__}, not a torch.nn.Module")
    return model, canonical
