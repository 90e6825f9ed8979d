"""Export, project and "Suggest a recipe" through the window (no file dialogs: the methods the
menu actions call take the path); the engine process writes, a history row's model by its
variant id."""

from pathlib import Path

RUN_TIMEOUT_MS = 120_000


def _run_quick(w, qtbot):
    w.set_technique_enabled("dynamic_int8", True)
    with qtbot.waitSignal(w.runFinished, timeout=RUN_TIMEOUT_MS):
        assert w.run()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)


def _export(w, qtbot, method, path):
    with qtbot.waitSignal(w.exports.finished, timeout=RUN_TIMEOUT_MS) as sig:
        assert method(path)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    return sig.args


def test_export_model_script_report_and_project(window, qtbot, tmp_path):
    w = window
    _run_quick(w, qtbot)
    assert w.actions_by_name["export_model"].isEnabled()
    kind, value = _export(w, qtbot, w.exports.export_model, tmp_path / "out")
    model = value["export"]["model"]  # the engine's ExportResult, by the row's variant id
    assert kind == "model" and Path(model["path"]).exists() and model["check"]["passed"]
    assert value["path"] == model["path"]
    assert w.dialog is not None and "max abs diff" in w.dialog.text()
    _export(w, qtbot, w.exports.export_script, tmp_path / "out")
    _export(w, qtbot, w.exports.export_report, tmp_path / "out")
    _export(w, qtbot, w.exports.export_recipe, tmp_path / "r.json")
    for name in ("report.html", "report.md", "recipe.json", "rebuild_model.py"):
        assert (tmp_path / "out" / name).exists(), name
    assert (tmp_path / "r.json").exists()

    project = tmp_path / "s.qgproj.json"
    _export(w, qtbot, w.exports.save_project, project)
    rows = len(w.history)
    w.session.replace([])
    assert w.history == [] and w.history_view.results() == []
    _export(w, qtbot, w.exports.open_project, project)
    assert len(w.history) == rows == len(w.history_view.results())
    # reopened rows carry no model: model/script export is disabled and says why
    assert not w.actions_by_name["export_model"].isEnabled()
    assert "re-run" in w.actions_by_name["export_model"].toolTip()
    assert w.actions_by_name["export_report"].isEnabled()


def test_export_error_goes_to_dialog(window, qtbot, tmp_path):
    w = window
    _run_quick(w, qtbot)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with qtbot.waitSignal(w.exports.failed, timeout=RUN_TIMEOUT_MS):
        w.exports.export_report(blocker / "sub")
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert w.last_error and w.dialog.isVisible()


def test_recommend_sets_recipe_and_fills_history(window, qtbot):
    w = window
    with qtbot.waitSignal(w.suggest.finished, timeout=RUN_TIMEOUT_MS) as sig:
        assert w.suggest.start(max_candidates=2)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    rec = sig.args[0]
    assert not rec.cancelled and 1 <= len(rec.trials) <= 2
    assert len(w.history) == len([t for t in rec.trials if t.result is not None])
    if rec.best is not None:  # proven faster (its whole CI above 1.03x) within the bound
        assert rec.best.verdict == "faster"
        assert w.current_recipe().to_json() == rec.best.recipe.to_json()
        assert w.optimize.run_button.isEnabled()
    else:  # nothing proven faster within the bound on this CPU now: the message says so
        assert "keep the original" in rec.message
        assert "No suggestion: keep the original" in w.dialog.text()
    assert w.optimize.suggest_button.isEnabled()
    w.grab().save("/tmp/export_recommend.png")


def test_recommend_cancel_returns_to_idle(window, qtbot):
    w = window
    with qtbot.waitSignal(w.suggest.finished, timeout=RUN_TIMEOUT_MS) as sig:
        assert w.suggest.start()
        qtbot.waitUntil(lambda: "candidate" in w.phase.text(), timeout=RUN_TIMEOUT_MS)
        w.cancel()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=RUN_TIMEOUT_MS)
    assert sig.args[0].cancelled
    assert w.optimize.suggest_button.isEnabled() and not w.optimize.cancel_button.isEnabled()
    assert w.actions_by_name["suggest"].isEnabled()


def test_project_with_an_old_result_and_an_unmeasured_entry_opens_typed(window, qtbot,
                                                                         tmp_path, real_result):
    import json

    from quantgui.core import Recipe, RunResult
    from quantgui.core.export import ProjectEntry, save_project
    from quantgui.gui.plots.history_view import COL
    w = window
    result = real_result("digits-cnn", "inference_mode")
    path = save_project(tmp_path / "old.qgproj.json", [
        ProjectEntry.from_run(w.loaded, result.recipe, result),
        ProjectEntry.from_run(w.loaded, Recipe.of("bf16"), None, label="untried")])
    data = json.loads(path.read_text())
    old = data["entries"][0]["result"]
    del old["schema"], old["variant_id"], old["verdict"]["quality"]  # as older versions wrote
    path.write_text(json.dumps(data))
    _export(w, qtbot, w.exports.open_project, path)
    (_, first), (label, unmeasured) = w.history
    assert isinstance(first, RunResult) and first.verdict.quality.status in ("ok", "degraded")
    assert first.to_json()["fidelity"] == result.to_json()["fidelity"]
    table = w.history_view.table
    assert table.rowCount() == 2
    assert table.item(0, COL["Verdict"]).text().startswith(first.summary())
    assert label == "untried" and table.item(1, COL["Recipe"]).text() == "untried"
    assert table.item(1, COL["Speedup"]).text() == "–"  # nothing measured, nothing shown
    # the original's star comes from the last row that timed it, not the unmeasured one
    star_x = w.history_view.plot.baseline.data["x"]
    assert list(star_x) == [first.before.latency.median_ms]
    again = tmp_path / "again.qgproj.json"
    _export(w, qtbot, w.exports.save_project, again)
    saved = json.loads(again.read_text())["entries"]
    assert saved[0]["result"]["schema"] == 1 and saved[1]["result"] is None
