"""Disk space: whether a drive has room for a write, and the one line when it has not.

    no space left on /media/usb (/dev/sdb1) while writing out/model.pt2 (needs about 12 MB)

The drive is named by its mount point (the folder users know) and the device or filesystem
behind it. Exports check the free space against an estimate before they start, and a write that
still meets a full disk (ENOSPC, or EDQUOT for a quota) ends in the same message.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Optional, Union

from ..errors import UserError

PathLike = Union[str, "os.PathLike[str]"]
NO_SPACE_ERRNOS = tuple(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e)


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def mb_text(n: int) -> str:
    """'12' or '2.3' (MB = 10^6 bytes, as everywhere in QuantGUI); never '0'."""
    mb = n / 1e6
    return f"{mb:.0f}" if mb >= 10 else f"{max(mb, 0.1):.1f}"


def existing_ancestor(path: PathLike) -> Path:
    """`path` or the nearest folder above it that exists (what a new file will live on)."""
    p = Path(os.path.abspath(Path(path).expanduser()))
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def mount_point(path: PathLike) -> Path:
    p = Path(os.path.realpath(existing_ancestor(path)))
    while not os.path.ismount(p) and p.parent != p:
        p = p.parent
    return p


def _mount_source(mount: Path) -> Optional[str]:
    """The device (or filesystem type) mounted at `mount`, from /proc/mounts where it exists."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    found = None
    for line in lines:  # the last entry for a mount point is the one in effect
        parts = line.split()
        if len(parts) >= 3 and parts[1].replace("\\040", " ") == str(mount):
            found = parts[0] if parts[0] not in ("none", "") else parts[2]
    return found


def device_of(path: PathLike) -> str:
    """'/mnt/usb (/dev/sdb1)': the mount point holding `path` and what is mounted there."""
    mount = mount_point(path)
    source = _mount_source(mount)
    return f"{mount} ({source})" if source else str(mount)


class NoSpace(UserError):
    """The drive is full (or a quota is reached) while writing `path`."""

    def __init__(self, path: PathLike, need: Optional[int] = None,
                 device: Optional[str] = None) -> None:
        self.path = Path(path)
        self.need = need
        self.device = device or device_of(path)
        text = f"no space left on {self.device} while writing {self.path}"
        if need:
            text += f" (needs about {mb_text(need)} MB)"
        super().__init__(text)

    def moved(self, old_dir: Path, new_dir: Path, need: Optional[int] = None) -> "NoSpace":
        """The same error naming the file where it was going to be (not the temp folder), and
        the larger of the two space needs."""
        try:
            path = Path(new_dir) / self.path.relative_to(old_dir)
        except ValueError:
            path = self.path
        return NoSpace(path, max(self.need or 0, need or 0) or None, self.device)


def free_bytes(path: PathLike) -> Optional[int]:
    """Free bytes on the drive that holds (or will hold) `path`; None when it cannot be told."""
    try:
        usage = shutil.disk_usage(existing_ancestor(path))
    except OSError:
        return None
    return usage.free if usage.total > 0 else None  # some virtual filesystems report 0/0


def check_free(path: PathLike, need: Optional[int]) -> None:
    """NoSpace before a write of about `need` bytes that the drive cannot take."""
    if not need:
        return
    free = free_bytes(path)
    if free is not None and free < need:
        raise NoSpace(path, need)
