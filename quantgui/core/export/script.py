"""A standalone Python script that rebuilds the optimized model with torch alone.

The script loads the original model (the user's file, an architecture file plus weights, or a
built-in example whose architecture source is copied in), applies the run's steps with the
choices the run made, saves the result (reloading it to check), and prints size and latency
before and after (interleaved rounds, medians) and the size ratio.

Each step's code comes from its technique (`Technique.script(StepRecord)`), built from the
step's params and *decisions* (the engine, API and freezing method the run measured and kept),
never from its notes: the script repeats the run's resolved choices, does not re-measure and
cannot pick differently. A step without a script form becomes a function that raises
NotImplementedError with the reason, and is reported as unsupported.

Files written into the export folder:
- `rebuild_model.py`: the script (no QuantGUI import);
- `example_input.pt`: the example batch the run used (weights_only-loadable);
- `original_weights.pt`: for built-in examples, the example's trained state_dict;
- `calibration.pt`: the calibration samples, when a step calibrates (static INT8).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as _dt
import inspect
import io
import json
from pathlib import Path
from typing import Any, Optional

import torch

from ..errors import UserError
from ..examples import models as example_models
from ..model.inputs import Inputs
from ..opening import arch as arch_specs
from ..progress import Task, quiet_task
from ..recipe import Recipe
from ..techniques import all_techniques
from ..techniques.hooks import NoScript, ScriptCode, StepRecord
from ..text import printable
from .atomic import PathLike, ensure_writable_dir, staged
from .script_runtime import RUNTIME

SCRIPT_NAME = "rebuild_model.py"
EXAMPLE_NAME = "example_input.pt"
WEIGHTS_NAME = "original_weights.pt"
CALIBRATION_NAME = "calibration.pt"


@dataclass
class ScriptExport:
    script: Path
    files: list[Path]
    steps: list[dict]                 # [{"step": i, "name", "summary", "supported"}]
    unsupported: list[dict] = field(default_factory=list)  # [{"step", "name", "reason"}]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"script": str(self.script), "files": [str(f) for f in self.files],
                "steps": list(self.steps), "unsupported": list(self.unsupported),
                "notes": list(self.notes)}

    def describe(self) -> str:
        text = f"wrote {self.script}"
        if self.unsupported:
            text += ("; steps without a script form (the script raises NotImplementedError "
                     "there): " + ", ".join(f"{u['step']} {u['name']}" for u in self.unsupported))
        return text


def _step_dicts(recipe: Recipe, steps: Optional[list]) -> list[dict]:
    if steps:
        return [s.to_json() if hasattr(s, "to_json") else dict(s) for s in steps]
    # Only the recipe is known: its parameters with defaults filled in, no resolved choices.
    from ..params import to_dict
    return [{"name": tech.name, "params": to_dict(p), "notes": [], "metrics": {},
             "decisions": {}} for tech, p in recipe.validate()]


def step_code(step: StepRecord) -> ScriptCode | NoScript:
    """The step's code from its technique (name, params and decisions only: no notes)."""
    tech = all_techniques().get(step.name)
    if tech is None:
        return NoScript(f"'{step.name}' has no script template yet; QuantGUI ran it, but this "
                        f"script cannot repeat it")
    return tech.script(step)


