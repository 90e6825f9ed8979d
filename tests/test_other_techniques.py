"""FP16/BF16, channels-last, inference mode, freeze, transformer fast path, pruning, compile.

Each step runs on a private copy of a built-in digits model, the way the runner calls it, and
every test checks the user's model is left untouched. Compile is tested once (a cold inductor
cache costs 13-22 s).
"""

import pytest
import torch
from torch import nn

from quantgui.core import params as params_mod
from quantgui.core.errors import Cancelled, UserError
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.variant import Variant
from quantgui.core.progress import CancelToken, Task
from quantgui.core.techniques import all_techniques, get
from quantgui.core.techniques.base import StepContext

MINE = ("fp16", "bf16", "channels_last", "inference_mode", "freeze", "transformer_fastpath",
        "prune", "compile")


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, snap):
    now = model.state_dict()
    assert set(now) == set(snap)
    for k, v in snap.items():
        assert now[k].dtype == v.dtype and torch.equal(now[k], v), k


def run(model, technique, example, task=None, **params):
    """Apply one technique as the runner does; returns (variant, ctx). Checks the original."""
    tech = get(technique)
    snap = snapshot(model)
    ctx = StepContext(example=example, task=task or Task(), batch_size=example.batch_size,
                      original=model)
    variant = tech.apply(Variant.baseline(model).copy(), params_mod.build(tech.Params, params), ctx)
    assert_unchanged(model, snap)
    assert all(isinstance(n, str) and n for n in ctx.notes)
    return variant, ctx


def accuracy(variant, test):
    return float((variant(test.inputs).argmax(-1) == test.labels).float().mean())


def state_bytes(module):
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def head(test, n=64):
    return test.inputs.slice(0, n)


def test_registry_metadata_and_params():
    techs = all_techniques()
    expected = {"fp16": (30, "numeric format"), "bf16": (30, "numeric format"),
                "channels_last": (40, None), "inference_mode": (90, None),
                "freeze": (50, "graph"), "compile": (50, "graph"),
                "transformer_fastpath": (20, None), "prune": (10, None)}
    for name in MINE:
        t = techs[name]
        assert (t.stage, t.group) == expected[name]
        assert t.summary and "not implemented" not in t.summary.lower()
        for spec in params_mod.specs(t.Params):
            assert len(spec.help) > 40, (name, spec.name)  # what it does, when it helps, cost
        params_mod.build(t.Params, {})  # defaults validate
    with pytest.raises(UserError):
        params_mod.build(techs["prune"].Params, {"amount": 0.99})
    with pytest.raises(UserError):
        params_mod.build(techs["compile"].Params, {"mode": "max-autotune"})


