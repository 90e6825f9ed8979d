"""A model without an example input: the typed refusal (what the model is, what would do),
inspection without running it, input shapes in any dtype, typed sentences for a text model, and
data files with inputs but no labels (fidelity only). The CLI face of each is tested here too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from quantgui import cli
from quantgui.core.errors import TrustRequired, UserError
from quantgui.core.opening.example_input import (DTYPES, KINDS, ExampleInputRequired, input_kinds,
                                                 parse_dtype)
from quantgui.core.opening.loading import open_model
from quantgui.core.recipe import Recipe
from quantgui.core.run import RunOptions, run_recipe
from quantgui.core.techniques import all_techniques

FAST = RunOptions(time_budget_s=0.2, min_rounds=4, max_rounds=20, warmup=1, eval_limit=2)
HOW = ("give --example-input FILE, --input-shape 8,3,224,224 [--input-dtype int64], "
       "or --data FILE")


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _conv() -> nn.Module:
    torch.manual_seed(0)
    return Conv().eval()


@pytest.fixture
def scripted(tmp_path):
    path = tmp_path / "conv.pt"
    torch.jit.save(torch.jit.script(_conv()), str(path))
    return path


@pytest.fixture
def tokens_model(tmp_path):
    """A TorchScript text classifier: token ids (int64) through an embedding of 50 words."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(6 * 8, 3)).eval()
    path = tmp_path / "tokens.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- the refusal and inspection -------------------------------------------------------------

def test_refusal_carries_what_the_model_is_and_what_would_do(scripted):
    with pytest.raises(ExampleInputRequired) as err:
        open_model(scripted)
    assert str(err.value) == f"{scripted}: no example input: {HOW}"
    info = err.value.info
    assert info.format == "torchscript" and info.example_input is None
    assert info.parameters == sum(p.numel() for p in _conv().parameters())
    assert info.layer_counts == {"Conv2d": 1, "Linear": 1}
    assert info.size_bytes > info.parameters * 4  # the archive: weights plus code
    assert set(info.applicability) == set(all_techniques())
    assert err.value.kinds == KINDS == ("file", "shape", "data")


def test_inspection_without_an_example_cannot_be_run(scripted):
    loaded = open_model(scripted, need_example=False)
    assert loaded.example is None and loaded.info.example_input is None
    assert loaded.info.to_json()["example_input"] is None
    assert loaded.info.layer_counts == {"Conv2d": 1, "Linear": 1}
    with pytest.raises(UserError, match="no example input"):
        run_recipe(loaded, Recipe.of("inference_mode"), FAST)
    # Given one, the same call opens it whole.
    full = open_model(scripted, need_example=False, input_shape=(2, 1, 8, 8))
    assert full.example.describe() == "(2, 1, 8, 8) float32"


