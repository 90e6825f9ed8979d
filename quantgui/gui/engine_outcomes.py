"""How an engine request or the engine process ended, in the GUI's words: the request's error
(the protocol's ErrorInfo, plus "crashed" from this side), the exit reason of a dead engine, and
whether a process still runs. Torch-free and Qt-free."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from quantgui.engine import protocol as P

CANCEL_RESTARTED = "cancelled (the engine was restarted to stop it)"
CRASHED = "crashed"  # the client's own error kind: the engine process died during the request


@dataclass
class EngineError(P.ErrorInfo):
    """A request's error: the protocol's ErrorInfo, plus the kind "crashed" from this side."""

    @property
    def user_error(self) -> bool:
        return self.kind not in (P.INTERNAL, P.PROTOCOL, CRASHED)


def exit_reason(code: int, crashed: bool) -> str:
    """Words for how the engine process ended (QProcess: on a crash the code is the signal)."""
    if not crashed:
        return f"exit code {code}"
    try:
        name = signal.Signals(code).name
    except ValueError:
        name = f"signal {code}"
    return f"{name}, probably out of memory" if code == signal.SIGKILL else name


def engine_pid_alive(pid: int) -> bool:
    """Whether a process with this pid still runs (tests: no engine left behind); a zombie
    (exited, not reaped by its parent) counts as alive: it would be a leak too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
