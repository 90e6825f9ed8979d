"""The GUI's side of the engine process: `python -m quantgui.engine` in a `QProcess`, spoken to
in the JSON lines of `quantgui.engine.protocol`.

Requests carry ids; each `Request` object gets its events as Qt signals on the GUI thread
(progress, partial, result, error, log), and ends exactly once: finished, failed or cancelled.
The engine's stderr (anything C++ code or the model printed) arrives as `log` lines.

Cancel is cooperative first: the request's cancel goes to the engine, which stops at its next
check. If the request has not ended `CANCEL_GRACE_MS` later (inside torch.compile, a long
forward, a C++ call), the process is killed, the request reports "cancelled (the engine was
restarted to stop it)" at once, a fresh engine starts, and the model that was open is opened
again in the background with the same parameters (trust only where the user gave it) and in
the same data mode: labels the user asked to drop ("None — fidelity only") are dropped again,
also when the engine died before it answered that request.

Crash containment: when the engine exits unexpectedly (a signal, an exit code, its pipe
closing), every request in flight fails with kind "crashed" and the exit reason (SIGABRT,
SIGSEGV, SIGKILL "probably out of memory", exit code N), `restarted` says so, and the same
restart and re-open follow. The window keeps its session: only the engine's variants are lost.

Torch-free: this module and the protocol are all the GUI process needs of the engine.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from quantgui.engine import protocol as P

from .engine_outcomes import CANCEL_RESTARTED, CRASHED, EngineError, exit_reason

#: How long a cancelled request may take to end before the engine is killed and restarted
#: (0.8 s, so that the window says "cancelled" within 1 s even then).
CANCEL_GRACE_MS = 800
#: How long shutdown waits for the engine to exit by itself before killing it.
SHUTDOWN_WAIT_MS = 2000
class Request(QObject):
    """One request to the engine. Connect, then `start()`; signals arrive on the GUI thread."""

    progress = Signal(list)      # [core.progress.Progress, ...] in order
    partial = Signal(dict)       # e.g. {"trial": Trial JSON} during recommend
    finished = Signal(dict)      # the result's value
    failed = Signal(object)      # EngineError
    cancelled = Signal(str)      # "cancelled" or CANCEL_RESTARTED
    warned = Signal(str)
    ended = Signal()             # after any of finished / failed / cancelled

    def __init__(self, client: "EngineClient", id: int, method: str, params: dict,
                 kind: str) -> None:
        super().__init__(client)
        self.client, self.id, self.method, self.params, self.kind = \
            client, id, method, params, kind
        self.done = False
        self.cancel_sent = False
        self.cancel_data: dict = {}  # the cancelled error's data (recommend: best so far)

    def start(self) -> None:
        self.client._send(P.request(self.id, self.method, self.params))

    def describe(self) -> str:
        """What the request does, for people ("the run of dynamic_int8", "opening x.pt")."""
        p = self.params
        if self.method == "run":
            return f"the run of {p.get('label') or 'a recipe'}"
        if self.method in ("open", "inspect"):
            return f"opening {p.get('source') or 'the default example'}"
        if self.method == "recommend":
            return "Suggest (the search for a recipe)"
        if self.method == "tune":
            return "Auto-tune (the search within the quality budget)"
        if self.method == "export":
            return f"the export of the {p.get('what', 'files')}"
        return self.method.replace("_", " ")

    def cancel(self) -> None:
        self.client.cancel(self.id)

    def _end(self, outcome: str, value: Any) -> None:
        if self.done:
            return
        self.done = True
        getattr(self, outcome).emit(value)
        self.ended.emit()


class EngineClient(QObject):
    ready = Signal(dict)          # the engine's hello (each start)
    startFailed = Signal(str)     # the engine could not start or speaks another version
    busyChanged = Signal(bool)
    log = Signal(str)             # a line the engine wrote to stderr, or a log without a request
    restarted = Signal(str)       # why the engine was restarted (one line)
    reopened = Signal(dict)       # OPENED of the model re-opened after a restart
    reopenFailed = Signal(object)  # EngineError

    def __init__(self, parent: Optional[QObject] = None,
                 command: Optional[list[str]] = None) -> None:
        super().__init__(parent)
        self.command = command or [sys.executable, "-m", "quantgui.engine"]
        self.info: dict = {}      # the last hello's "engine"
        self.start_error = ""     # why the engine could not start, if it could not
        self.last_log = ""        # the engine's last stderr line (a start failure's reason)
        self.model_params: Optional[dict] = None  # the open of the model to re-open
        #: The user asked to drop the open model's labels (from the moment it was asked: a
        #: re-open drops them again even when the engine died before answering).
        self.labels_dropped = False
        self.pids: list[int] = []  # every engine process started (tests: none left behind)
        self._requests: dict[int, Request] = {}
        self._next_id = 1
        self._proc: Optional[QProcess] = None
        self._out = b""
        self._err = b""
        self._ready = False
        self._queued: list[str] = []
        self._stopping = False

    # -- the process --------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self._proc.processId()) if self._proc is not None else 0

    def start(self) -> None:
        """Start the engine (it answers with hello; requests sent before wait for it); nothing
        when one is already running or starting."""
        if self._proc is not None:
            return
        proc = QProcess(self)
        proc.setProgram(self.command[0])
        proc.setArguments(self.command[1:])
        env = proc.processEnvironment()
        if env.isEmpty():
            from PySide6.QtCore import QProcessEnvironment
            env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        env.remove("QT_QPA_PLATFORM")  # the engine never shows anything
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(lambda: self._read_out(proc))
        proc.readyReadStandardError.connect(lambda: self._read_err(proc))
        proc.finished.connect(lambda code, status: self._on_exit(proc, code, status))
        proc.errorOccurred.connect(lambda error: self._on_error(proc, error))
        self._proc, self._out, self._err, self._ready = proc, b"", b"", False
        proc.started.connect(lambda: self.pids.append(int(proc.processId())))
        self._stopping = False
        proc.start()

    def _stop_process(self) -> None:
        """Kill the current process and forget it (its exit is not a crash)."""
        proc, self._proc = self._proc, None
        self._ready = False
        if proc is None:
            return
        proc.blockSignals(True)
        if proc.state() != QProcess.ProcessState.NotRunning:
            proc.kill()
            proc.waitForFinished(2000)  # SIGKILL: reaped within milliseconds; no zombie
        proc.deleteLater()

    def shutdown(self, timeout_ms: int = SHUTDOWN_WAIT_MS) -> None:
        """Window close: cancel everything, ask the engine to exit, kill it if it does not."""
        self._stopping = True
        proc = self._proc
        for req in list(self._requests.values()):
            req._end("cancelled", "cancelled")
        self._requests.clear()
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            if self._ready:
                self._write(proc, P.request(0, "shutdown"))
                proc.closeWriteChannel()
                proc.waitForFinished(timeout_ms)
        self._stop_process()
        self.busyChanged.emit(False)

    def release(self) -> None:
        """A window sharing this engine closed: its requests end (cancelled) and the engine
        forgets the model to re-open; work still running is stopped by a restart."""
        running = list(self._requests.values())
        for req in running:
            req._end("cancelled", "cancelled")
        self.model_params = None
        if running:
            self.restart("")

    def restart(self, why: str) -> None:
        """Kill the engine, start a fresh one and re-open the model that was open."""
        self._stop_process()
        self.start()
        if why:
            self.restarted.emit(why)
        if self.model_params is not None:
            req = self.submit("open", self.model_params, kind="reopen")
            req.finished.connect(self._drop_again if self.labels_dropped else
                                 self.reopened.emit)
            req.failed.connect(self.reopenFailed.emit)
            req.start()

    def _drop_again(self, opened: dict) -> None:
        """The re-opened model in the data mode the user chose: its labels dropped again."""
        req = self.submit("drop_labels", {"model_id": opened.get("model_id")}, kind="reopen")
        req.finished.connect(self.reopened.emit)
        req.failed.connect(self.reopenFailed.emit)
        req.start()

    # -- requests -----------------------------------------------------------------------------
    def submit(self, method: str, params: Optional[dict] = None,
               kind: Optional[str] = None) -> Request:
        """A request (connect its signals, then `start()`); `kind` names it for `requests()`."""
        req = Request(self, self._next_id, method, dict(params or {}), kind or method)
        self._next_id += 1
        self._requests[req.id] = req
        req.ended.connect(lambda: self._forget(req))
        if method == "open":  # the model to re-open after a restart, once it opened
            req.finished.connect(lambda _v: self._opened(req))
        elif method == "drop_labels" and req.kind != "reopen":
            self.labels_dropped = True  # the user's choice, whatever happens to the engine
            req.failed.connect(self._drop_failed)
        if len(self._requests) == 1:
            self.busyChanged.emit(True)
        return req

    def _opened(self, req: Request) -> None:
        self.model_params = dict(req.params)
        if req.kind != "reopen":  # another model, or this one with other data: labels kept
            self.labels_dropped = False

    def _drop_failed(self, err: EngineError) -> None:
        if err.kind != CRASHED:  # refused: the labels stay (a crash: the re-open drops them)
            self.labels_dropped = False

    def sensitivity(self, model_id: str, format: str = "dynamic_int8",
                    params: Optional[dict] = None, expand: bool = False,
                    samples: Optional[int] = None, batch_size: Optional[int] = None,
                    use_cache: bool = True) -> Request:
        """A "sensitivity" request (not started): its `partial` signal carries {"unit":
        UnitSensitivity JSON} per measured unit, `finished` {"sensitivity": SensitivityReport
        JSON}; a cancel's error data holds the report so far."""
        return self.submit("sensitivity", {
            "model_id": model_id, "format": format, "params": dict(params or {}),
            "expand": bool(expand), "samples": samples, "batch_size": batch_size,
            "use_cache": bool(use_cache)})

    def tune(self, model_id: str, budget: Optional[dict] = None,
             options: Optional[dict] = None, time_limit_s: Optional[float] = None,
             max_candidates: Optional[int] = None, cluster: Optional[str] = None,
             model: Optional[dict] = None) -> Request:
        """A "tune" request (not started): `partial` carries {"trial": TuneTrial JSON} per
        trial, `finished` {"tune": TuneResult JSON}; a cancel's error data holds the result so
        far (its best is the best so far). With a `cluster` (not "local") every machine type is
        tuned on its own nodes, which open `model` (the open parameters) themselves: partials
        add "machine", the answer is {"cluster_tune": ClusterTuneResult JSON}."""
        params: dict = {"model_id": model_id, "budget": budget, "options": options}
        if cluster not in (None, "local"):
            params.update(cluster=cluster, model=model)
        if time_limit_s is not None:
            params["time_limit_s"] = float(time_limit_s)
        if max_candidates is not None:
            params["max_candidates"] = int(max_candidates)
        return self.submit("tune", params)

    def requests(self, kind: Optional[str] = None) -> list[Request]:
        return [r for r in self._requests.values() if kind is None or r.kind == kind]

    @property
    def busy(self) -> bool:
        return bool(self._requests)

    def cancel(self, id: int) -> None:
        req = self._requests.get(id)
        if req is None or req.cancel_sent:
            return
        req.cancel_sent = True
        self._send(P.cancel(id))
        QTimer.singleShot(CANCEL_GRACE_MS, self, lambda: self._cancel_overdue(req))

    def cancel_all(self) -> None:
        for req in list(self._requests.values()):
            self.cancel(req.id)

    def _cancel_overdue(self, req: Request) -> None:
        if req.done:
            return
        for other in list(self._requests.values()):
            if other is not req:  # queued behind it: the fresh engine never got them
                other._end("failed", EngineError(CRASHED, "The engine was restarted to stop "
                                                 f"{req.method}; {other.method} did not run."))
        self.restart(f"The engine was restarted to stop {req.describe()} (it did not stop "
                     f"within {CANCEL_GRACE_MS / 1000:g} s of Cancel).")
        # Ended after the restart began: what the window says last is "cancelled".
        req._end("cancelled", CANCEL_RESTARTED)

    def _forget(self, req: Request) -> None:
        if self._requests.pop(req.id, None) is not None:
            req.deleteLater()
            if not self._requests:
                self.busyChanged.emit(False)

    # -- the wire -----------------------------------------------------------------------------
    def _send(self, msg: dict) -> None:
        if self._proc is None and not self._stopping:
            self.start()
        if self._ready and self._proc is not None:
            self._write(self._proc, msg)
        else:
            self._queued.append(P.encode(msg))

    @staticmethod
    def _write(proc: QProcess, msg: Any) -> None:
        line = msg if isinstance(msg, str) else P.encode(msg)
        proc.write((line + "\n").encode("utf-8"))

    def _read_out(self, proc: QProcess) -> None:
        if proc is not self._proc:
            return
        self._out += bytes(proc.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            if line.strip() and proc is self._proc:
                self._handle(line)

    def _read_err(self, proc: QProcess) -> None:
        self._err += bytes(proc.readAllStandardError().data())
        *lines, self._err = self._err.split(b"\n")
        for line in lines:
            text = line.decode("utf-8", "replace").rstrip()
            if text:
                self.last_log = text
                self.log.emit(text)

    def _handle(self, line: bytes) -> None:
        try:
            msg = P.decode(line, expect=P.ENGINE_TYPES)
        except P.VersionMismatch as exc:
            self._refuse(f"The engine speaks another protocol: {exc}")
            return
        except P.ProtocolError as exc:
            self.log.emit(f"engine: unreadable message ({exc})")
            return
        kind = msg["type"]
        if kind == P.HELLO:
            self.info = P.check_hello(msg)
            self._ready = True
            queued, self._queued = self._queued, []
            for text in queued:
                self._write(self._proc, text)
            self.ready.emit(self.info)
            return
        req = self._requests.get(msg.get("id")) if msg.get("id") is not None else None
        if kind == P.EVENT:
            self._event(req, msg)
        elif req is None:
            if kind == P.ERROR:
                self.log.emit("engine: " + P.ErrorInfo.from_json(msg["error"]).message)
        elif kind == P.RESULT:
            req._end("finished", msg["value"])
        else:
            info = P.ErrorInfo.from_json(msg["error"])
            if info.kind == P.CANCELLED:
                req.cancel_data = info.data
                req._end("cancelled", "cancelled")
            else:
                req._end("failed", EngineError(info.kind, info.message, info.gui_text,
                                               info.details, info.data))

    def _event(self, req: Optional[Request], msg: dict) -> None:
        event = msg["event"]
        if event == P.LOG:
            text = str(msg.get("message", ""))
            if req is not None and msg.get("level") == "warning":
                req.warned.emit(text)
            else:
                self.log.emit(text)
        elif req is None:
            return
        elif event == P.PROGRESS:
            items = [P.progress_from_json(p) for p in msg.get("progress") or []
                     if isinstance(p, dict)]
            if items:
                req.progress.emit(items)
        elif event == P.PARTIAL and isinstance(msg.get("value"), dict):
            req.partial.emit(msg["value"])

    def _refuse(self, message: str) -> None:
        self.start_error = message
        for req in list(self._requests.values()):
            req._end("failed", EngineError(P.PROTOCOL, message))
        self._stopping = True
        self._stop_process()
        self.startFailed.emit(message)

    # -- the process ending -------------------------------------------------------------------
    def _on_error(self, proc: QProcess, error: QProcess.ProcessError) -> None:
        if proc is self._proc and error == QProcess.ProcessError.FailedToStart:
            self._refuse(f"The engine could not start ({' '.join(self.command)}): "
                         f"{proc.errorString()}")

    def _on_exit(self, proc: QProcess, code: int, status: QProcess.ExitStatus) -> None:
        if proc is not self._proc or self._stopping:
            return
        self._read_out(proc)
        self._read_err(proc)
        reason = exit_reason(code, status == QProcess.ExitStatus.CrashExit)
        if not self._ready:  # never said hello: starting again would fail the same way
            self._refuse(f"The engine could not start ({reason})" +
                         (f": {self.last_log}" if self.last_log else "."))
            return
        running = [r for r in self._requests.values() if not r.done]
        if any(r.kind == "reopen" for r in running):
            self.model_params = None  # re-opening is what crashed: do not loop
        what = running[0].describe() if running else ""
        reopen = " and the model opened again" if self.model_params is not None else ""
        for req in running:
            req._end("failed", EngineError(
                CRASHED, f"The engine stopped ({reason}) during {req.describe()}. It was "
                f"restarted{reopen}; the session history is kept, nothing of this "
                f"{req.method.replace('_', ' ')} was.",
                details=f"engine pid {self.pids[-1] if self.pids else '?'} ended: {reason}",
                data={"reason": reason, "method": req.method}))
        self.restart(f"The engine stopped ({reason})" + (f" during {what}" if what else "")
                     + f"; it was restarted{reopen}.")
