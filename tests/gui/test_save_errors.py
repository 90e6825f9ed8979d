"""Saving from the window into a folder that cannot take it (read-only, under a file, a full
disk) shows the one line the CLI prints for the same problem, never "Unexpected error", and
leaves no file behind. The real menu actions are triggered; only the file dialog is answered."""

import errno
import os
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from quantgui.core.export import atomic

RUN_TIMEOUT_MS = 120_000


def answer_dialogs(monkeypatch, path):
    """The save dialog returns `path` (as if the user had chosen it)."""
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(path)))


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A folder this process cannot write: chmod where that binds, else (as root, which chmod
    does not stop) the writer meets EACCES there, as it would on a read-only share."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):
        real = atomic.tempfile.mkstemp

        def refuse(*a, dir=None, **k):
            if dir is not None and Path(dir) == ro:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real(*a, dir=dir, **k)
        monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    yield ro
    ro.chmod(0o755)


def assert_error_dialog(w, title, message):
    assert w.dialog is not None and w.dialog.isVisible()
    assert w.dialog.windowTitle() == title != "Unexpected error"
    assert w.dialog.text() == message
    w.dialog.done(0)


def test_save_recipe_into_a_read_only_folder(window, monkeypatch, read_only):
    w = window
    w.set_technique_enabled("dynamic_int8", True)
    answer_dialogs(monkeypatch, read_only / "recipe.json")
    w.actions_by_name["save_recipe"].trigger()
    # the line `quantgui-cli` prints after "error: " for the same folder
    message = str(atomic.read_only(read_only))
    assert message == (f"{read_only}: the folder is read-only (no write permission); choose "
                       f"another folder")
    assert_error_dialog(w, "Could not save the recipe", message)
    assert list(read_only.iterdir()) == []


def test_save_recipe_under_a_file_and_on_a_full_disk(window, monkeypatch, tmp_path):
    w = window
    w.set_technique_enabled("dynamic_int8", True)
    where = tmp_path / "where"
    where.mkdir()
    (where / "afile").write_text("x")
    answer_dialogs(monkeypatch, where / "afile" / "recipe.json")
    w.actions_by_name["save_recipe"].trigger()
    assert_error_dialog(w, "Could not save the recipe",
                        f"{where / 'afile'}: is a file, not a folder")

    def disk_full(path, data):
        with open(path, "wb") as fh:
            fh.write(bytes(data)[:10])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic, "_write_file", disk_full)
    answer_dialogs(monkeypatch, where / "recipe.json")
    w.actions_by_name["save_recipe"].trigger()
    from quantgui.core.export.space import device_of
    assert_error_dialog(w, "Could not save the recipe",
                        f"no space left on {device_of(where)} while writing "
                        f"{where / 'recipe.json'} (needs about 0.1 MB)")
    assert sorted(p.name for p in where.iterdir()) == ["afile"]


def test_exports_after_a_run_report_folder_problems(make_window, qtbot, monkeypatch, tmp_path,
                                                     read_only):
    w = make_window(engine_patches={"disk_full": True})  # the engine writes the report
    with qtbot.waitSignal(w.modelLoaded, timeout=RUN_TIMEOUT_MS):
        w.open_source(None)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=RUN_TIMEOUT_MS)
    w.set_technique_enabled("dynamic_int8", True)
    with qtbot.waitSignal(w.runFinished, timeout=RUN_TIMEOUT_MS):
        assert w.run()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)

    # Export Results (CSV) into the read-only folder
    answer_dialogs(monkeypatch, read_only / "session.csv")
    w.actions_by_name["export"].trigger()
    assert_error_dialog(w, "Could not export the results", str(atomic.read_only(read_only)))

    # Export Plots into the read-only folder
    answer_dialogs(monkeypatch, read_only / "plots.png")
    w.actions_by_name["export_plots"].trigger()
    assert_error_dialog(w, "Could not export the plots", str(atomic.read_only(read_only)))

    # the report (written by the engine process, its disk "full") into a folder
    answer_dialogs(monkeypatch, tmp_path / "report")
    with qtbot.waitSignal(w.exports.failed, timeout=RUN_TIMEOUT_MS) as failed:
        w.actions_by_name["export_report"].trigger()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    from quantgui.core.export.space import device_of
    message = (f"no space left on {device_of(tmp_path)} while writing "
               f"{tmp_path / 'report' / 'report.html'} (needs about 0.1 MB)")
    assert failed.args == ["report", message]
    assert_error_dialog(w, "Could not export the report", message)
    assert list(read_only.iterdir()) == [] and list((tmp_path / "report").iterdir()) == []
