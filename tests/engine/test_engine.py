"""A real engine process (python -m quantgui.engine) driven over its pipes: what the GUI client
will rely on. Reads wait for the expected message (client.py), never for time."""

import base64

from quantgui.core import (ModelInfo, ProjectEntry, Recipe, Recommendation, RunResult,
                           TechniqueSpec, technique_specs)
from quantgui.core.results.sweep import SweepPoint, SweepResult
from quantgui.engine import protocol as p

from .client import Engine, progress_items
from .conftest import CNN, FAST

LONG = {**FAST, "time_budget_s": 60.0, "max_rounds": 100_000}


def _error(answer):
    assert answer["type"] == p.ERROR, answer
    return p.ErrorInfo.from_json(answer["error"])


def test_hello_describes_the_engine_and_its_techniques(engine):
    hello = engine.hello
    assert hello["protocol"] == p.PROTOCOL_VERSION and hello["pid"] == engine.proc.pid
    specs = [TechniqueSpec.from_json(t) for t in hello["techniques"]]
    assert specs == list(technique_specs().values())  # the panels are built from these
    assert "digits-cnn" in [e["name"] for e in hello["examples"]]
    assert hello["default_example"] == "digits-cnn" and hello["keep_variants"] == 8
    assert engine.value("hello") == hello


def test_open_gives_a_model_id_and_what_the_gui_shows(engine):
    opened = engine.opened
    info = ModelInfo.from_json(opened["info"])
    assert info.source == CNN and info.format == "example" and info.output_shape
    assert opened["data"]["test"]["labeled"] and opened["data"]["test"]["samples"] > 0
    assert opened["source"]["source"] == CNN and opened["input_kinds"]
    assert isinstance(opened["cpu_capabilities"], list)


def test_run_streams_every_sample_and_answers_a_typed_result(engine):
    answer, events = engine.run_answer, engine.run_events
    assert answer["type"] == p.RESULT, answer
    result = RunResult.from_json(answer["value"]["result"])
    assert result.to_json() == answer["value"]["result"]
    assert [s.name for s in result.steps] == ["dynamic_int8"]
    assert result.peak_rss_bytes > 20 * 2**20  # torch alone is more than that
    assert result.variant_id in [v["variant_id"] for v in engine.value("variants")["variants"]]
    items = progress_items(events)
    assert all(m["id"] == answer["id"] for m in events)
    assert {"step": "dynamic_int8"} == next(i["values"] for i in items if i["phase"] == "apply")
    # a busy machine ends the timing early with one more "time" report, without a sample
    times = [i["values"] for i in items if i["phase"] == "time" and i["values"]]
    # every timed sample reaches the client (the plots draw each one)
    assert len(times) == 2 * answer["value"]["result"]["speedup"]["rounds"]
    assert all(t["latency_ms"] > 0 and t["which"] in ("before", "after") for t in times)
    assert any(i["phase"] == "evaluate" and "accuracy" in i["values"] for i in items)
    assert any("before_bytes" in i["values"] for i in items)


def test_export_by_variant_id_and_of_a_result_without_one(engine, tmp_path):
    result = engine.run_answer["value"]["result"]
    model = engine.value("export", what="model", variant_id=result["variant_id"],
                         folder=str(tmp_path / "model"))
    saved = model["export"]["model"]
    assert saved["check"]["passed"] and (tmp_path / "model").is_dir()
    assert model["path"] == saved["path"] and "check" in model["text"]
    script = engine.value("export", what="script", variant_id=result["variant_id"],
                          folder=str(tmp_path / "script"))
    assert script["path"].endswith(".py") and (tmp_path / "script").is_dir()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nnot really").decode()
    report = engine.value("export", what="report", result=result, model_id=engine.model,
                          folder=str(tmp_path / "report"), plots={"latency": png})
    assert report["path"].endswith("report.html")
    recipe = engine.value("export", what="recipe", result=result,
                          path=str(tmp_path / "r.json"))
    assert Recipe.load(recipe["path"]).to_json()["steps"][0]["name"] == "dynamic_int8"


def test_a_variant_no_longer_held_cannot_export_and_says_why(engine, tmp_path):
    answer, _ = engine.call("export", what="model", variant_id="v999", folder=str(tmp_path))
    err = _error(answer)
    assert err.kind == p.USER and "no longer in the engine" in err.message
    assert list(tmp_path.iterdir()) == []


