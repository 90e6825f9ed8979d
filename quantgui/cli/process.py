"""How one CLI process behaves: signals (Ctrl-C, SIGTERM), clean stdout for JSON, sanitized
output, quiet library logging."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from typing import Any

from . import common

#: After the first Ctrl-C the engine gets this long to stop at a cancel check (it cleans up
#: and, in `recommend`, prints the best so far) before it is interrupted where it stands.
CANCEL_GRACE_S = 1.0


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


@contextlib.contextmanager
def quiet_torch_logging(debug: bool):
    """torch logs notices (e.g. on importing torchao) straight to stderr; they would break the
    one-line error contract, so they are shown only with --debug."""
    logger = logging.getLogger("torch")
    previous = logger.level
    if not debug:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def sigint_cancels(token: Any):
    """The first Ctrl-C always ends the process (exit 130), promptly. When engine work is
    polling the cancel token it is asked to stop at its next check; if it has not within
    CANCEL_GRACE_S, or nothing polls the token (a long forward call, a blocking read),
    KeyboardInterrupt is raised in the main thread: Python delivers it as soon as the current
    C call (e.g. one forward) returns. A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import _thread
    timers: list[threading.Timer] = []
    main_id = threading.main_thread().ident
    lock = threading.Lock()
    active = [True]  # the timer never signals once `handler` is no longer installed

    def interrupt_unless_stopped() -> None:
        with lock:
            if token.acknowledged or not active[0]:
                return
            # A real signal, so a blocking system call returns; `handler` runs again, raises.
            if hasattr(signal, "pthread_kill") and main_id is not None:
                signal.pthread_kill(main_id, signal.SIGINT)
            else:
                _thread.interrupt_main()

    def handler(signum: int, frame: Any) -> None:
        engine_polling = token.polled_within(CANCEL_GRACE_S)
        if token.cancelled or not engine_polling:
            raise KeyboardInterrupt
        token.cancel()
        timer = threading.Timer(CANCEL_GRACE_S, interrupt_unless_stopped)
        timer.daemon = True
        timers.append(timer)
        timer.start()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        with lock:
            active[0] = False
        for timer in timers:
            timer.cancel()
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigterm_exits():
    """SIGTERM (kill, a service manager) unwinds like an exception, so cleanup runs, and the
    process exits 143 (128 + SIGTERM). The engine never takes this SystemExit for the model's
    own (usercode.ours)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def pure_json_stdout(args: argparse.Namespace):
    """With JSON on stdout, whatever else is printed (a model or architecture file that prints,
    a library) goes to stderr, so stdout parses as JSON."""
    if not (getattr(args, "json_out", None) == "-" or getattr(args, "json", None) is True):
        yield
        return
    common._json_stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        common._json_stream = None


@contextlib.contextmanager
def safe_output():
    """Everything printed passes through `printable`: names and messages that came from a file
    cannot send escape sequences to the terminal (clear the screen, fake text)."""
    from ..core.text import SafeStream
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(saved[0]), SafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
