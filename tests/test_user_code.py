"""The user's model code misbehaving is the user's problem, reported as such: exit 2 with one
line naming the model (or the architecture file) and what happened, never "internal error", and
never a silent exit. QuantGUI's own bugs stay exit 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from quantgui import cli
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.usercode import ModelCode, ModelCodeError
from quantgui.core.model.variant import Variant

FAST = ["--time-budget", "0.2", "--eval-limit", "1"]

HEADER = """
import sys
import torch
from torch import nn
CALLS = [0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        CALLS[0] += 1
"""

BODIES = {
    "raises_on_call_2": """
        if CALLS[0] == 2:
            raise ValueError("boom on the second call")
        return self.fc(x)
""",
    "shape_changes": """
        out = self.fc(x)
        return out if CALLS[0] < 3 else out[:, :2]
""",
    "exits": """
        if CALLS[0] == 3:
            sys.exit(0)
        return self.fc(x)
""",
    "prints": """
        print("forward says hello")
        return self.fc(x)
""",
    "raises_from_call_3": """
        if CALLS[0] >= 3:
            raise RuntimeError("no more calls")
        return self.fc(x)
""",
}


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("quantgui-cli: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err and "internal error" not in err
    return lines[0]


def write_model(folder, behaviour, prelude=""):
    """(weights file, --arch spec, arch file) for a 4 -> 3 model whose forward does `behaviour`."""
    arch = folder / f"{behaviour}.py"
    arch.write_text(prelude + HEADER + BODIES[behaviour])
    weights = folder / "w.pt"
    torch.save({f"fc.{k}": v for k, v in nn.Linear(4, 3).state_dict().items()}, weights)
    return weights, f"{arch}:Net", arch


def _line_of(path, text):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_forward_that_raises_on_its_second_call(tmp_path, capsys):
    weights, arch, path = write_model(tmp_path, "raises_on_call_2")
    code, out, err = run_cli(capsys, "run", weights, "--arch", arch, "--input-shape", "2,4", *FAST)
    assert code == 2 and out == ""
    line = _line_of(path, "raise ValueError")
    one_error_line(err, f"{weights}: the model's forward raised ValueError on call 2 "
                        f"({path.name}, line {line}): boom on the second call")


def test_output_shape_that_changes_between_calls(tmp_path, capsys):
    weights, arch, _ = write_model(tmp_path, "shape_changes")
    code, out, err = run_cli(capsys, "run", weights, "--arch", arch, "--input-shape", "2,4", *FAST)
    assert code == 2 and out == ""
    one_error_line(err, f"{weights}: the model's output shape changed between calls on the same "
                        f"input: (2, 3) before, (2, 2) on call 3")


def test_forward_that_calls_sys_exit_is_reported_not_obeyed(tmp_path, capsys):
    weights, arch, path = write_model(tmp_path, "exits")
    code, out, err = run_cli(capsys, "run", weights, "--arch", arch, "--input-shape", "2,4", *FAST)
    assert code == 2 and out == ""
    one_error_line(err, f"{weights}: the model's code called sys.exit(0) on call 3 "
                        f"({path.name}, line {_line_of(path, 'sys.exit(0)')})")


def test_a_failure_in_the_optimized_copy_inside_a_step_is_the_models(tmp_path, capsys):
    """dynamic_int8 times candidate engines by calling the model's copy: the copy's forward
    raising there is still the model's own code failing."""
    weights, arch, path = write_model(tmp_path, "raises_from_call_3")
    code, out, err = run_cli(capsys, "run", weights, "--arch", arch, "--input-shape", "2,4",
                             "--step", "dynamic_int8", *FAST)
    assert code == 2 and out == ""
    one_error_line(err, f"{weights}: the model's forward (in the optimized copy) raised "
                        f"RuntimeError", f"({path.name}, line {_line_of(path, 'no more calls')})",
                   "no more calls")


@pytest.mark.parametrize("where", ["import", "factory"])
def test_architecture_code_that_calls_sys_exit(where, tmp_path, capsys):
    arch = tmp_path / "quits.py"
    arch.write_text("import sys\nfrom torch import nn\n"
                    + ("sys.exit(3)\n" if where == "import" else "")
                    + "def make():\n    sys.exit(4)\n")
    weights = tmp_path / "w.pt"
    torch.save({"w": torch.ones(1)}, weights)
    code, out, err = run_cli(capsys, "inspect", weights, "--arch", f"{arch}:make")
    assert code == 2 and out == ""
    if where == "import":
        one_error_line(err, f"{arch}: importing the architecture file failed (it called "
                            f"sys.exit(3))")
    else:
        one_error_line(err, f"{arch}:make() failed: it called sys.exit(4)")


def test_printing_architecture_keeps_json_stdout_pure(tmp_path):
    """With --json - stdout is only the JSON, whatever the model's code prints (a real process:
    stdout is the point)."""
    weights, arch, _ = write_model(tmp_path, "prints", prelude='print("arch file says hello")\n')
    env = dict(os.environ)
    for argv in (["run", str(weights), "--arch", arch, "--input-shape", "2,4", *FAST,
                  "--json", "-"],
                 ["inspect", str(weights), "--arch", arch, "--input-shape", "2,4", "--json"]):
        proc = subprocess.run([sys.executable, "-m", "quantgui.cli", *argv], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)  # nothing but JSON
        assert data
        assert "arch file says hello" in proc.stderr and "forward says hello" in proc.stderr


def test_quantgui_bugs_stay_internal_errors(tmp_path, capsys, monkeypatch):
    """A step that breaks the model (code outside the model's files raising) is exit 1."""
    from quantgui.core.techniques import get
    weights, arch, _ = write_model(tmp_path, "prints")
    tech = get("inference_mode")

    def broken(*args, **kwargs):
        raise RuntimeError("a QuantGUI bug")

    def apply(variant, params, ctx):
        return variant.evolve(module=broken)
    monkeypatch.setattr(tech, "apply", apply)
    code, out, err = run_cli(capsys, "run", weights, "--arch", arch, "--input-shape", "2,4",
                             "--step", "inference_mode", *FAST)
    assert code == 1
    assert "internal error: RuntimeError: a QuantGUI bug" in err


def test_model_code_blame_rules():
    """The original's failures are its own; a new input shape is flagged so data can be blamed;
    an optimized copy is blamed only for failures raised in the model's own files."""
    class Flaky(nn.Module):
        calls = 0

        def forward(self, x):
            Flaky.calls += 1
            if Flaky.calls > 1:
                raise ValueError("flaky")
            return x

    code = ModelCode.of(Flaky(), "flaky.pt")
    assert code.files == {os.path.realpath(__file__)}
    original = Variant.baseline(Flaky(), code)
    x = Inputs.of(torch.ones(2, 4))
    original(x)
    with pytest.raises(ModelCodeError, match=r"flaky.pt: the model's forward raised ValueError "
                                             r"on call 2 \(test_user_code.py, line \d+\): flaky"
                       ) as seen:
        original(x)
    assert not seen.value.new_input
    with pytest.raises(ModelCodeError, match=r"the model fails on inputs \(3, 5\)") as new:
        original(Inputs.of(torch.ones(3, 5)))
    assert new.value.new_input

    copy = original.copy()
    assert copy.code is not code and not copy.code.original
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):  # raised in torch
        copy.evolve(module=nn.Linear(5, 5))(x)


def test_recommend_stops_when_the_original_itself_fails(tmp_path, capsys):
    """Every candidate would fail alike: one error, not a table of identical failures."""
    weights, arch, _ = write_model(tmp_path, "raises_on_call_2")
    code, out, err = cli.main(["recommend", str(weights), "--arch", arch, "--input-shape", "2,4",
                               "--max-candidates", "2", "--time-budget", "0.2"]), *capsys.readouterr()
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]  # after the "[1/2] trying ..." progress line
    assert last.startswith(f"quantgui-cli: error: {weights}: the model's forward raised "
                           f"ValueError on call 2"), err
    assert "Traceback" not in err