def test_recommend_sends_each_trial_as_a_partial(engine):
    answer, events = engine.call("recommend", model_id=engine.model, options=FAST,
                                 max_candidates=2, budget={"max_accuracy_drop": 0.5})
    assert answer["type"] == p.RESULT, answer
    rec = Recommendation.from_json(answer["value"]["recommendation"])
    assert rec.bound["budget"] == {"max_accuracy_drop": 0.5}  # the search kept to it
    assert all(t.result is None or t.result.budget is not None for t in rec.trials)
    partials = [m["value"]["trial"] for m in events if m.get("event") == p.PARTIAL]
    assert len(partials) == len(rec.trials) == 2
    assert [t["recipe"] for t in partials] == [t.recipe.describe() for t in rec.trials]
    held = [v["variant_id"] for v in engine.value("variants")["variants"]]
    for trial in rec.trials:
        assert trial.result is None or trial.result.variant_id in held
    assert any(i["phase"] == "recommend" for i in progress_items(events))


def test_a_bad_budget_is_a_user_error(engine):
    answer, _ = engine.call("recommend", model_id=engine.model, options=FAST,
                            budget={"min_cosine": 2})
    error = _error(answer)
    assert error.kind == p.USER
    assert error.message == "budget: $.min_cosine: must be at least -1 and at most 1, got 2"


def test_cancel_during_timing_answers_cancelled_and_keeps_nothing(engine):
    before = engine.value("variants")
    msg_id = engine.request("run", model_id=engine.model, recipe={"steps": []}, options=LONG)
    engine.until(msg_id, lambda m: any(i["phase"] == "time" for i in m.get("progress", ())))
    engine.cancel(msg_id)
    answer, _ = engine.until(msg_id)
    assert _error(answer).kind == p.CANCELLED
    assert engine.value("variants") == before
    assert engine.value("hello")["pid"] == engine.proc.pid  # alive and answering


def test_cancel_of_a_queued_request_drops_it_unrun(engine):
    first = engine.request("run", model_id=engine.model, recipe={"steps": []}, options=LONG)
    engine.until(first, lambda m: m.get("event") == p.PROGRESS)
    second = engine.request("run", model_id=engine.model, recipe={"steps": []}, options=FAST)
    engine.cancel(second)
    answer, events = engine.until(second)
    assert _error(answer).message == "cancelled before it started" and events == []
    engine.cancel(first)
    assert _error(engine.until(first)[0]).kind == p.CANCELLED


def test_malformed_lines_get_an_error_answer_and_the_engine_lives(engine):
    engine.write_line(b"this is not json")
    assert _error(engine.read()).kind == p.PROTOCOL
    engine.write_line(p.encode({**p.request(41, "open"), "v": 99}))
    answer = engine.read()
    assert answer["id"] == 41 and "version 99 is not supported" in _error(answer).message
    engine.write_line(p.encode(p.request(42, "fly")))
    assert engine.read()["id"] == 42
    answer, _ = engine.call("run", model_id=engine.model, recipe={"steps": []},
                            options={"time_budget_s": "long"})
    assert _error(answer).kind == p.PROTOCOL and "time_budget_s" in _error(answer).message
    answer, _ = engine.call("open", source=CNN, colour="red")
    assert "unknown parameter(s) colour" in _error(answer).message
    assert engine.value("hello")["pid"] == engine.proc.pid


def test_the_memory_guard_refuses_an_oversized_run_before_it_starts(engine):
    answer, events = engine.call("run", model_id=engine.model, recipe={"steps": []},
                                 options={**FAST, "batch_size": 10**9})
    err = _error(answer)
    assert err.kind == p.MEMORY and "memory" in err.message and "not started" in err.message
    assert err.data["need_bytes"] > err.data["available_bytes"] > 0
    assert progress_items(events) == []


def test_a_bad_recipe_and_an_unknown_model_are_user_errors(engine):
    answer, _ = engine.call("run", model_id=engine.model,
                            recipe={"steps": [{"name": "warp_drive", "params": {}}]})
    assert _error(answer).kind == p.USER and "warp_drive" in _error(answer).message
    answer, _ = engine.call("run", model_id="m404", recipe={"steps": []})
    assert _error(answer).kind == p.USER and "not open in the engine" in _error(answer).message


