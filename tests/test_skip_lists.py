"""Skip lists (issue 12): every quantization technique keeps the layers its `skip` patterns name
in higher precision, records what it converted and kept, and the list round-trips through the
CLI syntax, recipe JSON, projects and the standalone script."""

from __future__ import annotations

import copy
import json
import runpy

import pytest
import torch

from quantgui.core.errors import UserError
from quantgui.core.export import ProjectEntry, load_project, save_project, write_script
from quantgui.core.model.data import Dataset
from quantgui.core.model.variant import Variant
from quantgui.core.params import build, parse_kv, specs
from quantgui.core.progress import Task
from quantgui.core.recipe import Recipe, Step
from quantgui.core.run import optimize
from quantgui.core.run.preflight import preflight
from quantgui.core.techniques import get
from quantgui.core.techniques.base import StepContext
from tests import sensitive_model as sm

QUANTIZERS = ("dynamic_int8", "static_int8", "qat_int8", "weight_only_int8", "weight_only_int4",
              "bf16", "fp16")
#: Fixed choices: no engine timing in tests.
FIXED = {"dynamic_int8": {"api": "torch.ao", "engine": "x86"},
         "static_int8": {"api": "fx", "engine": "x86", "batches": 2},
         "weight_only_int8": {}, "bf16": {}, "fp16": {}}


def apply(name: str, params: dict):
    model, x = sm.build(), sm.example()
    tech = get(name)
    ctx = StepContext(x, Task(), x.batch_size, train=Dataset(x, None, "example"), original=model)
    variant = tech.apply(Variant(copy.deepcopy(model)), build(tech.Params, params), ctx)
    return variant, ctx


@pytest.mark.parametrize("name", QUANTIZERS)
def test_every_quantization_technique_has_a_skip_list(name):
    spec = {s.name: s for s in specs(get(name).Params)}["skip"]
    assert spec.type is list and spec.default == []


@pytest.mark.parametrize("name", sorted(FIXED))
def test_skip_keeps_exactly_the_named_layer_fp32_and_records_why(name):
    plain, _ = apply(name, FIXED[name])
    variant, ctx = apply(name, dict(FIXED[name], skip=["sensitive*"]))
    assert sm.converted(plain.module) == set(sm.LAYERS)
    assert sm.converted(variant.module) == set(sm.LAYERS) - {"sensitive"}
    assert ctx.decisions["converted_layers"] == ["fc1", "fc2", "head"]
    assert ctx.decisions["kept_layers"] == ["sensitive"]
    assert ctx.decisions["kept_reasons"] == ["skip pattern 'sensitive*'"]
    out = variant(sm.example())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_skipping_the_sensitive_layer_restores_dynamic_int8_fidelity():
    with torch.no_grad():
        ref = sm.build()(sm.example().args[0])
    cos = torch.nn.functional.cosine_similarity
    plain, _ = apply("dynamic_int8", FIXED["dynamic_int8"])
    kept, _ = apply("dynamic_int8", dict(FIXED["dynamic_int8"], skip=["sensitive"]))
    assert float(cos(plain(sm.example()).flatten(), ref.flatten(), 0)) < 0.98
    assert float(cos(kept(sm.example()).flatten(), ref.flatten(), 0)) > 0.999


def test_a_pattern_naming_no_module_is_one_clear_line_at_preflight_and_at_run():
    loaded = sm.loaded()
    recipe = Recipe([Step("dynamic_int8", {"skip": ["sensitve", "head"]})])
    problems = preflight(loaded, recipe)
    assert [(p.kind, p.param) for p in problems] == [("params", "skip")]
    assert problems[0].text() == ("step 1 (dynamic_int8): parameter 'skip': skip pattern "
                                  "'sensitve' matches no module of this model (its modules are "
                                  "named like fc1, sensitive, fc2)")
    with pytest.raises(UserError, match=r"^skip pattern 'sensitve' matches no module"):
        apply("dynamic_int8", dict(FIXED["dynamic_int8"], skip=["sensitve"]))


def test_skip_list_syntax_on_the_command_line_and_in_json():
    values = parse_kv("skip=sensitive*, head ,per_channel=false", "--step x")
    assert values == {"skip": "sensitive*,head", "per_channel": "false"}
    params = build(get("dynamic_int8").Params, values)
    assert params.skip == ["sensitive*", "head"] and params.per_channel is False
    assert build(get("bf16").Params, {"skip": ["a", " b "]}).skip == ["a", "b"]
    for bad, reason in (([1], "got an item 1"), ({"a": 1}, "got an object"),
                        ("x" * 201 + ",y", "201 characters long")):
        with pytest.raises(UserError, match=reason):
            build(get("bf16").Params, {"skip": bad})
    with pytest.raises(UserError, match=r"\$\.steps\[0\]\.params\.skip"):
        Recipe.from_json({"steps": [{"name": "fp16", "params": {"skip": [True]}}]})