def test_a_pickled_module_is_unpickled_only_when_trusted_then_asks_for_its_input(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(_conv(), path)
    with pytest.raises(TrustRequired):
        open_model(path)
    with pytest.raises(ExampleInputRequired) as err:
        open_model(path, trust=True)
    assert err.value.info.format == "pickled" and err.value.info.name == "Conv"
    loaded = open_model(path, trust=True, input_shape="2,1,8,8")
    assert loaded.example.batch_size == 2


def test_a_state_dict_with_its_architecture_asks_for_its_input(tmp_path):
    arch = tmp_path / "net.py"
    arch.write_text("import torch\nfrom torch import nn\n\nclass Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n"
                    "        self.fc = nn.Linear(4, 2)\n\n"
                    "    def forward(self, x):\n        return self.fc(x)\n")
    weights = tmp_path / "w.pt"
    torch.save({"fc.weight": torch.ones(2, 4), "fc.bias": torch.zeros(2)}, weights)
    with pytest.raises(ExampleInputRequired) as err:
        open_model(weights, arch=f"{arch}:Net")
    assert err.value.info.format == "state_dict" and err.value.info.parameters == 10


# --- input shapes in a dtype ------------------------------------------------------------------

def test_parse_dtype_names_and_aliases():
    assert parse_dtype(None) is torch.float32
    assert {n: parse_dtype(n) for n in DTYPES} == DTYPES
    assert parse_dtype("long") is torch.int64 and parse_dtype("bf16") is torch.bfloat16
    assert parse_dtype("torch.float16") is torch.float16
    with pytest.raises(UserError) as err:
        parse_dtype("complex64")
    assert str(err.value) == ("input dtype 'complex64': expected one of float32, float16, "
                              "bfloat16, int64, int32, bool")


def test_integer_shapes_are_token_ids_within_the_vocabulary(tokens_model):
    loaded = open_model(tokens_model, input_shape=(4, 6), input_dtype="int64")
    ids = loaded.example.args[0]
    assert ids.dtype == torch.int64 and ids.shape == (4, 6)
    assert 0 <= int(ids.min()) and int(ids.max()) < 50 and len(ids.unique()) > 5
    assert any("random integers in [0, 50)" in n for n in loaded.info.notes)
    with pytest.raises(UserError, match="fails on the example input"):
        open_model(tokens_model, input_shape=(4, 6))  # float32 is not token ids


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "bool", "int32"])
def test_other_dtypes_make_inputs_of_that_type(scripted, dtype):
    from quantgui.core.opening.example_input import random_input
    inputs, note = random_input((3, 2), DTYPES[dtype], _conv())
    t = inputs.args[0]
    assert t.dtype == DTYPES[dtype] and t.shape == (3, 2) and dtype in note
    if dtype == "bool":
        assert 0 < int(t.sum()) < 6  # both values occur
    elif dtype == "int32":
        assert int(t.min()) >= 0 and int(t.max()) < 100  # no embedding: [0, 100)


def test_a_dtype_needs_a_shape(scripted):
    with pytest.raises(UserError, match="an input dtype goes with an input shape"):
        open_model(scripted, input_dtype="int64")


# --- typed sentences through a Hugging Face tokenizer ---------------------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a quick brown fox jumps over lazy dog film was wonderful food cold").split()


def _tiny_bert(folder, tokenizer: bool):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    if tokenizer:
        BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)


def test_typed_sentences_go_through_the_folders_tokenizer(tmp_path, scripted):
    folder = tmp_path / "bert"
    _tiny_bert(folder, tokenizer=True)
    assert input_kinds("huggingface", str(folder)) == KINDS + ("text",)
    loaded = open_model(folder, example_text=["the quick brown fox", "", "a film"])
    ids = loaded.example.kwargs["input_ids"]
    # Two samples (the empty line is not one), padded to the longest: [CLS] 4 words [SEP].
    assert ids.shape == (2, 6)
    assert ids[0].tolist() == [2] + [WORDS.index(w) for w in "the quick brown fox".split()] + [3]
    assert loaded.example.kwargs["attention_mask"][1].tolist() == [1, 1, 1, 1, 0, 0]
    assert any("2 typed sentence(s)" in n for n in loaded.info.notes)

    bare = tmp_path / "bare"
    _tiny_bert(bare, tokenizer=False)
    assert input_kinds("huggingface", str(bare)) == KINDS
    with pytest.raises(UserError, match="no usable tokenizer"):
        open_model(bare, example_text=["the dog"])
    with pytest.raises(UserError, match="need a Hugging Face model folder with a tokenizer"):
        open_model(scripted, example_text=["the dog"])
    with pytest.raises(UserError, match="takes token ids"):
        open_model(bare, input_shape=(2, 8), input_dtype="float32")
    assert open_model(bare, input_shape=(2, 8)).example.kwargs["input_ids"].shape == (2, 8)


# --- data with inputs and no labels --------------------------------------------------------