def _origin_code(loaded: Any, staged_files: dict[str, bytes], notes: list[str]) -> str:
    origin = dict(getattr(loaded, "origin", None) or {})
    info = getattr(loaded, "info", None)
    fmt = getattr(info, "format", "") or ""
    source = getattr(info, "source", "") or ""
    arch = str(origin.get("arch") or "")
    if origin.get("example") or arch.startswith("quantgui.core.examples.models:"):
        cls = arch.split(":", 1)[1] if ":" in arch else type(loaded.module).__name__
        buf = io.BytesIO()
        torch.save(loaded.module.state_dict(), buf)
        staged_files[WEIGHTS_NAME] = buf.getvalue()
        src = inspect.getsource(example_models)
        return (f"# ---- the original model: built-in example {origin.get('example', cls)!r} ----\n"
                f"# Architecture copied from quantgui/core/examples/models.py:\n\n{src}\n\n"
                f"WEIGHTS = os.path.join(HERE, {WEIGHTS_NAME!r})\n\n\n"
                f"def load_original():\n"
                f"    model = {cls}(**{origin.get('kwargs') or {}!r})\n"
                f"    model.load_state_dict(torch.load(WEIGHTS, map_location='cpu', "
                f"weights_only=True))\n"
                f"    return model.eval()\n")
    if arch and ":" in arch:
        path, factory = arch.rsplit(":", 1)
        weights = origin.get("weights")
        # `package.module:factory` is imported (from the environment the script runs in);
        # only `file.py:Factory` is loaded from a file path.
        module_spec = not arch_specs.is_file_spec(path)
        return (f"# ---- the original model: {_comment(path)} ({_comment(factory)}) + weights ----\n"
                f"ARCH_FILE = {None if module_spec else str(Path(path).resolve())!r}\n"
                f"ARCH_MODULE = {path if module_spec else None!r}\n"
                f"ARCH_ROOT = {_import_root(path) if module_spec else None!r}  "
                f"# where QuantGUI imported it from\n"
                f"FACTORY = {factory!r}\n"
                f"KWARGS = {dict(origin.get('kwargs') or {})!r}\n"
                f"WEIGHTS = {str(Path(weights).resolve()) if weights else None!r}\n\n\n"
                + _LOAD_ARCH)
    path = origin.get("path") or origin.get("file") or origin.get("source") or source
    path = str(Path(path).resolve()) if path else ""
    if fmt == "torchscript":
        body = "model = torch.jit.load(MODEL_FILE, map_location='cpu')"
    elif fmt == "exported":
        body = "model = torch.export.load(MODEL_FILE).module()"
    elif fmt == "pickled":
        notes.append("the original is a pickled model: the script unpickles it "
                     "(weights_only=False), so its class must be importable")
        body = ("# a whole pickled model: its class must be importable here\n"
                "    model = torch.load(MODEL_FILE, map_location='cpu', weights_only=False)")
    elif fmt == "huggingface":
        cls = origin.get("class") or origin.get("hf_class") or "AutoModel"
        notes.append("the original is a Hugging Face model: the script needs transformers")
        body = (f"import transformers\n"
                f"    model = getattr(transformers, {cls!r}).from_pretrained(MODEL_FILE)")
    else:
        raise UserError(f"cannot write a script: cannot tell how to rebuild the model from {source!r} (format "
                       f"{fmt or 'unknown'}, origin {origin!r})")
    return (f"# ---- the original model ({fmt}) ----\nMODEL_FILE = {path!r}\n\n\n"
            f"def load_original():\n    {body}\n    return model.eval()\n")


_LOAD_ARCH = '''def load_original():
    import importlib
    import importlib.util
    if ARCH_MODULE:  # package.module:factory: importable here, or from where QuantGUI found it
        try:
            module = importlib.import_module(ARCH_MODULE)
        except ImportError:
            if not ARCH_ROOT:
                raise
            sys.path.insert(0, ARCH_ROOT)
            module = importlib.import_module(ARCH_MODULE)
    else:
        spec = importlib.util.spec_from_file_location("user_architecture", ARCH_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["user_architecture"] = module
        spec.loader.exec_module(module)
    factory = module
    for part in FACTORY.split("."):
        factory = getattr(factory, part)
    model = factory(**KWARGS)
    if WEIGHTS:
        if WEIGHTS.endswith(".safetensors"):
            from safetensors.torch import load_file
            state = load_file(WEIGHTS)
        else:
            state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model_state_dict", "model"):  # common checkpoint wrappers
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        model.load_state_dict(state)
    return model.eval()
'''


def _import_root(module_name: str) -> Optional[str]:
    """The sys.path folder `module_name` was imported from in this process, if known."""
    import sys
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    depth = module_name.count(".") + (Path(file).name == "__init__.py")
    for _ in range(depth):
        root = root.parent
    return str(root)


