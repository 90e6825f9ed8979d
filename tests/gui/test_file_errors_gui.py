"""Malformed recipe and project files through the real File menu actions (Load Recipe, Open
Project): the dialog shows the CLI's message (the file and the JSON path of the bad value) as
plain text, never "Unexpected error"; the window stays usable. The files are the corpus's
RECIPE_CASES / PROJECT_CASES (tests/hostile/corpus.py), also run through the CLI and
`load_project` in tests/test_schema.py."""

import pytest
from hostile import corpus
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from quantgui import cli
from quantgui.core.errors import UserError
from quantgui.core.export import load_project
from quantgui.core.recipe import Recipe, Step

CLI_PREFIX = "quantgui-cli: error: "


def _choose(monkeypatch, path):
    """The next file dialog "chooses" `path` (the action, its slot and the loading are real)."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(path), "")))


def _error_dialog(w, title):
    box = w.dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.windowTitle() == title, box.text()
    assert box.textFormat() == Qt.TextFormat.PlainText  # names from files are not HTML
    return box


def test_load_recipe_action_shows_the_cli_message(make_window, qtbot, monkeypatch, tmp_path,
                                                  capsys):
    w = make_window()
    for make in corpus.RECIPE_CASES:
        folder = tmp_path / make.__name__
        folder.mkdir()
        case = make(folder, tmp_path / "canary")
        assert cli.main(["run", *case.args]) == 2, case.name
        cli_line = capsys.readouterr().err.strip()

        _choose(monkeypatch, case.named)
        w.actions_by_name["load_recipe"].trigger()
        box = _error_dialog(w, "Could not load the recipe")
        assert CLI_PREFIX + box.text() == cli_line, case.name
        assert str(case.named) in box.text() and all(f in box.text() for f in case.fragments)
        box.done(0)

    good = tmp_path / "good.json"
    Recipe([Step("prune", {"amount": 0.25})]).save(good)
    _choose(monkeypatch, good)
    w.actions_by_name["load_recipe"].trigger()
    assert w.current_recipe().steps == [Step("prune", {"amount": 0.25})]  # still usable


def test_open_project_action_shows_the_load_error(make_window, qtbot, monkeypatch, tmp_path):
    w = make_window()
    for make in corpus.PROJECT_CASES:
        folder = tmp_path / make.__name__
        folder.mkdir()
        case = make(folder, tmp_path / "canary")
        with pytest.raises(UserError) as info:
            load_project(case.named)

        _choose(monkeypatch, case.named)
        with qtbot.waitSignal(w.exports.failed, timeout=30_000) as failed:
            w.actions_by_name["open_project"].trigger()
        qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
        assert failed.args == ["open_project", str(info.value)], case.name
        box = _error_dialog(w, "Could not open project")
        assert box.text() == str(info.value)
        box.done(0)
    assert w.history == []
