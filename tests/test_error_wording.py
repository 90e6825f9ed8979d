"""What reaches the user when something goes wrong reads as what it is: PyTorch's developer
boilerplate is gone, a bug says it is a bug (with what to do), and a step's crash names the
step and suggests another technique."""

from __future__ import annotations

import pytest

from quantgui import cli
from quantgui.core.errors import clean_message, internal_error_text
from quantgui.core.techniques import get

TORCH_CHECK = ("Expected d >= 0 to be true, but got false.  (Could this error message be "
               "improved?  If so, please report an enhancement request to PyTorch.)")


@pytest.mark.parametrize("raw,clean", [
    (TORCH_CHECK, "Expected d >= 0 to be true, but got false."),
    ("Dynamo failed to run FX node\n\nfrom user code:\n   File \"m.py\", line 3\n\n"
     "Set TORCHDYNAMO_VERBOSE=1 for the internal stack trace", "Dynamo failed to run FX node"),
    ("bad shape\nException raised from check at aten/src/x.cpp:12 (most recent call first):\n"
     "frame #0: c10::Error", "bad shape"),
    ("plain message\nsecond line", "plain message second line"),
])
def test_torch_boilerplate_is_stripped(raw, clean):
    assert clean_message(RuntimeError(raw)) == clean


def test_internal_errors_say_they_are_bugs():
    assert internal_error_text(IndexError("pop from empty list")) == (
        "IndexError: pop from empty list — a bug in QuantGUI, not a problem with your files; "
        "please report it")
    assert internal_error_text(RuntimeError(TORCH_CHECK)).startswith(
        "RuntimeError: Expected d >= 0 to be true, but got false. — a bug")


def test_a_step_that_crashes_is_one_line_naming_the_step(capsys, monkeypatch):
    tech = get("inference_mode")

    def crash(variant, params, ctx):
        raise IndexError("pop from empty list")
    monkeypatch.setattr(tech, "apply", crash)
    code = cli.main(["run", "example:digits-mlp", "--step", "inference_mode",
                     "--time-budget", "0.2"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == ("quantgui-cli: internal error: step 1 (inference_mode) failed: IndexError: "
                   "pop from empty list — an unexpected failure inside this step (QuantGUI or "
                   "PyTorch), not a problem with your files: try another technique for this "
                   "model, and please report it (run with --debug for the traceback)\n")

    def torch_style(variant, params, ctx):
        raise RuntimeError(TORCH_CHECK + "\nException raised from x at y.cpp:1")
    monkeypatch.setattr(tech, "apply", torch_style)
    code = cli.main(["run", "example:digits-mlp", "--step", "inference_mode"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "failed: RuntimeError: Expected d >= 0 to be true, but got false. — an" in err
    assert "Could this error message" not in err and "Exception raised" not in err