def test_data_without_labels_is_accepted_for_fidelity(scripted, tmp_path):
    data = tmp_path / "inputs_only.npz"
    np.savez(data, inputs=np.random.default_rng(0).normal(size=(12, 1, 8, 8)).astype("float32"))
    loaded = open_model(scripted, data=data)
    assert loaded.test is not None and not loaded.test.labeled and len(loaded.test) == 12
    assert loaded.example.batch_size == 8
    result = run_recipe(loaded, Recipe.of("inference_mode"), FAST).to_json()
    assert result["before"]["accuracy"] is None and result["after"]["accuracy"] is None
    assert result["fidelity"]["top1_agreement"] == 1.0


# --- the CLI --------------------------------------------------------------------------------

def test_cli_inspect_without_an_example_input(scripted, capsys):
    code, out, err = run_cli(capsys, "inspect", scripted)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert "format         torchscript" in lines
    assert "example input  none (needed to run it)" in lines
    assert "layers: Conv2d x1, Linear x1" in lines
    assert "  inference_mode         applies" in lines
    assert lines[-1] == f"to run it: {HOW}"

    code, out, err = run_cli(capsys, "inspect", scripted, "--json")
    assert code == 0
    model = json.loads(out)["model"]
    assert model["example_input"] is None and model["layer_counts"] == {"Conv2d": 1, "Linear": 1}

    code, out, err = run_cli(capsys, "inspect", scripted, "--input-shape", "2,1,8,8")
    assert code == 0 and "example input  (2, 1, 8, 8) float32" in out.splitlines()
    assert "to run it" not in out


def test_cli_run_without_an_example_input_is_one_line(scripted, capsys):
    code, out, err = run_cli(capsys, "run", scripted, "--step", "inference_mode")
    assert (code, out) == (2, "")
    assert err == f"quantgui-cli: error: {scripted}: no example input: {HOW}\n"


def test_a_wrong_shape_names_the_torchscript_cause(scripted, capsys):
    """TorchScript hides the cause under its own traceback; the line quotes the cause. The GUI's
    dialog shows the same line without the flags (it asks for the input itself)."""
    cause = "RuntimeError: Given groups=1, weight of size [4, 1, 3, 3], expected input"
    code, out, err = run_cli(capsys, "inspect", scripted, "--input-shape", "2,3,8,8")
    assert code == 2
    assert err.startswith(f"quantgui-cli: error: {scripted}: the model fails on the example "
                          f"input (2, 3, 8, 8) float32 ({cause}")
    assert err.endswith("); give a matching --example-input or --input-shape\n")
    with pytest.raises(UserError) as info:
        open_model(scripted, input_shape=(2, 3, 8, 8))
    assert str(info.value).startswith(info.value.gui_text) and "--" not in info.value.gui_text
    assert info.value.gui_text.endswith(")")


def test_cli_input_dtype(tokens_model, scripted, capsys):
    code, out, err = run_cli(capsys, "run", tokens_model, "--input-shape", "4,6",
                             "--input-dtype", "int64", "--step", "inference_mode",
                             "--time-budget", "0.2")
    assert code == 0, err
    assert "speedup" in out
    code, out, err = run_cli(capsys, "inspect", scripted, "--input-dtype", "int64")
    assert (code, out) == (2, "")
    assert err == ("quantgui-cli: error: --input-dtype goes with --input-shape (the dtype of "
                   "the input it makes)\n")
    code, out, err = run_cli(capsys, "inspect", scripted, "--input-shape", "2,4",
                             "--input-dtype", "complex")
    assert code == 2
    assert err == ("quantgui-cli: error: --input-dtype: input dtype 'complex': expected one of "
                   "float32, float16, bfloat16, int64, int32, bool\n")


def test_cli_data_without_labels(scripted, tmp_path, capsys):
    data = tmp_path / "inputs_only.npz"
    np.savez(data, inputs=np.random.default_rng(0).normal(size=(12, 1, 8, 8)).astype("float32"))
    code, out, err = run_cli(capsys, "inspect", scripted, "--data", data)
    assert code == 0, err
    assert "test data: inputs_only.npz, 12 samples, no labels" in out.splitlines()
    assert "to run it" not in out
