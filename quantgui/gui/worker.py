"""The one bridge between the GUI thread and engine work.

Engine work (opening a model, running a recipe, exporting) runs on a `QThread`; it receives a
`progress.Task` whose callback only appends to a lock-protected buffer. A GUI-thread timer drains
that buffer at ~30 Hz, so a chatty engine (hundreds of timing samples a second) never floods the
event loop, and widgets are only ever touched by GUI-thread slots.

Cancel sets the job's `CancelToken`; the engine raises `Cancelled` at its next check (at least
every ~200 ms) and the job reports `cancelled`. Warnings raised by the engine inside the thread
are recorded there and forwarded as strings (a warning printed from a thread has crashed PySide
apps). The bridge keeps strong references to running jobs until their thread has ended.
"""

from __future__ import annotations

import sys

import threading
import time
import traceback
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, QThread, QTimer, Signal

#: Minimum interval between progress deliveries to the GUI (about 30 Hz).
FLUSH_MS = 33
#: Progress values the plots want sample by sample (never coalesced away).
_KEEP_ALL = ("latency_ms", "accuracy", "agreement", "loss", "before_bytes", "step")


@dataclass
class JobError:
    """What a failed job hands back: a one-line message and the traceback for "details"."""

    message: str
    details: str
    user_error: bool  # a problem with the user's input (UserError) rather than a bug
    exception: Optional[BaseException] = None  # e.g. TrustRequired / ArchitectureRequired
    kind: str = "internal"  # the engine protocol's error kind (what the GUI dispatches on)
    gui_text: Optional[str] = None  # the message without command-line advice, if it has one
    data: Optional[dict] = None     # what a question needs (example_input: info, kinds)


def error_kind(exc: BaseException) -> str:
    """The protocol's error kind of an engine exception (quantgui.engine.protocol)."""
    from quantgui.core import TrustRequired, UserError
    from quantgui.core.opening.example_input import ExampleInputRequired
    from quantgui.core.opening.loading import ArchitectureRequired
    for cls, kind in ((TrustRequired, "trust"), (ArchitectureRequired, "architecture"),
                      (ExampleInputRequired, "example_input"), (UserError, "user")):
        if isinstance(exc, cls):
            return kind
    return "internal"


#: Every worker thread made, weakly: tests assert none is left running.
_THREADS: "weakref.WeakSet[QThread]" = weakref.WeakSet()


def running_threads() -> list[QThread]:
    return [t for t in list(_THREADS) if t.isRunning()]


def preload_torch_libraries() -> None:
    """Worker thread, before `import torch`: dlopen torch's big shared libraries through a
    ctypes call, which releases the GIL. Python's own import dlopens them with the GIL held
    (~200 ms for libtorch_cpu), freezing the event loop for that long. Best effort."""
    try:
        import ctypes
        import importlib.util
        import os
        import sys
        if "torch" in sys.modules or not sys.platform.startswith("linux"):
            return
        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.origin:
            return
        lib = os.path.join(os.path.dirname(spec.origin), "lib")
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
        for name in ("libc10.so", "libtorch_cpu.so", "libtorch.so", "libtorch_python.so"):
            path = os.path.join(lib, name)
            if os.path.exists(path):
                dlopen(path.encode(), 0x102)  # RTLD_NOW | RTLD_GLOBAL, as torch loads them
    except Exception:  # noqa: BLE001 - only an optimisation: the import does it anyway
        pass


class _Thread(QThread):
    def __init__(self, job: "Job") -> None:
        super().__init__()
        self._job = job
        self.setObjectName(f"quantgui-{job.kind}")
        _THREADS.add(self)

    def run(self) -> None:  # runs on the worker thread: touch no widget here
        self._job._execute()


