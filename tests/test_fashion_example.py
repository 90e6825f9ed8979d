"""The fashion-cnn example (issue 13): trained from the user's Fashion-MNIST IDX files (small
synthetic ones written here), refused with how to get them when they are not given."""

import numpy as np

from quantgui import cli
from tests import data_fixtures as fx


def fashion_files(folder, train=96, test=40):
    """A tiny stand-in for Fashion-MNIST in torchvision's layout: class c is a bright band at
    row 2c (learnable in a few batches)."""
    raw = folder / "FashionMNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = np.arange(n) % 10
        images = (rng.random((n, 28, 28)) * 40).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c:2 * c + 3] = 255
        fx.write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        fx.write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_fashion_cnn_trains_from_the_files_and_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QUANTGUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("QUANTGUI_FASHION_MNIST", "")  # restored after the test (the CLI sets it)
    folder = fashion_files(tmp_path / "data")
    code = cli.main(["run", "example:fashion-cnn", "--fashion-mnist", str(folder),
                     "--time-budget", "0.05", "--eval-limit", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "accuracy change: " in out and "  Ankle boot" in out and "  T-shirt/top" in out
    cached = list((tmp_path / "cache").glob("fashion-cnn-v1-*.pt"))
    assert len(cached) == 1  # trained once, cached by the files' identity
    from quantgui.core.examples import fashion
    model, train, test = fashion.build()
    assert len(train) == 96 and len(test) == 40 and test.classes[0] == "T-shirt/top"
    assert model(test.inputs.args[0]).shape == (40, 10)


def test_fashion_cnn_without_files_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QUANTGUI_FASHION_MNIST", "")  # restored after the test (the CLI sets it)
    code = cli.main(["inspect", "example:fashion-cnn"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("quantgui-cli: error: example:fashion-cnn needs the Fashion-MNIST "
                             "files (train-images-idx3-ubyte.gz")
    assert "--fashion-mnist DIR" in err[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["inspect", "example:fashion-cnn", "--fashion-mnist", str(empty)]) == 2
    assert f"{empty}: no Fashion-MNIST training and t10k IDX files" in capsys.readouterr().err
