"""INT8 where eager quantization cannot reach: exported programs (.pt2), models called with
keyword inputs (Hugging Face), and TorchScript archives (refused, saying why and what to open).

Each model is saved to disk and opened through `open_model`, as a user would; PT2E compiles on
its first call, so these runs take seconds each.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quantgui import cli
from quantgui.core.errors import UserError
from quantgui.core.opening.loading import open_model
from quantgui.core.recipe import Recipe, Step
from quantgui.core.run import RunOptions, optimize, run_recipe

SHORT = RunOptions(time_budget_s=0.3, eval_limit=1)
TORCHSCRIPT_REASON = ("a TorchScript archive is compiled code: eager INT8 cannot swap its "
                      "layers; open the state_dict + architecture, or the .pt2 export, instead")


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("pt2") / "mlp.pt2"
    torch.manual_seed(1)
    torch.export.save(torch.export.export(_mlp(), (torch.randn(16, 64),)), str(path))
    return open_model(path)


def test_an_exported_program_is_offered_int8_and_told_the_truth_about_the_rest(exported):
    info = exported.info
    assert info.format == "exported" and info.layer_counts["Linear"] == 3
    assert info.applicability["dynamic_int8"] is None
    assert info.applicability["static_int8"] is None
    assert info.applicability["weight_only_int8"] == (
        "an exported program is a graph of operators, not nn.Linear/Conv modules: weight-only "
        "INT8 cannot swap its layers; open the state_dict + architecture instead")
    assert "no nn.Linear" not in " ".join(r for r in info.applicability.values() if r)


@pytest.mark.parametrize("name", ["dynamic_int8", "static_int8"])
def test_int8_runs_on_an_exported_program_through_pt2e(exported, name):
    result = run_recipe(exported, Recipe.of(name), SHORT)
    notes = " | ".join(result.steps[0].notes)
    assert result.variant.tags["quantized_api"] == "torchao PT2E"
    assert result.variant.tags["quantization"] == name
    assert "exported program" in notes and "torch.compile with freezing" in notes
    assert result.steps[0].metrics["compile_s"] > 0
    assert result.fidelity.cosine > 0.99 and result.fidelity.nonfinite == 0
    assert result.size_ratio < 0.4  # INT8 weights, the FP32 originals dropped
    out = result.variant(exported.example)
    ref = exported.baseline()(exported.example)
    assert out.shape == ref.shape == (16, 10)


def test_eager_apis_are_refused_on_an_exported_program(exported):
    bad = Recipe([Step("dynamic_int8", {"api": "torch.ao"})])
    with pytest.raises(UserError, match=r"step 1 \(dynamic_int8\): api=torch.ao swaps "
                                        r"nn.Linear modules, and an exported program has none"):
        optimize(exported, bad)
    with pytest.raises(UserError, match=r"api=fx cannot quantize this model: the model is an "
                                        r"exported program"):
        optimize(exported, Recipe([Step("static_int8", {"api": "fx"})]))


def test_torchscript_says_why_eager_int8_cannot_rewrite_it(tmp_path, capsys):
    path = tmp_path / "mlp.torchscript.pt"
    torch.jit.save(torch.jit.script(_mlp()), str(path))
    loaded = open_model(path, input_shape=(4, 64))
    assert loaded.info.layer_counts == {"Linear": 3, "ReLU": 2}
    assert loaded.info.applicability["dynamic_int8"] == TORCHSCRIPT_REASON
    assert loaded.info.applicability["static_int8"] == TORCHSCRIPT_REASON
    code = cli.main(["run", str(path), "--input-shape", "4,64", "--step", "dynamic_int8"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"quantgui-cli: error: step 1 (dynamic_int8): does not apply to this model: "
                   f"{TORCHSCRIPT_REASON}\n")


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    from transformers import BertConfig, BertModel
    folder = tmp_path_factory.mktemp("hf") / "bert"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(folder)
    return open_model(folder, input_shape=(4, 16))


def test_static_int8_auto_takes_pt2e_for_a_hugging_face_model(bert):
    assert bert.example.kwargs and not bert.example.args  # keyword inputs: FX cannot trace
    assert bert.info.applicability["static_int8"] is None
    assert bert.info.applicability["qat_int8"] == (
        "QAT uses FX graph mode, which traces positional inputs only, and a Hugging Face model "
        "takes keyword inputs: use static_int8 (PT2E) or dynamic_int8")
    result = run_recipe(bert, Recipe.of("static_int8"), SHORT)
    notes = result.steps[0].notes
    assert notes[0] == ("api=auto chose PT2E: FX graph mode traces positional inputs only, and "
                        "this model takes keyword inputs (input_ids)")
    assert result.variant.tags["quantized_api"] == "torchao PT2E"
    assert result.fidelity.cosine > 0.99 and result.fidelity.nonfinite == 0
    with pytest.raises(UserError, match=r"api=fx cannot quantize this model: FX graph mode "
                                        r"traces positional inputs only"):
        optimize(bert, Recipe([Step("static_int8", {"api": "fx"})]))
