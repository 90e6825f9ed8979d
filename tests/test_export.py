"""Export: saved models that reload and match, atomic writes, the standalone script, the report
and the project file."""

from __future__ import annotations

import copy
import errno
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from quantgui.core import examples
from quantgui.core.errors import Cancelled, UserError
from quantgui.core.results import RunResult
from quantgui.core.export import (ExportCheckFailed, ProjectEntry, atomic, export_run,
                                  load_project, save_model, save_project, write_report,
                                  write_script)
from quantgui.core.export.script import generate_script
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.loaded import LoadedModel, ModelInfo
from quantgui.core.model.variant import Variant
from quantgui.core.progress import CancelToken, Task
from quantgui.core.recipe import Recipe
from quantgui.core.run import RunOptions, optimize, run_recipe

save_mod = importlib.import_module("quantgui.core.export.save_model")  # the module, not the function
INT8 = ("dynamic_int8", {"api": "torch.ao", "engine": "x86"})  # fixed: no engine timing in tests


def _example_loaded(name: str, batch: int = 16) -> LoadedModel:
    model, train, test = examples.build(name)
    info = ModelInfo(f"example:{name}", "example", type(model).__name__, 0, 0, {}, "")
    return LoadedModel(model, info, test.inputs.slice(0, batch), test, train,
                       {"example": name, "arch": f"quantgui.core.examples.models:"
                                                 f"{type(model).__name__}"})


ARCH = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=96):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(20, width), nn.ReLU(), nn.Linear(width, width),
                                      nn.ReLU(), nn.Linear(width, 5))

        def forward(self, x):
            return self.body(x)
