"""The engine process: reads requests (protocol.py) line by line, runs them in order on one
worker thread, writes events and answers.

The protocol goes out on a private duplicate of the original stdout; fd 1 itself is pointed
at stderr before any work, so a print from user code, a C++ kernel's chatter or a library's
banner can never corrupt the stream. Python-level prints made while a request runs become
"log" events of that request (level "output"), warnings "log" events of level "warning".

The reader thread (the main one) answers "hello", "variants", "forget" and "shutdown" at once
and handles "cancel": the running request's `CancelToken` is set (the work stops at its next
check, within ~200 ms; inside a C++ call or torch.compile it cannot, and the client kills the
process after 1 s), a queued one is dropped with a "cancelled" error. Progress is buffered and
sent at most every `FLUSH_S` per request, coalesced (protocol.coalesce keeps every plotted
sample), and always before the request's partial events and its answer.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import traceback
import warnings
from collections import deque
from typing import Any, BinaryIO, Optional

from . import protocol
from .protocol import ErrorInfo, ProtocolError

#: Shortest interval between two progress events of a request (about 30 a second).
FLUSH_S = 0.033


class Job:
    """One request: its id, method and params, its cancel token and its unsent progress."""

    def __init__(self, msg_id: int, method: str, params: dict) -> None:
        from quantgui.core import CancelToken
        self.id, self.method, self.params = msg_id, method, params
        self.token = CancelToken()
        self.lock = threading.Lock()
        #: Held while a batch is taken and sent: the flusher and the worker never reorder.
        self.send_lock = threading.Lock()
        self.pending: list = []
        self.warned: set[str] = set()

    def report(self, progress: Any) -> None:
        with self.lock:
            self.pending.append(progress)

    def take(self) -> list:
        with self.lock:
            batch, self.pending = self.pending, []
        return protocol.coalesce(batch)


class Server:
    def __init__(self, infile: BinaryIO, outfile: BinaryIO) -> None:
        from .state import Store
        self.infile, self.outfile = infile, outfile
        self.store = Store()
        self._out_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: "deque[Job]" = deque()
        self._current: Optional[Job] = None
        self._ids: set[int] = set()          # ids queued or running
        self._stopping = False
        self._broken = False
        #: sys.stdout while serving (main): its unfinished line is sent when a request ends.
        self.prints: Optional["_PrintLog"] = None
        self._worker = threading.Thread(target=self._work, name="engine-worker", daemon=True)
        self._flusher = threading.Thread(target=self._flush_loop, name="engine-progress",
                                         daemon=True)

    # -- output ----------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        try:
            line = protocol.encode(msg)
        except (TypeError, ValueError) as exc:  # a value JSON cannot hold: a bug, said once
            if msg.get("type") == protocol.ERROR:
                raise
            info = ErrorInfo(protocol.INTERNAL, f"the answer could not be encoded: {exc}")
            line = protocol.encode(protocol.error(msg.get("id"), info))
        data = (line + "\n").encode("ascii")
        with self._out_lock:
            if self._broken:
                return
            try:
                self.outfile.write(data)
                self.outfile.flush()
            except (OSError, ValueError):
                self._broken = True  # the client is gone: finish quietly

    def log(self, level: str, message: str) -> None:
        job = self._current
        if job is not None and level == "warning":
            if message in job.warned:
                return  # once each per request, as the in-process worker did
            job.warned.add(message)
            self._flush(job)
        self.send(protocol.log_event(None if job is None else job.id, level, message))

    def _flush(self, job: Job) -> None:
        with job.send_lock:
            batch = job.take()
            if batch:
                self.send(protocol.progress_event(job.id, [protocol.progress_json(p)
                                                           for p in batch]))

    def _flush_loop(self) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_S):
            job = self._current
            if job is not None:
                self._flush(job)

    # -- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._current = self._queue.popleft()
            try:
                self._execute(job)
            finally:
                with self._cond:
                    self._current = None
                    self._ids.discard(job.id)
                    self._cond.notify_all()

    def _execute(self, job: Job) -> None:
        from quantgui.core import Task
        from .methods import WORK, Call
        task = Task(job.report, job.token)
        # Re-adding the filter resets the "already shown" registries: each request's warnings
        # are sent once each (as the in-process worker did per job).
        warnings.simplefilter("default")

        def partial(value: dict) -> None:
            self._flush(job)
            self.send(protocol.partial_event(job.id, value))
        try:
            value = WORK[job.method](job.params, Call(task, self.store, partial))
            if job.token.cancelled:
                raise _cancelled()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an answer
            info = error_info(exc, job.params)
            self._end(job)
            self.send(protocol.error(job.id, info))
            return
        self._end(job)
        self.send(protocol.result(job.id, value))

    def _end(self, job: Job) -> None:
        """Before a request's answer: what it printed without a newline, its last progress."""
        if self.prints is not None:
            self.prints.flush()
        self._flush(job)

    # -- the reader ------------------------------------------------------------------------
    def serve(self) -> int:
        """Answer requests until "shutdown" or the end of input; the exit status (0)."""
        from .methods import engine_info
        self.hello = engine_info(self.store.keep)
        self.send(protocol.hello(self.hello))
        self._worker.start()
        self._flusher.start()
        while True:
            line = self.infile.readline(protocol.MAX_LINE + 1)
            if not line:
                break
            if not line.strip():
                continue
            if len(line) > protocol.MAX_LINE:
                self._skip_rest()
            if self._handle(line):
                return 0
        self._stop(None)
        return 0

    def _skip_rest(self) -> None:
        while True:
            chunk = self.infile.readline(protocol.MAX_LINE)
            if not chunk or chunk.endswith(b"\n"):
                return

    def _handle(self, line: bytes) -> bool:
        """One line; True after "shutdown"."""
        try:
            msg = protocol.decode(line, protocol.CLIENT_TYPES)
        except ProtocolError as exc:
            self.send(protocol.error(exc.id, ErrorInfo(protocol.PROTOCOL, str(exc))))
            return False
        msg_id = msg["id"]
        if msg["type"] == protocol.CANCEL:
            self._cancel(msg_id)
            return False
        method, params = msg["method"], msg["params"]
        with self._cond:
            duplicate = msg_id in self._ids
        if duplicate:
            self.send(protocol.error(msg_id, ErrorInfo(
                protocol.PROTOCOL, f"request id {msg_id} is already in use")))
            return False
        if method == "shutdown":
            self._stop(msg_id)
            return True
        if method in ("hello", "variants", "forget"):
            self._answer_now(msg_id, method, params)
            return False
        with self._cond:
            self._ids.add(msg_id)
            self._queue.append(Job(msg_id, method, params))
            self._cond.notify_all()
        return False

    def _answer_now(self, msg_id: int, method: str, params: dict) -> None:
        from .methods import Call, forget, variants
        from quantgui.core import Task
        try:
            if method == "hello":
                value = self.hello
            else:
                value = {"variants": variants, "forget": forget}[method](
                    params, Call(Task(), self.store, lambda v: None))
        except BaseException as exc:  # noqa: BLE001
            self.send(protocol.error(msg_id, error_info(exc, params)))
            return
        self.send(protocol.result(msg_id, value))

    def _cancel(self, msg_id: int) -> None:
        with self._cond:
            running = self._current if self._current is not None and \
                self._current.id == msg_id else None
            queued = next((j for j in self._queue if j.id == msg_id), None)
            if queued is not None:
                self._queue.remove(queued)
                self._ids.discard(msg_id)
        if running is not None:
            running.token.cancel()
        elif queued is not None:
            self.send(protocol.error(msg_id, ErrorInfo(
                protocol.CANCELLED, "cancelled before it started")))
        # else: it has already ended (its answer is on its way): nothing to do

    def _stop(self, msg_id: Optional[int], wait_s: float = 5.0) -> None:
        """Cancel everything, wait (bounded) for the running request, answer the shutdown."""
        with self._cond:
            dropped = list(self._queue)
            self._queue.clear()
            running = self._current
            if running is not None:
                running.token.cancel()
        for job in dropped:
            self.send(protocol.error(job.id, ErrorInfo(protocol.CANCELLED,
                                                       "cancelled: the engine is shutting down")))
        with self._cond:
            self._cond.wait_for(lambda: self._current is None, timeout=wait_s)
            self._stopping = True
            self._cond.notify_all()
        if msg_id is not None:
            self.send(protocol.result(msg_id, {}))


