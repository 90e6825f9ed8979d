"""Each technique owns its knowledge: its script form, its "why not faster" reasons and its
recommend hints are hooks on `Technique`, and every registered technique implements them.
What a step chose is a structured decision on its StepReport (saved in JSON); the script writer
reads those decisions, never the notes.

Every step here is a real run (`optimize`) on a built-in digits model."""

from __future__ import annotations

import ast
from dataclasses import replace
import json
import re

import pytest
import torch

from quantgui.core import measure, recommend
from quantgui.core.export.script import generate_script
from quantgui.core.opening.loading import open_model
from quantgui.core.recipe import Recipe
from quantgui.core.run import StepReport, optimize
from quantgui.core.techniques import (Hint, ModelTraits, NoScript, ScriptCode, StepRecord,
                                      Technique, VerdictContext, all_techniques)
from quantgui.core.techniques.base import StepContext

NAMES = list(all_techniques())
#: The example each technique runs on (the MLP unless it needs convolutions or attention).
MODEL_FOR = {"static_int8": "digits-cnn", "qat_int8": "digits-cnn", "channels_last": "digits-cnn",
             "freeze": "digits-cnn", "transformer_fastpath": "digits-transformer"}
#: Parameters that keep the runs short (one QAT epoch, two calibration batches, no compile
#: in freeze) or reach a decision worth checking (ln_structured keeps the output layer).
PARAMS = {"qat_int8": {"epochs": 1}, "static_int8": {"batches": 2},
          "freeze": {"method": "torchscript"}, "prune": {"method": "ln_structured"},
          "weight_only_int4": {"group_size": 32}}
#: What each step decides (at least), on these models with these parameters.
DECIDES = {
    "prune": {"output_layer_kept"},
    "transformer_fastpath": {"fastpath_taken", "nested_tensor_encoders",
                             "same_kernels_as_baseline"},
    "dynamic_int8": {"api", "engine", "chosen_by"},
    "static_int8": {"api", "engine", "chosen_by", "calibration_batch", "calibration_batches"},
    "qat_int8": {"api", "engine", "chosen_by"},
    "weight_only_int8": {"api"},
    "weight_only_int4": {"api", "dtype"},
    "fp16": {"dtype", "autocast"},
    "bf16": {"dtype", "autocast"},
    "channels_last": {"inputs_4d"},
    "freeze": {"method", "how", "optimize_for_inference", "compiled"},
    "compile": {"compiled", "eager_fallback"},
    "inference_mode": {"grad_mode"},
    "onnxruntime": {"exporter", "opset", "dynamic_axes", "providers", "quantization",
                    "optimizer", "intra_op_threads", "inter_op_threads", "allow_spinning",
                    "startup_s"},
    "openvino": {"converter", "precision", "hint", "threads", "dynamic_axes", "startup_s"},
    "aoti": {"exporter", "dynamic_axes", "freezing", "compiled", "startup_s"},
}
#: Steps without a standalone-script form (yet).
NO_SCRIPT = {"qat_int8", "weight_only_int4"}
AVX2 = ("AVX2",)
AMX = ("AVX2", "AVX512", "VNNI", "AVX512-BF16", "AMX-BF16", "AMX-INT8")
AMX_FP16 = AMX + ("AVX512-FP16",)
#: Notes that the old script writer parsed, each claiming a choice no run here made.
MISLEADING = ["dynamic INT8 via torchao PT2E", "API/engine torchao chosen by measurement",
              "engine fbgemm chosen by measurement", "engine qnnpack, set by parameter",
              "falling back to PT2E", "freeze auto: chose torch.compile(freezing)",
              "TorchScript (script + freeze (optimize_for_inference failed: x))",
              "Hugging Face attention 'eager' -> 'sdpa'"]


@pytest.fixture(scope="module")
def models(digits):
    return {name: open_model(f"example:{name}")
            for name in ("digits-cnn", "digits-mlp", "digits-transformer")}


@pytest.fixture(scope="module")
def runs(models):
    """{technique: (loaded, variant, StepReport)}, each run once, lazily."""
    cache = {}

    def get(name):
        if name == "aoti" and name not in cache:  # the compile tests/test_results.py also needs
            from tests import real_runs
            cache[name] = (real_runs.loaded("digits-mlp"), real_runs.runtime_variant(
                "digits-mlp", "aoti"), real_runs.as_run("digits-mlp", "aoti").steps[0])
        if name not in cache:
            loaded = models[MODEL_FOR.get(name, "digits-mlp")]
            variant, steps = optimize(loaded, Recipe.of((name, PARAMS.get(name, {}))))
            cache[name] = (loaded, variant, steps[0])
        return cache[name]
    return get


def _script_text(loaded, steps) -> str:
    text = generate_script(loaded, Recipe(), steps)[0]
    return re.sub(r"^Generated .*$", "", text, flags=re.M)  # the timestamp line


def _verdict_context(loaded, variant, report) -> VerdictContext:
    eager = variant.tags.get("eager_module") or getattr(variant.module, "_orig_mod",
                                                        variant.module)
    return VerdictContext(StepRecord.of(report, loaded.example.batch_size), (report.name,),
                          eager, loaded.module, loaded.example.batch_size, AVX2,
                          bool(variant.tags.get("compiled")),
                          measure.has_tensor_subclass_weights(eager))