def test_projects_save_and_load_through_the_engine(engine, tmp_path):
    result = RunResult.from_json(engine.run_answer["value"]["result"])
    entry = ProjectEntry(engine.opened["source"], result.recipe, result, "dynamic INT8")
    path = tmp_path / "s.qgproj.json"
    saved = engine.value("save_project", path=str(path), entries=[entry.to_json()])
    assert saved["path"] == str(path)
    project = engine.value("load_project", path=str(path))["project"]
    again = ProjectEntry.from_json(project["entries"][0])
    assert again.label == "dynamic INT8" and again.result.to_json() == result.to_json()
    answer, _ = engine.call("load_project", path=str(tmp_path / "missing.json"))
    assert _error(answer).kind == p.USER and "missing.json" in _error(answer).message


def test_drop_labels_gives_a_model_without_labels(engine):
    opened = engine.value("drop_labels", model_id=engine.model)
    assert opened["model_id"] != engine.model
    assert opened["data"]["test"]["labeled"] is False
    assert engine.value("forget", model_id=opened["model_id"]) == {"forgotten": True}


def test_forget_releases_a_variant(engine, tmp_path):
    answer, _ = engine.call("run", model_id=engine.model, recipe={"steps": []}, options=FAST)
    variant_id = answer["value"]["result"]["variant_id"]
    assert engine.value("forget", variant_id=variant_id) == {"forgotten": True}
    assert engine.value("forget", variant_id=variant_id) == {"forgotten": False}
    answer, _ = engine.call("export", what="model", variant_id=variant_id, folder=str(tmp_path))
    assert _error(answer).kind == p.USER


def test_shutdown_and_end_of_input_both_exit_zero():
    eng = Engine(args=("-m", "quantgui.cli", "serve"))  # the CLI serves the same loop
    assert eng.hello["protocol"] == p.PROTOCOL_VERSION
    assert eng.close() == 0
    eng = Engine()
    eng.proc.stdin.close()
    assert eng.proc.wait(60) == 0
    eng.close()


# --- sweep: a partial event per point, the points so far when cancelled ---

SWEEP_INT8 = {"steps": [{"name": "dynamic_int8", "params": {}}]}


def test_sweep_streams_each_point_and_answers_the_result(engine):
    answer, events = engine.call("sweep", model_id=engine.model, recipes=[SWEEP_INT8],
                                 batches=[1, 4], threads=[1], time_budget_s=0.1)
    assert answer["type"] == p.RESULT, answer
    result = SweepResult.from_json(answer["value"]["sweep"])
    partials = [SweepPoint.from_json(m["value"]["point"]) for m in events
                if m.get("event") == p.PARTIAL]
    assert [(q.batch, q.threads) for q in partials] == [(1, 1), (4, 1)]
    assert [q.to_json() for q in partials] == [q.to_json() for q in result.points]
    assert all(q.ok for q in result.points) and result.types[0].machine == "local"


def test_sweep_cancelled_keeps_the_points_so_far(engine):
    msg_id = engine.request("sweep", model_id=engine.model, recipes=[SWEEP_INT8],
                            batches=[1, 2, 4, 8, 16, 32], threads=[1], time_budget_s=2.0)
    engine.until(msg_id, lambda m: m.get("event") == p.PARTIAL)
    engine.cancel(msg_id)
    answer, _ = engine.until(msg_id)
    error = _error(answer)
    assert error.kind == p.CANCELLED
    kept = SweepResult.from_json(error.data["sweep"])
    assert kept.cancelled and 1 <= len(kept.points) < 6


