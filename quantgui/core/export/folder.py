"""Whole-folder exports: the folder is there complete, or not changed at all.

`export_folder(target)` hands out a fresh temp folder beside `target` (same drive, so a rename
moves it); everything is written there, then:

| `target` before | after |
|---|---|
| missing, or an empty folder | the temp folder is renamed to `target` |
| a previous QuantGUI export (its marker lists every file in it) | the old folder is renamed aside, the new one renamed in, the old one deleted |
| anything else (the user's own files) | refused before any work; nothing is touched |

Every export holds a small marker, `.quantgui-export.json`, listing its files: that is how a
folder is known to be QuantGUI's own and safe to replace. Any exception (a full disk, a cancel,
Ctrl-C, SIGTERM raised as SystemExit) removes the temp folder, and the folders this created
on the way. A mount point cannot be renamed, so it is refused as a target (a folder inside it
is fine).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ..errors import UserError
from ..progress import Task
from .atomic import PathLike, _folder_error, check_writable_dir, write_text_atomic
from .guard import refuse_output
from .space import NoSpace, check_free

MARKER = ".quantgui-export.json"


def _real(path: PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(Path(path).expanduser())))


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        raise _folder_error(folder, exc) from None


def _marker_files(folder: Path) -> Optional[set]:
    """The files a previous export's marker lists; None when there is no valid marker."""
    from ..safefiles import read_json
    if not (folder / MARKER).is_file():
        return None
    try:
        data = read_json(folder / MARKER, "QuantGUI export marker")
    except UserError:
        return None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def folder_state(target: PathLike) -> str:
    """'missing', 'empty' or 'export'; UserError for a file, a mount point or a folder holding
    anything that is not a previous QuantGUI export."""
    shown, real = Path(target).expanduser(), _real(target)
    if not real.exists():
        return "missing"
    if not real.is_dir():
        raise UserError(f"{shown}: is a file, not a folder")
    if os.path.ismount(real):
        raise UserError(f"{shown}: is the top of a drive (a mount point), which an export cannot "
                        f"replace; choose a folder inside it, e.g. {shown / 'quantgui-export'}")
    entries = _listing(real)
    if not entries:
        return "empty"
    listed = _marker_files(real)
    foreign = [e for e in entries if e != MARKER and (listed is None or e not in listed)]
    if not foreign:
        return "export"
    names = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    raise UserError(f"{shown}: the folder holds files that are not from a QuantGUI export "
                    f"({names}); an export replaces its folder whole, so choose a new or empty "
                    f"folder")


def check_export_folder(target: PathLike, protected: Optional[Iterable[Any]] = None,
                        flag: str = "") -> Path:
    """Before any work: UserError unless `target` can take a whole-folder export."""
    shown = Path(target).expanduser()
    refuse_output(shown, protected, folder=True, flag=flag)
    state = folder_state(shown)
    # The temp folder and the renames happen in the parent; a missing target is checked up to
    # the nearest folder that exists (a file in the way, a read-only folder).
    check_writable_dir(shown if state == "missing" else _real(shown).parent)
    return shown


def _make_parents(folder: Path, made: list[Path]) -> None:
    """Create `folder` and the missing folders above it; each one made is put first in `made`
    at once, so a failure or a signal half-way still knows what to remove."""
    missing = []
    p = folder
    while not p.exists() and p.parent != p:
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise _folder_error(p, exc) from None
        made.insert(0, p)


def _commit(tmp: Path, real: Path, shown: Path) -> None:
    state = folder_state(shown)  # again: the folder may have changed during a long run
    if state in ("missing", "empty"):
        try:
            os.replace(tmp, real)  # POSIX renames over an empty folder atomically
        except OSError:
            if state != "empty":
                raise
            os.rmdir(real)  # Windows will not rename over a folder
            os.rename(tmp, real)
        return
    old = real.parent / f".{real.name}.{uuid.uuid4().hex[:8]}.old"
    os.rename(real, old)
    try:
        os.rename(tmp, real)
    except BaseException:
        os.rename(old, real)
        raise
    try:
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:  # a signal while deleting: finish deleting, then stop
        shutil.rmtree(old, ignore_errors=True)
        raise


@contextlib.contextmanager
def export_folder(target: PathLike, protected: Optional[Iterable[Any]] = None,
                  need: Optional[int] = None, task: Optional[Task] = None) -> Iterator[Path]:
    """Yield a temp folder to write an export into; on success it becomes `target` (see the
    table above). `need`: the estimated bytes, checked against the free space first."""
    shown = check_export_folder(target, protected)
    real = _real(shown)
    check_free(shown, need)
    made: list[Path] = []
    tmp: Optional[Path] = None
    try:
        _make_parents(real.parent, made)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.", suffix=".part", dir=real.parent))
        except OSError as exc:
            raise _folder_error(real.parent, exc) from None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; an export gets the usual mode
        yield tmp
        names = sorted(os.listdir(tmp))
        write_text_atomic(tmp / MARKER, json.dumps(
            {"quantgui_export": 1, "files": names,
             "written": _dt.datetime.now().astimezone().isoformat(timespec="seconds")},
            indent=2) + "\n")
        if task is not None:
            task.check()  # the last moment a cancel still leaves nothing behind
        try:
            _commit(tmp, real, shown)
        except OSError as exc:
            raise _folder_error(real.parent, exc) from None
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in made:  # the folders created above the target, innermost first
            with contextlib.suppress(OSError):
                p.rmdir()
        if isinstance(exc, NoSpace) and tmp is not None:
            raise exc.moved(tmp, shown, need) from None
        raise