""")


@pytest.fixture(scope="module")
def arch_loaded(tmp_path_factory) -> LoadedModel:
    """A state_dict + architecture-file model, as loading.open_model describes one."""
    root = tmp_path_factory.mktemp("archmodel")
    (root / "arch.py").write_text(ARCH)
    ns: dict = {}
    exec(compile(ARCH, "arch.py", "exec"), ns)
    torch.manual_seed(0)
    model = ns["Net"](width=96).eval()
    torch.save(model.state_dict(), root / "weights.pt")
    x = torch.randn(12, 20, generator=torch.Generator().manual_seed(1))
    info = ModelInfo(str(root / "weights.pt"), "state_dict", "Net", 0, 0, {}, "")
    return LoadedModel(model, info, Inputs.of(x), None, None,
                       {"arch": f"{root / 'arch.py'}:Net", "kwargs": {"width": 96},
                        "weights": str(root / "weights.pt")})


@pytest.fixture(scope="module")
def mlp_run():
    """One real run (dynamic INT8 on the digits MLP) shared by the report/export tests."""
    loaded = _example_loaded("digits-mlp")
    result = run_recipe(loaded, Recipe.of(INT8),
                        RunOptions(time_budget_s=0.3, min_rounds=4, eval_limit=2))
    return loaded, result


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- saving the model ------------------------------------------------------------------------

def test_legacy_int8_saves_as_torchscript_that_reloads_and_matches(arch_loaded, tmp_path):
    variant, steps = optimize(arch_loaded, Recipe.of(INT8))
    saved = save_model(variant, arch_loaded.example, tmp_path, recipe=Recipe.of(INT8),
                       steps=steps)
    assert saved.format == "torchscript" and saved.path.name == "model.torchscript.pt"
    assert "torch.export cannot" in saved.reason
    assert saved.check.passed and saved.check.precision == "int8"
    assert saved.check.max_abs_diff <= saved.check.tolerance
    assert any("quantized.engine = 'x86'" in n for n in saved.notes)
    reloaded = torch.jit.load(str(saved.path))
    with variant.context():
        got = reloaded(*arch_loaded.example.args)
    torch.testing.assert_close(got, variant(arch_loaded.example), rtol=0, atol=1e-5)
    assert _files(tmp_path) == ["model.torchscript.pt"]  # no temp file left


def test_bf16_saves_as_pt2_that_takes_the_original_fp32_inputs(tmp_path):
    loaded = _example_loaded("digits-cnn", 8)
    variant, _ = optimize(loaded, Recipe.of("bf16", "channels_last"))
    saved = save_model(variant, loaded.example, tmp_path)
    assert saved.format == "exported" and saved.path.suffix == ".pt2"
    assert saved.check.passed and saved.check.precision == "bfloat16"
    program = torch.export.load(str(saved.path)).module()
    x = loaded.test.inputs.args[0][:5]  # fp32, other batch size: the batch dim is dynamic
    with torch.no_grad():
        got = program(x).float()
    torch.testing.assert_close(got, variant(Inputs.of(x)), rtol=0, atol=1e-2)


def test_forced_state_dict_writes_weights_and_recipe_sidecar(arch_loaded, tmp_path):
    variant = Variant(copy.deepcopy(arch_loaded.module))
    recipe = Recipe.of("inference_mode")
    saved = save_model(variant, arch_loaded.example, tmp_path, fmt="state_dict", recipe=recipe)
    assert saved.format == "state_dict" and saved.check.passed
    assert _files(tmp_path) == ["model.recipe.json", "model.state_dict.pt"]
    side = json.loads((tmp_path / "model.recipe.json").read_text())
    assert side["recipe"] == recipe.to_json() and side["call"]["grad_mode"] == "no_grad"
    state = torch.load(saved.path, weights_only=True)
    assert set(state) == set(arch_loaded.module.state_dict())


def test_frozen_torchscript_variant_is_refrozen_so_it_reloads(tmp_path):
    # optimize_for_inference's prepacked weights save but do not load back ("required keyword
    # attribute 'value' is undefined"): the saved file is frozen again from the eager module.
    loaded = _example_loaded("digits-cnn", 8)
    variant, _ = optimize(loaded, Recipe.of(("freeze", {"method": "torchscript"})))
    assert isinstance(variant.module, torch.jit.ScriptModule)
    saved = save_model(variant, loaded.example, tmp_path)
    assert saved.format == "torchscript" and saved.check.passed
    assert any("optimize_for_inference(model) after loading" in n for n in saved.notes)
    got = torch.jit.load(str(saved.path))(*loaded.example.args)
    torch.testing.assert_close(got, variant(loaded.example), rtol=0, atol=1e-3)


def test_compiled_variant_saves_its_eager_module_and_says_so(arch_loaded, tmp_path):
    class FakeCompiled(nn.Module):  # stands in for torch.compile's wrapper (no compile cost)
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

        def forward(self, x):
            return self._orig_mod(x)

    eager = copy.deepcopy(arch_loaded.module)
    variant = Variant(FakeCompiled(eager), tags={"compiled": True, "eager_module": eager})
    saved = save_model(variant, arch_loaded.example, tmp_path)
    assert saved.format == "exported" and saved.check.passed
    assert any("torch.compile is not saved" in n for n in saved.notes)


def test_reload_mismatch_raises_loudly_and_keeps_nothing(arch_loaded, tmp_path, monkeypatch):
    variant = Variant(copy.deepcopy(arch_loaded.module))
    real = save_mod._reloaded

    def off_by_one(fmt, tmp, v, module):
        run = real(fmt, tmp, v, module)
        return lambda inputs: run(inputs) + 1.0
    monkeypatch.setattr(save_mod, "_reloaded", off_by_one)
    with pytest.raises(ExportCheckFailed, match=r"max abs difference 1 .*nothing was saved"):
        save_model(variant, arch_loaded.example, tmp_path, fmt="exported")
    assert _files(tmp_path) == []
    # auto: every format is rejected in turn, each recorded, and still nothing is kept
    with pytest.raises(ExportCheckFailed):
        save_model(variant, arch_loaded.example, tmp_path)
    assert _files(tmp_path) == []


def test_writer_failing_after_partial_bytes_leaves_no_file(arch_loaded, tmp_path, monkeypatch):
    def broken_save(program, f, *a, **k):  # torch serializes into memory (a file-like)
        f.write(b"PK\x03\x04 half a zip")
        raise RuntimeError("simulated crash mid-write")
    monkeypatch.setattr(torch.export, "save", broken_save)
    variant = Variant(copy.deepcopy(arch_loaded.module))
    with pytest.raises(ExportCheckFailed, match="simulated crash mid-write"):
        save_model(variant, arch_loaded.example, tmp_path, fmt="exported")
    assert _files(tmp_path) == []
    monkeypatch.undo()
    # a full disk under the Python write is a UserError, not a format failure; nothing is left
    def disk_full(path, data):
        with open(path, "wb") as fh:
            fh.write(bytes(data)[:100])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic, "_write_file", disk_full)
    with pytest.raises(UserError, match=r"no space left on .* while writing .*model\.pt2"):
        save_model(variant, arch_loaded.example, tmp_path, fmt="exported")
    assert _files(tmp_path) == []


def test_cancel_during_the_reload_check_leaves_no_file(arch_loaded, tmp_path):
    token = CancelToken()
    seen = []

    def on_progress(p):
        seen.append(p.message)
        if p.message.startswith("reloading"):
            token.cancel()
    variant = Variant(copy.deepcopy(arch_loaded.module))
    with pytest.raises(Cancelled):
        save_model(variant, arch_loaded.example, tmp_path, task=Task(on_progress, token))
    assert any(m.startswith("saving as") for m in seen)
    assert _files(tmp_path) == []


def test_folder_whose_parent_is_a_file_gives_user_error(arch_loaded, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="a file is in the way"):
        save_model(Variant(arch_loaded.module), arch_loaded.example, tmp_path / "afile" / "out")
    with pytest.raises(UserError, match="is a file, not a folder"):
        write_report(tmp_path / "afile", {"recipe": {"steps": []}})
    with pytest.raises(UserError, match="a file is in the way"):  # the CLI's check before a run
        atomic.check_writable_dir(tmp_path / "afile" / "deeper" / "out")
    assert atomic.check_writable_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_folder_without_write_permission_gives_user_error_simulated(tmp_path, monkeypatch):
    # Tests run as root, where chmod does not block writes: simulate what os.access reports
    # for a read-only folder, and a refused temp-file creation.
    real_access = os.access
    monkeypatch.setattr(atomic.os, "access",
                        lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(UserError, match="read-only"):
        atomic.write_text_atomic(tmp_path / "x.txt", "hi")
    monkeypatch.setattr(atomic.os, "access", real_access)

    def refuse(*a, **k):
        raise PermissionError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(UserError, match="read-only"):
        save_project(tmp_path / "p.json", [])
    assert _files(tmp_path) == []


def test_refuses_to_overwrite_the_source_model_file(arch_loaded, tmp_path):
    target = tmp_path / "model.pt2"
    target.write_bytes(b"the user's original model")
    with pytest.raises(UserError, match="would overwrite the original model file you gave; "
                                        "QuantGUI never writes over its inputs"):
        save_model(Variant(arch_loaded.module), arch_loaded.example, tmp_path, fmt="exported",
                   protected=[str(target)])
    assert target.read_bytes() == b"the user's original model"
    assert _files(tmp_path) == ["model.pt2"]


def test_saved_models_reopen_with_open_model(arch_loaded, tmp_path):
    from quantgui.core.opening.loading import open_model
    variant, _ = optimize(arch_loaded, Recipe.of(INT8))
    for fmt, v in (("torchscript", variant), ("exported", Variant(arch_loaded.module))):
        saved = save_model(v, arch_loaded.example, tmp_path / fmt)
        assert saved.format == fmt
        example_file = tmp_path / "example.pt"  # as the CLI passes it (--example-input FILE)
        torch.save(arch_loaded.example.args[0], example_file)
        reopened = open_model(str(saved.path), example_input=str(example_file))
        with v.context():
            got = reopened.module(*arch_loaded.example.args)
        torch.testing.assert_close(got, v(arch_loaded.example), rtol=0, atol=1e-5)


# ---- the standalone script ---------------------------------------------------------------------

def _run_script(script, out) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPATH")}
    proc = subprocess.run([sys.executable, str(script), "--rounds", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(script.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_script_rebuilds_dynamic_int8_from_arch_file_and_matches(arch_loaded, tmp_path):
    recipe = Recipe.of(INT8)
    variant, steps = optimize(arch_loaded, recipe)
    export = write_script(tmp_path, arch_loaded, recipe, steps, variant, arch_loaded.example)
    text = export.script.read_text()
    assert "quantgui" not in text.replace("QuantGUI", "")  # no import of QuantGUI
    assert "torch.backends.quantized.engine = 'x86'" in text and not export.unsupported
    out = _run_script(export.script, tmp_path / "rebuilt")
    assert re.search(r"^size ratio 0\.\d+ +speedup [\d.]+x", out, re.M), out
    assert re.search(r"^before +[\d.]+ KB +[\d.]+ ms$", out, re.M), out
    assert "rebuilt.torchscript.pt (torchscript; reloaded, max abs diff 0)" in out, out
    with variant.context():
        got = torch.jit.load(str(tmp_path / "rebuilt.torchscript.pt"))(*arch_loaded.example.args)
    torch.testing.assert_close(got, variant(arch_loaded.example), rtol=0, atol=1e-5)


def test_script_rebuilds_bf16_channels_last_freeze_example_and_matches(tmp_path):
    loaded = _example_loaded("digits-cnn", 8)
    recipe = Recipe.of("bf16", "channels_last", ("freeze", {"method": "torchscript"}))
    variant, steps = optimize(loaded, recipe)
    export = write_script(tmp_path, loaded, recipe, steps, variant, loaded.example)
    assert {p.name for p in export.files} == {"rebuild_model.py", "example_input.pt",
                                              "original_weights.pt"}
    text = export.script.read_text()
    assert "class DigitsCNN(nn.Module)" in text  # example architecture copied in
    out = _run_script(export.script, tmp_path / "rebuilt")
    assert "3. freeze: freeze via TorchScript (trace + freeze" in out
    assert re.search(r"^size ratio 0\.5\d* ", out, re.M), out
    rebuilt = torch.jit.load(str(tmp_path / "rebuilt.torchscript.pt"))
    with torch.no_grad():
        got = rebuilt(*loaded.example.args).float()  # takes the original fp32 input
    torch.testing.assert_close(got, variant(loaded.example), rtol=0, atol=2e-2)


def test_step_without_script_form_is_reported_and_raises_in_the_script(arch_loaded):
    steps = [{"name": "no_such_technique", "params": {}, "notes": [], "metrics": {}}]
    text, _, summaries, unsupported, _ = generate_script(arch_loaded, Recipe(), steps)
    assert unsupported == [{"step": 1, "name": "no_such_technique",
                            "reason": unsupported[0]["reason"]}]
    assert not summaries[0]["supported"]
    assert re.search(r"raise NotImplementedError\(.step 1 \(no_such_technique\)", text)
    assert "UNSUPPORTED steps raise NotImplementedError: no_such_technique" in text


# ---- report, recipe JSON, everything at once ---------------------------------------------------

def test_report_is_one_self_contained_html_file_with_the_numbers(mlp_run, tmp_path):
    loaded, result = mlp_run
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    files = write_report(tmp_path, result, plots={"live latency": png})
    page = files.html.read_text()
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"' >]+)""", page)
    assert refs and all(r.startswith("data:") for r in refs), refs
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 2  # size and latency charts drawn without Qt
    label = result.verdict.label
    assert f">{label.upper()}" in page and f"speedup {result.timing.speedup:.2f}x" in page
    after_mb = f"{result.after.size_bytes / 1e6:.2f} MB"
    assert after_mb in page and after_mb in files.markdown.read_text()
    for step in result.steps:
        for note in step.notes:
            assert note.replace("'", "&#x27;").replace('"', "&quot;")[:60] in page
    assert result.environment["torch"] in page
    saved = json.loads(files.recipe.read_text())
    assert Recipe.load(files.recipe).to_json()["steps"] == result.recipe.to_json()["steps"]
    assert saved["environment"]["torch"] == torch.__version__
    assert saved["result"]["size_ratio"] == pytest.approx(result.size_ratio)


