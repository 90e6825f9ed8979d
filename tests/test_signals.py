"""Ctrl-C and SIGTERM on the real process: the first Ctrl-C always ends it with exit 130 and
"quantgui-cli: cancelled", within one forward call, even when the model's code never returns to
the engine; SIGTERM unwinds and exits 143. No fixed sleeps: the model's forward leaves a file
per call, and the test waits for the call it wants (with a timeout) before signalling.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

ARCH = """
import os
import time
import torch
from torch import nn

MARKS = os.environ["MARKS"]
FIFO = os.environ.get("BLOCK_ON")
if FIFO:  # the architecture file blocks in a read that never returns on its own
    open(os.path.join(MARKS, "blocked"), "w").close()
    open(FIFO).read()


class Net(nn.Module):
    calls = 0

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        Net.calls += 1
        open(os.path.join(MARKS, f"call-{Net.calls}"), "w").close()
        time.sleep(float(os.environ["FORWARD_S"]))
        return self.fc(x)
"""


def _wait_for(path, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)  # polling interval, not synchronisation


def _calls(marks):
    return len(list(marks.glob("call-*")))


_running: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_orphans():
    """A failing test must not leave its process running."""
    yield
    while _running:
        proc = _running.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start(tmp_path, forward_s, block_on=None):
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "slow.py").write_text(ARCH)
    torch.save({"fc.weight": torch.ones(3, 4), "fc.bias": torch.zeros(3)}, tmp_path / "w.pt")
    env = dict(os.environ, MARKS=str(marks), FORWARD_S=str(forward_s))
    if block_on:
        env["BLOCK_ON"] = str(block_on)
    proc = subprocess.Popen([sys.executable, "-m", "quantgui.cli", "run", "w.pt", "--arch",
                             "slow.py:Net", "--input-shape", "2,4", "--time-budget", "30"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _running.append(proc)
    return proc, marks


# 0.3 s: the engine checks for a cancel between calls; 1.5 s: longer than the grace period,
# so the handler interrupts right after the current call returns.
@pytest.mark.parametrize("forward_s", [0.3, 1.5])
def test_first_ctrl_c_while_timing_exits_130_within_one_forward(forward_s, tmp_path):
    proc, marks = _start(tmp_path, forward_s)
    # call 1 checks the example at load; call 3 is inside the interleaved timing
    _wait_for(marks / "call-3", proc)
    calls = _calls(marks)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip() == "quantgui-cli: cancelled"
    assert _calls(marks) <= calls + 1, "kept calling the model after Ctrl-C"


def test_first_ctrl_c_interrupts_code_blocked_in_a_read(tmp_path):
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    proc, marks = _start(tmp_path, 0.1, block_on=fifo)
    _wait_for(marks / "blocked", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip() == "quantgui-cli: cancelled"


def test_sigterm_unwinds_and_exits_143(tmp_path):
    proc, marks = _start(tmp_path, 0.3)
    _wait_for(marks / "call-3", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "error" not in err
