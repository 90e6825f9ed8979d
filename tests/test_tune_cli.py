"""`quantgui-cli tune`: trials stream to stderr, the result (or pure JSON) to stdout, the recipe
file with its budget, Ctrl-C exits 130 with the best so far printed and saved, bad input is one
line and exit 2 before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from quantgui.cli import main
from quantgui.core.recipe import Recipe

QUICK = ["example:digits-mlp", "--threads", "1", "--time-budget", "0.1", "--min-cosine", "0.9"]


def test_tune_streams_trials_and_writes_json_log_and_recipe(tmp_path, capsys):
    log, out = tmp_path / "trials.jsonl", tmp_path / "recipe.json"
    assert main(["tune", *QUICK, "--max-candidates", "1", "--log", str(log), "--out", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # stdout is the JSON alone
    assert data["kind"] == "tune" and data["budget"] == {"min_cosine": 0.9}
    assert captured.err.startswith("[1] candidate: ")
    assert captured.err.count("\n[") + 1 == len(data["trials"]) == len(log.read_text()
                                                                         .splitlines()) - 1
    if data["recipe"] is not None:  # chosen: saved with the budget it was tuned for
        assert Recipe.load(out).to_json() == data["recipe"]
        assert Recipe.load(out).budget.min_cosine == 0.9
    else:
        assert not out.exists()


@pytest.mark.parametrize("argv,line", [
    (["--time-limit", "soon"], "--time-limit: 'soon' is not a duration (e.g. 90s, 10m, 1.5h)"),
    (["--time-limit", "0m"], "--time-limit: must be more than 0 and at most 7 days, got 0m"),
    (["--resume"], "--resume: needs --log, the trial log to continue"),
    (["--min-cosine", "2"], "--min-cosine: must be at least -1 and at most 1, got 2"),
    (["--max-candidates", "0"], "--max-candidates: must be at least 1, got 0"),
    (["--cluster", "tcp://h"], "--cluster: expected local, auto, HOST:PORT or ray://HOST:PORT, "
                               "got 'tcp://h'"),
])
def test_bad_options_are_one_line_and_exit_2(argv, line, capsys):
    assert main(["tune", "example:digits-mlp", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"quantgui-cli: error: {line}\n"


def test_tune_on_a_cluster_without_the_ray_extra_names_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    for name in ("ray_executor", "ray_tune"):
        monkeypatch.delitem(sys.modules, f"quantgui.core.cluster.{name}", raising=False)
    assert main(["tune", "example:digits-mlp", "--cluster", "auto"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("quantgui-cli: error: --cluster auto: Ray is not installed (")
    assert err.endswith('install it with pip install "quantgui[ray]"\n') and err.count("\n") == 1


def test_an_existing_log_without_resume_is_refused_before_any_work(tmp_path, capsys):
    log = tmp_path / "trials.jsonl"
    log.write_text("mine\n")
    assert main(["tune", "no-such-model.pt", "--log", str(log)]) == 2
    assert capsys.readouterr().err == (f"quantgui-cli: error: {log}: already exists; pass "
                                       f"--resume to continue that tune, or name a new log "
                                       f"file\n")
    assert log.read_text() == "mine\n"


def test_ctrl_c_exits_130_with_the_best_so_far_printed_and_saved(tmp_path):
    out = tmp_path / "recipe.json"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "quantgui.cli", "tune", *QUICK,
                             "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stderr.readline()  # the first trial has ended
        assert first.startswith("[1] candidate: "), first + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "stopped: cancelled" in stdout or "then stopped (cancelled)" in stdout
    if "\nrecipe: " in stdout:
        assert Recipe.load(out).describe() in stdout


def test_a_log_that_is_not_a_regular_file_is_one_line(tmp_path, capsys):
    fifo = tmp_path / "trials.jsonl"
    os.mkfifo(fifo)  # reading it would block forever
    assert main(["tune", "no-such-model.pt", "--log", str(fifo), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantgui-cli: error: {fifo}: ") and err.count("\n") == 1