def test_export_run_writes_model_script_and_report(mlp_run, tmp_path):
    loaded, result = mlp_run
    done = export_run(tmp_path, loaded, result)
    assert done.model.format == "torchscript" and done.model.check.passed
    assert _files(tmp_path) == ["example_input.pt", "model.torchscript.pt",
                                "original_weights.pt", "rebuild_model.py", "recipe.json",
                                "report.html", "report.md"]
    assert "model.torchscript.pt (torchscript)" in (tmp_path / "report.md").read_text()


# ---- project -----------------------------------------------------------------------------------

def test_project_saves_and_reopens(mlp_run, tmp_path):
    loaded, result = mlp_run
    entries = [ProjectEntry.from_run(loaded, result.recipe, result),
               ProjectEntry.from_run(loaded, Recipe.of("bf16"), None, label="untried")]
    path = save_project(tmp_path / "session.qgproj.json", entries)
    project = load_project(path)
    assert [e.label for e in project.entries] == ["dynamic_int8:api=torch.ao,engine=x86",
                                                  "untried"]
    first = project.entries[0]
    assert first.source["source"] == "example:digits-mlp"
    assert first.source["origin"]["example"] == "digits-mlp"
    assert first.recipe.to_json() == result.recipe.to_json()
    # the result comes back typed, exactly as it was written
    assert isinstance(first.result, RunResult)
    assert first.result.to_json() == json.loads(json.dumps(result.to_json()))
    assert first.result.verdict.label == result.verdict.label
    assert first.result.variant is None  # the optimized model is never in a project
    assert project.entries[1].result is None