def test_profile_answers_the_layers_with_progress_and_cancels(engine, tmp_path):
    from quantgui.core.results.profile import LayerProfile
    answer, events = engine.call("profile", model_id=engine.model, recipe=SWEEP_INT8,
                                 batch=4, threads=1, calls=3)
    assert answer["type"] == p.RESULT, answer
    profile = LayerProfile.from_json(answer["value"]["profile"])
    assert (profile.recipe, profile.batch, profile.threads, profile.calls) == (
        "dynamic_int8", 4, 1, 3)
    assert profile.total_before_ms > 0 and len(profile.layers) > 3
    phases = [(i["phase"], i["done"]) for i in progress_items(events)]
    assert ("profile", 3) in phases  # (the ones between may be coalesced away)
    # The report of a sweep and this profile, written by the engine.
    sweep, _ = engine.call("sweep", model_id=engine.model, recipes=[SWEEP_INT8], batches=[1],
                           threads=[1], time_budget_s=0.05)
    folder = tmp_path / "report"
    answer, _ = engine.call("sweep_report", folder=str(folder),
                            sweep=sweep["value"]["sweep"], profile=profile.to_json(),
                            plots={"a plot": base64.b64encode(b"\x89PNG").decode()})
    assert answer["value"]["path"] == str(folder / "report.html"), answer
    page = (folder / "report.html").read_text()
    assert "Per-layer profile: dynamic_int8, batch 4" in page and "<figcaption>a plot" in page
    answer, _ = engine.call("profile", model_id=engine.model, recipe=SWEEP_INT8, batch=0,
                            threads=1)
    assert "\"batch\" must be a whole number from 1" in _error(answer).message
    # Cancel while the original is being profiled (1000 calls of batch 64 take seconds).
    msg_id = engine.request("profile", model_id=engine.model, recipe=SWEEP_INT8, batch=64,
                            threads=1, calls=1000)
    engine.until(msg_id, lambda m: any(i["phase"] == "profile" and i["done"] in (1, 2)
                                       for i in m.get("progress", ())))
    engine.cancel(msg_id)
    answer, _ = engine.until(msg_id)
    assert _error(answer).kind == p.CANCELLED


def test_sweep_bad_params_are_protocol_errors(engine):
    answer, _ = engine.call("sweep", model_id=engine.model, recipes=SWEEP_INT8, batches=[1],
                            threads=[1])
    assert "must be lists" in _error(answer).message
    answer, _ = engine.call("sweep", model_id=engine.model, recipes=[SWEEP_INT8], batches=[0],
                            threads=[1])
    assert "from 1, got 0" in _error(answer).message


def test_sensitivity_streams_each_unit_and_answers_the_report(engine):
    from quantgui.core.results import SensitivityReport, UnitSensitivity
    answer, events = engine.call("sensitivity", model_id=engine.model, format="weight_only_int8",
                                 samples=32, use_cache=False)
    assert answer["type"] == p.RESULT, answer
    report = SensitivityReport.from_json(answer["value"]["sensitivity"])
    partials = [UnitSensitivity.from_json(m["value"]["unit"]) for m in events
                if m.get("event") == p.PARTIAL]
    assert [u.name for u in partials] == ["classifier.1", "classifier.3"]
    assert [u.to_json() for u in partials] == [u.to_json() for u in report.units]
    assert report.complete and report.metric == "accuracy" and not report.cached
    answer, _ = engine.call("sensitivity", model_id=engine.model, format="fp16")
    assert "'fp16' is not a format sensitivity measures" in _error(answer).message
    answer, _ = engine.call("sensitivity", model_id=engine.model, samples=0)
    assert "from 1, got 0" in _error(answer).message


# --- tune: a partial event per trial, cancel keeps the best so far ---

def test_tune_streams_trials_and_a_cancel_keeps_the_result_so_far(engine):
    from quantgui.core.results.tune import TuneResult, TuneTrial
    msg_id = engine.request("tune", model_id=engine.model, options=dict(FAST, threads=1),
                            budget={"max_accuracy_drop": 5.0})
    first, _ = engine.until(msg_id, lambda m: m.get("event") == p.PARTIAL)
    trial = TuneTrial.from_json(first["value"]["trial"])
    assert trial.stage == "candidate" and trial.trial.recipe.steps
    engine.cancel(msg_id)
    answer, events = engine.until(msg_id)
    error = _error(answer)
    assert error.kind == p.CANCELLED
    kept = TuneResult.from_json(error.data["tune"])
    partials = [m["value"]["trial"] for m in events if m.get("event") == p.PARTIAL]
    assert kept.cancelled and kept.stopped == "cancelled" and len(kept.trials) >= 1
    assert [t.to_json() for t in kept.trials] == [first["value"]["trial"], *partials]
    assert kept.budget.max_accuracy_drop == 5.0
    answer, _ = engine.call("tune", model_id=engine.model, time_limit_s=0)
    assert "\"time_limit_s\" must be a positive number" in _error(answer).message
