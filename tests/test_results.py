"""The typed result records (quantgui/core/results/): every registered technique's real run
survives to_json -> from_json exactly, non-finite numbers travel as None and come back by a
stated rule, a newer schema is one clear error, the CLI's --json is exactly to_json, and none of
it needs torch (the GUI will read results the engine process sends)."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from quantgui import cli
from quantgui.core import Recipe, RunOptions, preflight
from quantgui.core.errors import UserError
from quantgui.core.export import ProjectEntry, load_project, save_project
from quantgui.core.params import ParamSpec
from quantgui.core.results import (SCHEMA, LatencyStats, ModelInfo, Recommendation, RunResult,
                                   TechniqueSpec, json_safe, technique_specs)
from quantgui.core.techniques import all_techniques
from quantgui.core.verdict_words import LABELS
from tests.real_runs import FAST, as_run, loaded, run_json

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("digits-mlp", "digits-cnn", "digits-transformer", "digits-lstm")


def example_for(name: str) -> str:
    """The first built-in example the technique applies to (with labeled data)."""
    for example in EXAMPLES:
        if not preflight(loaded(example), Recipe.of(name)):
            return example
    raise AssertionError(f"{name} applies to no built-in example")


def assert_same(a, b, path="result"):
    """Typed values equal field by field; a non-finite float equals a non-finite float (JSON
    keeps only "not a number": see Fidelity.from_json for the one rule that tells inf back)."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            if f.compare:
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, float) and isinstance(b, float) and not math.isfinite(a):
        assert not math.isfinite(b), path
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    else:
        assert a == b, (path, a, b)


# --- every technique, for real ------------------------------------------------------------------

@pytest.mark.parametrize("name", list(all_techniques()))
def test_a_real_run_of_every_technique_round_trips_exactly(name):
    example = example_for(name)
    data = run_json(example, name)
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN/Infinity anywhere
    again = RunResult.from_json(json.loads(text))
    assert again.to_json() == data
    assert RunResult.from_json(again.to_json()).to_json() == data
    # the typed record is the run's own, field by field (its variant excepted)
    original = as_run(example, name)
    assert_same(JSON_BACK(original), again)
    assert_same(original.recipe, again.recipe)
    assert [s.name for s in again.steps] == [name] and again.steps[0].notes
    assert again.verdict.label in LABELS and again.source == f"example:{example}"
    assert data["schema"] == SCHEMA and data["variant_id"] is None
    assert data["verdict"]["headline"] == again.headline() == original.headline()
    assert again.variant is None


def JSON_BACK(result: RunResult) -> RunResult:  # noqa: N802 - reads as the rule it states
    """What JSON keeps of a run's free-form parts (step params, metrics, decisions, the
    environment): their JSON values (tuples become lists, non-finite numbers None)."""
    def back(value):
        return json.loads(json.dumps(json_safe(value), allow_nan=False))
    return dataclasses.replace(
        result, environment=back(result.environment),
        steps=[dataclasses.replace(s, params=back(s.params), metrics=back(s.metrics),
                                   decisions=back(s.decisions)) for s in result.steps])


def test_decisions_and_variant_id_travel_but_the_variant_does_not(real_result):
    r = real_result("digits-mlp", "dynamic_int8")
    r.steps[0].decisions = {"engine": "x86", "api": "torch.ao", "fastpath": False,
                            "compiled": False}
    r.variant_id, r.variant = "v7", object()
    data = r.to_json()
    again = RunResult.from_json(json.loads(json.dumps(data, allow_nan=False)))
    assert again.steps[0].decisions == r.steps[0].decisions
    assert again.variant_id == "v7" and again.variant is None
    assert again.to_json() == data
    assert "variant" not in data and r == dataclasses.replace(r, variant=None)  # not compared


# --- NaN and infinity ---------------------------------------------------------------------------

