"""Runtimes as recipe steps (issue 11): ONNX Runtime, OpenVINO and AOTInductor run the built-in
digits models, measured like every other step; their artifacts export and reload; without the
packages everything else works and the reason says how to install them.

Budgets are short on purpose (CI time): fidelity is checked on the example and a few batches."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from quantgui.core.errors import Cancelled, UserError
from quantgui.core.export.save_model import save_model
from quantgui.core.opening.loading import open_model
from quantgui.core.progress import Task
from quantgui.core.recipe import Recipe
from quantgui.core.run import RunOptions, optimize, run_recipe
from quantgui.core.run.preflight import preflight
from quantgui.core.techniques import all_techniques

FAST = RunOptions(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1, eval_limit=2)


@pytest.fixture(scope="module")
def cnn(digits):
    return open_model("example:digits-cnn")


@pytest.fixture(scope="module")
def mlp(digits):
    return open_model("example:digits-mlp")


def _max_diff(loaded, variant):
    ref = loaded.baseline()(loaded.example)
    return float((variant(loaded.example) - ref).abs().max())


def test_runtime_stage_is_one_per_recipe_and_after_graph_steps():
    techs = all_techniques()
    for name in ("onnxruntime", "openvino", "aoti"):
        assert techs[name].stage == 60 and techs[name].group == "runtime"
    with pytest.raises(UserError, match="runtime"):
        Recipe.of("onnxruntime", "openvino").validate()
    with pytest.raises(UserError, match="must come before 'onnxruntime'"):
        Recipe.of("onnxruntime", "channels_last").validate()
    Recipe.of("prune", "onnxruntime", "inference_mode").validate()


def test_onnxruntime_fp32_on_the_cnn_measures_exports_and_reloads(cnn, tmp_path):
    result = run_recipe(cnn, Recipe.of("onnxruntime"), FAST)
    step = result.steps[0]
    d = step.decisions
    assert d["exporter"] == "torch.onnx.export (dynamo)" and d["opset"] >= 18
    assert d["dynamic_axes"] is True and d["quantization"] == "none"
    # thread counts equal to the measurement's, spinning off (measurement hygiene)
    assert d["intra_op_threads"] == result.threads and d["inter_op_threads"] == 1
    assert d["allow_spinning"] is False and d["providers"] == ["CPUExecutionProvider"]
    # startup cost recorded apart from latency
    assert step.metrics["startup_s"] > 0 and step.metrics["export_s"] > 0
    assert d["startup_s"] == pytest.approx(step.metrics["startup_s"])
    assert result.fidelity.max_abs_error < 1e-4 and result.fidelity.cosine > 0.99999
    # samples of ~20 ms (not 1 ms) against another engine: the switch between thread pools is
    # amortized as in a deployment running one model
    t = result.timing
    assert t.after.calls_per_sample * min(t.before.median_ms, t.after.median_ms) > 5
    assert 0.9 < result.size_ratio < 1.3  # the .onnx file holds the same FP32 weights
    # a dynamic batch: batch 1 runs on the graph exported at batch 64
    one = cnn.example.slice(0, 1)
    assert result.variant(one).shape == (1, 10)
    saved = save_model(result.variant, cnn.example, tmp_path)
    assert saved.format == "onnx" and saved.path.suffix == ".onnx" and saved.check.passed
    assert saved.path.exists() and "InferenceSession" in saved.how_to_load
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_onnxruntime_int8_dynamic_per_channel_and_skip_list(mlp):
    variant, (step,) = optimize(mlp, Recipe.of(("onnxruntime", {"quantize": "dynamic"})), FAST)
    assert step.decisions["quantization"] == "dynamic" and step.decisions["per_channel"] is True
    assert step.metrics["quantize_s"] >= 0
    small = variant.module.artifact_bytes()
    assert _max_diff(mlp, variant) < 0.5
    # every Gemm/MatMul kept FP32 by the skip list: nothing shrinks
    kept, (kept_step,) = optimize(mlp, Recipe.of(("onnxruntime", {
        "quantize": "dynamic", "skip_layers": "Gemm,MatMul,linear"})), FAST)
    assert kept_step.decisions["excluded_nodes"] >= 4
    assert kept.module.artifact_bytes() > 3 * small
    assert _max_diff(mlp, kept) < 1e-4


def test_runtime_variant_is_fed_its_own_arrays_once_per_batch(mlp):
    """The timer's prepared inputs hold the engine's numpy arrays (made once, like a dtype
    cast); run_prepared gives what calling the module does. A user's model with a `feeds`
    attribute is not mistaken for an engine."""
    from quantgui.core.model.inputs import FedInputs
    from quantgui.core.model.variant import Variant
    variant, _ = optimize(mlp, Recipe.of("onnxruntime", "inference_mode"), FAST)
    prepared = variant.prepare(mlp.example)
    assert isinstance(prepared, FedInputs) and prepared.owner is variant.module
    assert prepared.feeds[0].shape == tuple(mlp.example.args[0].shape)
    assert torch.equal(variant.run_prepared(prepared),
                       variant.module(*mlp.example.args))
    # the timer's call leaves the engine's outputs in its own arrays (what a deployment of the
    # .onnx gets); the same numbers
    import numpy as np
    engine_out = variant.timed(prepared)
    assert isinstance(engine_out, list) and isinstance(engine_out[0], np.ndarray)
    assert torch.equal(torch.from_numpy(engine_out[0]), variant.run_prepared(prepared))
    eager = mlp.baseline()
    assert torch.equal(eager.timed(eager.prepare(mlp.example)), eager.run_prepared(
        eager.prepare(mlp.example)))

    class Feeds(torch.nn.Module):
        feeds = "a user's attribute"
        run_feeds = in_torch = None

        def forward(self, x):
            return x * 2
    user = Variant.baseline(Feeds())
    plain = user.prepare(mlp.example)
    assert plain is mlp.example and not isinstance(plain, FedInputs)
    assert torch.equal(user.run_prepared(plain), mlp.example.args[0] * 2)


def test_onnxruntime_static_qdq_calibrates_on_the_users_data(cnn):
    result = run_recipe(cnn, Recipe.of(("onnxruntime", {"quantize": "static",
                                                         "calibration_samples": 64})), FAST)
    step = result.steps[0]
    assert step.decisions["quantization"] == "static"
    assert step.decisions["calibration_samples"] == 64
    assert result.size_ratio < 0.5
    assert abs(result.before.accuracy - result.after.accuracy) <= 0.02


def test_openvino_fp32_and_nncf_int8_on_the_cnn(cnn, tmp_path):
    fp32, (step,) = optimize(cnn, Recipe.of("openvino"), FAST)
    d = step.decisions
    assert d["precision"] == "fp32" and d["inference_precision"] == "f32"
    assert d["threads"] == torch.get_num_threads() and d["streams"] == 1
    assert d["dynamic_axes"] is True and step.metrics["startup_s"] > 0
    assert _max_diff(cnn, fp32) < 1e-4
    assert fp32(cnn.example.slice(0, 3)).shape == (3, 10)
    saved = save_model(fp32, cnn.example, tmp_path)
    assert saved.format == "openvino" and saved.check.passed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.xml"]

    int8 = run_recipe(cnn, Recipe.of(("openvino", {"precision": "int8",
                                                   "calibration_samples": 64})), FAST)
    assert int8.steps[0].decisions["quantizer"] == "nncf"
    assert int8.steps[0].decisions["calibration_samples"] == 64
    assert int8.size_ratio < 0.5 and int8.fidelity.cosine > 0.99


def test_fixed_shapes_fold_the_batch_into_the_graph(mlp, cnn, tmp_path):
    """shapes=fixed: the graph takes only the example's shape (the run's batch of 64), the
    evaluation gives it full batches only (320 of the 360 test samples), calibration takes
    whole batches (70 samples asked -> 2 batches of 64), and the saved file says so."""
    options = RunOptions(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1)
    ort = run_recipe(mlp, Recipe.of(("onnxruntime", {"quantize": "dynamic",
                                                     "shapes": "fixed"})), options)
    step = ort.steps[0]
    assert step.decisions["shapes"] == "fixed" and step.decisions["dynamic_axes"] is False
    assert "evaluation used 320 of 360 samples" in " ".join(step.notes)
    assert ort.fidelity.cosine > 0.999
    shapes = [list(i.shape) for i in ort.variant.module.run_flat.session.get_inputs()]
    assert shapes == [list(mlp.example.args[0].shape)]
    with pytest.raises(Exception):
        ort.variant(mlp.example.slice(0, 3))
    saved = save_model(ort.variant, mlp.example, tmp_path / "ort")
    assert saved.check.passed and any("fixed to the example" in n for n in saved.notes)

    static = run_recipe(cnn, Recipe.of(("onnxruntime", {
        "quantize": "static", "calibration_samples": 70, "shapes": "fixed"})), options)
    assert static.steps[0].decisions["calibration_samples"] == 128
    assert static.fidelity.cosine > 0.99

    ov = run_recipe(cnn, Recipe.of(("openvino", {"precision": "int8", "shapes": "fixed",
                                                 "calibration_samples": 70})), options)
    d = ov.steps[0].decisions
    assert d["shapes"] == "fixed" and d["dynamic_axes"] is False
    assert d["calibration_samples"] == 128 and ov.fidelity.cosine > 0.99
    assert "evaluation used 320 of 360 samples" in " ".join(ov.steps[0].notes)
    with pytest.raises(Exception):
        ov.variant(cnn.example.slice(0, 3))
    # the dynamic default still takes any batch
    dyn, (dstep,) = optimize(cnn, Recipe.of("openvino"), FAST)
    assert dstep.decisions["shapes"] == "dynamic" and dyn(cnn.example.slice(0, 3)).shape == (3, 10)


def test_aoti_fixed_shape_package_evaluates_full_batches_only(mlp, tmp_path):
    """AOTInductor with dynamic=False is shape-specialized: the 360-sample test set at batch
    64 leaves a short last batch of 40 that must never reach it."""
    options = RunOptions(time_budget_s=0.05, min_rounds=2, max_rounds=4, warmup=1)
    result = run_recipe(mlp, Recipe.of(("aoti", {"dynamic": False})), options)
    step = result.steps[0]
    assert step.decisions["dynamic_axes"] is False and step.decisions["freezing"] is True
    assert step.metrics["compile_s"] > 0 and step.decisions["startup_s"] > 0
    assert "evaluation used 320 of 360 samples" in " ".join(step.notes)
    assert result.after.accuracy == pytest.approx(result.before.accuracy, abs=1e-9) or \
        result.fidelity.max_abs_error < 1e-3
    assert result.fidelity.max_abs_error < 1e-3
    saved = save_model(result.variant, mlp.example, tmp_path)
    assert saved.format == "aoti" and saved.path.name == "model.pt2" and saved.check.passed


def test_runtime_recipe_json_round_trip(tmp_path):
    recipe = Recipe.of("prune", ("onnxruntime", {"quantize": "static", "per_channel": False,
                                                 "skip_layers": "classifier",
                                                 "shapes": "fixed"}))
    path = tmp_path / "r.json"
    recipe.save(path)
    again = Recipe.load(path)
    assert again.to_json() == recipe.to_json()
    (_, p2) = again.validate()[1]
    assert p2.quantize == "static" and p2.per_channel is False and p2.skip_layers == "classifier"
    assert p2.shapes == "fixed"
    bad = {"steps": [{"name": "openvino", "params": {"precision": "int4"}}]}
    path.write_text(json.dumps(bad))
    with pytest.raises(UserError, match="precision"):
        Recipe.load(path).validate()


def test_runtime_refuses_an_earlier_numeric_format_step(mlp):
    with pytest.raises(UserError, match=r"step 2 \(onnxruntime\): .*FP32 model"):
        optimize(mlp, Recipe.of("bf16", "onnxruntime"), FAST)


@pytest.mark.parametrize("recipe", [("onnxruntime",), ("openvino",)])
def test_cancel_during_export_raises_and_keeps_nothing(mlp, recipe):
    token_task = Task()
    seen = []

    def on_progress(p):
        seen.append(p.message)
        if p.phase == "convert":  # the first runtime phase started: cancel it
            token_task.cancel_token.cancel()
    token_task.on_progress = on_progress
    with pytest.raises(Cancelled):
        optimize(mlp, Recipe.of(*recipe), FAST, token_task)
    assert any("export" in m or "convert" in m for m in seen)


def test_without_the_packages_the_reason_says_how_to_install(digits, monkeypatch):
    for name in ("onnxruntime", "openvino"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    mlp = open_model("example:digits-mlp")  # applicability is computed when a model opens
    techs = all_techniques()
    assert techs["onnxruntime"].applies_to(mlp.module) == (
        'onnxruntime is not installed: pip install "quantgui[onnx]"')
    assert techs["openvino"].applies_to(mlp.module) == (
        'openvino is not installed: pip install "quantgui[openvino]"')
    problems = preflight(mlp, Recipe.of("onnxruntime"))
    assert [p.kind for p in problems] == ["not_applicable"]
    assert 'pip install "quantgui[onnx]"' in problems[0].message
    from quantgui.core import recommend
    names = [s.name for r in recommend.candidate_recipes(mlp, ["AVX2"]) for s in r.steps]
    assert "onnxruntime" not in names and "openvino" not in names
    # everything else still runs
    assert run_recipe(mlp, Recipe.of("inference_mode"), FAST).verdict is not None


def test_cli_without_onnxruntime_prints_one_line(digits, monkeypatch, capsys):
    from quantgui import cli
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code = cli.main(["run", "example:digits-mlp", "--step", "onnxruntime"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ('quantgui-cli: error: step 1 (onnxruntime): does not apply to this model: '
                   'onnxruntime is not installed: pip install "quantgui[onnx]"\n')


def test_recommend_orders_runtimes_by_cpu(mlp, cnn):
    from quantgui.core import recommend
    for loaded in (mlp, cnn):
        avx2 = [r.describe() for r in recommend.candidate_recipes(loaded, ["AVX2"])]
        first_eager_int8 = next(i for i, d in enumerate(avx2)
                                if d.startswith(("dynamic_int8", "static_int8")))
        # fixed shapes: the recommendation is for the run's batch
        for runtime in ("onnxruntime:shapes=fixed", "openvino:shapes=fixed"):
            assert avx2.index(runtime) < first_eager_int8, avx2
        amx = [r.describe() for r in recommend.candidate_recipes(
            loaded, ["AVX2", "AVX512", "VNNI", "AVX512-BF16", "AMX-BF16", "AMX-INT8"])]
        eager = next(i for i, d in enumerate(amx) if d.startswith(("dynamic_int8",
                                                                   "static_int8", "bf16")))
        assert eager < amx.index("onnxruntime:shapes=fixed"), amx
    mlp_avx2 = [r.describe() for r in recommend.candidate_recipes(mlp, ["AVX2"])]
    assert "onnxruntime:quantize=dynamic,per_channel=True,shapes=fixed" in mlp_avx2
    with_compile = [r.describe() for r in recommend.candidate_recipes(
        cnn, ["AVX2"], include_compile=True)]
    assert "compile + inference_mode" in with_compile and "aoti" in with_compile


def test_onnxruntime_on_a_tiny_bert_keyword_inputs_and_transformer_optimizer(tmp_path):
    """A Hugging Face model takes keyword inputs and returns a ModelOutput: the runtime variant
    takes the same keywords and returns the same structure; optimizer=auto fuses for BERT."""
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(tmp_path / "bert")
    bert = open_model(tmp_path / "bert", input_shape=(4, 16))
    assert bert.example.kwargs and not bert.example.args
    variant, (step,) = optimize(bert, Recipe.of(("onnxruntime", {"quantize": "dynamic"})),
                                FAST)
    assert step.decisions["optimizer"] == "transformer (bert)"
    assert step.decisions["dynamic_axes"] is True
    out = variant.run_prepared(bert.example)
    with torch.no_grad():
        ref = bert.module(**bert.example.kwargs)
    assert type(out) is type(ref) and out.last_hidden_state.shape == ref.last_hidden_state.shape
    cos = torch.nn.functional.cosine_similarity(out.pooler_output, ref.pooler_output, dim=-1)
    assert float(cos.min()) > 0.99
    # other batch and sequence length: the axes are dynamic
    shorter = bert.example.map(lambda t: t[:2, :9])
    assert variant.run_prepared(shorter).last_hidden_state.shape == (2, 9, 32)


class _Eigen(torch.nn.Module):
    def forward(self, x):
        return torch.linalg.eigvalsh(x @ x.transpose(-1, -2))


def test_an_exporter_failure_names_the_op(tmp_path):
    from quantgui.core.model.inputs import Inputs
    from quantgui.core.techniques._runtime_util import export_onnx
    with pytest.raises(UserError) as info:
        export_onnx(_Eigen(), Inputs.of(torch.randn(4, 3, 3)), tmp_path / "m.onnx")
    assert str(info.value) == ("the ONNX exporter failed: no ONNX conversion for the op "
                               "aten._linalg_eigh.default")


def test_tune_adds_pytorch_steps_to_the_best_pytorch_recipe_not_to_another_engine(mlp):
    """inference_mode after ONNX Runtime changes nothing (the engine is not PyTorch): the tune
    does not measure it, and adds it to the best recipe PyTorch runs instead."""
    from quantgui.core.budget import QualityBudget
    from quantgui.core.tune import TuneOptions, tune
    run = RunOptions(time_budget_s=0.2, min_rounds=4, warmup=1, eval_limit=2, threads=1)
    only_ort = [Recipe.of(("onnxruntime", {"quantize": "dynamic"}))]
    both = only_ort + [Recipe.of("dynamic_int8")]
    for candidates, added in ((only_ort, []), (both, ["dynamic_int8 + inference_mode"])):
        result = tune(mlp, QualityBudget(min_cosine=0.9), TuneOptions(
            run=run, candidates=candidates, steps=("inference_mode",)))
        assert result.best is not None, [t.trial.row() for t in result.trials]
        assert [t.trial.recipe.describe() for t in result.trials if t.stage == "step"] == added
        assert all(t.base == 1 for t in result.trials if t.stage == "step")


def test_the_script_rebuilds_onnxruntime_static_int8_from_a_partial_last_batch(cnn, tmp_path):
    """The standalone script's export is fixed to the example's shape (batch 64): its
    calibration of 70 samples (64 + 6) takes the full batch only, and the script runs to a
    reloaded .onnx file."""
    import os
    import subprocess
    from quantgui.core.export.script import write_script
    recipe = Recipe.of(("onnxruntime", {"quantize": "static", "calibration_samples": 70}))
    variant, steps = optimize(cnn, recipe, FAST)
    assert steps[0].decisions["calibration_samples"] == 70
    export = write_script(tmp_path, cnn, recipe, steps, variant, cnn.example)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    proc = subprocess.run([sys.executable, str(export.script), "--rounds", "2", "--out",
                           str(tmp_path / "rebuilt")], capture_output=True, text=True,
                          timeout=300, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rebuilt.onnx (onnx; reloaded, max abs diff 0)" in proc.stdout, proc.stdout