def test_skip_list_round_trips_recipe_project_and_script(tmp_path):
    loaded = sm.loaded()
    recipe = Recipe.from_json(json.loads(json.dumps(Recipe.of(
        ("dynamic_int8", dict(FIXED["dynamic_int8"], skip="sensitive*"))).to_json())))
    assert recipe.steps[0].params["skip"] == ["sensitive*"]
    recipe.save(tmp_path / "recipe.json")
    recipe = Recipe.load(tmp_path / "recipe.json")
    assert recipe.describe() == "dynamic_int8:api=torch.ao,engine=x86,skip=sensitive*"

    save_project(tmp_path / "p.quantgui", [ProjectEntry.from_run(loaded, recipe)])
    reopened = load_project(tmp_path / "p.quantgui").entries[0].recipe
    assert reopened.to_json() == recipe.to_json()

    variant, steps = optimize(loaded, reopened)
    assert steps[0].decisions["kept_layers"] == ["sensitive"]
    export = write_script(tmp_path / "script", loaded, reopened, steps, variant, loaded.example)
    assert not export.unsupported
    ns = runpy.run_path(str(export.script), run_name="rebuilt")  # the script's own code
    rebuilt = ns["optimize"](ns["load_original"](), ns["new_call"]())
    assert sm.converted(rebuilt) == sm.converted(variant.module) == {"fc1", "fc2", "head"}
    torch.testing.assert_close(rebuilt(*loaded.example.args), variant(loaded.example),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("name,params", [
    ("weight_only_int8", {}), ("bf16", {}),
    ("dynamic_int8", {"api": "torchao"}), ("static_int8", FIXED["static_int8"])])
def test_scripts_of_the_other_paths_keep_the_same_layers(name, params, tmp_path):
    loaded = sm.loaded()
    recipe = Recipe.of((name, dict(params, skip=["sensitive", "head"])))
    variant, steps = optimize(loaded, recipe)
    export = write_script(tmp_path, loaded, recipe, steps, variant, loaded.example)
    ns = runpy.run_path(str(export.script), run_name="rebuilt")
    model, call = ns["load_original"](), ns["new_call"]()
    rebuilt = ns["optimize"](model, call)
    assert sm.converted(rebuilt) == sm.converted(variant.module) == {"fc1", "fc2"}
    with torch.no_grad():
        torch.testing.assert_close(ns["run"](rebuilt, call, ns["Inputs"](loaded.example.args)),
                                   variant(loaded.example), rtol=0, atol=1e-4)


def test_autocast_cannot_keep_layers_and_says_so():
    with pytest.raises(UserError, match="autocast covers the whole call"):
        apply("bf16", {"autocast": True, "skip": ["head"]})


# ---- mixed precision: INT8, BF16 and FP32 per layer (skip + bf16) ------------------------------

def test_mixed_precision_puts_kept_layers_in_bf16_or_fp32_and_is_measured(monkeypatch):
    from quantgui.core.run import RunOptions, run_recipe
    monkeypatch.setattr("quantgui.core.env.has_fast_bf16", lambda: True)
    variant, ctx = apply("dynamic_int8", dict(FIXED["dynamic_int8"], skip=["sensitive", "head"],
                                              bf16=["sens*"]))
    module = variant.module
    assert module.sensitive.weight.dtype == torch.bfloat16
    assert module.head.weight.dtype == torch.float32 and type(module.head) is torch.nn.Linear
    assert sm.converted(module) == {"fc1", "fc2", "sensitive"}  # INT8, INT8, BF16
    assert ctx.decisions["bf16_layers"] == ["sensitive"]
    assert ctx.decisions["kept_layers"] == ["sensitive", "head"]
    out = variant(sm.example())
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    result = run_recipe(sm.loaded(), Recipe.of(("dynamic_int8", dict(
        FIXED["dynamic_int8"], skip=["sensitive"], bf16=["*"]))), RunOptions(
        time_budget_s=0.1, min_rounds=4, max_rounds=8, warmup=1))
    assert result.steps[0].decisions["bf16_layers"] == ["sensitive"]
    assert result.fidelity.cosine > 0.999 and 0 < result.size_ratio < 1
    assert result.timing is not None


def test_mixed_precision_refusals_are_one_line(monkeypatch):
    monkeypatch.setattr("quantgui.core.env.has_fast_bf16", lambda: True)
    with pytest.raises(UserError, match=r"^bf16 pattern 'fc1' names no layer kept out of INT8"):
        apply("dynamic_int8", dict(FIXED["dynamic_int8"], skip=["head"], bf16=["fc1"]))
    monkeypatch.setattr("quantgui.core.env.has_fast_bf16", lambda: False)
    with pytest.raises(UserError, match=r"^bf16: this CPU has no AVX512-BF16/AMX"):
        apply("static_int8", dict(FIXED["static_int8"], skip=["head"], bf16=["*"]))


@pytest.mark.parametrize("name", ["dynamic_int8", "static_int8"])
def test_mixed_precision_script_keeps_the_same_precisions(name, tmp_path, monkeypatch):
    monkeypatch.setattr("quantgui.core.env.has_fast_bf16", lambda: True)
    loaded = sm.loaded()
    recipe = Recipe.of((name, dict(FIXED[name], skip=["sensitive", "head"], bf16=["head"])))
    variant, steps = optimize(loaded, recipe)
    export = write_script(tmp_path, loaded, recipe, steps, variant, loaded.example)
    ns = runpy.run_path(str(export.script), run_name="rebuilt")
    model, call = ns["load_original"](), ns["new_call"]()
    rebuilt = ns["optimize"](model, call)
    dtypes = {n: rebuilt.get_submodule(n).weight.dtype for n in ("sensitive", "head")}
    assert dtypes == {"sensitive": torch.float32, "head": torch.bfloat16}
    assert variant.module.head.weight.dtype == torch.bfloat16
    with torch.no_grad():
        torch.testing.assert_close(ns["run"](rebuilt, call, ns["Inputs"](loaded.example.args)),
                                   variant(loaded.example), rtol=0, atol=1e-4)
