"""Atomic file writes for exports: a temp file in the target's folder, then `os.replace`.

A failure or a cancel at any point leaves no partial file: the temp files are removed and the
target is either untouched or fully written. Several files that belong together (a state_dict
and its recipe) are staged together and only replaced once all of them were written.

Folder problems (read-only, a file in the way, no such drive) become `UserError`s with the
path in the message, never a bare `PermissionError`; a full disk is `NoSpace` ("no space left on
DEVICE while writing FILE"), naming the file being written, not its temp file. Bytes are written
from Python (callers serialize into memory first): torch's own zip writer aborts the whole
process when the disk fills under it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from ..errors import UserError
from ..progress import Task
from .guard import refuse_output
from .space import NoSpace, is_no_space

PathLike = Union[str, "os.PathLike[str]"]


def read_only(folder: PathLike, why: str = "no write permission") -> UserError:
    """The one message for a folder that cannot be written (the CLI and the GUI say the same)."""
    return UserError(f"{folder}: the folder is read-only ({why}); choose another folder")


def _folder_error(folder: Path, exc: OSError) -> UserError:
    if exc.errno == errno.EROFS:
        return read_only(folder, "the drive is mounted read-only")
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return read_only(folder)
    if isinstance(exc, (NotADirectoryError, FileExistsError)) or exc.errno == errno.ENOTDIR:
        return UserError(f"{folder}: cannot create the folder: a file is in the way")
    if is_no_space(exc):
        return NoSpace(folder)
    return UserError(f"{folder}: cannot write there ({exc.strerror or exc})")


def ensure_writable_dir(folder: PathLike) -> Path:
    """Create `folder` if needed and check that files can be written into it (UserError if not)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _folder_error(folder, exc) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise read_only(folder)
    return folder


def check_writable_dir(folder: PathLike) -> Path:
    """Like `ensure_writable_dir` but creates nothing: checks the folder, or the nearest existing
    folder above it, so a long run can fail fast on a bad output path."""
    folder = Path(folder).expanduser()
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{folder}: cannot create the folder: a file is in the way ({probe})"
                        if probe != folder else f"{folder}: is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise read_only(probe)
    return folder


def refuse_overwrite(target: PathLike, protected: list) -> None:
    """UserError when `target` is one of the `protected` inputs (see guard.py)."""
    refuse_output(target, protected)


def _write_file(path: Path, data: Any) -> None:
    """Write and flush to the disk, so a full disk shows here and not after the rename."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class Staging:
    """Temp files for several targets that are committed together (see `staged`)."""

    def __init__(self, task: Optional[Task] = None,
                 protected: Optional[list] = None) -> None:
        self.task = task
        self.protected = list(protected or [])
        self._pending: list[tuple[Path, Path]] = []  # (temp, target)

    def path(self, target: PathLike) -> Path:
        """A fresh temp path next to `target` (same suffix, so loaders that check it accept it)."""
        target = Path(target).expanduser()
        refuse_overwrite(target, self.protected)
        if target.is_symlink():  # write through a link, never replace the link itself
            target = Path(os.path.realpath(target))
        folder = ensure_writable_dir(target.parent)
        if target.is_dir():
            raise UserError(f"{target}: a folder of that name is in the way")
        if target.exists() and not target.is_file():
            raise UserError(f"{target}: is not a regular file (a device, pipe or socket); "
                            f"choose a file name")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}",
                                       dir=folder)
        except OSError as exc:
            raise _folder_error(folder, exc) from None
        self._pending.append((Path(tmp), target))  # from here on, any exception removes it
        os.close(fd)
        # mkstemp makes 0600 files; an export should get the usual permissions (umask).
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)
        except OSError:
            pass
        return Path(tmp)

    def write_bytes(self, target: PathLike, data: Any) -> Path:
        """`data`: bytes or a buffer (`BytesIO.getbuffer()` avoids copying a large model)."""
        tmp = self.path(target)
        try:
            _write_file(tmp, data)
        except OSError as exc:
            if is_no_space(exc):
                raise NoSpace(Path(target).expanduser(), memoryview(data).nbytes) from None
            raise _folder_error(tmp.parent, exc) from None
        return tmp

    def write_text(self, target: PathLike, text: str) -> Path:
        return self.write_bytes(target, text.encode("utf-8"))

    def commit(self) -> list[Path]:
        if self.task is not None:
            self.task.check()  # the last moment a cancel still leaves nothing behind
        done = []
        for tmp, target in self._pending:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise _folder_error(target.parent, exc) from None
            done.append(target)
        self._pending.clear()
        return done

    def discard(self) -> None:
        for tmp, _ in self._pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pending.clear()


@contextlib.contextmanager
def staged(task: Optional[Task] = None, protected: Optional[list] = None) -> Iterator[Staging]:
    """Stage temp files; commit them all on normal exit, remove them all on any exception.

        with staged(task) as stage:
            buf = io.BytesIO(); torch.save(obj, buf)
            stage.write_bytes(out / "model.pt", buf.getbuffer())
            stage.write_text(out / "recipe.json", text)
    """
    stage = Staging(task, protected)
    try:
        yield stage
        stage.commit()
    except BaseException:
        stage.discard()
        raise


def write_text_atomic(target: PathLike, text: str, task: Optional[Task] = None,
                      protected: Optional[list] = None) -> Path:
    with staged(task, protected) as stage:
        stage.write_text(target, text)
    return Path(target)


def write_bytes_atomic(target: PathLike, data: bytes, task: Optional[Task] = None,
                       protected: Optional[list] = None) -> Path:
    with staged(task, protected) as stage:
        stage.write_bytes(target, data)
    return Path(target)