@pytest.mark.parametrize("content, message", [
    ("{not json", "invalid JSON"),
    ('{"format": "something-else", "version": 1, "entries": []}', "not a QuantGUI project"),
    ('{"format": "quantgui-project", "version": 99, "entries": []}', "newer than"),
    ('{"format": "quantgui-project", "version": 1, "entries": [{"source": {"source": "x"}, '
     '"recipe": {"steps": [{"params": {}}]}}]}', "$.entries[0].recipe.steps[0]: 'name' is missing"),
    ('{"format": "quantgui-project", "version": 1, "entries": [{"recipe": {"steps": []}}]}',
     "$.entries[0]: 'source' is missing"),
])
def test_bad_project_file_is_a_user_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(message)):
        load_project(path)


def test_report_shows_noise_reasons_and_escapes_text(real_result):
    # A real run's JSON as a QuantGUI from before "inconclusive" saved it (no quality, no
    # schema), with a noisy wide interval, and text that must not reach the HTML as markup.
    r = real_result("digits-mlp", "inference_mode").to_json()
    del r["schema"], r["verdict"]["quality"]
    r["verdict"].update(label="not faster", reasons=["zeros <b>stay</b> dense"], warnings=[])
    r["speedup"].update(median=0.95, ci95=[0.7, 1.2], rounds=12, few_rounds=None)
    r.update(noisy=True, noisy_reason="p10-p90 spread is 80% of its median", size_ratio=0.5)
    r["before"]["size_bytes"], r["after"]["size_bytes"] = 1000, 500
    r["steps"][0]["notes"] = ["<script>alert(1)</script>"]
    from quantgui.core.export import render_html, render_markdown
    page = render_html(r)
    # saved before "inconclusive" existed: its wide, noisy interval is judged again
    assert "INCONCLUSIVE — speedup 0.95x (95% CI 0.70–1.20x), size ×0.500" in page
    assert "Noisy measurement:</b> p10-p90 spread is 80% of its median" in page
    assert "zeros &lt;b&gt;stay&lt;/b&gt; dense" in page and "<script>" not in page
    md = render_markdown(r)
    assert "> **Noisy measurement:** p10-p90 spread is 80% of its median" in md
    assert "| size as saved | 1.00 KB | 500 B | 0.500x |" in md


