"""Progress reporting and cancellation for long engine work.

Long work is written as small units; between units it calls `task.report(...)` (progress plus
partial values the GUI can plot live) and `task.check()` (raises `Cancelled` once cancel was
requested). Keep units short (well under 200 ms) so a cancel is never starved.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .errors import Cancelled

#: Phases reported by the engine, in the order a run usually goes through them.
PHASES = ("load", "apply", "calibrate", "train", "convert", "compile", "time", "evaluate", "export")


@dataclass(frozen=True)
class Progress:
    phase: str
    done: int = 0
    total: Optional[int] = None
    message: str = ""
    #: Partial values for live plots, e.g. {"which": "after", "latency_ms": 1.2},
    #: {"loss": 0.31, "epoch": 1}, {"which": "before", "accuracy": 0.97}.
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> Optional[float]:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)

    def describe(self) -> str:
        """Short human text such as 'calibrating 12/32'."""
        text = self.message or self.phase
        if self.total:
            text = f"{text} {self.done}/{self.total}"
        return text


class CancelToken:
    """Thread-safe flag; the GUI thread sets it, the worker checks it.

    It also remembers when work last looked at it and whether a check has raised, so a Ctrl-C
    handler can tell engine work that will stop at its next check from code that never checks
    (a long forward call, a blocking read) and must be interrupted."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.last_polled: float = -float("inf")   # time.monotonic() of the last look
        self.acknowledged = False                   # a check raised Cancelled

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        self.last_polled = time.monotonic()
        return self._event.is_set()

    def polled_within(self, seconds: float) -> bool:
        return time.monotonic() - self.last_polled <= seconds

    def check(self) -> None:
        self.last_polled = time.monotonic()
        if self._event.is_set():
            self.acknowledged = True
            raise Cancelled("cancelled by the user")


ProgressCallback = Callable[[Progress], None]


class Task:
    """What long work receives: where to report progress and how to know it must stop."""

    def __init__(self, on_progress: Optional[ProgressCallback] = None,
                 cancel: Optional[CancelToken] = None) -> None:
        self.on_progress = on_progress
        self.cancel_token = cancel or CancelToken()

    def report(self, phase: str, done: int = 0, total: Optional[int] = None,
               message: str = "", **values: Any) -> None:
        self.check()
        if self.on_progress is not None:
            self.on_progress(Progress(phase, done, total, message, dict(values)))

    def check(self) -> None:
        self.cancel_token.check()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled


def quiet_task() -> Task:
    """A task that reports nowhere and is never cancelled (scripts, tests)."""
    return Task()