def _comment(text: Any) -> str:
    """Text from a file or the user (a path, a reason quoting an exception) on one comment line:
    a newline in it would end the comment and put the rest into the script as code."""
    return printable(text, newlines=False)


def _doc(text: Any) -> str:
    """Text inside a triple-quoted docstring: one line, and no quote or backslash that could end
    the string (a file named 'x\"\"\"; import os ...' would otherwise inject code)."""
    return _comment(text).replace("\\", "\\\\").replace('"', '\\"')


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _calibration_bytes(loaded: Any, samples: int) -> bytes:
    """The leading training samples a calibrating step used (the example when no data)."""
    train = getattr(loaded, "train", None)
    inputs = train.head(samples).inputs if train is not None and len(train) else loaded.example
    return _example_bytes(inputs)


def generate_script(loaded: Any, recipe: Recipe, steps: Optional[list] = None,
                    variant: Any = None, threads: Optional[int] = None,
                    example: Optional[Inputs] = None
                    ) -> tuple[str, dict[str, bytes], list[dict], list[dict], list[str]]:
    """(script text, extra files {name: bytes}, step summaries, unsupported steps, notes).

    `steps` are the run's StepReports (or their JSON); each step's code is built from its
    decisions, so `variant` is not read (the parameter stays for callers)."""
    example = Inputs.of(example if example is not None else loaded.example)
    files: dict[str, bytes] = {}
    notes: list[str] = []
    origin = _origin_code(loaded, files, notes)
    functions, summaries, unsupported, needs_torchao = [], [], [], False
    step_dicts = _step_dicts(recipe, steps)
    if steps and not recipe.steps:  # only the run's steps were given
        recipe = Recipe.of(*[(s.get("name", "?"), s.get("params") or {}) for s in step_dicts])
    for i, step in enumerate(step_dicts, 1):
        name = step.get("name", "?")
        fn = f"step_{i}_{_ident(name)}"
        code = step_code(StepRecord.of(step, example.batch_size))
        if isinstance(code, ScriptCode):
            needs_torchao |= code.needs_torchao
            if code.calibration_samples:
                files[CALIBRATION_NAME] = _calibration_bytes(loaded, code.calibration_samples)
            body = "\n".join(("    " + line) if line.strip() else "" for line in
                             code.body.rstrip("\n").splitlines())
            functions.append(f"def {fn}(model, call):\n    \"\"\"{_doc(name)}: {_doc(code.summary)}\"\"\"\n"
                             f"{body}\n    return model\n")
            summaries.append({"step": i, "name": name, "summary": code.summary,
                              "supported": True})
        else:
            reason = code.reason
            functions.append(f"def {fn}(model, call):\n"
                             f"    # NO SCRIPT FORM: {_comment(reason)}\n"
                             f"    raise NotImplementedError({f'step {i} ({name}): {reason}'!r})\n")
            summaries.append({"step": i, "name": name, "summary": f"NOT SUPPORTED: {reason}",
                              "supported": False})
            unsupported.append({"step": i, "name": name, "reason": reason})
    calls = "\n".join(f"    model = step_{s['step']}_{_ident(s['name'])}(model, call)"
                      for s in summaries) or "    pass  # the recipe has no steps"
    step_lines = [_doc(f"{s['step']}. {s['name']}: {s['summary']}") for s in summaries]
    from .. import env
    environment = env.environment()
    header = (f'#!/usr/bin/env python3\n"""Rebuild the model QuantGUI optimized: '
              f'{_doc(recipe.describe())} (standalone: torch only'
              f'{", plus torchao" if needs_torchao else ""}).\n\n'
              f"Original model: {_doc(getattr(getattr(loaded, 'info', None), 'source', '?'))}\n"
              f"Generated {_dt.datetime.now().isoformat(timespec='seconds')} by QuantGUI on torch "
              f"{environment['torch']}"
              + (f", torchao {environment['torchao']}" if needs_torchao else "")
              + " (the same versions reproduce it best).\n\nSteps, with the choices the QuantGUI "
              "run made:\n" + "".join(f"  {line}\n" for line in step_lines)
              + (f"\nUNSUPPORTED steps raise NotImplementedError: "
                 f"{_doc(', '.join(u['name'] for u in unsupported))}\n" if unsupported else "")
              + f'\nUsage: python {SCRIPT_NAME} [--out PATH] [--rounds N] [--threads N]\n"""\n\n')
    imports = ("import argparse\nimport contextlib\nimport copy\nimport io\nimport os\n"
               "import shutil\nimport statistics\nimport sys\nimport time\nimport warnings\n\nimport torch\nfrom torch import nn\n\n"
               "HERE = os.path.dirname(os.path.abspath(__file__))\n"
               f"EXAMPLE_FILE = os.path.join(HERE, {EXAMPLE_NAME!r})\n"
               f"CALIBRATION_FILE = os.path.join(HERE, {CALIBRATION_NAME!r})\n"
               f"RECIPE = {recipe.describe()!r}\n"
               f"STEP_SUMMARIES = {step_lines!r}\n"
               f"THREADS = {threads!r}\n\n\n")
    from ..techniques._layers import SCRIPT_HELPERS  # the skip lists' matching rule
    text = (header + imports + origin + "\n" + RUNTIME + SCRIPT_HELPERS
            + "\n\n# ---- the steps ----\n\n"
            + "\n\n".join(functions)
            + f"\n\ndef optimize(model, call):\n{calls}\n    return model\n\n\n"
            + 'if __name__ == "__main__":\n    main()\n')
    compile(text, SCRIPT_NAME, "exec")  # a template bug must fail here, not in the user's hands
    return text, files, summaries, unsupported, notes


