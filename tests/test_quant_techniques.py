"""INT8/INT4 techniques on the digits examples: what they change, what they must not.

Tolerances: INT8 keeps test accuracy within 1.5 points of FP32 (360 test digits, so 1.5 points
is ~5 digits); INT8 state_dicts of Linear-heavy models are under 0.3x FP32 (4x minus scales and
biases); INT4 (3 of 4 MLP layers) under 0.25x.
"""

import copy
import io

import pytest
import torch
from torch import nn

from quantgui.core.errors import Cancelled, UserError
from quantgui.core.model.data import Dataset
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.variant import Variant
from quantgui.core.params import build
from quantgui.core.progress import Task
from quantgui.core.techniques import get
from quantgui.core.techniques.base import StepContext

ACCURACY_TOLERANCE = 0.015


def state_bytes(module) -> int:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.tell()


def accuracy(variant: Variant, test: Dataset) -> float:
    correct = sum(int((variant(inputs).argmax(-1) == labels).sum())
                  for inputs, labels in test.batches(360))
    return correct / len(test)


def snapshot(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert all(type(m).__module__.startswith("torch.nn.modules") or m is model
               or "example_models" in type(m).__module__ for m in model.modules())


def run(name, model, train, params=None, batch=64, task=None, with_train=True):
    tech = get(name)
    example = Inputs.of(train.inputs.args[0][:batch])
    ctx = StepContext(example, task or Task(), batch, train=train if with_train else None,
                      original=model)
    variant = tech.apply(Variant(copy.deepcopy(model)), build(tech.Params, params or {}), ctx)
    return variant, ctx


def test_dynamic_int8_mlp_shrinks_4x_keeps_accuracy_and_measures_engine(digits):
    model, train, test = digits["digits-mlp"]
    before = snapshot(model)
    variant, ctx = run("dynamic_int8", model, train)
    assert state_bytes(variant.module) < 0.3 * state_bytes(model)
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE
    # auto measured every candidate and said which won and by how much
    timings = ctx.metrics["engine_timings_ms"]
    assert len(timings) >= 3 and all(v > 0 for v in timings.values())
    assert any("chosen by measurement" in n and "at batch 64" in n for n in ctx.notes)
    assert variant.tags["quantized_api"] in ("torch.ao eager", "torchao")
    if variant.tags["quantized_api"] == "torch.ao eager":
        assert variant.quantized_engine in ("x86", "fbgemm", "onednn")
        assert any("deprecated" in n for n in ctx.notes)
    assert_unchanged(model, before)


def test_dynamic_int8_engine_override_is_honoured(digits):
    model, train, _ = digits["digits-mlp"]
    variant, ctx = run("dynamic_int8", model, train, {"engine": "onednn", "per_channel": False})
    assert variant.quantized_engine == "onednn" and variant.tags["engine"] == "onednn"
    assert "engine_timings_ms" not in ctx.metrics  # nothing measured when the user chose
    assert any("set by parameter" in n for n in ctx.notes)
    linear = variant.module.net[1]
    assert type(linear).__name__ == "Linear" and "dynamic" in type(linear).__module__
    assert linear.weight().qscheme() == torch.per_tensor_affine


def test_dynamic_int8_transformer_runs_despite_fast_path(digits):
    model, train, test = digits["digits-transformer"]
    variant, ctx = run("dynamic_int8", model, train, {"api": "torch.ao", "engine": "x86"})
    layer = variant.module.encoder.layers[0]
    assert not isinstance(layer.linear1.weight, torch.Tensor)  # really quantized
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE
    assert any("fast path turned off in 2" in n for n in ctx.notes)


def test_dynamic_int8_quantizes_lstm(digits):
    model, train, test = digits["digits-lstm"]
    variant, ctx = run("dynamic_int8", model, train, batch=32)
    assert type(variant.module.lstm).__name__ == "LSTM"
    assert "dynamic" in type(variant.module.lstm).__module__
    assert state_bytes(variant.module) < 0.35 * state_bytes(model)
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE
    assert "torchao" not in ctx.metrics["engine_timings_ms"]  # it cannot do LSTM


def test_inapplicable_techniques_give_reasons(digits):
    convs_only = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    activations_only = nn.Sequential(nn.ReLU())
    assert get("dynamic_int8").applies_to(convs_only) == "no nn.Linear/LSTM/GRU layers to quantize"
    assert get("static_int8").applies_to(convs_only) is None
    assert "Linear/Conv" in get("static_int8").applies_to(activations_only)
    assert "Linear/Conv" in get("qat_int8").applies_to(activations_only)
    assert "nn.Linear" in get("weight_only_int8").applies_to(convs_only)
    # the LSTM example's only Linear (256 -> 10) cannot be packed as INT4
    assert "multiple of 16" in get("weight_only_int4").applies_to(digits["digits-lstm"][0])
    assert get("weight_only_int4").applies_to(digits["digits-mlp"][0]) is None


def test_static_int8_cnn_calibrates_reports_and_shrinks(digits):
    model, train, test = digits["digits-cnn"]
    before = snapshot(model)
    seen = []
    task = Task(on_progress=seen.append)
    variant, ctx = run("static_int8", model, train,
                       {"engine": "x86", "observer": "minmax", "batches": 4}, task=task)
    calib = [(p.done, p.total) for p in seen if p.phase == "calibrate"]
    assert calib == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert variant.quantized_engine == "x86" and variant.tags["quantized_api"] == "torch.ao FX"
    assert ctx.metrics["layers_left_fp32"] == 0 and ctx.metrics["layers_quantized"] == 5
    assert state_bytes(variant.module) < 0.3 * state_bytes(model)
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE
    assert_unchanged(model, before)


def test_static_int8_cancel_mid_calibration(digits):
    model, train, _ = digits["digits-cnn"]
    before = snapshot(model)
    calls = []

    def cancel_after_second(progress):
        if progress.phase == "calibrate":
            calls.append(progress.done)
            if progress.done == 2:
                task.cancel_token.cancel()
    task = Task(on_progress=cancel_after_second)
    with pytest.raises(Cancelled):
        run("static_int8", model, train, {"engine": "x86", "observer": "minmax", "batches": 10},
            task=task)
    assert calls == [1, 2]
    assert_unchanged(model, before)


def test_static_int8_without_train_calibrates_on_example(digits):
    model, train, _ = digits["digits-mlp"]
    variant, ctx = run("static_int8", model, train, {"engine": "fbgemm", "observer": "minmax"},
                       with_train=False)
    assert any("example input" in n for n in ctx.notes)
    assert variant.quantized_engine == "fbgemm"
    assert state_bytes(variant.module) < 0.3 * state_bytes(model)


def test_qat_int8_needs_labeled_data(digits):
    model, train, _ = digits["digits-cnn"]
    with pytest.raises(UserError, match="labeled training data"):
        run("qat_int8", model, train, with_train=False)
    unlabeled = Dataset(train.inputs, None, "unlabeled")
    with pytest.raises(UserError, match="needs labels"):
        run("qat_int8", model, unlabeled)
    assert get("qat_int8").needs_labels is True


def test_qat_int8_cnn_trains_converts_and_keeps_accuracy(digits):
    model, train, test = digits["digits-cnn"]
    before = snapshot(model)
    seen = []
    variant, ctx = run("qat_int8", model, train, {"epochs": 1},
                       task=Task(on_progress=seen.append))
    train_reports = [p for p in seen if p.phase == "train"]
    assert len(train_reports) == 12 and train_reports[-1].done == train_reports[-1].total == 12
    assert all(p.values["epoch"] == 1 and p.values["loss"] >= 0 for p in train_reports)
    assert variant.quantized_engine in ("x86", "fbgemm", "onednn")
    assert state_bytes(variant.module) < 0.3 * state_bytes(model)
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE
    assert_unchanged(model, before)


def test_weight_only_int8_is_4x_smaller_and_near_exact(digits):
    model, train, test = digits["digits-mlp"]
    variant, _ = run("weight_only_int8", model, train)
    saved = io.BytesIO()
    torch.save(variant.module.state_dict(), saved)
    assert saved.tell() < 0.3 * state_bytes(model)
    torch.load(io.BytesIO(saved.getvalue()), weights_only=True)  # safe to load
    x = Inputs.of(test.inputs.args[0][:64])
    reference = Variant(model)(x)
    assert (variant(x) - reference).abs().max() < 0.05 * reference.abs().max()
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE


def test_weight_only_int4_prototype_path_on_mlp(digits):
    model, train, test = digits["digits-mlp"]
    variant, ctx = run("weight_only_int4", model, train, {"group_size": 32})
    assert variant.input_dtype == torch.bfloat16
    assert ctx.metrics["layers_quantized"] == 3  # the 1024 -> 10 head cannot be packed
    assert state_bytes(variant.module) < 0.25 * state_bytes(model)
    assert accuracy(variant, test) >= accuracy(Variant(model), test) - ACCURACY_TOLERANCE
    assert variant(Inputs.of(test.inputs.args[0][:8])).dtype == torch.float32
