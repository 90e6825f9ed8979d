"""Bad data, weights and resource requests: exit 2 with one line naming the file, no traceback.

NaN/Inf/empty data once gave "100% accuracy, cosine nan"; huge shapes and batches died in C++;
--threads 32768 crashed at exit; a file where QUANTGUI_CACHE should be a folder failed only after
training. Each now ends in one line, before any work.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os

import numpy as np
import pytest
import torch

from quantgui import cli
from quantgui.core import env, examples, safeload

from hostile import corpus

FAST = ["--time-budget", "0.2", "--eval-limit", "1"]

NET_SOURCE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


class Masked(Net):
    """A -inf attention-style mask is a legitimate buffer, not a broken weight."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.full((3, 3), float("-inf")).triu(1), persistent=False)

    def forward(self, x):
        return self.fc(x) + self.mask.clamp(min=0).sum(0)
'''


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("quantgui-cli: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def net(tmp_path):
    """(weights file, --arch spec) of a 4 -> 3 Linear model."""
    arch = tmp_path / "net.py"
    arch.write_text(NET_SOURCE)
    weights = tmp_path / "w.pt"
    state = {f"fc.{k}": v for k, v in torch.nn.Linear(4, 3).state_dict().items()}
    torch.save(state, weights)
    return weights, f"{arch}:Net"


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- data and weights ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", corpus.DATA_CASES, ids=lambda m: m.__name__)
def test_bad_data_or_weights_refused_in_one_line(make, tmp_path, capsys):
    work = tmp_path / "corpus"
    work.mkdir()
    case = make(work, tmp_path / "canary")
    before = {p: _digest(p) for p in case.inputs}
    capsys.readouterr()
    code, out, err = run_cli(capsys, "inspect", *case.args)
    assert code == 2, (case.name, out, err)
    line = one_error_line(err, *case.fragments)
    assert line.startswith(f"quantgui-cli: error: {case.named}: "), line
    assert "--input-shape" not in line
    assert {p: _digest(p) for p in case.inputs} == before


@pytest.mark.parametrize("step", ["dynamic_int8", "static_int8"])
def test_nan_data_never_reaches_calibration(step, tmp_path, capsys):
    """The issue's case: INT8 calibration used to die on NaN data as an internal error."""
    case = corpus.data_all_nan(tmp_path, tmp_path / "canary")
    code, out, err = run_cli(capsys, "run", *case.args, "--step", step, *FAST)
    assert code == 2 and out == ""
    one_error_line(err, f"{case.named}: 640 of 640 input values are NaN")


def test_data_that_does_not_fit_the_model_names_the_data_file(net, tmp_path, capsys):
    weights, arch = net
    data = tmp_path / "wide.npz"
    np.savez(data, inputs=np.ones((6, 5), dtype=np.float32))  # the model takes 4 features
    code, _, err = run_cli(capsys, "inspect", weights, "--arch", arch, "--data", data)
    assert code == 2
    line = one_error_line(err, f"{data}: the model fails on this data's inputs (6, 5) float32")
    assert "--input-shape" not in line and str(weights) not in line


def test_a_minus_inf_mask_buffer_is_not_a_broken_weight(net, capsys):
    weights, arch = net
    code, out, err = run_cli(capsys, "inspect", weights, "--arch", arch.replace(":Net", ":Masked"),
                             "--input-shape", "2,4")
    assert code == 0, err
    assert "source" in out


def test_nan_in_batchnorm_statistics_is_refused(tmp_path, capsys):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).eval()
    model[1].running_var[2] = float("inf")
    path = tmp_path / "bn.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    code, _, err = run_cli(capsys, "inspect", path, "--input-shape", "2,4")
    assert code == 2
    one_error_line(err, f"{path}: 1 of ", "weight values are NaN or infinite (1.running_var)")


# --- resources ----------------------------------------------------------------------------------

@pytest.fixture
def eight_gb(monkeypatch):
    monkeypatch.setattr(safeload, "available_memory", lambda: 8 * 10**9)


@pytest.mark.parametrize("shape,need", [("1000000,25000", "400.00 GB"),
                                        ("1000000000000,1000000000000", "16,000,000,000,000,000 GB")])
def test_an_input_shape_beyond_memory_is_refused_before_allocating(shape, need, net, eight_gb,
                                                                   capsys):
    weights, arch = net
    code, out, err = run_cli(capsys, "run", weights, "--arch", arch, "--input-shape", shape,
                             *FAST)
    assert code == 2 and out == ""
    one_error_line(err, f"input shape {shape}: needs about {need} of memory, 8.00 GB available")


def test_a_batch_beyond_memory_is_refused_before_allocating(eight_gb, capsys):
    code, out, err = run_cli(capsys, "run", "example:digits-mlp", "--batch", 10**12, *FAST)
    assert code == 2 and out == ""
    # 64 float32 features = 256 bytes per sample, x 10**12, x 4 for activations
    one_error_line(err, "batch 1,000,000,000,000: needs about 1,024,000 GB of memory, "
                        "8.00 GB available")


def test_threads_are_capped_at_the_cpu_count(capsys):
    cpus = env.usable_cpus()
    code, out, err = run_cli(capsys, "run", "example:digits-mlp", "--threads", 32768,
                             "--batch", 8, *FAST, "--json", "-")
    assert code == 0, err
    assert json.loads(out)["threads"] == cpus
    assert err.strip() == (f"quantgui-cli: note: --threads 32768 capped at {cpus}, the number "
                           f"of CPUs this process may use")
    assert env.cap_threads(32768) == cpus and env.cap_threads(1) == 1


def test_cache_pointing_at_a_file_fails_before_training(tmp_path, monkeypatch, capsys):
    not_a_folder = tmp_path / "cache.txt"
    not_a_folder.write_text("not a folder")
    monkeypatch.setenv("QUANTGUI_CACHE", str(not_a_folder))
    # Shipped weights never touch the cache: it matters once an example must be trained.
    code, _, err = run_cli(capsys, "inspect", "example:digits-cnn")
    assert code == 0, err
    monkeypatch.setattr(examples, "shipped_folder", lambda: tmp_path / "no-shipped-weights")

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the cache cannot hold the result")
    monkeypatch.setattr(examples, "_train", no_training)
    code, out, err = run_cli(capsys, "run", "example:digits-mlp", *FAST)
    assert code == 2 and out == ""
    one_error_line(err, f"QUANTGUI_CACHE={not_a_folder}: not a folder")
    # A cache folder that cannot be created (its parent is that file) fails the same way.
    monkeypatch.setenv("QUANTGUI_CACHE", str(not_a_folder / "sub"))
    code, _, err = run_cli(capsys, "inspect", "example:digits-cnn")
    assert code == 2
    one_error_line(err, f"QUANTGUI_CACHE={not_a_folder / 'sub'}: cannot create the example "
                        f"cache folder")


# --- files that are not regular or not readable ----------------------------------------------------

@pytest.mark.parametrize("which", ["model", "example", "recipe", "project"])
def test_a_fifo_is_refused_without_reading_it(which, net, tmp_path, capsys):
    """Reading a FIFO blocks forever; regular_file refuses it before anything opens it."""
    weights, arch = net
    fifo = tmp_path / f"{which}.fifo"
    os.mkfifo(fifo)
    args = {"model": ["inspect", fifo, "--input-shape", "2,4"],
            "example": ["inspect", weights, "--arch", arch, "--example-input", fifo],
            "recipe": ["run", weights, "--arch", arch, "--input-shape", "2,4",
                       "--recipe", fifo],
            "project": None}[which]
    if args is None:  # projects are opened by the app only
        from quantgui.core.errors import UserError
        from quantgui.core.export.project import load_project
        with pytest.raises(UserError, match="not a regular file"):
            load_project(fifo)
        return
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    one_error_line(err, f"{fifo}: not a regular file")


def test_an_unreadable_model_file_is_refused(net, tmp_path, monkeypatch, capsys):
    weights, arch = net
    weights.chmod(0)
    if os.geteuid() == 0:  # root reads anything: fake the kernel's answer for this one file
        real_open = os.open

        def denied(path, flags, *args, **kwargs):
            if os.fspath(path) == str(weights):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, flags, *args, **kwargs)
        monkeypatch.setattr(os, "open", denied)
    try:
        code, _, err = run_cli(capsys, "inspect", weights, "--arch", arch, "--input-shape", "2,4")
    finally:
        weights.chmod(0o644)
    assert code == 2
    one_error_line(err, f"{weights}: permission denied")