@pytest.mark.parametrize("technique,dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_casts_halve_size_and_keep_accuracy(digits, technique, dtype):
    model, _, test = digits["digits-mlp"]
    variant, ctx = run(model, technique, head(test))
    assert variant.input_dtype == dtype
    assert {p.dtype for p in variant.module.parameters()} == {dtype}
    assert state_bytes(variant.module) == pytest.approx(state_bytes(model) / 2, rel=1e-3)
    # Both formats keep the digits MLP's test accuracy within one percentage point.
    assert abs(accuracy(variant, test) - accuracy(Variant.baseline(model), test)) <= 0.01
    assert ctx.metrics["cast_max_diff"] < 0.05
    assert any(("FP16" if dtype == torch.float16 else "BF16") in n for n in ctx.notes)


def test_bf16_cast_runs_lstm_and_autocast_keeps_size(digits):
    model, _, test = digits["digits-lstm"]
    variant, _ = run(model, "bf16", head(test))
    assert variant.module.lstm.weight_ih_l0.dtype == torch.bfloat16
    assert abs(accuracy(variant, test) - accuracy(Variant.baseline(model), test)) <= 0.02

    cnn, _, ctest = digits["digits-cnn"]
    auto, ctx = run(cnn, "bf16", head(ctest), autocast=True)
    assert auto.autocast_dtype == torch.bfloat16 and auto.input_dtype is None
    assert state_bytes(auto.module) == state_bytes(cnn)
    assert abs(accuracy(auto, ctest) - accuracy(Variant.baseline(cnn), ctest)) <= 0.01
    assert any("size unchanged" in n for n in ctx.notes)


def test_channels_last_same_output_and_nhwc_activations(digits):
    model, _, test = digits["digits-cnn"]
    variant, _ = run(model, "channels_last", head(test))
    assert variant.channels_last
    conv2 = variant.module.features[3]
    assert conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv2.weight.is_contiguous()
    seen = []
    hook = conv2.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        out = variant(test.inputs)
    finally:
        hook.remove()
    # The 32-channel activation reaching the second conv really is NHWC in memory.
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
    assert variant.prepare(test.inputs).args[0].is_contiguous(memory_format=torch.channels_last)
    ref = Variant.baseline(model)(test.inputs)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_inapplicable_techniques_give_reasons(digits):
    mlp = digits["digits-mlp"][0]
    cnn = digits["digits-cnn"][0]
    assert get("channels_last").applies_to(mlp) == \
        "no Conv2d layers: channels-last only changes 4-D convolution inputs"
    assert "MultiheadAttention" in get("transformer_fastpath").applies_to(cnn)
    assert get("transformer_fastpath").applies_to(digits["digits-transformer"][0]) is None
    assert get("fp16").applies_to(nn.ReLU())
    assert "already BF16" in get("bf16").applies_to(nn.Linear(2, 2).to(torch.bfloat16))
    assert get("prune").applies_to(nn.LSTM(4, 4))
    for name in ("inference_mode", "freeze", "compile", "fp16", "bf16", "prune"):
        assert get(name).applies_to(cnn) is None


def test_inference_mode(digits):
    model, _, test = digits["digits-cnn"]
    variant, ctx = run(model, "inference_mode", head(test))
    assert variant.grad_mode == "inference_mode"
    prepared = variant.prepare(test.inputs)
    assert torch.is_inference(variant.run_prepared(prepared))
    torch.testing.assert_close(variant(test.inputs), Variant.baseline(model)(test.inputs))
    assert any("no_grad" in n and "3%" in n for n in ctx.notes)


def test_prune_l1_reaches_sparsity_without_reparametrization(digits):
    model, _, test = digits["digits-mlp"]
    variant, ctx = run(model, "prune", head(test), amount=0.5)
    weights = [m.weight for m in variant.module.modules() if isinstance(m, nn.Linear)]
    measured = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert measured == pytest.approx(0.5, abs=0.01)
    assert ctx.metrics["sparsity"] == pytest.approx(measured, abs=1e-3)
    names = [n for n, _ in variant.module.named_parameters()] + \
        [n for n, _ in variant.module.named_buffers()]
    assert not any(n.endswith(("weight_orig", "weight_mask")) for n in names)
    assert not any(m._forward_pre_hooks for m in variant.module.modules())
    assert state_bytes(variant.module) == state_bytes(model)  # zeros still take space
    assert any("no faster" in n for n in ctx.notes)


def test_prune_structured_and_shrink(digits):
    model, _, test = digits["digits-mlp"]
    variant, ctx = run(model, "prune", head(test), amount=0.5, method="ln_structured")
    hidden = variant.module.net[1].weight
    assert int((hidden.abs().sum(dim=1) == 0).sum()) == hidden.shape[0] // 2  # whole rows
    assert int((variant.module.net[7].weight == 0).sum()) == 0  # output layer left whole

    shrunk, ctx = run(model, "prune", head(test), amount=0.5, method="shrink_linear")
    assert [m.out_features for m in shrunk.module.modules() if isinstance(m, nn.Linear)] == \
        [512, 512, 512, 10]
    assert ctx.metrics["params_after"] < 0.3 * ctx.metrics["params_before"]
    assert shrunk(test.inputs).shape == (len(test), 10)
    assert accuracy(shrunk, test) > 0.85  # before fine-tuning (measured 0.947)

    cancelled = CancelToken()
    cancelled.cancel()
    with pytest.raises(Cancelled):
        run(model, "prune", head(test), task=Task(cancel=cancelled))


def test_freeze_matches_original_on_cnn(digits):
    model, _, test = digits["digits-cnn"]
    variant, ctx = run(model, "freeze", head(test))
    # auto times TorchScript first (measured 2.2x on this CNN) and says what it chose and why.
    assert variant.tags["freeze_method"] in ("torchscript", "compile")
    assert any("freeze auto: chose" in n and "x" in n for n in ctx.notes)
    assert isinstance(variant.tags["eager_module"], nn.Module)
    torch.testing.assert_close(variant(test.inputs), Variant.baseline(model)(test.inputs),
                               atol=1e-3, rtol=1e-3)
    assert accuracy(variant, test) == accuracy(Variant.baseline(model), test)


def test_transformer_fastpath_reports_and_hf_switch(digits):
    model, _, test = digits["digits-transformer"]
    variant, ctx = run(model, "transformer_fastpath", head(test))
    assert ctx.metrics["fastpath_taken"] is True
    assert any("baseline" in n and "1.0x" in n for n in ctx.notes)
    torch.testing.assert_close(variant(test.inputs), Variant.baseline(model)(test.inputs),
                               atol=1e-4, rtol=1e-4)

    class Config:
        _attn_implementation = "eager"

    class FakeHF(nn.Module):  # duck-typed like a transformers PreTrainedModel
        def __init__(self):
            super().__init__()
            self.config = Config()
            self.proj = nn.Linear(8, 8)

        def set_attn_implementation(self, impl):
            self.config._attn_implementation = impl

        def forward(self, x):
            return self.proj(x)

    fake = FakeHF()
    assert get("transformer_fastpath").applies_to(fake) is None
    hf, ctx = run(fake, "transformer_fastpath", Inputs.of(torch.randn(2, 8)))
    assert hf.module.config._attn_implementation == "sdpa"
    assert fake.config._attn_implementation == "eager"  # the original's config is its own
    assert any("'eager' -> 'sdpa'" in n for n in ctx.notes)


def test_compile_mlp_isolated_per_instance(digits):
    model, _, test = digits["digits-mlp"]
    example = head(test)
    variant, ctx = run(model, "compile", example)
    assert ctx.metrics["compile_s"] > 0 and ctx.metrics["compiled_graphs"] >= 1
    assert variant.tags["compiled"] and variant.tags["eager_module"] is variant.module._orig_mod
    assert all(k.startswith("_orig_mod.") for k in variant.module.state_dict())
    ref = Variant.baseline(model)(example)
    torch.testing.assert_close(variant(example), ref, atol=1e-4, rtol=1e-4)

    # Pitfall 1: a second instance of the same class must not reuse the first one's graph.
    other = type(model)()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.5)
    other.eval()
    second, ctx2 = run(other, "compile", example, freezing=True)
    torch.testing.assert_close(second(example), Variant.baseline(other)(example),
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(variant(example), ref, atol=1e-4, rtol=1e-4)

    # inference_mode after compile: the grad-mode recompile is paid in apply, not in timing.
    tech = get("inference_mode")
    ctx3 = StepContext(example=example, task=Task(), batch_size=example.batch_size, original=model)
    final = tech.apply(variant, tech.Params(), ctx3)
    assert "rewarm_s" in ctx3.metrics
    torch.testing.assert_close(final(example), ref, atol=1e-4, rtol=1e-4)