def _cancelled() -> BaseException:
    from quantgui.core import Cancelled
    return Cancelled("cancelled by the user")


def error_info(exc: BaseException, params: dict) -> ErrorInfo:
    """The typed error of an exception: the kind the client dispatches on, one line, data."""
    from quantgui.core import (ArchitectureRequired, Cancelled, ExampleInputRequired,
                               TrustRequired, UserError, internal_error_text)
    from .methods import CancelledWith
    from .state import MemoryRefused
    if isinstance(exc, ProtocolError):
        return ErrorInfo(protocol.PROTOCOL, str(exc))
    if isinstance(exc, (Cancelled, KeyboardInterrupt)):
        data = exc.data if isinstance(exc, CancelledWith) else {}
        return ErrorInfo(protocol.CANCELLED, "cancelled", data=data)
    if isinstance(exc, UserError):
        message, gui = str(exc), getattr(exc, "gui_text", None)
        if isinstance(exc, TrustRequired):
            return ErrorInfo(protocol.TRUST, message, gui, data={"source": params.get("source")})
        if isinstance(exc, ArchitectureRequired):
            return ErrorInfo(protocol.ARCHITECTURE, message, gui,
                             data={"source": params.get("source")})
        if isinstance(exc, ExampleInputRequired):
            info = None if exc.info is None else exc.info.to_json()
            return ErrorInfo(protocol.EXAMPLE_INPUT, message, gui,
                             data={"info": info, "kinds": list(exc.kinds)})
        if isinstance(exc, MemoryRefused):
            return ErrorInfo(protocol.MEMORY, message, gui,
                             data={"need_bytes": exc.need_bytes,
                                   "available_bytes": exc.available_bytes})
        return ErrorInfo(protocol.USER, message, gui, traceback.format_exc())
    return ErrorInfo(protocol.INTERNAL, internal_error_text(exc), None, traceback.format_exc())


class _PrintLog(io.TextIOBase):
    """sys.stdout in the engine: each printed line becomes a "log" event (level "output")."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._buf = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buf += text
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._server.log("output", line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            rest, self._buf = self._buf, ""
        if rest:
            self._server.log("output", rest)


def main(argv: Optional[list[str]] = None) -> int:
    """Serve on this process's stdin/stdout (`python -m quantgui.engine`, `quantgui-cli
    serve`). The protocol takes a private copy of fd 1; fd 1 then points at stderr."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    server = Server(sys.stdin.buffer, out)
    sys.stdout = server.prints = _PrintLog(server)  # type: ignore[assignment]
    warnings.simplefilter("default")

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        server.log("warning", f"{category.__name__}: {message}")
    warnings.showwarning = show
    code = server.serve()
    try:
        out.close()
    except OSError:
        pass
    return code
