"""The auto-tune's trial log: JSON lines, one trial per line, so a stopped or crashed tune can
resume without measuring anything twice.

Line 1 is the header: {"kind": "quantgui-tune-log", "version": 1, "quantgui": ..., "model":
sha256, "data": sha256, "budget": {...}}; every further line {"key": <recipe key>, "trial":
TuneTrial JSON}. Each line is appended whole and made durable before the next trial starts
(write + flush + fsync), so a crash tears at most the last line; reading ignores a torn last
line (and cuts it off before appending), while a damaged line elsewhere is a one-line error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from .budget import QualityBudget
from .errors import UserError
from .recipe import Recipe

KIND = "quantgui-tune-log"
VERSION = 1
#: A log of thousands of trials with full results is tens of MB; more is not a log of ours.
MAX_BYTES = 256 * 2**20


def recipe_key(recipe: Recipe) -> str:
    """What identifies a trial: its steps and parameters (not the budget or data reference)."""
    return json.dumps(recipe.to_json()["steps"], sort_keys=True, separators=(",", ":"))


def header(model: str, data: str, budget: QualityBudget) -> dict[str, Any]:
    from .. import __version__
    return {"kind": KIND, "version": VERSION, "quantgui": __version__, "model": model,
            "data": data, "budget": budget.to_json()}


class TrialLog:
    def __init__(self, path: Path, entries: dict[str, dict], torn: bool) -> None:
        self.path, self.entries, self.torn = path, entries, torn
        self._file: Any = None

    @classmethod
    def open(cls, path: Any, model: str, data: str, budget: QualityBudget,
             resume: bool) -> "TrialLog":
        """A new log (refused when the file exists, unless `resume`), or with `resume` the
        existing one, checked against this model, data and budget."""
        path = Path(path).expanduser()
        want = header(model, data, budget)
        if not path.exists():
            try:
                with open(path, "x", encoding="utf-8") as f:  # never over a file that appeared
                    f.write(json.dumps(want) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise UserError(f"{path}: cannot write the trial log "
                                f"({exc.strerror or exc})") from None
            return cls(path, {}, False)._start()
        if not resume:
            raise UserError(f"{path}: already exists; pass --resume to continue that tune, or "
                            f"name a new log file")
        entries, torn, good_bytes = read(path)
        check_header(path, entries.pop(None, None), want, budget)
        log = cls(path, entries, torn)
        if torn:  # cut the torn tail so the next line starts on a line of its own
            with open(path, "r+b") as f:
                f.truncate(good_bytes)
                f.flush()
                os.fsync(f.fileno())
        return log._start()

    def _start(self) -> "TrialLog":
        self._file = open(self.path, "a", encoding="utf-8")
        return self

    def lookup(self, key: str) -> Optional[dict]:
        return self.entries.get(key)

    def append(self, key: str, entry: Any) -> None:
        """One line, durable before the next trial (a crash tears at most this line)."""
        data = entry.to_json()
        line = json.dumps({"key": key, "trial": data}, allow_nan=False)
        try:
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise UserError(f"{self.path}: cannot append to the trial log "
                            f"({exc.strerror or exc})") from None
        self.entries[key] = data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def check_header(path: Any, first: Any, want: dict[str, Any], budget: QualityBudget) -> None:
    """UserError unless `first` (a log's first line) is the header `want`: the same kind and
    version, model, data and budget (a cluster node checks the driver's log with it too)."""
    if not isinstance(first, dict) or first.get("kind") != KIND:
        raise UserError(f"{path}: not a QuantGUI trial log (its first line is not the "
                        f"header)")
    if first.get("version") != VERSION:
        raise UserError(f"{path}: trial log version {first.get('version')!r}; this "
                        f"QuantGUI writes version {VERSION}")
    for field, what in (("model", "another model"), ("data", "other data"),
                        ("budget", "another budget")):
        if first.get(field) != want[field]:
            said = (f" ({QualityBudget(**first['budget']).describe()}, not "
                    f"{budget.describe()})" if field == "budget"
                    and isinstance(first.get("budget"), dict) and _budget_ok(first)
                    else "")
            raise UserError(f"{path}: this trial log was written for {what}{said}; "
                            f"resume it with the same model, data and budget, or start "
                            f"a new log")


def _budget_ok(first: dict) -> bool:
    try:
        QualityBudget.from_json(first["budget"])
        return True
    except UserError:
        return False


def read(path: Path) -> tuple[dict, bool, int]:
    """{None: header, key: trial JSON}, whether the last line was torn, and the byte length of
    the whole lines. A line that does not parse is torn when it is the last one (no newline
    after it, or nothing after it), an error anywhere else."""
    from .safeload import parse_json, regular_file
    path = regular_file(path, "trial log")
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"{path}: a trial log of more than {MAX_BYTES // 2**20} MB is not one "
                        f"QuantGUI wrote")
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    entries: dict = {}
    good = 0
    torn = False
    for n, line in enumerate(lines, 1):
        last = n == len(lines) or (n == len(lines) - 1 and lines[-1] == b"")
        if not line.strip():
            if n < len(lines):
                good += len(line) + 1
            continue
        try:
            value = parse_json(line.decode("utf-8"), f"{path}: line {n}", "trial log line")
            ok = isinstance(value, dict) and (n == 1 or isinstance(value.get("trial"), dict)
                                              and isinstance(value.get("key"), str))
            complete = n < len(lines)  # a newline follows it
        except (UserError, UnicodeDecodeError) as exc:
            if last:
                torn = True
                break
            raise UserError(f"{path}: line {n}: not a trial log line "
                            f"({str(exc).split(': ')[-1][:80]})") from None
        if not ok or not complete:
            if last:
                torn = True
                break
            raise UserError(f"{path}: line {n}: not a trial log line")
        entries[None if n == 1 else value["key"]] = value if n == 1 else value["trial"]
        good += len(line) + 1
    return entries, torn, good
