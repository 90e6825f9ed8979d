"""Hostile model, example-input and data files: refused in one line, nothing runs, nothing changes.

The corpus is generated per test (see corpus.py). For each file the CLI must exit 2 with one line
naming the file, print no traceback, never create the canary, leave every input byte-identical
and leave no temporary file behind. The GUI shows the same files through the same loader (see
tests/gui/test_hostile_gui.py).
"""

import hashlib

import pytest

from quantgui import cli

from . import corpus


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("make", corpus.MODEL_CASES, ids=lambda m: m.__name__)
def test_hostile_file_is_refused_in_one_line(make, tmp_path, capsys):
    work, canary = tmp_path / "corpus", tmp_path / "outside" / "canary"
    work.mkdir()
    case = make(work, canary)
    before = {p: _digest(p) for p in case.inputs}
    files = _tree(work)
    capsys.readouterr()

    code = cli.main(["inspect", *case.args])
    out, err = capsys.readouterr()

    assert code == 2, (case.name, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("quantgui-cli: error: "), (case.name, err)
    assert str(case.named) in lines[0], (case.name, lines[0])
    for fragment in case.fragments:
        assert fragment in lines[0], (case.name, fragment, lines[0])
    assert "Traceback" not in err + out
    assert not canary.exists(), f"{case.name}: the payload ran"
    assert {p: _digest(p) for p in case.inputs} == before
    assert _tree(work) == files, "temporary files were left behind"


@pytest.mark.parametrize("make", [corpus.pt2_pickled_weight, corpus.pt2_pickled_sample_input,
                                  corpus.pt_evil_pickle])
def test_payloads_are_live(make, tmp_path):
    """Control: the crafted files really run code when loaded without QuantGUI's loader, and
    with --trust QuantGUI does load them (so the refusal above is the loader's doing)."""
    import torch
    work, canary = tmp_path / "corpus", tmp_path / "outside" / "canary"
    work.mkdir()
    canary.parent.mkdir()
    case = make(work, canary)
    path = case.named
    try:
        if path.suffix == ".pt2":
            torch.export.load(str(path))  # noqa: unsafe on purpose: the control
        else:
            torch.load(str(path), weights_only=False)  # noqa: unsafe on purpose
    except Exception:
        pass
    assert canary.exists(), "the payload is not live: the corpus proves nothing"
