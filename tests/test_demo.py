"""`quantgui --demo` chooses its recipes for the CPU it runs on (recommend's CPU-aware order)
and runs one recipe expected not to be faster there, labelled as such. The capability lists
below are input data: the choice is a function of them."""

import pytest

from quantgui.core import recommend
from quantgui.core.examples.demo import NOT_FASTER, demo_runs, slower_here
from quantgui.core.opening.loading import open_model

AVX2 = ["AVX2"]
AVX512_BF16 = ["AVX2", "AVX512", "VNNI", "AVX512-BF16"]
AMX = ["AVX2", "AVX512", "VNNI", "AVX512-BF16", "AMX-BF16", "AMX-INT8"]
AMX_FP16 = AMX + ["AVX512-FP16"]


@pytest.fixture(scope="module")
def cnn():
    return open_model("example:digits-cnn")


@pytest.fixture(scope="module")
def mlp():
    return open_model("example:digits-mlp")


def plan(loaded, caps):
    return [(r.recipe.describe(), r.note) for r in demo_runs(loaded, caps)]


@pytest.mark.parametrize("caps", [AMX, AVX512_BF16])
def test_native_bf16_cpu(cnn, caps):
    assert plan(cnn, caps) == [
        ("fp16 + inference_mode", NOT_FASTER),  # no AVX512-FP16: fp16 math is emulated
        ("static_int8 + inference_mode", ""),
        ("bf16 + channels_last + inference_mode", ""),  # recommend's first: runs last
    ]


def test_avx2_only_cpu(cnn):
    assert plan(cnn, AVX2) == [
        ("bf16 + channels_last + inference_mode", NOT_FASTER),  # 5x slower on AVX2
        ("channels_last + freeze + inference_mode", ""),
        ("static_int8 + inference_mode", ""),
    ]
    loss = demo_runs(cnn, AVX2)[0]
    assert loss.reason == "no native BF16 (AVX512-BF16 or AMX): bf16 math is emulated"


def test_cpu_with_every_format_still_shows_a_loss(cnn):
    runs = demo_runs(cnn, AMX_FP16)
    assert [(r.recipe.describe(), r.note) for r in runs][0] == (
        "weight_only_int8 + inference_mode", NOT_FASTER)
    assert runs[0].reason == "weight-only INT8/INT4 dequantizes the weights in every call"


@pytest.mark.parametrize("caps", [AVX2, AVX512_BF16, AMX, AMX_FP16])
def test_stories_follow_recommends_order_and_never_an_expected_loss(cnn, mlp, caps):
    for loaded in (cnn, mlp):
        runs = demo_runs(loaded, caps)
        assert [r.note for r in runs] == [NOT_FASTER, "", ""]
        order = [r.describe() for r in recommend.candidate_recipes(loaded, caps)]
        stories = [r.recipe.describe() for r in runs[1:]][::-1]
        assert [order.index(s) for s in stories] == sorted(order.index(s) for s in stories)
        for run in runs[1:]:
            assert slower_here({s.name for s in run.recipe.steps}, caps) is None
            run.recipe.validate()
        names = {s.name for s in runs[0].recipe.steps}
        assert slower_here(names, caps) == runs[0].reason and runs[0].reason


def test_linear_model(mlp):
    assert plan(mlp, AVX2) == [("bf16 + inference_mode", NOT_FASTER),
                               ("static_int8 + inference_mode", ""),
                               ("dynamic_int8 + inference_mode", "")]
    assert plan(mlp, AMX) == [("fp16 + inference_mode", NOT_FASTER),
                              ("dynamic_int8 + inference_mode", ""),
                              ("bf16 + inference_mode", "")]


def test_fast_formats():
    assert recommend.fast_formats(AVX2) == set()
    assert recommend.fast_formats(AMX) == {"bf16"}
    assert recommend.fast_formats(AMX_FP16) == {"bf16", "fp16"}
    assert recommend.fast_formats(["AMX-FP16"]) == {"fp16"}