def test_non_finite_numbers_travel_as_none_and_come_back_by_rule(real_result):
    identical = real_result("digits-mlp", "inference_mode")  # the outputs equal the original's
    assert identical.fidelity.max_abs_error == 0
    assert identical.fidelity.sqnr_db == math.inf  # JSON wrote None: max_abs_error 0 says inf
    r = real_result("digits-mlp", "dynamic_int8")
    r.fidelity.cosine, r.fidelity.sqnr_db = math.nan, -math.inf
    r.timing.speedup, r.timing.ci95 = math.inf, (math.nan, math.inf)
    r.before.latency.p10_ms, r.size_ratio = math.nan, math.nan
    data = r.to_json()
    json.dumps(data, allow_nan=False)
    assert data["fidelity"]["cosine"] is None and data["fidelity"]["sqnr_db"] is None
    assert data["speedup"]["median"] is None and data["speedup"]["ci95"] == [None, None]
    assert data["before"]["latency_ms"]["p10"] is None and data["size_ratio"] is None
    again = RunResult.from_json(data)
    # A float field JSON had as None is NaN (unknown); an optional one stays None.
    assert math.isnan(again.fidelity.cosine) and math.isnan(again.timing.speedup)
    assert math.isnan(again.timing.ci95[0]) and math.isnan(again.timing.ci95[1])
    assert math.isnan(again.before.latency.p10_ms) and again.size_ratio is None
    assert math.isnan(again.fidelity.sqnr_db)  # -inf (an all-zero original) is unknown too
    assert again.to_json() == data
    assert again.speed_text() == "" and again.headline() == again.summary()


# --- versions, old files, garbage ---------------------------------------------------------------

def test_a_newer_schema_is_one_clear_error(real_result):
    data = real_result("digits-mlp", "dynamic_int8").to_json()
    data["schema"] = SCHEMA + 1
    with pytest.raises(UserError) as info:
        RunResult.from_json(data, "s.json")
    assert str(info.value) == (f"s.json: this result was written by a newer QuantGUI (schema "
                               f"{SCHEMA + 1}; this one reads up to {SCHEMA}): update QuantGUI "
                               f"to open it")
    for bad in ("1", 0, True, None):
        data["schema"] = bad
        with pytest.raises(UserError, match=r'^s\.json: "schema" must be a whole number'):
            RunResult.from_json(data, "s.json")
    with pytest.raises(UserError, match=r"^s\.json: not a result \(expected a JSON object\)$"):
        RunResult.from_json([data], "s.json")
    for cls in (ModelInfo, Recommendation, TechniqueSpec):
        with pytest.raises(UserError, match="newer QuantGUI"):
            cls.from_json({"schema": SCHEMA + 1, "name": "x"}, "x.json")


def test_a_result_without_schema_is_version_1_and_gaps_read_as_unknown(real_result):
    data = real_result("digits-mlp", "dynamic_int8").to_json()
    del data["schema"], data["variant_id"], data["steps"][0]["decisions"]
    again = RunResult.from_json(data)
    assert again.to_json()["schema"] == SCHEMA and again.variant_id is None
    assert again.steps[0].decisions == {}
    empty = RunResult.from_json({})
    assert empty.verdict.label == "?" and not empty.verdict.known
    assert empty.before.size_bytes is None and math.isnan(empty.timing.speedup)
    assert empty.recipe.steps == [] and empty.steps == []
    assert RunResult.from_json(empty.to_json()).to_json() == empty.to_json()


def test_project_with_old_results_opens_and_a_newer_one_is_refused(tmp_path, real_result):
    result = real_result("digits-mlp", "dynamic_int8")
    path = save_project(tmp_path / "p.qgproj.json",
                        [ProjectEntry.from_run(loaded(), result.recipe, result)])
    data = json.loads(path.read_text())
    old = data["entries"][0]["result"]
    del old["schema"], old["variant_id"], old["verdict"]["quality"]  # as an old version wrote
    path.write_text(json.dumps(data))
    (entry,) = load_project(path).entries
    assert isinstance(entry.result, RunResult)
    assert entry.result.verdict.quality.status in ("ok", "degraded")  # judged again
    old["schema"] = SCHEMA + 1
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=rf"^{path}: \$\.entries\[0\]\.result: this result was "
                                        rf"written by a newer QuantGUI"):
        load_project(path)


# --- the other records --------------------------------------------------------------------------

