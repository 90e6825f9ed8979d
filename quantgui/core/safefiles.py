"""Reading plain files safely, without torch (the GUI process reads recipes with it).

`regular_file` refuses FIFOs, devices, folders and unreadable paths with one line before
anything opens them; `read_json` / `parse_json` hold JSON files (recipes, projects, markers) to
size, depth and NaN limits, naming the JSON path of a bad value; `available_memory` is what the
system can still give. `safeload` (the one loader of files that could run code) re-exports them.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from .errors import UserError
from .schema import NON_FINITE, deep_path, int_digit_limit, long_int_path, non_finite_path

#: JSON files (recipes, projects) are small; a gigabyte of JSON is a mistake or an attack.
JSON_MAX_BYTES = 64 * 2**20
JSON_MAX_DEPTH = 64


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """`path` as a Path if it is an existing, readable regular file; else a one-line UserError.

    A FIFO, a device or a socket would block or never end when read, so they are refused before
    anything opens them."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{path}: no such {what}") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied (cannot read this {what})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read this {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: not a regular file (a pipe, device or socket); give a {what}")
    try:  # a real open, not os.access: access() says yes to root, ACLs and LSMs may say no
        os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
    except PermissionError:
        raise UserError(f"{path}: permission denied (cannot read this {what})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read this {what} ({exc.strerror or exc})") from None
    return path


def available_memory() -> int:
    """Bytes of memory the system can still give (MemAvailable), or a safe guess."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


def read_json(path: str | os.PathLike, what: str = "JSON file",
              max_bytes: int = JSON_MAX_BYTES) -> Any:
    """Parsed JSON from a regular file; NaN/Infinity, over-deep nesting, oversized files and
    invalid UTF-8 are one-line UserErrors naming the file."""
    path = regular_file(path, what)
    size = path.stat().st_size
    if size > max_bytes:
        raise UserError(f"{path}: {_mb(size)} is too large for a {what} (limit {_mb(max_bytes)})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a {what}: not UTF-8 text ({exc.reason} at byte "
                        f"{exc.start})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read this {what} ({exc.strerror or exc})") from None
    return parse_json(text, f"{path}", what)


def parse_json(text: str, where: str, what: str = "JSON") -> Any:
    """Parsed JSON; anything JSON does not allow or that is nested absurdly deep is a one-line
    UserError naming `where` and, where one exists, the JSON path of the bad value."""
    def too_deep() -> UserError:
        return UserError(f"{where}: not a valid {what}: {deep_path(text, JSON_MAX_DEPTH)} is "
                         f"nested more than {JSON_MAX_DEPTH} levels deep")
    try:
        data = json.loads(text)  # NaN/Infinity parse as floats and are refused below, by path
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not a valid {what} (invalid JSON at line {exc.lineno} "
                        f"column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise too_deep() from None
    except ValueError:  # an integer too long for int() (over 4300 digits)
        raise UserError(f"{where}: not a valid {what}: {long_int_path(text)}: an integer of "
                        f"more than {int_digit_limit()} digits") from None
    if _depth(data) > JSON_MAX_DEPTH:
        raise too_deep()
    bad = non_finite_path(data) if NON_FINITE.search(text) else None
    if bad is not None:
        raise UserError(f"{where}: not a valid {what}: {bad[0]}: {bad[1]} is not a number JSON "
                        f"allows")
    return data


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest
