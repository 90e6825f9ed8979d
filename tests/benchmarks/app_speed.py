"""How fast the app feels: launch to window shown, event-loop stalls and the demo's duration.

    python tests/benchmarks/app_speed.py            # prints JSON
    python tests/benchmarks/bench.py --app-only     # the same, as a Markdown table

1. launch_to_shown_s: wall time from starting the real `quantgui` command (a subprocess,
   QT_QPA_PLATFORM=offscreen, QUANTGUI_TIMING=1) to its "window shown" line on stderr. It
   includes the interpreter's start and every import before `window.show()` (target <= 1.5 s).
2. max_stall_ms: the longest gap between ticks of a 10 ms QTimer while the full demo runs
   (`--demo --screenshot`): the time the GUI thread could not answer a click (target <= 50 ms).
   max_gap_cpu_ms: the most CPU time the GUI thread itself spent between two ticks: on a busy
   machine a gap is mostly waiting for a core, this is the work the app did in it.
   Measured by a tiny launcher that runs `quantgui.gui.app.main` in-process with the timer and
   an event filter that records the window's first Show/Expose.
3. demo_s: launch to exit of the full demo run (load example, two recipes, screenshot;
   target <= 20 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MARK = "@@APPSPEED@@"

LAUNCHER = r'''
import json, os, sys, time
T0 = float(os.environ["APPSPEED_T0"])
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(sys.argv[:1])
marks = {"shown": None}
ticks = []
cpu = []  # the GUI thread's CPU time at each tick

class Watch(QObject):
    def eventFilter(self, obj, ev):
        if marks["shown"] is None and ev.type() in (QEvent.Type.Show, QEvent.Type.Expose) \
                and isinstance(obj, QMainWindow):
            marks["shown"] = time.time() - T0
            ticks.append(time.perf_counter())
            cpu.append(time.thread_time())
            timer.start()
        return False

watch = Watch()
app.installEventFilter(watch)
timer = QTimer()
timer.setInterval(10)
timer.timeout.connect(lambda: (ticks.append(time.perf_counter()), cpu.append(time.thread_time())))
import threading, traceback
main_id = threading.get_ident()
stalls = []  # (gap start offset, stack of the GUI thread while it was stalled)

def watchdog():
    # Samples the GUI thread's stack when no tick came for 40 ms: says what blocked it.
    last_seen = None
    while not done.is_set():
        time.sleep(0.02)
        if ticks and time.perf_counter() - ticks[-1] > 0.04 and ticks[-1] != last_seen:
            last_seen = ticks[-1]
            frame = sys._current_frames().get(main_id)
            if frame is not None:
                stack = traceback.extract_stack(frame)[-8:]
                stalls.append([round(ticks[-1] - ticks[0], 3),
                               [f"{fs.filename.split('/site-packages/')[-1].split('/work/main/')[-1]}:{fs.lineno} {fs.name}"
                                for fs in stack]])

done = threading.Event()
threading.Thread(target=watchdog, daemon=True).start()
from quantgui.gui import app as qapp
code = qapp.main(["--demo", "--screenshot", sys.argv[1]])
end = time.time() - T0
done.set()
gaps = [b - a for a, b in zip(ticks, ticks[1:])]
big = sorted(((b - a, a - ticks[0]) for a, b in zip(ticks, ticks[1:])), reverse=True)[:8]
gaps_sorted = sorted(gaps)
print("@@APPSPEED@@" + json.dumps({
    "code": code, "shown_s": marks["shown"], "demo_s": end,
    "max_stall_ms": 1e3 * max(gaps) if gaps else None,
    "max_gap_cpu_ms": 1e3 * max(b - a for a, b in zip(cpu, cpu[1:])) if gaps else None,
    "p99_gap_ms": 1e3 * gaps_sorted[int(0.99 * (len(gaps) - 1))] if gaps else None,
    "stalls_over_50ms": sum(g > 0.05 for g in gaps), "ticks": len(ticks),
    "largest_gaps": [[round(1e3 * g, 1), round(at, 3)] for g, at in big],
    "stall_stacks": stalls[:12]}), flush=True)
'''


def _env() -> dict:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("QUANTGUI_CACHE", str(Path.home() / ".cache" / "quantgui"))
    return env


def launch_to_shown(repeats: int = 3, timeout: float = 60) -> dict[str, Any]:
    """Real `quantgui` command: seconds until it prints 'window shown' (QUANTGUI_TIMING=1)."""
    exe = shutil.which("quantgui")
    cmd = [exe] if exe else [sys.executable, "-m", "quantgui.gui.app"]
    env = _env()
    env["QUANTGUI_TIMING"] = "1"
    times, errors = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env,
                                text=True)
        shown = None
        try:
            deadline = t0 + timeout
            while time.perf_counter() < deadline:
                line = proc.stderr.readline()
                if not line:
                    break
                if "window shown" in line:
                    shown = time.perf_counter() - t0
                    break
        finally:
            proc.kill()
            proc.wait()
        if shown is None:
            errors.append("no 'window shown' line (QUANTGUI_TIMING)")
        else:
            times.append(shown)
    out: dict[str, Any] = {"launch_to_shown_runs_s": [round(t, 3) for t in times]}
    if times:
        out["launch_to_shown_s"] = sorted(times)[len(times) // 2]
    if errors:
        out["launch_error"] = errors[0]
    return out


def demo_run(timeout: float = 300) -> dict[str, Any]:
    """Full `--demo --screenshot` in a launcher that records stalls and the first show."""
    with tempfile.TemporaryDirectory() as tmp:
        shot = os.path.join(tmp, "demo.png")
        env = _env()
        env["APPSPEED_T0"] = repr(time.time())
        try:
            proc = subprocess.run([sys.executable, "-c", LAUNCHER, shot], env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"demo_error": f"demo did not finish in {timeout:.0f} s"}
        for line in proc.stdout.splitlines():
            if line.startswith(MARK):
                data = json.loads(line[len(MARK):])
                data["screenshot_ok"] = os.path.exists(shot)
                if data.get("code"):
                    data["demo_error"] = f"exit code {data['code']}: " + proc.stderr[-300:]
                return data
        return {"demo_error": f"launcher exited {proc.returncode}: {proc.stderr[-400:]}"}


def measure_all() -> dict[str, Any]:
    out: dict[str, Any] = {}
    out.update(launch_to_shown())
    demo = demo_run()
    out["demo_s"] = demo.get("demo_s")
    out["max_stall_ms"] = demo.get("max_stall_ms")
    out["max_gap_cpu_ms"] = demo.get("max_gap_cpu_ms")
    out["demo"] = demo
    errs = [v for k, v in {**out, **demo}.items() if k.endswith("error")]
    if errs:
        out["error"] = "; ".join(str(e) for e in errs)
    return out


if __name__ == "__main__":
    print(json.dumps(measure_all(), indent=1))