def test_script_rebuilds_static_int8_with_the_same_calibration_and_matches(tmp_path):
    loaded = _example_loaded("digits-cnn", 16)
    recipe = Recipe.of(("static_int8", {"api": "fx", "engine": "x86", "batches": 2}))
    variant, steps = optimize(loaded, recipe)
    export = write_script(tmp_path, loaded, recipe, steps, variant, loaded.example)
    assert "calibration.pt" in {p.name for p in export.files} and not export.unsupported
    out = _run_script(export.script, tmp_path / "rebuilt")
    assert "static INT8 via torch.ao FX (histogram observer, 2 calibration batch(es)), " \
           "engine x86" in out
    with variant.context():
        got = torch.jit.load(str(tmp_path / "rebuilt.torchscript.pt"))(*loaded.example.args)
    torch.testing.assert_close(got, variant(loaded.example), rtol=0, atol=1e-5)


def test_cli_run_save_and_report(tmp_path, capsys):
    from quantgui.cli import main
    code = main(["run", "example:digits-mlp", "--step", "dynamic_int8:api=torch.ao,engine=x86",
                 "--time-budget", "0.3", "--eval-limit", "1", "--save", str(tmp_path / "model"),
                 "--report", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "model: " + str(tmp_path / "model" / "model.torchscript.pt") + " (torchscript)" in out
    assert "script: wrote " + str(tmp_path / "model" / "rebuild_model.py") in out
    assert "report: " + str(tmp_path / "report" / "report.html") in out
    assert _files(tmp_path / "report") == [".quantgui-export.json", "recipe.json", "report.html",
                                           "report.md"]
    (tmp_path / "afile").write_text("x")  # an unusable folder fails before any work: exit 2
    code = main(["run", "example:digits-mlp", "--save", str(tmp_path / "afile" / "out")])
    assert code == 2 and "a file is in the way" in capsys.readouterr().err
