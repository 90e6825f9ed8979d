"""One preflight (quantgui/core/run/preflight.py) for the CLI, the GUI and recommend: every
reason a recipe cannot run on a model and its data, structured, found before any work."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest
import torch

from quantgui import cli
from quantgui.core import DataInfo, Recipe, Step, preflight
from quantgui.core.errors import UserError
from quantgui.core.model.data import Dataset
from quantgui.core.recommend import candidate_recipes, recommend
from quantgui.core.run.preflight import KINDS, Problem, label_problem, require
from tests.real_runs import loaded

NEEDS_LABELS = "needs labeled training data (give a data file with 'labels')"


def kinds(problems):
    return [(p.kind, p.step, p.technique) for p in problems]


def test_the_recipe_rules_are_all_found_in_order():
    recipe = Recipe([Step("nope"), Step("prune", {"amount": 2, "bogus": 1}), Step("bf16"),
                     Step("fp16"), Step("prune"), Step("dynamic_int8")])
    problems = preflight(None, recipe)
    assert kinds(problems) == [("unknown", 0, "nope"), ("params", 1, "prune"),
                               ("params", 1, "prune"), ("group", 3, "fp16"),
                               ("duplicate", 4, "prune"), ("group", 5, "dynamic_int8")]
    assert problems[0].text() == (f"step 1 (nope): unknown technique 'nope'; known: "
                                  f"{problems[0].message.split('known: ')[1]}")
    assert [p.param for p in problems[1:3]] == [None, "amount"]
    assert problems[1].text() == ("step 2 (prune): unknown parameter(s) bogus; known: amount, "
                                  "method")
    assert problems[3].text() == ("step 4 (fp16): only one numeric format step per recipe; "
                                  "'bf16' is already one")
    assert problems[4].text(json_paths=True).startswith("$.steps[4] (prune): 'prune' is "
                                                        "already step 2")
    order = preflight(None, Recipe.of("dynamic_int8", "prune"))
    assert kinds(order) == [("order", 1, "prune")]
    assert order[0].message.startswith("must come before 'dynamic_int8' — structure (prune) "
                                       "goes before numeric format")
    assert {p.kind for p in problems + order} <= set(KINDS)
    # Recipe.validate raises the first of them, worded as always.
    with pytest.raises(UserError, match=r"^step 2 \(prune\): must come before 'dynamic_int8'"):
        Recipe.of("dynamic_int8", "prune").validate()
    assert preflight(None, Recipe.of("prune", "dynamic_int8", "inference_mode")) == []


def test_the_model_and_its_data_on_model_info_alone():
    info = loaded("digits-mlp").info
    reason = info.applicability["channels_last"]
    assert reason  # no Conv2d in an MLP
    labeled = DataInfo("train", 100, True, 0, 9)
    found = preflight(info, Recipe.of("qat_int8", "channels_last"), train=None, test=None)
    assert kinds(found) == [("needs_labels", 0, "qat_int8"),
                            ("not_applicable", 1, "channels_last")]
    assert found[0].text() == f"step 1 (qat_int8): {NEEDS_LABELS}"
    assert found[1].text() == f"step 2 (channels_last): does not apply to this model: {reason}"
    assert kinds(preflight(info, Recipe.of("qat_int8"), train=labeled, test=labeled)) == []
    unlabeled = DataInfo("inputs.npz", 50, False)
    assert kinds(preflight(info, Recipe.of("qat_int8"), train=unlabeled, test=None)) == [
        ("needs_labels", 0, "qat_int8")]
    # the data: labels the model's 10 outputs cannot score, whatever the recipe
    foreign = DataInfo("foreign.npz", 20, True, 0, 11)
    (problem,) = preflight(info, Recipe(), train=None, test=foreign)
    assert (problem.kind, problem.step, problem.where) == ("labels_out_of_range", None,
                                                           "foreign.npz")
    assert problem.text() == "foreign.npz: label 11 is out of range for a model with 10 outputs"
    negative = DataInfo("neg.npz", 20, True, -1, 3)
    assert preflight(info, Recipe(), test=negative, train=None)[0].message == \
        "label -1 is out of range for a model with 10 outputs"
    per_token = dataclasses.replace(info, output_shape=[8, 8, 10])
    assert kinds(preflight(per_token, Recipe(), test=labeled, train=None)) == [
        ("labels_shape", None, None)]
    assert label_problem("d", [4, 10], 0, 9) is None
    assert Problem.from_json(problem.to_json()) == problem


def test_a_loaded_model_brings_its_own_facts():
    mlp = loaded("digits-mlp")
    recipe = Recipe.of("qat_int8", "channels_last")
    assert preflight(mlp, recipe) == preflight(
        mlp.info, recipe, train=DataInfo.of(mlp.train), test=DataInfo.of(mlp.test))
    assert kinds(preflight(mlp, recipe)) == [("not_applicable", 1, "channels_last")]
    unlabeled = loaded("digits-mlp", labels=False)
    assert kinds(preflight(unlabeled, Recipe.of("qat_int8"))) == [
        ("needs_labels", 0, "qat_int8")]
    with pytest.raises(UserError, match=r"^step 1 \(qat_int8\): needs labeled training data"):
        require(preflight(unlabeled, Recipe.of("qat_int8")))


def test_recommend_asks_preflight():
    unlabeled = loaded("digits-cnn", labels=False)
    names = [[s.name for s in r.steps] for r in candidate_recipes(unlabeled, [])]
    assert names and all(not preflight(unlabeled, Recipe.of(*n)) for n in names)
    assert not any("qat_int8" in n for n in names)
    mlp = loaded("digits-mlp")
    assert not any("channels_last" in [s.name for s in r.steps]
                   for r in candidate_recipes(mlp, ["AVX512-BF16"]))
    bad = Dataset(mlp.test.inputs.slice(0, 20), torch.full((20,), 11), "foreign.npz")
    tried = []
    with pytest.raises(UserError, match="^foreign.npz: label 11 is out of range"):
        recommend(dataclasses.replace(mlp, test=bad),
                  task=_recording(tried))
    assert tried == []  # said once, before any candidate


def _recording(seen):
    from quantgui.core.progress import Task
    return Task(lambda p: seen.append(p) if p.phase == "recommend" else None)


# --- the CLI: one line, before any timing --------------------------------------------------------

ARCH = textwrap.dedent("""
    import torch


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))
""")


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_says_a_step_does_not_apply_before_timing(capsys):
    reason = loaded("digits-mlp").info.applicability["channels_last"]
    code, out, err = _cli(capsys, "run", "example:digits-mlp", "--step", "channels_last")
    assert code == 2 and out == ""
    assert err == (f"quantgui-cli: error: step 1 (channels_last): does not apply to this "
                   f"model: {reason}\n")


def test_cli_says_qat_needs_labels_with_unlabeled_data(tmp_path, capsys):
    arch = tmp_path / "net.py"
    arch.write_text(ARCH)
    weights = tmp_path / "net.pt"
    torch.manual_seed(0)
    namespace: dict = {}
    exec(ARCH, namespace)
    torch.save(namespace["Net"]().state_dict(), weights)
    data = tmp_path / "inputs.npz"
    np.savez(data, inputs=np.random.default_rng(0).normal(size=(40, 64)).astype(np.float32))
    code, out, err = _cli(capsys, "run", str(weights), "--arch", f"{arch}:Net", "--data",
                          str(data), "--step", "qat_int8", "--time-budget", "0.2")
    assert code == 2 and "speedup" not in out
    assert err == f"quantgui-cli: error: step 1 (qat_int8): {NEEDS_LABELS}\n"


def test_cli_recipe_rules_name_where_the_recipe_came_from(capsys, tmp_path):
    code, _, err = _cli(capsys, "run", "example:digits-mlp", "--step", "bf16", "--step",
                        "fp16")
    assert code == 2
    assert err == ("quantgui-cli: error: --step: step 2 (fp16): only one numeric format step "
                   "per recipe; 'bf16' is already one\n")


@pytest.mark.parametrize("fmt, runtime, fragment", [
    ("dynamic_int8", "onnxruntime", "'dynamic_int8' (step 1) makes eager INT8 modules, which "
     "cannot be exported, and onnxruntime takes the FP32 model: remove 'dynamic_int8' and use "
     "its own INT8 option (onnxruntime:quantize=dynamic or quantize=static)"),
    ("static_int8", "openvino", "use its own INT8 option (openvino:precision=int8)"),
    ("bf16", "aoti", "'bf16' (step 1) makes a BF16 model, and aoti takes the FP32 model"),
    ("freeze", "onnxruntime", "makes a compiled/frozen graph"),
])
def test_a_format_step_before_a_runtime_step_is_refused_up_front(fmt, runtime, fragment):
    from quantgui.core.run.preflight import preflight as check
    problems = check(None, Recipe.of(fmt, runtime))
    assert [p.kind for p in problems] == ["combination"]
    assert problems[0].step == 1 and problems[0].technique == runtime
    assert fragment in problems[0].text()
    with pytest.raises(UserError) as err:  # the recipe file names it by its JSON path
        Recipe.from_json({"steps": [{"name": fmt}, {"name": runtime}]}, "r.json").validate(True)
    assert str(err.value).startswith(f"$.steps[1] ({runtime}): '{fmt}' (step 1) makes")
    assert check(None, Recipe.of(runtime, "inference_mode")) == []
