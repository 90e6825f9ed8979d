"""The built-in examples' weights ship with the package (tools/train_examples.py made them):
they match their manifest, load without training, reproduce when retrained, and an example is
trained (with real progress) only when its shipped weights are missing, stale or damaged."""

import json
import shutil

import pytest
import torch

from quantgui.core import env, examples, safeload
from quantgui.core.progress import Task


@pytest.fixture
def manifest():
    data = examples.manifest()
    assert data, "resources/examples/manifest.json is missing: run tools/train_examples.py"
    return data


class Trained(Exception):
    """Raised by a stand-in for the training: build() got as far as training, and why."""


@pytest.fixture
def no_training(monkeypatch):
    def refuse(spec, train, task, why=""):
        raise Trained(why)
    monkeypatch.setattr(examples, "_train", refuse)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("QUANTGUI_CACHE", str(cache))
    return cache


def test_shipped_weights_match_the_manifest(manifest):
    assert manifest["training_version"] == examples.TRAINING_VERSION, \
        "the training changed: rerun tools/train_examples.py"
    assert set(manifest["examples"]) == set(examples.EXAMPLES)
    for name, entry in manifest["examples"].items():
        path = examples.shipped_folder() / entry["file"]
        assert entry["file"] == f"{name}.pt"
        assert examples.sha256(path) == entry["sha256"], name
        assert path.stat().st_size == entry["bytes"]
        assert entry["threads"] == 1 and entry["torch"] and entry["cpu_capabilities"]
        assert (entry["epochs"], entry["lr"]) == (examples.EXAMPLES[name].epochs,
                                                  examples.EXAMPLES[name].lr)
    assert "0.5 points" in manifest["reproducibility"]


def test_examples_load_from_the_package_without_training(manifest, no_training, empty_cache):
    for name, entry in manifest["examples"].items():
        model, _, test = examples.build(name)
        assert not model.training
        assert sum(p.numel() for p in model.parameters()) == entry["parameters"]
        # Recomputed here (two threads, as the suite runs): exactly the manifest's accuracy.
        assert examples.accuracy(model, test) == entry["test_accuracy"], name
        assert round(entry["test_accuracy"] * entry["test_size"]) == entry["test_correct"]
    assert not empty_cache.exists()  # nothing trained, nothing cached


def test_retraining_reproduces_the_shipped_example(manifest):
    """The script's training, run here for the cheapest example's full recipe."""
    name = "digits-cnn"
    entry = manifest["examples"][name]
    threads = torch.get_num_threads()
    model = examples.train(name)
    assert torch.get_num_threads() == threads  # one thread while training only
    _, test = examples.splits(name)
    accuracy = examples.accuracy(model, test)
    assert abs(accuracy - entry["test_accuracy"]) <= 0.005, (accuracy, entry["test_accuracy"])
    if entry["torch"] == torch.__version__ and entry["cpu_capabilities"] == env.cpu_capabilities():
        # Same torch, same CPU kind as the script's run: bit for bit.
        shipped = safeload.load_weights(examples.shipped_folder() / entry["file"])
        mine = model.state_dict()
        assert list(shipped) == list(mine)
        assert all(torch.equal(shipped[k], mine[k]) for k in mine)
        assert accuracy == entry["test_accuracy"]


def _copy_shipped(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    shutil.copytree(examples.shipped_folder(), folder)
    monkeypatch.setattr(examples, "shipped_folder", lambda: folder)
    return folder


def _why_trained(name="digits-cnn"):
    with pytest.raises(Trained) as caught:
        examples.build(name)
    return str(caught.value)


def test_unusable_shipped_weights_are_trained_saying_why(tmp_path, monkeypatch, no_training,
                                                          empty_cache):
    folder = _copy_shipped(tmp_path, monkeypatch)
    manifest_path = folder / examples.MANIFEST
    good = json.loads(manifest_path.read_text())

    (folder / "digits-cnn.pt").write_bytes(b"\0" + (folder / "digits-cnn.pt").read_bytes()[1:])
    assert _why_trained() == "its shipped weights are missing or damaged"
    assert examples.build("digits-mlp")[0] is not None  # the others still load

    stale = dict(good, training_version=examples.TRAINING_VERSION - 1)
    manifest_path.write_text(json.dumps(stale))
    assert _why_trained("digits-mlp") == (
        f"the shipped weights are of training version {examples.TRAINING_VERSION - 1}, this "
        f"QuantGUI trains version {examples.TRAINING_VERSION}")

    # An architecture changed (here: another example's weights under this name).
    moved = dict(good["examples"]["digits-mlp"], file="digits-mlp.pt")
    manifest_path.write_text(json.dumps(dict(good, examples={"digits-cnn": moved})))
    assert _why_trained() == "its shipped weights do not fit its architecture"
    assert _why_trained("digits-lstm") == "no trained weights shipped for it"

    manifest_path.write_text("{not json")
    assert _why_trained() == "its shipped manifest is unreadable"


def test_missing_weights_train_once_with_progress_then_load_from_the_cache(
        tmp_path, monkeypatch, empty_cache):
    monkeypatch.setattr(examples, "shipped_folder", lambda: tmp_path / "nothing")
    seen = []
    model, _, test = examples.build("digits-cnn", Task(seen.append))
    spec = examples.EXAMPLES["digits-cnn"]
    batches = -(-(1797 - examples.TEST_SIZE) // examples.BATCH)
    assert [p.done for p in seen] == list(range(spec.epochs * batches + 1))
    assert {p.total for p in seen} == {spec.epochs * batches}  # a determinate bar
    assert {p.phase for p in seen} == {"load"}
    assert seen[0].message == "training digits-cnn (no trained weights shipped for it)"
    assert seen[-1].message.endswith(f"epoch {spec.epochs}/{spec.epochs}")
    assert seen[-1].values["epoch"] == spec.epochs
    accuracy = examples.accuracy(model, test)
    assert (empty_cache / f"digits-cnn-v{examples.TRAINING_VERSION}.pt").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("trained again although cached")
    monkeypatch.setattr(examples, "_train", refuse)
    again, _, _ = examples.build("digits-cnn")
    assert examples.accuracy(again, test) == accuracy
