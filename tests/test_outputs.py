"""Nothing the user owns is lost: outputs never write over inputs, exports are all-or-nothing
folders, a full disk is one line (exit 2) after the results were printed, and a signal in the
middle of an export leaves no temp files.

Disk-full tests run on a real small tmpfs where this process can mount one, and otherwise on a
fake that raises ENOSPC from the writer; both drive the real CLI."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from quantgui import cli
from quantgui.core.errors import UserError
from quantgui.core.export import MARKER, atomic, space
from quantgui.core.recipe import Recipe

INT8 = ["--step", "dynamic_int8:api=torch.ao,engine=x86"]
FAST = ["--time-budget", "0.2", "--eval-limit", "1"]
MLP = ["run", "example:digits-mlp", *INT8, *FAST]

ARCH = textwrap.dedent("""
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))

        def forward(self, x):
            return self.body(x)
""")


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one stderr line of a refused command, without the prefix."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantgui-cli: error: "), err
    return lines[0][len("quantgui-cli: error: "):]


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder` (hidden ones too) -> sha256 of its bytes."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# --- the user's files -----------------------------------------------------------------------

@pytest.fixture
def user_files(tmp_path):
    """A state_dict with its architecture file, data, an example input, the example_input.pt
    an earlier export left beside the model, and a recipe: every kind of input."""
    d = tmp_path / "mine"
    d.mkdir()
    (d / "arch.py").write_text(ARCH)
    ns: dict = {}
    exec(compile(ARCH, "arch.py", "exec"), ns)
    torch.manual_seed(0)
    torch.save(ns["Net"]().state_dict(), d / "weights.pt")
    gen = np.random.default_rng(0)
    np.savez(d / "data.npz", inputs=gen.standard_normal((64, 20)).astype(np.float32),
             labels=gen.integers(0, 5, 64))
    torch.save(torch.randn(8, 20), d / "input.pt")
    torch.save(torch.randn(4, 20), d / "example_input.pt")  # the sidecar beside the model
    (d / "recipe.json").write_text(json.dumps(
        {"version": 1, "steps": [{"name": "dynamic_int8",
                                  "params": {"api": "torch.ao", "engine": "x86"}}]}))
    return d


def model_args(d: Path, with_example: bool = True) -> list[str]:
    args = [d / "weights.pt", "--arch", f"{d / 'arch.py'}:Net", "--data", d / "data.npz"]
    return args + (["--example-input", d / "input.pt"] if with_example else [])


KINDS = {"model": "weights.pt", "architecture file": "arch.py", "data file": "data.npz",
         "example input": "input.pt", "recipe": "recipe.json"}


def test_the_user_files_open_and_run(user_files, tmp_path, capsys):
    """The control for the refusals below: with outputs elsewhere the same command works."""
    code, out, err = run_cli(capsys, "run", *model_args(user_files), "--recipe",
                             user_files / "recipe.json", *FAST, "--json", tmp_path / "r.json")
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["recipe"]["steps"][0]["name"] == \
        "dynamic_int8"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("flag", ["--json", "--save", "--report", "--save-recipe"])
def test_an_output_on_an_input_is_refused(user_files, capsys, flag, kind):
    if flag == "--save-recipe" and kind == "recipe":
        kind = "example input"  # recommend takes no recipe; its sidecar is the fifth input
        target = user_files / "example_input.pt"
        args = ["recommend", *model_args(user_files, with_example=False)]
    elif flag == "--save-recipe":
        target = user_files / KINDS[kind]
        args = ["recommend", *model_args(user_files)]
    else:
        target = user_files / KINDS[kind]
        args = ["run", *model_args(user_files), "--recipe", user_files / "recipe.json", *FAST]
    before = tree(user_files)
    code, out, err = run_cli(capsys, *args, flag, target)
    assert code == 2, err
    line = error_line(err)
    assert line.startswith(f"{target}: {flag} would overwrite the {kind} you gave"), line
    assert "never writes over its inputs" in line
    assert tree(user_files) == before


@pytest.mark.parametrize("flag", ["--save", "--report"])
def test_an_output_folder_holding_an_input_is_refused(user_files, capsys, flag):
    before = tree(user_files.parent)
    for folder in (user_files, user_files.parent):  # the folder itself, and one above it
        code, _, err = run_cli(capsys, "run", *model_args(user_files), *MLP[2:], flag, folder)
        assert code == 2
        assert re.match(rf"{re.escape(str(folder))}: {flag} would replace this folder, which "
                        rf"holds the \w[\w ]* {re.escape(str(user_files))}/", error_line(err))
    assert tree(user_files.parent) == before


def test_links_and_model_folders_are_seen_through(user_files, tmp_path, capsys):
    before = tree(user_files)
    link = tmp_path / "link.pt"
    link.symlink_to(user_files / "weights.pt")
    code, _, err = run_cli(capsys, "run", *model_args(user_files), *MLP[2:], "--json", link)
    assert code == 2
    assert error_line(err) == (f"{link}: --json would overwrite the model you gave "
                               f"({user_files / 'weights.pt'}); QuantGUI never writes over its "
                               f"inputs — choose another name")
    hf = tmp_path / "hf-model"  # a model that is a folder: its files are part of it
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "run", hf, *MLP[2:], "--json", hf / "config.json")
    assert code == 2 and "is part of the model folder" in error_line(err)
    assert (hf / "config.json").read_text() == "{}" and tree(user_files) == before


def test_outputs_may_not_overlap(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()  # (a missing parent of --json is refused earlier, with its own message)
    code, _, err = run_cli(capsys, *MLP, "--save", out, "--json", out / "r.json")
    assert code == 2
    assert error_line(err) == (f"{out / 'r.json'}: --json points inside the --save folder "
                               f"{out}, which an export replaces whole; put it elsewhere")
    code, _, err = run_cli(capsys, *MLP, "--save", out, "--report", out / "report")
    assert code == 2 and "points inside the --save folder" in error_line(err)
    code, _, err = run_cli(capsys, "recommend", "example:digits-mlp", "--json", tmp_path / "a",
                           "--save-recipe", tmp_path / "a")
    assert error_line(err) == (f"{tmp_path / 'a'}: --json and --save-recipe name the same "
                               f"path; give each its own")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and list(out.iterdir()) == []


def test_save_and_report_into_one_folder_is_one_export(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, *MLP, "--save", out, "--report", out)
    assert code == 0, err
    files = set(tree(out))
    assert {"model.torchscript.pt", "rebuild_model.py", "report.html", "report.md",
            "recipe.json", MARKER} <= files
    assert set(json.loads((out / MARKER).read_text())["files"]) == files - {MARKER}
    assert f"report: {out / 'report.html'}" in stdout


# --- --json and other single files ----------------------------------------------------------

def test_json_to_a_folder_is_exit_2_without_leftovers(tmp_path, capsys):
    folder = tmp_path / "taken"
    folder.mkdir()
    code, _, err = run_cli(capsys, *MLP, "--json", folder)
    assert code == 2 and error_line(err) == f"{folder}: is a folder; give a file name"
    # the write itself refuses too (a folder may appear while the run is measuring)
    with pytest.raises(UserError, match="a folder of that name is in the way"):
        cli.emit_json({"a": 1}, str(folder))
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and list(folder.iterdir()) == []


def test_json_into_a_read_only_folder_is_the_line_the_gui_shows(tmp_path, capsys,
                                                                monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root ignores the mode: the writer meets EACCES instead
        real = atomic.tempfile.mkstemp

        def refuse(*a, dir=None, **k):
            if dir is not None and Path(dir) == ro:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real(*a, dir=dir, **k)
        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    try:
        code, out, err = run_cli(capsys, *MLP, "--json", ro / "r.json")
    finally:
        ro.chmod(0o755)
    assert code == 2
    assert error_line(err) == str(atomic.read_only(ro))
    assert error_line(err) == f"{ro}: the folder is read-only (no write permission); choose " \
                              f"another folder"
    assert list(ro.iterdir()) == []


def test_writes_go_through_links_and_refuse_devices(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    atomic.write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is not a regular file"):
        atomic.write_text_atomic(fifo, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.json", "real.json"]


def test_recipe_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    Recipe.of("fp16").save(path)
    saved = path.read_text()
    assert Recipe.load(path).to_json() == Recipe.of("fp16").to_json()

    def disk_full(p, data):
        with open(p, "wb") as fh:
            fh.write(bytes(data)[:5])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic, "_write_file", disk_full)
    with pytest.raises(UserError,
                       match=rf"no space left on .* while writing {re.escape(str(path))}"):
        Recipe.of("bf16").save(path)
    assert path.read_text() == saved and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --- a small disk ---------------------------------------------------------------------------

class SmallDisk:
    """A folder whose drive has `room` bytes free: a real tmpfs when this process can mount
    one, else a fake (the writer raises ENOSPC past `room`; disk_usage reports the room)."""

    SIZE = 32 * 2 ** 20

    def __init__(self, root: Path, monkeypatch, kind: str) -> None:
        self.dir = root / "disk"
        self.dir.mkdir()
        self.monkeypatch = monkeypatch
        self.mounted = kind == "tmpfs" and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs", str(self.dir)],
            capture_output=True).returncode == 0
        self.kind = "tmpfs" if self.mounted else "fake"
        self.used = 0

    def leave(self, room: int) -> None:
        if self.mounted:
            free = shutil.disk_usage(self.dir).free
            with open(self.dir / "filler", "wb") as fh:
                fh.write(b"\0" * max(0, free - room))
            return
        self.room = room
        real_write, real_usage = atomic._write_file, shutil.disk_usage

        def write(path, data):
            n = memoryview(data).nbytes
            if Path(path).is_relative_to(self.dir) and self.used + n > self.room:
                with open(path, "wb") as fh:  # as a real disk does: part of it, then ENOSPC
                    fh.write(bytes(data)[:self.room - self.used])
                raise OSError(errno.ENOSPC, "No space left on device")
            real_write(path, data)
            if Path(path).is_relative_to(self.dir):
                self.used += n

        def usage(path):
            if Path(path).is_relative_to(self.dir):
                return shutil._ntuple_diskusage(self.SIZE, self.SIZE - self.room + self.used,
                                                self.room - self.used)
            return real_usage(path)
        self.monkeypatch.setattr(atomic, "_write_file", write)
        self.monkeypatch.setattr(space.shutil, "disk_usage", usage)

    def device(self) -> str:
        return space.device_of(self.dir)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.dir)], check=True)

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if p.name != "filler")


@pytest.fixture(params=["tmpfs", "fake"])
def disk(request, tmp_path, monkeypatch):
    d = SmallDisk(tmp_path, monkeypatch, request.param)
    yield d
    d.close()


def test_small_disk_is_what_it_claims(disk):
    """The harness itself: past the room a write really fails with ENOSPC."""
    disk.leave(64 * 1024)
    with pytest.raises(UserError, match=rf"no space left on {re.escape(disk.device())} while "
                                        rf"writing {re.escape(str(disk.dir / 'big.bin'))} "
                                        rf"\(needs about 1\.0 MB\)"):
        atomic.write_bytes_atomic(disk.dir / "big.bin", b"x" * 1_000_000)
    assert disk.leftovers() == []
    if disk.kind == "tmpfs":
        assert disk.device() == f"{disk.dir} (tmpfs)"


def _no_results_lost(out: str, json_path: Path) -> None:
    assert "verdict:" in out and "speedup:" in out  # the measurement was printed
    assert json.loads(json_path.read_text())["verdict"]["label"]  # and written whole


def test_save_without_the_space_it_needs_fails_first_and_keeps_the_results(disk, tmp_path,
                                                                          capsys):
    disk.leave(1_000_000)
    out = disk.dir / "out"
    code, stdout, err = run_cli(capsys, *MLP, "--save", out, "--json", tmp_path / "r.json")
    assert code == 2
    assert re.fullmatch(rf"no space left on {re.escape(disk.device())} while writing "
                        rf"{re.escape(str(out))} \(needs about \d+ MB\)", error_line(err))
    _no_results_lost(stdout, tmp_path / "r.json")
    assert disk.leftovers() == []


def test_save_meeting_a_full_disk_mid_write_leaves_nothing(disk, tmp_path, capsys,
                                                           monkeypatch):
    import quantgui.core.export as export
    monkeypatch.setattr(export, "estimate_bytes", lambda *a, **k: 0)  # let it start writing
    disk.leave(5_000_000)  # the 2.3 MB model fits, the 8.7 MB original weights do not
    out = disk.dir / "new" / "out"
    code, stdout, err = run_cli(capsys, *MLP, "--save", out, "--json", tmp_path / "r.json")
    assert code == 2
    assert re.fullmatch(rf"no space left on {re.escape(disk.device())} while writing "
                        rf"{re.escape(str(out / 'original_weights.pt'))} "
                        rf"\(needs about 8\.\d MB\)", error_line(err))
    _no_results_lost(stdout, tmp_path / "r.json")
    assert disk.leftovers() == []  # no half export, no temp folder, not even the parent made


def test_json_on_a_full_disk(disk, capsys):
    disk.leave(0)
    target = disk.dir / "r.json"
    code, stdout, err = run_cli(capsys, *MLP, "--json", target)
    assert code == 2
    assert re.fullmatch(rf"no space left on {re.escape(disk.device())} while writing "
                        rf"{re.escape(str(target))} \(needs about 0\.\d MB\)", error_line(err))
    assert "verdict:" in stdout
    assert disk.leftovers() == []


def test_report_on_a_full_disk(disk, capsys, monkeypatch):
    import quantgui.core.export as export
    disk.leave(0)
    target = disk.dir / "report"
    code, stdout, err = run_cli(capsys, *MLP, "--report", target)
    assert code == 2 and "verdict:" in stdout
    assert re.fullmatch(rf"no space left on {re.escape(disk.device())} while writing "
                        rf"{re.escape(str(target))} \(needs about 0\.\d MB\)", error_line(err))
    monkeypatch.setattr(export, "estimate_bytes", lambda *a, **k: 0)  # now the write itself
    code, stdout, err = run_cli(capsys, *MLP, "--report", target)
    assert code == 2 and "verdict:" in stdout
    assert re.fullmatch(rf"no space left on {re.escape(disk.device())} while writing "
                        rf"{re.escape(str(target))}/\S+ \(needs about 0\.\d MB\)",
                        error_line(err))
    assert disk.leftovers() == []


def test_a_mount_point_is_refused_as_an_export_folder(disk, capsys, monkeypatch):
    if not disk.mounted:  # the fake disk is a plain folder: make it look like a drive's top
        real = os.path.ismount
        monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == disk.dir or real(p))
    code, _, err = run_cli(capsys, *MLP, "--save", disk.dir)
    assert code == 2
    assert error_line(err) == (f"{disk.dir}: is the top of a drive (a mount point), which an "
                               f"export cannot replace; choose a folder inside it, e.g. "
                               f"{disk.dir / 'quantgui-export'}")


# --- whole-folder exports -------------------------------------------------------------------

def test_reexport_replaces_the_previous_export_whole(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *MLP, "--save", out)
    assert code == 0, err
    first = tree(out)
    assert "model.torchscript.pt" in first and MARKER in first
    # a float model next: another format, so a mixed folder would show
    code, stdout, err = run_cli(capsys, "run", "example:digits-mlp", *FAST, "--save", out)
    assert code == 0, err
    second = tree(out)
    assert "model.pt2" in second and "model.torchscript.pt" not in second
    assert set(json.loads((out / MARKER).read_text())["files"]) == set(second) - {MARKER}
    assert f"model: {out / 'model.pt2'} (exported)" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp or old folder
    # a re-export that fails half-way leaves the previous export as it was
    monkeypatch.setattr(atomic, "_write_file", _fails_after(2))
    code, _, err = run_cli(capsys, *MLP, "--save", out)
    assert code == 2 and "no space left on" in error_line(err)
    assert tree(out) == second and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _fails_after(n_files: int):
    real, seen = atomic._write_file, []

    def write(path, data):
        seen.append(path)
        if len(seen) > n_files:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)
    return write


def test_a_folder_with_the_users_files_is_refused_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, *MLP, "--save", out)
    assert code == 2
    assert error_line(err) == (f"{out}: the folder holds files that are not from a QuantGUI "
                               f"export (notes.txt); an export replaces its folder whole, so "
                               f"choose a new or empty folder")
    assert tree(out) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}
    # an earlier export the user has added a file to is theirs now too
    (out / "notes.txt").unlink()
    assert run_cli(capsys, *MLP, "--report", out)[0] == 0
    (out / "mine.md").write_text("my notes")
    before = tree(out)
    code, _, err = run_cli(capsys, *MLP, "--report", out)
    assert code == 2 and "(mine.md)" in error_line(err)
    assert tree(out) == before
    # an empty folder is fine (and keeps its place)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(capsys, *MLP, "--report", empty)[0] == 0
    assert (empty / "report.html").is_file()


# --- signals --------------------------------------------------------------------------------

DRIVER = textwrap.dedent("""
    # quantgui-cli with one hook: the export stops after the model file is written, says so on
    # stderr, and waits for the test's signal; everything else is the real command.
    import sys, time
    import quantgui.core.export as export
    from quantgui import cli
    real = export.write_script

    def paused(out_dir, *args, task, **kwargs):
        sys.__stderr__.write(f"PAUSED {out_dir}\\n")
        sys.__stderr__.flush()
        while not task.cancelled:  # Ctrl-C cancels; SIGTERM raises out of the sleep
            time.sleep(0.01)
        return real(out_dir, *args, task=task, **kwargs)
    export.write_script = paused
    sys.exit(cli.main(sys.argv[1:]))
