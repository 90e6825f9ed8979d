"""A small synchronous client of the engine process for tests: the engine runs as a real
subprocess, requests go in as JSON lines, and the test reads messages until the one it expects
(never sleeps). Every read has a timeout, so a hung engine fails the test instead of the
suite."""

from __future__ import annotations

import itertools
import os
import selectors
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Optional

from quantgui.engine import protocol

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Seconds any one expected message may take (generous: 2 busy cores, first imports of torch).
TIMEOUT_S = 120.0


class EngineDied(AssertionError):
    pass


class Engine:
    def __init__(self, args: tuple[str, ...] = ("-m", "quantgui.engine"),
                 env: Optional[dict] = None) -> None:
        environ = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "2", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ,
                                     cwd=REPO)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self._buf = b""
        #: The engine's stderr lines (read all along: a full pipe would block the engine).
        self.stderr_lines: list[str] = []
        self._stderr = threading.Thread(target=self._drain, daemon=True)
        self._stderr.start()
        self._ids = itertools.count(1)
        self.seen: list[dict] = []       # every message read, in order
        self.hello = protocol.check_hello(self.read())

    def _drain(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self.stderr_lines.append(line.decode(errors="replace").rstrip("\n"))

    # -- wire -------------------------------------------------------------------------------
    def write_line(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def send(self, msg: dict) -> None:
        self.write_line(protocol.encode(msg))

    def read(self, timeout: float = TIMEOUT_S) -> dict:
        """The next message (ProtocolError if the engine wrote anything else)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no message from the engine within {timeout:.0f} s")
            if not self._sel.select(left):
                continue
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
            if not chunk:
                raise EngineDied(f"the engine closed its output (exit {self.proc.wait(30)})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg = protocol.decode(line, protocol.ENGINE_TYPES)
        self.seen.append(msg)
        return msg

    # -- requests ---------------------------------------------------------------------------
    def request(self, method: str, **params: Any) -> int:
        msg_id = next(self._ids)
        self.send(protocol.request(msg_id, method, params))
        return msg_id

    def cancel(self, msg_id: int) -> None:
        self.send(protocol.cancel(msg_id))

    def until(self, msg_id: int, pred: Callable[[dict], bool] = lambda m: False,
              timeout: float = TIMEOUT_S) -> tuple[dict, list[dict]]:
        """Read until the answer of `msg_id` or a message of it matching `pred`; (that
        message, the messages of `msg_id` before it)."""
        before = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read(max(0.01, deadline - time.monotonic()))
            if msg.get("id") != msg_id:
                continue
            if pred(msg) or msg["type"] in (protocol.RESULT, protocol.ERROR):
                return msg, before
            before.append(msg)

    def call(self, method: str, timeout: float = TIMEOUT_S, **params: Any) -> tuple[dict, list]:
        """Request and wait for its answer: (answer message, its events)."""
        return self.until(self.request(method, **params), timeout=timeout)

    def value(self, method: str, **params: Any) -> dict:
        answer, _ = self.call(method, **params)
        assert answer["type"] == protocol.RESULT, answer
        return answer["value"]

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.call("shutdown", timeout=30)
            except (EngineDied, TimeoutError, BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.join(30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
        self._sel.close()
        return self.proc.returncode


def progress_items(events: list[dict]) -> list[dict]:
    return [p for m in events if m.get("event") == protocol.PROGRESS for p in m["progress"]]