class Job(QObject):
    """One piece of engine work. Signals arrive on the GUI thread."""

    progress = Signal(list)      # [Progress, ...] coalesced, in order
    finished = Signal(object)    # the function's return value
    failed = Signal(object)      # JobError
    cancelled = Signal()
    warned = Signal(str)
    ended = Signal()             # after any of finished / failed / cancelled

    def __init__(self, kind: str, fn: Callable[..., Any], args: tuple, kwargs: dict,
                 parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        from quantgui.core import CancelToken  # engine modules without torch
        self.kind = kind
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self.token = CancelToken()
        self._lock = threading.Lock()
        self._pending: list = []
        self._warnings: list[str] = []
        self._outcome: tuple[str, Any] = ("cancelled", None)
        self._thread = _Thread(self)
        self._thread.finished.connect(self._on_thread_finished)
        self.started_at = 0.0
        self._delivered = False

    # -- GUI thread -------------------------------------------------------------------------
    def start(self) -> None:
        self.started_at = time.perf_counter()
        self._thread.start()

    def cancel(self) -> None:
        self.token.cancel()

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = -1) -> bool:
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    def flush(self) -> None:
        """Deliver buffered progress and warnings (called by the bridge's timer)."""
        with self._lock:
            batch, self._pending = self._pending, []
            warned, self._warnings = self._warnings, []
        for text in warned:
            self.warned.emit(text)
        if batch:
            self.progress.emit(_coalesce(batch))

    def _on_thread_finished(self) -> None:
        if self._delivered:
            return
        self._delivered = True
        self._thread.wait()
        self.flush()
        status, value = self._outcome
        if status == "ok":
            self.finished.emit(value)
        elif status == "error":
            self.failed.emit(value)
        else:
            self.cancelled.emit()
        self.ended.emit()

    # -- worker thread ----------------------------------------------------------------------
    def _report(self, progress: Any) -> None:
        with self._lock:
            self._pending.append(progress)

    def _execute(self) -> None:
        from quantgui.core import Cancelled, UserError
        from quantgui.core import Task
        task = Task(self._report, self.token)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                value = self._fn(*self._args, task=task, **self._kwargs)
                self._outcome = ("cancelled", None) if self.token.cancelled else ("ok", value)
            except Cancelled:
                self._outcome = ("cancelled", None)
            except UserError as exc:
                data = {"info": getattr(exc, "info", None), "kinds": getattr(exc, "kinds", None)}
                self._outcome = ("error", JobError(str(exc), traceback.format_exc(), True, exc,
                                                   error_kind(exc), getattr(exc, "gui_text",
                                                                            None), data))
            except BaseException as exc:  # noqa: BLE001 - any bug must reach the dialog
                from quantgui.core import internal_error_text
                msg = internal_error_text(exc)
                self._outcome = ("error", JobError(msg, traceback.format_exc(), False, exc))
            texts = [f"{w.category.__name__}: {w.message}" for w in caught]
        with self._lock:
            self._warnings.extend(dict.fromkeys(texts))  # once each, in order


def _coalesce(batch: list) -> list:
    """Keep every progress that carries plot values; of bare counters keep only the newest."""
    out = []
    for i, p in enumerate(batch):
        values = getattr(p, "values", None) or {}
        if any(k in values for k in _KEEP_ALL) or i == len(batch) - 1:
            out.append(p)
        elif i + 1 < len(batch) and getattr(batch[i + 1], "phase", None) != p.phase:
            out.append(p)  # the last of a phase stays, so phase changes are never lost
    return out


class EngineBridge(QObject):
    """Starts jobs, keeps them alive while they run and drains their progress at ~30 Hz."""

    busyChanged = Signal(bool)

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        # The worker runs Python (torch's Python layers, the engine's loops) next to the GUI
        # thread. PySide releases the GIL around every Qt call, so one paint re-acquires it
        # hundreds of times, each wait up to the switch interval (5 ms by default) while the
        # worker holds it: a convoy that turns a 20 ms paint into 200+ ms. A short interval
        # keeps the GUI responsive; it is process-wide, so before and after are timed alike.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self._jobs: set[Job] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(FLUSH_MS)
        self._timer.timeout.connect(self._flush)

    def submit(self, kind: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """Run `fn(*args, task=Task, **kwargs)` on a worker thread; connect, then `job.start()`."""
        job = Job(kind, fn, args, kwargs, self)
        job.ended.connect(lambda: self._forget(job))
        self._jobs.add(job)
        if not self._timer.isActive():
            self._timer.start()
        if len(self._jobs) == 1:
            self.busyChanged.emit(True)
        return job

    def jobs(self, kind: Optional[str] = None) -> list[Job]:
        return [j for j in self._jobs if kind is None or j.kind == kind]

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything and wait for the threads (window close). True when all ended."""
        self.cancel_all()
        ok = True
        deadline = time.perf_counter() + timeout_ms / 1000
        for job in list(self._jobs):
            left = max(1, int((deadline - time.perf_counter()) * 1000))
            ok = job.wait(left) and ok
        for job in list(self._jobs):
            if not job.running:
                job._on_thread_finished()  # deliver 'cancelled' now; the queued call is moot
        self._timer.stop()
        return ok

    def _flush(self) -> None:
        for job in list(self._jobs):
            job.flush()

    def _forget(self, job: Job) -> None:
        if job not in self._jobs:
            return
        self._jobs.discard(job)
        job.deleteLater()
        if not self._jobs:
            self._timer.stop()
            self.busyChanged.emit(False)