def test_model_info_technique_specs_and_params_round_trip():
    info = loaded("digits-cnn").info
    assert info.output_shape == [info.output_shape[0], 10]  # the model ran on its example
    again = ModelInfo.from_json(json.loads(json.dumps(info.to_json())))
    assert again == info and again.to_json() == info.to_json()
    specs = technique_specs()
    assert list(specs) == list(all_techniques())
    for name, spec in specs.items():
        back = TechniqueSpec.from_json(json.loads(json.dumps(spec.to_json())))
        assert back == spec, name
        for p in spec.params:
            assert ParamSpec.from_json(p.to_json()) == p
    with pytest.raises(UserError, match="unknown type 'complex'"):
        ParamSpec.from_json({"name": "x", "type": "complex"}, "spec")


def test_a_real_recommendation_round_trips():
    from quantgui.core import recommend_recipe
    rec = recommend_recipe(loaded("digits-mlp"), options=RunOptions(**FAST), max_candidates=2)
    data = rec.to_json()
    again = Recommendation.from_json(json.loads(json.dumps(data, allow_nan=False)))
    assert again.to_json() == data
    assert again.message == rec.message and again.table() == rec.table()
    assert [t.result.to_json() for t in again.trials if t.result] == \
        [t.result.to_json() for t in rec.trials if t.result]
    assert (again.best is None) == (rec.best is None)


# --- the CLI writes exactly to_json ---------------------------------------------------------------

def _shape(value, path="$"):
    """The JSON's structure: keys, and each leaf's kind (None fits any kind)."""
    if isinstance(value, dict):
        return {k: _shape(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0], path)] if value else []
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "text"


def _same_shape(a, b, path="$"):
    if a is None or b is None:
        return
    if isinstance(a, dict) or isinstance(b, dict):
        assert isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b), \
            (path, sorted(set(a) ^ set(b)) if isinstance(a, dict) and isinstance(b, dict) else a)
        for k in a:
            _same_shape(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) or isinstance(b, list):
        assert isinstance(a, list) and isinstance(b, list), path
        if a and b:
            _same_shape(a[0], b[0], f"{path}[0]")
    else:
        assert a == b, (path, a, b)


def test_cli_json_is_to_json_of_a_real_run(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = cli.main(["run", "example:digits-mlp", "--step", "dynamic_int8", "--time-budget",
                     str(FAST["time_budget_s"]), "--eval-limit", "2", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    written = json.loads(out.read_text())
    ours = run_json("digits-mlp", "dynamic_int8")
    assert json.loads(json.dumps(ours)) == ours  # to_json is plain JSON data already
    _same_shape(_shape(written), _shape(ours))
    assert RunResult.from_json(written).to_json() == written


# --- no torch -----------------------------------------------------------------------------------

TORCH_FREE = """
import json, sys
from quantgui.core import (DataInfo, ModelInfo, Recipe, RunResult, TechniqueSpec, preflight,
                           Recommendation)
from quantgui.core.run.text import format_result
data = json.load(open(sys.argv[1]))
result = RunResult.from_json(data["result"])
assert result.to_json() == data["result"]
words = [result.headline(), format_result(result), result.verdict.summary]
info = ModelInfo.from_json(data["info"])
specs = {s["name"]: TechniqueSpec.from_json(s) for s in data["specs"]}
test = DataInfo("foreign.npz", 20, True, 0, 11)
problems = preflight(info, Recipe.of("qat_int8", "fp16"), train=None, test=test,
                     techniques=specs)
Recommendation.from_json({"trials": []})
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
print(json.dumps([p.to_json() for p in problems]))
"""


def test_the_records_and_preflight_need_no_torch(tmp_path, real_result):
    info = loaded("digits-mlp").info
    payload = {"result": real_result("digits-mlp", "dynamic_int8").to_json(),
               "info": info.to_json(),
               "specs": [s.to_json() for s in technique_specs().values()]}
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload))
    proc = subprocess.run([sys.executable, "-c", TORCH_FREE, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    problems = json.loads(proc.stdout)
    assert [(p["kind"], p["step"], p["technique"]) for p in problems] == [
        ("group", 1, "fp16"), ("needs_labels", 0, "qat_int8"),
        ("labels_out_of_range", None, None)]
    assert problems[2]["text"] == "foreign.npz: label 11 is out of range for a model with 10 " \
                                  "outputs"


def test_latency_stats_of_samples():
    lat = LatencyStats.of([1.0, 2.0, 3.0, 4.0], 10, 7.5)
    assert (lat.median_ms, lat.samples, lat.calls_per_sample) == (2.5, 4, 10)
    assert LatencyStats.from_json(lat.to_json()) == lat
