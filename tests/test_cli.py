"""quantgui-cli's contract: exit codes, one-line errors, JSON keys, the examples list.

Most checks call `main(argv)` in-process (no torch start-up per call); a few go through the
installed `quantgui-cli` entry point in a subprocess to prove the real thing behaves the same.
"""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from quantgui import cli

FAST = ["--time-budget", "0.3", "--eval-limit", "2"]


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_proc(*argv, tmp_path):
    env = dict(os.environ)
    env.setdefault("QUANTGUI_CACHE", os.environ.get("QUANTGUI_CACHE", ""))
    return subprocess.run([sys.executable, "-m", "quantgui.cli", *argv], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)


def one_error_line(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("quantgui-cli: error: "), err
    for f in fragments:
        assert f in lines[0], err
    return lines[0]


@pytest.fixture
def bad_recipe(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"steps": [{"name": "dynamic_int8"}, {"name": "prune"}]}))
    return path


def test_examples_lists_the_four_digits_models_with_accuracy(capsys):
    code, out, err = run_cli(capsys, "examples")
    assert code == 0 and err == ""
    for name in ("digits-cnn", "digits-mlp", "digits-lstm", "digits-transformer"):
        line = next(l for l in out.splitlines() if l.startswith(f"example:{name} "))
        acc = float(line.split()[1].rstrip("%"))
        assert 90.0 < acc <= 100.0, line
    code, out, _ = run_cli(capsys, "examples", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["digits-cnn", "digits-mlp", "digits-lstm",
                                         "digits-transformer"]
    assert all(0.9 < r["test_accuracy"] <= 1.0 for r in rows)


def test_techniques_lists_parameters(capsys):
    code, out, _ = run_cli(capsys, "techniques", "--json")
    assert code == 0
    techs = {t["name"]: t for t in json.loads(out)}
    assert {"prune", "dynamic_int8", "bf16", "inference_mode"} <= set(techs)
    assert all({"name", "type", "default", "help"} <= set(p) for p in techs["prune"]["params"])
    code, out, _ = run_cli(capsys, "techniques")
    assert code == 0 and "dynamic_int8" in out and "use: quantgui-cli run" in out


def test_inspect_json(capsys):
    code, out, err = run_cli(capsys, "inspect", "example:digits-cnn", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"]["source"] == "example:digits-cnn"
    assert data["model"]["parameters"] == 159_850
    assert "torch" in data["environment"]


def test_run_empty_recipe_writes_json(capsys, tmp_path):
    out_path = tmp_path / "result.json"
    code, out, err = run_cli(capsys, "run", "example:digits-mlp", "--batch", "16", *FAST,
                             "--threads", "1", "--json", str(out_path))
    assert code == 0, err
    data = json.loads(out_path.read_text())
    for key in ("before", "after", "speedup", "size_ratio", "fidelity", "verdict", "steps",
                "environment"):
        assert key in data
    assert set(data["before"]) >= {"size_bytes", "latency_ms", "accuracy"}
    assert data["batch_size"] == 16 and data["threads"] == 1
    assert data["verdict"]["label"] != "faster"
    for text in ("size (saved)", "latency median", "accuracy", "speedup:", "fidelity:",
                 "verdict: NOT FASTER", "no steps"):
        assert text in out, out
    assert not list(tmp_path.glob("*.tmp*"))


def test_run_dynamic_int8_step(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "example:digits-mlp", "--batch", "64", *FAST,
                             "--step", "dynamic_int8:api=torch.ao,engine=x86", "--json", "-")
    assert code == 0, err
    data = json.loads(out)
    step = data["steps"][0]
    assert step["name"] == "dynamic_int8" and step["params"]["engine"] == "x86" and step["notes"]
    assert data["size_ratio"] < 0.3 and data["fidelity"]["cosine"] > 0.99
    assert data["verdict"]["label"] in ("faster", "not faster", "slower", "inconclusive")


@pytest.mark.parametrize("argv,fragments", [
    (["--step", "nope"], ["--step", "unknown technique 'nope'"]),
    (["--step", "prune:amount=2"], ["step 1 (prune)", "amount", "above its maximum"]),
    (["--step", "prune:amount"], ["expected key=value"]),
    (["--batch", "0"], ["--batch"]),
])
def test_bad_steps_exit_2_with_one_line(capsys, tmp_path, argv, fragments):
    out_path = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "run", "example:digits-mlp", *argv, "--json", str(out_path))
    assert code == 2
    one_error_line(err, *fragments)
    assert not out_path.exists()


def test_recipe_out_of_order_names_the_file(capsys, bad_recipe):
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", "--recipe", str(bad_recipe))
    assert code == 2
    one_error_line(err, f"{bad_recipe}: $.steps[1] (prune): must come before 'dynamic_int8'")
    bad_recipe.write_text("{not json")
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", "--recipe", str(bad_recipe))
    assert code == 2
    one_error_line(err, str(bad_recipe), "not a valid recipe file (invalid JSON")


def test_corrupt_model_file(capsys, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage, not a torch file" * 10)
    code, _, err = run_cli(capsys, "run", str(bad), "--trust", *FAST)
    assert code == 2
    one_error_line(err, "model.pt")


def test_data_whose_labels_do_not_match(capsys, tmp_path):
    from quantgui.core import examples
    _, _, test = examples.build("digits-mlp")
    x = test.inputs.args[0][:40].numpy()
    short = tmp_path / "short.npz"
    np.savez(short, inputs=x, labels=np.zeros(39, dtype=np.int64))
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", "--data", str(short), *FAST)
    assert code == 2
    one_error_line(err, "short.npz", "39 labels for 40 inputs")
    foreign = tmp_path / "foreign.npz"  # class 12 from a model with 10 outputs
    np.savez(foreign, inputs=x, labels=np.full(40, 12, dtype=np.int64))
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", "--data", str(foreign), *FAST)
    assert code == 2
    one_error_line(err, "foreign.npz", "labels do not match")


def test_unwritable_json_path_fails_before_work(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", "--json",
                           str(tmp_path / "missing" / "r.json"))
    assert code == 2
    one_error_line(err, "does not exist")


def test_internal_error_exit_1(capsys, monkeypatch):
    import quantgui.core.run as run_mod

    def boom(*a, **k):
        raise RuntimeError("engine bug\nsecond line")
    monkeypatch.setattr(run_mod, "run_recipe", boom)
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", *FAST)
    assert code == 1
    assert err.strip() == ("quantgui-cli: internal error: RuntimeError: engine bug second line "
                           "— a bug in QuantGUI, not a problem with your files; please report "
                           "it (run with --debug for the traceback)")
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", *FAST, "--debug")
    assert code == 1 and "Traceback" in err and "engine bug" in err


def test_ctrl_c_cancels_cleanly(capsys, monkeypatch, tmp_path):
    import quantgui.core.run as run_mod

    def interrupted(loaded, recipe, options, task):
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C mid-run
        task.check()  # the engine's next cancel check
        raise AssertionError("not cancelled")
    monkeypatch.setattr(run_mod, "run_recipe", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    out_path = tmp_path / "r.json"
    code, _, err = run_cli(capsys, "run", "example:digits-mlp", "--json", str(out_path))
    assert code == 130 and err.strip() == "quantgui-cli: cancelled"
    assert not out_path.exists()
    assert signal.getsignal(signal.SIGINT) is handler  # restored for whoever called main()


def test_subprocess_contract(tmp_path):
    """The real process: success writes JSON; bad input is exit 2 with one stderr line."""
    ok = run_proc("run", "example:digits-mlp", "--batch", "8", *FAST, "--json", "out.json",
                  tmp_path=tmp_path)
    assert ok.returncode == 0, ok.stderr
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["verdict"]["label"] and data["environment"]["torch"] == torch.__version__
    assert "verdict:" in ok.stdout
    (tmp_path / "broken.pt").write_bytes(b"not a model")
    bad = run_proc("run", "broken.pt", "--trust", "--step", "dynamic_int8", tmp_path=tmp_path)
    assert bad.returncode == 2
    one_error_line(bad.stderr, "broken.pt")
    usage = run_proc("run", tmp_path=tmp_path)  # argparse's own usage error
    assert usage.returncode == 2 and "MODEL" in usage.stderr