@pytest.mark.parametrize("name", NAMES)
def test_every_technique_provides_its_hooks_and_decisions(name, runs, models):
    tech = all_techniques()[name]
    for hook in ("script", "why_not_faster", "recommend_hints"):
        assert getattr(type(tech), hook) is not getattr(Technique, hook), f"{name} lacks {hook}"
    loaded, variant, report = runs(name)

    # decisions: recorded, JSON-safe, and saved with the step
    assert set(report.decisions) >= DECIDES[name], report.decisions
    saved = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert saved["decisions"] == report.decisions

    # script: code that parses, or a reason
    code = tech.script(StepRecord.of(report, loaded.example.batch_size))
    assert isinstance(code, (ScriptCode, NoScript))
    assert isinstance(code, NoScript) == (name in NO_SCRIPT)
    if isinstance(code, ScriptCode):
        body = "".join("    " + line + "\n" for line in code.body.splitlines())
        ast.parse(f"def step(model, call):\n{body}    return model\n")
        assert code.summary and "\n" not in code.summary
    else:
        assert code.reason and "\n" not in code.reason
    # a recipe that never ran (no decisions) has a script form too, from its parameters
    bare = tech.script(StepRecord(name, dict(report.params)))
    assert isinstance(bare, NoScript) == (name in NO_SCRIPT)

    # why not faster: one-line reasons
    reasons = tech.why_not_faster(_verdict_context(loaded, variant, report))
    assert isinstance(reasons, list)
    assert all(isinstance(r, str) and r and "\n" not in r for r in reasons)

    # hints: valid recipes that use the technique proposing them
    for model in models.values():
        traits = recommend.model_traits(model.module)
        for caps in (AVX2, AMX, AMX_FP16):
            for hint in tech.recommend_hints(traits, caps):
                assert isinstance(hint, Hint) and isinstance(hint.priority, int)
                names = [s if isinstance(s, str) else s[0] for s in hint.steps]
                assert name in names and hint.reason and "\n" not in hint.reason
                Recipe.of(*hint.steps).validate()


@pytest.mark.parametrize("name", NAMES)
def test_the_script_reads_decisions_never_notes(name, runs):
    loaded, _, report = runs(name)
    with_notes = _script_text(loaded, [report])
    no_notes = StepReport(report.name, report.params, [], report.metrics, report.seconds,
                          decisions=report.decisions)
    lying = StepReport(report.name, report.params, list(MISLEADING), report.metrics,
                       report.seconds, decisions=report.decisions)
    assert _script_text(loaded, [no_notes]) == with_notes
    assert _script_text(loaded, [lying]) == with_notes
    # the saved JSON of the step (a reopened result) writes the same script
    assert _script_text(loaded, [json.loads(json.dumps(report.to_json()))]) == with_notes


def test_the_script_repeats_the_measured_choice(runs):
    loaded, _, report = runs("dynamic_int8")
    text = _script_text(loaded, [report])
    if report.decisions["api"] == "torchao":
        assert "Int8DynamicActivationInt8WeightConfig" in text
    else:
        assert f"torch.backends.quantized.engine = {report.decisions['engine']!r}" in text
    loaded, _, report = runs("static_int8")
    size = report.decisions["calibration_batch"]
    assert size == max(loaded.example.batch_size, 32)  # the run's batch, at least 32
    text = _script_text(loaded, [report])
    assert f"engine = {report.decisions['engine']!r}" in text
    assert f"range(0, min(total, {2 * size}), {size})" in text  # 2 batches, as calibrated
    loaded, _, report = runs("freeze")
    assert report.decisions["method"] == "torchscript" and not report.decisions["compiled"]
    text = _script_text(loaded, [report])
    assert f"torch.jit.{report.decisions['how']}(" in text
    assert ("optimize_for_inference(model)" in text) == \
        report.decisions["optimize_for_inference"]


def test_decisions_must_survive_json():
    ctx = StepContext(example=None, task=None, batch_size=1)
    ctx.decide("layers", ("a", "b"))
    assert ctx.decisions == {"layers": ["a", "b"]}
    with pytest.raises(TypeError):
        ctx.decide("engine", object())


def test_reasons_follow_the_cpu(runs):
    """The same finished step explains itself differently on another CPU."""
    for name, slow_on, fast_on, words in (("bf16", AVX2, AMX, "emulated in FP32"),
                                         ("fp16", AMX, AMX_FP16, "without native FP16")):
        loaded, variant, report = runs(name)
        ctx = _verdict_context(loaded, variant, report)
        slow = all_techniques()[name].why_not_faster(replace(ctx, capabilities=slow_on))
        fast = all_techniques()[name].why_not_faster(replace(ctx, capabilities=fast_on))
        assert any(words in r for r in slow) and not any(words in r for r in fast)


