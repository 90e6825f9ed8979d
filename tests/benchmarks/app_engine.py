"""The GUI process against its engine process (issue 10), measured in a real window offscreen:

- bert_gap_ms: the longest gap of a 10 ms QTimer in the GUI process while a BERT-sized
  encoder (bert_like.py, a Hugging Face folder) opens and runs dynamic INT8;
- cancel_s[phase]: seconds from Cancel to the window saying "cancelled", per phase (apply
  inside torch.compile, calibrate, QAT training, timing, evaluation, Suggest, export);
- restart_s: the engine killed (SIGKILL) while idle, until the model is open again;
- rss_mb_after_10 / rss_mb_after_100: the GUI process's resident memory after 10 and 100
  short runs, and the growth between them (target <= 30 MB).

    python tests/benchmarks/app_engine.py     # prints JSON (bench.py --app-only adds it)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

MARK = "@@APPENGINE@@"

LAUNCHER = r'''
import json, os, signal, sys, time
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from quantgui.core import Recipe
from quantgui.gui.main_window import MainWindow
BERT, TMP = sys.argv[1], sys.argv[2]
ticks = []
cpu = []  # the GUI thread's CPU time at each tick (a busy machine's gaps are mostly waiting)
timer = QTimer()
timer.setInterval(10)
timer.timeout.connect(lambda: (ticks.append(time.perf_counter()), cpu.append(time.thread_time())))

def wait(sig, timeout=900, cond=None):
    loop, got = QEventLoop(), []
    def done(*a):
        if cond is None or cond(*a):
            got.append(a); loop.quit()
    sig.connect(done)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    loop.exec()
    sig.disconnect(done)
    if not got:
        raise TimeoutError(str(sig))
    return got[0]

def max_gap_ms(t=None):
    t = ticks if t is None else t
    return round(1e3 * max((b - a for a, b in zip(t, t[1:])), default=0), 1)

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

SHORT = dict(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1, eval_limit=1)
LONG = dict(time_budget_s=20.0, min_rounds=10, max_rounds=100000, warmup=1)
w = MainWindow(QSettings(os.path.join(TMP, "s.ini"), QSettings.Format.IniFormat),
               run_overrides=dict(SHORT))
w.resize(1440, 900)
w.show()
out = {}
def idle():
    while w.engine.busy:
        wait(w.engine.busyChanged, cond=lambda b: not b)

def open_model(**kw):
    w.open_source(**kw)
    wait(w.modelLoaded)
    idle()

open_model(source=None)
if BERT:
    ticks.clear(); cpu.clear(); timer.start()
    open_model(source=BERT)
    w.set_recipe(Recipe.of("dynamic_int8"))
    w.run_overrides.update(time_budget_s=2.0, min_rounds=5, max_rounds=200, eval_limit=2)
    w.run(); wait(w.runFinished)
    timer.stop(); out["bert_gap_ms"] = max_gap_ms(); out["bert_gap_cpu_ms"] = max_gap_ms(cpu)
    open_model(source=None)

cancel = {}
def pump_until(cond, seconds=600):
    t_end = time.time() + seconds
    while not cond() and time.time() < t_end:
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)

def cancel_at(name, steps, phase):
    w.run_overrides.clear(); w.run_overrides.update(LONG)
    seen = []
    def on(p):
        if p.phase == phase and not seen:
            seen.append(time.perf_counter())
    w.runProgress.connect(on)
    w.set_recipe(Recipe.of(*steps))
    w.run()
    pump_until(lambda: seen)
    w.runProgress.disconnect(on)
    t0 = time.perf_counter()
    w.cancel()
    wait(w.runCancelled)
    cancel[name] = round(time.perf_counter() - t0, 3)
    idle()

cancel_at("apply (torch.compile)", ["compile"], "apply")
cancel_at("calibrate", ["static_int8"], "calibrate")
cancel_at("train (QAT)", ["qat_int8"], "train")
cancel_at("timing", ["inference_mode"], "time")
cancel_at("evaluate", ["inference_mode"], "evaluate")
# Suggest and export do not emit runProgress: the phase line says when they are under way.
w.suggest.start()
pump_until(lambda: "candidate" in w.phase.text())
t0 = time.perf_counter(); w.cancel(); wait(w.suggest.finished)
cancel["Suggest"] = round(time.perf_counter() - t0, 3)
if w.dialog is not None: w.dialog.done(0)
idle()
w.run_overrides.clear(); w.run_overrides.update(SHORT)
w.set_recipe(Recipe.of("inference_mode")); w.run(); wait(w.runFinished); idle()
w.exports.export_model(os.path.join(TMP, "export"))
pump_until(lambda: "Exporting" in w.phase.text())
t0 = time.perf_counter(); w.cancel()
if w.engine.busy:  # the export may have ended before the cancel arrived
    wait(w.engine.busyChanged, cond=lambda b: not b)
cancel["export"] = round(time.perf_counter() - t0, 3)
out["cancel_s"] = cancel
if w.dialog is not None: w.dialog.done(0)

t0 = time.perf_counter()
os.kill(w.engine.pid, signal.SIGKILL)
wait(w.modelLoaded); idle()
out["restart_s"] = round(time.perf_counter() - t0, 3)

w.run_overrides.clear(); w.run_overrides.update(SHORT)
w.set_recipe(Recipe.of("inference_mode"))
out["rss_mb_start"] = round(rss_mb(), 1)
for i in range(1, 101):
    w.run(); wait(w.runFinished); idle()
    if i == 10: out["rss_mb_after_10"] = round(rss_mb(), 1)
out["rss_mb_after_100"] = round(rss_mb(), 1)
out["rss_growth_mb"] = round(out["rss_mb_after_100"] - out["rss_mb_after_10"], 1)
out["torch_in_gui"] = "torch" in sys.modules
w.close()
print("@@APPENGINE@@" + json.dumps(out), flush=True)
'''


def measure(timeout: float = 1800) -> dict[str, Any]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bert_like
    with tempfile.TemporaryDirectory() as tmp:
        folder = bert_like.save_folder(os.path.join(tmp, "bert")) or ""
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        try:
            proc = subprocess.run([sys.executable, "-c", LAUNCHER, str(folder), tmp], env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"engine_error": f"did not finish in {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    return {"engine_error": f"launcher exited {proc.returncode}: {proc.stderr[-600:]}"}


if __name__ == "__main__":
    print(json.dumps(measure(), indent=1))
