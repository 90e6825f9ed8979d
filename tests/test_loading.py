"""Opening models: every format round-trips; bad input is one-line UserError; pickles need trust."""

from __future__ import annotations

import copy
import json
import zipfile

import pytest
import torch
from torch import nn

from quantgui.core import examples
from quantgui.core.errors import UserError
from quantgui.core.model.inputs import call, primary_output
from quantgui.core.opening.loading import (DATA_EXAMPLE_BATCH, EXAMPLE_BATCH, ArchitectureRequired,
                                           ExampleInputRequired, TrustRequired, open_model)
from quantgui.core.progress import Task
from quantgui.core.techniques import all_techniques


class TinyNet(nn.Module):
    """Conv + BN + Linear: small, but with buffers and more than one layer type."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(5, 3)

    def forward(self, x, y):
        return self.a(x) * self.b(y)


def _touch(path):
    """What the malicious pickle below runs when unpickled."""
    with open(path, "w") as fh:
        fh.write("pwned")
    return path


class Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (_touch, (self.target,))


ARCH_SOURCE = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


class Other(nn.Module):
    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 2)


def make(width=4):
    return Net(width)
'''


def _trained(width: int = 4) -> TinyNet:
    torch.manual_seed(0)
    model = TinyNet(width)
    with torch.no_grad():  # non-trivial BN statistics, so a lost buffer would show
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


X = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _assert_same_outputs(loaded, reference: nn.Module):
    with torch.no_grad():
        got = primary_output(call(loaded.module, loaded.example))
        want = primary_output(call(reference, loaded.example))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.fixture
def arch_file(tmp_path):
    path = tmp_path / "net_arch.py"
    path.write_text(ARCH_SOURCE)
    return path


# --- formats ----------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript_round_trip(tmp_path, how):
    model = _trained()
    scripted = torch.jit.script(model) if how == "script" else torch.jit.trace(model, X)
    path = tmp_path / "model.bin"  # the extension does not matter: content decides
    torch.jit.save(scripted, path)
    loaded = open_model(str(path), input_shape=(3, 1, 8, 8))
    assert loaded.info.format == "torchscript"
    assert loaded.info.name == "TinyNet"
    assert loaded.info.layer_counts == {"BatchNorm2d": 1, "Conv2d": 1, "Linear": 1}
    assert loaded.info.parameters == sum(p.numel() for p in model.parameters())
    assert loaded.info.size_bytes > 4 * loaded.info.parameters
    assert loaded.example.describe() == "(3, 1, 8, 8) float32"
    assert loaded.origin == {"path": str(path.resolve())}
    assert not loaded.module.training
    _assert_same_outputs(loaded, model)


def test_exported_program_round_trip_carries_its_example(tmp_path):
    model = _trained()
    path = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(model, (X,)), path)
    loaded = open_model(path, input_shape=(8, 1, 8, 8))  # the carried example wins
    assert loaded.info.format == "exported"
    assert loaded.info.name == "TinyNet"
    assert loaded.info.layer_counts == {"BatchNorm2d": 1, "Conv2d": 1, "Linear": 1}
    torch.testing.assert_close(loaded.example.args[0], X)
    assert any("not used" in n for n in loaded.info.notes)
    _assert_same_outputs(loaded, model)
    # torch refuses eval() on exported modules; the engine must still be able to call it.
    assert loaded.module.eval() is loaded.module
    clone = copy.deepcopy(loaded.module)
    assert clone.eval() is clone
    torch.testing.assert_close(clone(X), model(X))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_state_dict_with_arch_file_and_kwargs(tmp_path, arch_file, suffix):
    model = _trained(width=6)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pt":
        torch.save(model.state_dict(), path)
    else:
        from safetensors.torch import save_file
        save_file(model.state_dict(), str(path))
    loaded = open_model(path, arch=f"{arch_file}:make", arch_kwargs={"width": 6},
                        example_input=_save_example(tmp_path, X))
    assert loaded.info.format == "state_dict"
    assert loaded.info.name == "Net"
    assert loaded.origin == {"arch": f"{arch_file.resolve()}:make", "kwargs": {"width": 6},
                             "weights": str(path.resolve())}
    _assert_same_outputs(loaded, model)


def test_checkpoint_wrapper_and_dataparallel_prefix(tmp_path, arch_file):
    model = _trained()
    path = tmp_path / "ckpt.pth"
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3, "lr": 0.1}, path)
    loaded = open_model(path, arch=f"{arch_file}:Net", input_shape=(2, 1, 8, 8))
    assert any("'state_dict' entry" in n for n in loaded.info.notes)
    assert any("'module.' prefix" in n for n in loaded.info.notes)
    _assert_same_outputs(loaded, model)


def test_pickled_module_needs_trust(tmp_path):
    model = _trained()
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    with pytest.raises(TrustRequired) as err:
        open_model(path, input_shape=(2, 1, 8, 8))
    text = str(err.value)
    assert "\n" not in text and str(path) in text
    assert "TinyNet" in text and "--trust" in text and "runs code" in text
    loaded = open_model(path, trust=True, input_shape=(2, 1, 8, 8))
    assert loaded.info.format == "pickled"
    assert isinstance(loaded.module, TinyNet)
    _assert_same_outputs(loaded, model)


def test_untrusted_pickle_never_runs(tmp_path):
    target = tmp_path / "side_effect.txt"
    path = tmp_path / "evil.pt"
    torch.save({"payload": Evil(str(target))}, path)
    with pytest.raises(TrustRequired):
        open_model(path, input_shape=(2, 4))
    with pytest.raises(TrustRequired):  # an architecture does not make the pickle safe
        open_model(path, arch="torch.nn:Identity", input_shape=(2, 4))
    assert not target.exists()
    # Control: the payload is real. Trusting the file runs it (then it is not a model at all).
    with pytest.raises(UserError, match="not a model or a state_dict"):
        open_model(path, trust=True, input_shape=(2, 4))
    assert target.read_text() == "pwned"


def _zip_not_torch(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")


@pytest.mark.parametrize("kind", ["garbage", "empty", "truncated", "zip", "safetensors"])
def test_corrupt_files_are_one_line_user_errors(tmp_path, kind):
    path = tmp_path / ("bad.safetensors" if kind == "safetensors" else "bad.pt")
    if kind == "garbage":
        path.write_bytes(b"this is not a model" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        buf = tmp_path / "good.pt"
        torch.save(_trained().state_dict(), buf)
        data = buf.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zip":
        _zip_not_torch(path)
    else:
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1" + b"x" * 40)
    with pytest.raises(UserError) as err:
        open_model(path, arch="torch.nn:Identity", input_shape=(2, 4))
    assert type(err.value) is UserError  # not a trust or architecture question
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_missing_path_and_bad_folder(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        open_model(tmp_path / "nope.pt")
    with pytest.raises(UserError, match="not a Hugging Face model"):
        open_model(tmp_path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_state_dict_without_architecture(tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    state = _trained().state_dict()
    if suffix == ".pt":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file(state, str(path))
    with pytest.raises(ArchitectureRequired) as err:
        open_model(path, input_shape=(2, 1, 8, 8))
    assert "--arch" in str(err.value) and "\n" not in str(err.value)


def test_wrong_architecture(tmp_path, arch_file):
    path = tmp_path / "weights.pt"
    torch.save(_trained().state_dict(), path)
    with pytest.raises(UserError, match=r"missing keys head\.weight, head\.bias; "
                                        r"unexpected keys conv\.weight"):
        open_model(path, arch=f"{arch_file}:Other", input_shape=(2, 3))
    with pytest.raises(UserError, match=r"shape mismatch conv\.weight \(4, 1, 3, 3\) in the "
                                        r"file vs \(5, 1, 3, 3\)"):
        open_model(path, arch=f"{arch_file}:make", arch_kwargs={"width": 5},
                   input_shape=(2, 1, 8, 8))
    with pytest.raises(UserError, match="defines no 'Missing'"):
        open_model(path, arch=f"{arch_file}:Missing")
    with pytest.raises(UserError, match="no such architecture file"):
        open_model(path, arch=f"{tmp_path / 'none.py'}:Net")
    with pytest.raises(UserError, match="unexpected keyword argument"):
        open_model(path, arch=f"{arch_file}:make", arch_kwargs={"depth": 2})


# --- example inputs ---------------------------------------------------------------------------

def _save_example(tmp_path, value, name="example.pt"):
    path = tmp_path / name
    torch.save(value, path)
    return path


def test_example_input_tuple_and_dict(tmp_path):
    model = TwoInputs().eval()
    path = tmp_path / "two.pt"
    torch.jit.save(torch.jit.script(model), path)
    x, y = torch.randn(5, 4), torch.randn(5, 5)

    as_tuple = open_model(path, example_input=_save_example(tmp_path, (x, y), "tuple.pt"))
    assert len(as_tuple.example.args) == 2 and not as_tuple.example.kwargs
    assert as_tuple.example.describe() == "(5, 4) float32, (5, 5) float32"
    _assert_same_outputs(as_tuple, model)

    as_dict = open_model(path, example_input=_save_example(tmp_path, {"x": x, "y": y}, "d.pt"))
    assert as_dict.example.args == () and set(as_dict.example.kwargs) == {"x", "y"}
    assert as_dict.example.batch_size == 5
    _assert_same_outputs(as_dict, model)
    torch.testing.assert_close(primary_output(call(as_dict.module, as_dict.example)),
                               model(x, y))

    bad = _save_example(tmp_path, {"x": x, "n": 3}, "bad.pt")
    with pytest.raises(UserError, match="must be a tensor, a tuple or a dict of tensors"):
        open_model(path, example_input=bad)


def test_input_shape_is_seeded_randn_and_checked(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(_trained()), path)
    a = open_model(path, input_shape=[8, 1, 8, 8])
    b = open_model(path, input_shape=(8, 1, 8, 8))
    assert a.example.describe() == "(8, 1, 8, 8) float32"
    torch.testing.assert_close(a.example.args[0], b.example.args[0])
    assert a.example.batch_size == 8
    with pytest.raises(UserError, match="fails on the example input"):
        open_model(path, input_shape=(8, 3, 8, 8))
    with pytest.raises(UserError, match="positive"):
        open_model(path, input_shape=(8, 0))


def test_missing_example_input(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(_trained()), path)
    with pytest.raises(ExampleInputRequired) as err:
        open_model(path)
    assert str(err.value) == (f"{path}: no example input: give --example-input FILE, "
                              f"--input-shape 8,3,224,224 [--input-dtype int64], or --data FILE")


# --- data ---------------------------------------------------------------------------------------

def _data_file(tmp_path, inputs, labels=None, name="data.pt"):
    path = tmp_path / name
    torch.save({"inputs": inputs, **({"labels": labels} if labels is not None else {})}, path)
    return path


def test_data_file_gives_example_test_and_train(tmp_path):
    model = _trained()
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(model), path)
    inputs = torch.randn(20, 1, 8, 8)
    data = _data_file(tmp_path, inputs, torch.arange(20) % 10)
    loaded = open_model(path, data=data)
    assert loaded.test is loaded.train and len(loaded.test) == 20
    assert loaded.test.labeled
    assert loaded.example.batch_size == DATA_EXAMPLE_BATCH
    torch.testing.assert_close(loaded.example.args[0], inputs[:DATA_EXAMPLE_BATCH])
    assert any("calibration/QAT and for evaluation" in n for n in loaded.info.notes)


def test_data_that_does_not_match_the_model(tmp_path):
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(_trained()), path)
    labels_too_big = _data_file(tmp_path, torch.randn(6, 1, 8, 8),
                                torch.tensor([0, 1, 2, 3, 12, 4]))
    with pytest.raises(UserError) as err:
        open_model(path, data=labels_too_big)
    assert str(err.value) == (f"{labels_too_big}: labels do not match the model's 10 outputs "
                              f"(labels go up to 12)")
    wrong_inputs = _data_file(tmp_path, torch.randn(6, 3, 8, 8), name="wrong.pt")
    with pytest.raises(UserError, match=r"wrong\.pt: the model fails on this data"):
        open_model(path, data=wrong_inputs, input_shape=(2, 1, 8, 8))


# --- built-in examples ---------------------------------------------------------------------------

def test_all_examples_open_with_full_applicability():
    names = set(all_techniques())
    seen = []
    task = Task(on_progress=seen.append)
    for name in examples.EXAMPLES:
        loaded = open_model(f"example:{name}", task=task)
        info = loaded.info
        assert info.format == "example" and info.source == f"example:{name}"
        assert set(info.applicability) == names
        assert all(v is None or (isinstance(v, str) and v) for v in info.applicability.values())
        assert loaded.example.batch_size == EXAMPLE_BATCH
        assert len(loaded.test) == examples.TEST_SIZE and loaded.test.labeled
        assert len(loaded.train) == 1797 - examples.TEST_SIZE
        assert loaded.origin["example"] == name
        cls = type(loaded.module).__name__
        assert loaded.origin["arch"] == f"quantgui.core.examples.models:{cls}"
        assert not loaded.module.training
        assert info.parameters == sum(p.numel() for p in loaded.module.parameters())
        assert info.to_json()["applicability"] == info.applicability
        # The example input is the head of the test split, and the model classifies it well.
        torch.testing.assert_close(loaded.example.args[0],
                                   loaded.test.inputs.args[0][:EXAMPLE_BATCH])
        with torch.no_grad():
            pred = loaded.module(loaded.example.args[0]).argmax(-1)
        assert (pred == loaded.test.labels[:EXAMPLE_BATCH]).float().mean() > 0.8
    assert seen[0].phase == "load" and seen[-1].phase == "load" and seen[-1].fraction == 1.0
    with pytest.raises(UserError, match="no such example"):
        open_model("example:nope")


def test_example_with_user_data_keeps_its_train_split(tmp_path):
    data = _data_file(tmp_path, torch.rand(10, 64), torch.arange(10))
    loaded = open_model("example:digits-mlp", data=data)
    assert len(loaded.test) == 10 and len(loaded.train) == 1797 - examples.TEST_SIZE


# --- Hugging Face ----------------------------------------------------------------------------

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a an quick brown fox jumps over lazy dog model is small fast and often on cpu "
    "i loved this film acting was wonderful story moving service slow food arrived cold "
    "please send report before friday afternoon rain expected tomorrow across most of "
    "northern region measure after never trust speedup you did not time good enough "
    "makes smaller faster quantization answers quickly").split()


def _tiny_bert(folder, tokenizer: bool):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, num_labels=3)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    if tokenizer:
        BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    return model


def test_hugging_face_folder(tmp_path):
    folder = tmp_path / "bert"
    model = _tiny_bert(folder, tokenizer=True)
    loaded = open_model(folder)
    assert loaded.info.format == "huggingface"
    assert loaded.info.name == "BertForSequenceClassification"
    assert loaded.origin["class"] == "BertForSequenceClassification"
    assert not loaded.module.training
    ex = loaded.example.kwargs
    assert set(ex) == {"input_ids", "token_type_ids", "attention_mask"}
    assert ex["input_ids"].shape == (8, 128) and ex["input_ids"].dtype == torch.long
    # Real sentences: [CLS] first, padding after, and almost every word known to the vocab.
    assert (ex["input_ids"][:, 0] == WORDS.index("[CLS]")).all()
    assert 0 < int(ex["attention_mask"].sum()) < 8 * 128
    real = ex["input_ids"][ex["attention_mask"].bool()]
    assert (real == WORDS.index("[UNK]")).float().mean() < 0.2
    assert set(loaded.info.applicability) == set(all_techniques())
    _assert_same_outputs(loaded, model)
    assert primary_output(call(loaded.module, loaded.example)).shape == (8, 3)

    # Without a tokenizer: random ids from the vocabulary, (8, 128).
    bare = tmp_path / "bare"
    _tiny_bert(bare, tokenizer=False)
    plain = open_model(bare)
    ids = plain.example.kwargs["input_ids"]
    assert ids.shape == (8, 128) and int(ids.max()) < len(WORDS)
    assert open_model(bare, input_shape=(2, 16)).example.kwargs["input_ids"].shape == (2, 16)

    # A folder asking for its own Python code needs trust before anything is imported.
    custom = tmp_path / "custom"
    custom.mkdir()
    config = json.loads((bare / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (custom / "config.json").write_text(json.dumps(config))
    with pytest.raises(TrustRequired, match="auto_map"):
        open_model(custom)




def test_exported_model_reopens_with_the_example_input_saved_beside_it(tmp_path):
    """Exports write example_input.pt as {"args", "kwargs"}; reopening needs no other input."""
    model = nn.Sequential(nn.Linear(6, 3)).eval()
    x = torch.randn(5, 6)
    torch.jit.save(torch.jit.trace(model, x), str(tmp_path / "model.torchscript.pt"))
    torch.save({"args": (x,), "kwargs": {}}, tmp_path / "example_input.pt")
    loaded = open_model(str(tmp_path / "model.torchscript.pt"))
    assert torch.equal(loaded.example.args[0], x)
    assert any("example_input.pt" in n for n in loaded.info.notes)
    (tmp_path / "example_input.pt").unlink()
    with pytest.raises(UserError, match="no example input"):
        open_model(str(tmp_path / "model.torchscript.pt"))