def test_the_verdict_asks_each_step(runs):
    loaded, variant, report = runs("weight_only_int8")
    reasons = measure.likely_reasons([report], variant, loaded.module, 1)
    assert reasons[0].startswith("torchao keeps quantized weights as tensor subclasses")
    assert "saves memory, not time" in reasons[1]
    loaded, variant, report = runs("inference_mode")
    assert measure.likely_reasons([report], variant, loaded.module, 8)[0].startswith(
        "only the call mode changed")


# recommend's candidate order, as it was before the techniques proposed their own candidates
ORDER = {
    ("digits-cnn", AVX2): [
        "static_int8 + inference_mode", "channels_last + inference_mode", "static_int8",
        "channels_last + freeze + inference_mode", "freeze + inference_mode",
        "bf16 + channels_last + inference_mode", "bf16 + inference_mode", "inference_mode",
        "compile + inference_mode"],
    ("digits-cnn", AMX): [
        "bf16 + channels_last + inference_mode", "static_int8 + inference_mode",
        "channels_last + inference_mode", "static_int8", "channels_last + freeze + inference_mode",
        "freeze + inference_mode", "bf16 + inference_mode", "inference_mode",
        "bf16 + compile + inference_mode", "compile + inference_mode"],
    ("digits-mlp", AVX2): [
        "dynamic_int8 + inference_mode", "bf16 + inference_mode", "static_int8 + inference_mode",
        "inference_mode", "compile + inference_mode"],
    ("digits-mlp", AMX_FP16): [
        "bf16 + inference_mode", "dynamic_int8 + inference_mode", "fp16 + inference_mode",
        "static_int8 + inference_mode", "inference_mode", "bf16 + compile + inference_mode",
        "compile + inference_mode"],
    ("digits-transformer", AVX2): [
        "dynamic_int8 + inference_mode", "transformer_fastpath + inference_mode",
        "transformer_fastpath + dynamic_int8 + inference_mode", "bf16 + inference_mode",
        "inference_mode", "compile + inference_mode"],
    ("digits-transformer", AMX): [
        "bf16 + inference_mode", "dynamic_int8 + inference_mode",
        "transformer_fastpath + bf16 + inference_mode", "transformer_fastpath + inference_mode",
        "transformer_fastpath + dynamic_int8 + inference_mode", "inference_mode",
        "bf16 + compile + inference_mode", "compile + inference_mode"],
}


RUNTIMES = ("onnxruntime", "openvino", "aoti")


@pytest.mark.parametrize("model, caps", list(ORDER))
def test_candidate_order_is_what_it_was(models, model, caps):
    """The PyTorch candidates keep their order; the runtimes (issue 11, where installed) are
    placed by CPU, checked in tests/test_runtimes.py."""
    def torch_only(recipes):
        return [r for r in recipes if not r.startswith(RUNTIMES)]
    got = [r.describe() for r in recommend.candidate_recipes(models[model], list(caps),
                                                             include_compile=True)]
    assert torch_only(got) == ORDER[model, caps]
    assert got[-1] == "aoti"  # a compile, like torch.compile: only when asked
    without = [r.describe() for r in recommend.candidate_recipes(models[model], list(caps))]
    assert torch_only(without) == [r for r in ORDER[model, caps] if "compile" not in r]
    assert "aoti" not in without and "onnxruntime:shapes=fixed" in without


def test_model_traits_are_torch_free_counts(models):
    traits = recommend.model_traits(models["digits-transformer"].module)
    assert traits == ModelTraits(linear=8, conv=0, recurrent=0, attention=2, hf=False)
    assert traits.transformer and traits.linear_heavy and not traits.conv_net


def test_a_hugging_face_model_switched_to_sdpa_is_switched_in_the_script(tmp_path):
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(tmp_path / "bert")
    bert = open_model(tmp_path / "bert", input_shape=(4, 16))
    bert.module.set_attn_implementation("eager")  # what an older checkpoint would load with
    _, steps = optimize(bert, Recipe.of("transformer_fastpath"))
    decisions = steps[0].decisions
    assert decisions["attn_implementation"] == "sdpa"
    assert decisions["attn_implementation_before"] == "eager"
    assert "model.set_attn_implementation('sdpa')" in _script_text(bert, steps)
    assert bert.module.config._attn_implementation == "eager"  # the original is untouched
    bert.module.set_attn_implementation("sdpa")  # already SDPA: nothing to switch or repeat
    _, steps = optimize(bert, Recipe.of("transformer_fastpath"))
    assert "attn_implementation" not in steps[0].decisions
    assert "set_attn_implementation" not in _script_text(bert, steps)


def test_the_hook_types_are_torch_free():
    """hooks.py needs nothing but the standard library (the types cross process boundaries)."""
    import subprocess
    import sys
    from pathlib import Path
    import quantgui.core.techniques.hooks as hooks
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('hooks', {str(Path(hooks.__file__))!r})\n"
            "module = importlib.util.module_from_spec(spec)\n"
            "sys.modules['hooks'] = module\n"
            "spec.loader.exec_module(module)\n"
            "assert module.StepRecord.of({'name': 'bf16', 'decisions': {'autocast': True}})"
            ".decided('autocast')\n"
            "assert 'torch' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