""")


@pytest.mark.parametrize("sig, code, previous", [(signal.SIGTERM, 143, False),
                                                 (signal.SIGINT, 130, False),
                                                 (signal.SIGTERM, 143, True)])
def test_a_signal_mid_export_removes_the_temporaries(tmp_path, capsys, sig, code, previous):
    area = tmp_path / "area"
    area.mkdir()
    out = area / "out"
    if previous:  # an earlier export there must survive the interrupted one intact
        assert run_cli(capsys, *MLP, "--save", out)[0] == 0
    before = tree(area)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(driver), *MLP, "--save", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        while line and not line.startswith("PAUSED "):
            line = proc.stderr.readline()
        assert line.startswith("PAUSED "), proc.communicate(timeout=60)
        temp = Path(line.split(" ", 1)[1].strip())
        assert temp.parent == area and temp.name.startswith(".out.")
        assert (temp / "model.torchscript.pt").is_file()  # the export is half written
        proc.send_signal(sig)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code
    assert "verdict:" in stdout  # the results came before the export
    assert tree(area) == before  # no temp folder; no new export, or the old one intact


def test_an_opened_model_protects_every_file_it_came_from(user_files):
    """What the GUI's exports protect: the files `open_model` actually read."""
    from quantgui.core.export import protected_paths, write_script
    from quantgui.core.opening.loading import open_model
    arch = f"{user_files / 'arch.py'}:Net"
    with_data = open_model(user_files / "weights.pt", arch=arch, data=user_files / "data.npz")
    assert ("data file", str(user_files / "data.npz")) in protected_paths(with_data)
    # without data or --example-input the example_input.pt beside the model is used
    loaded = open_model(user_files / "weights.pt", arch=arch)
    assert set(protected_paths(loaded)) >= {
        ("model", str(user_files / "weights.pt")),
        ("architecture file", str(user_files / "arch.py")),
        ("example input", str(user_files / "example_input.pt"))}
    before = tree(user_files)
    with pytest.raises(UserError, match="would overwrite the example input you gave"):
        write_script(user_files, loaded, Recipe([]), protected=protected_paths(loaded))
    assert tree(user_files) == before