def _example_bytes(example: Inputs) -> bytes:
    buf = io.BytesIO()
    # clone: a slice of a dataset would otherwise drag its whole storage into the file
    example = example.map(lambda t: t.detach().clone())
    torch.save({"args": list(example.args), "kwargs": dict(example.kwargs)}, buf)
    return buf.getvalue()


def write_script(out_dir: PathLike, loaded: Any, recipe: Recipe, steps: Optional[list] = None,
                 variant: Any = None, example: Optional[Inputs] = None, *,
                 threads: Optional[int] = None, protected: Optional[list] = None,
                 task: Optional[Task] = None) -> ScriptExport:
    """Write the script and its data files atomically into `out_dir`."""
    task = task or quiet_task()
    out_dir = ensure_writable_dir(out_dir)
    task.report("export", 0, 2, "generating the standalone script")
    example = Inputs.of(example if example is not None else loaded.example)
    text, files, summaries, unsupported, notes = generate_script(loaded, recipe, steps, variant,
                                                                 threads, example)
    files[EXAMPLE_NAME] = _example_bytes(example)
    written = []
    with staged(task, protected) as stage:
        stage.write_text(out_dir / SCRIPT_NAME, text)
        written.append(out_dir / SCRIPT_NAME)
        for name, data in files.items():
            stage.write_bytes(out_dir / name, data)
            written.append(out_dir / name)
        task.report("export", 1, 2, "writing the script")
    (out_dir / SCRIPT_NAME).chmod(0o755)
    if unsupported:
        notes.append(f"{len(unsupported)} step(s) have no script form: "
                     + json.dumps([u["name"] for u in unsupported]))
    return ScriptExport(out_dir / SCRIPT_NAME, written, summaries, unsupported, notes)


def write_script_for_run(out_dir: PathLike, loaded: Any, result: Any, *,
                         protected: Optional[list] = None,
                         task: Optional[Task] = None) -> ScriptExport:
    """`write_script` for a finished `RunResult` (its recipe, steps, variant, batch, threads)."""
    from ..run import batched_example
    example = batched_example(loaded, getattr(result, "batch_size", None))
    return write_script(out_dir, loaded, result.recipe, result.steps, result.variant, example,
                        threads=getattr(result, "threads", None), protected=protected, task=task)
