"""QuantGUI's engine: the public API the CLI, the GUI and scripts use.

Layout (docs/architecture.md has the contracts):
- foundations: `errors`, `progress`, `params`, `recipe`, `schema`, `safeload` (the one loader),
  `text`, `units`, `env`, `cpus`, `memory`, `verdict_words`;
- `results/` the typed records every face reads (results, model and technique descriptions),
  torch-free, with `to_json` / `from_json`;
- `model/` what a model is (inputs, data, variants, the loaded model, its own code);
- `opening/` how a model gets in (formats, architecture files, Hugging Face, example inputs,
  inspection); `examples/` the built-in models;
- `techniques/` one module per optimization; `measure/` size, latency, quality, verdict;
- `run/` checking a recipe (`preflight`), applying and measuring it; `recommend` choosing one;
  `export/` writing it out.

Import what you need from here: `from quantgui.core import open_model, run_recipe, Recipe`.
Names are resolved on first use, so `import quantgui.core` costs nothing and the torch-free
names (errors, recipes, verdict words, units, the result types, preflight) never import torch
(the GUI starts without it).
Import-linter contracts (pyproject.toml, checked by the suite) keep the layers apart.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> (module relative to quantgui.core, attribute; None: the module itself)
_API: dict[str, tuple[str, str | None]] = {
    # foundations (torch-free)
    "UserError": ("errors", "UserError"), "TrustRequired": ("errors", "TrustRequired"),
    "Cancelled": ("errors", "Cancelled"), "clean_message": ("errors", "clean_message"),
    "internal_error_text": ("errors", "internal_error_text"),
    "Task": ("progress", "Task"), "CancelToken": ("progress", "CancelToken"),
    "Progress": ("progress", "Progress"), "quiet_task": ("progress", "quiet_task"),
    "Recipe": ("recipe", "Recipe"), "Step": ("recipe", "Step"), "STAGES": ("recipe", "STAGES"),
    "ParamSpec": ("params", "ParamSpec"), "param_specs": ("params", "specs"),
    "human_bytes": ("units", "human_bytes"), "printable": ("text", "printable"),
    "html_text": ("text", "html_text"), "usable_cpus": ("cpus", "usable_cpus"),
    "verdict_words": ("verdict_words", None), "env": ("env", None),
    # the typed records every face reads (torch-free; to_json / from_json)
    "RunResult": ("results", "RunResult"), "Measurement": ("results", "Measurement"),
    "StepReport": ("results", "StepReport"), "LatencyStats": ("results", "LatencyStats"),
    "Timing": ("results", "Timing"), "Fidelity": ("results", "Fidelity"),
    "Verdict": ("results", "Verdict"), "ModelInfo": ("results", "ModelInfo"),
    "DataInfo": ("results", "DataInfo"), "TechniqueSpec": ("results", "TechniqueSpec"),
    "technique_specs": ("results", "technique_specs"),
    "Recommendation": ("results", "Recommendation"), "Trial": ("results", "Trial"),
    "SweepResult": ("results.sweep", "SweepResult"),
    "AccuracyChange": ("results", "AccuracyChange"), "Similarity": ("results", "Similarity"),
    # the user's data: the reference is torch-free, opening it is not
    "DataSpec": ("data.spec", "DataSpec"), "Preprocess": ("data.spec", "Preprocess"),
    "detect_kind": ("data.spec", "detect_kind"), "open_data": ("data.open", "open_data"),
    "data_preview": ("data.files", "preview"), "parse_size": ("data.spec", "parse_size"),
    "data_kind_title": ("data.spec", "kind_title"),
    # preflight (torch-free given the technique specs)
    "preflight": ("run.preflight", "preflight"), "Problem": ("run.preflight", "Problem"),
    # opening a model
    "open_model": ("opening.loading", "open_model"),
    "ArchitectureRequired": ("opening.loading", "ArchitectureRequired"),
    "ExampleInputRequired": ("opening.example_input", "ExampleInputRequired"),
    "parse_shape": ("opening.shapes", "parse_shape"),  # torch-free, with DTYPE_NAMES
    "DTYPE_NAMES": ("opening.shapes", "DTYPE_NAMES"),
    "parse_dtype": ("opening.example_input", "parse_dtype"),
    "input_kinds": ("opening.example_input", "input_kinds"),
    "module_classes": ("opening.arch", "module_classes"),
    "LoadedModel": ("model.loaded", "LoadedModel"),
    "examples": ("examples", None), "demo_runs": ("examples.demo", "demo_runs"),
    "EXAMPLES": ("examples", "EXAMPLES"), "fashion_example": ("examples.fashion", None), "fashion_info": ("data.fashion", None), "DEFAULT_EXAMPLE": ("examples", "DEFAULT_EXAMPLE"),
    # techniques, running, measuring
    "all_techniques": ("techniques", "all_techniques"), "technique": ("techniques", "get"),
    "RunOptions": ("run", "RunOptions"),
    "run_recipe": ("run", "run_recipe"), "optimize": ("run", "optimize"),
    "format_result": ("run", "format_result"),
    "recommend_recipe": ("recommend", "recommend"),
    "sensitivity": ("sensitivity", "sensitivity"),
    "SensitivityReport": ("results.sensitivity", "SensitivityReport"),
    "sensitivity_rank": ("results.sensitivity", "rank"),
    "fallback_skip": ("results.sensitivity", "fallback_skip"),
    "auto_tune": ("tune", "tune"),  # not "tune": the submodule of that name shadows it
    "TuneOptions": ("tune", "TuneOptions"),
    "TuneResult": ("results.tune", "TuneResult"),
    "TuneTrial": ("results.tune", "TuneTrial"),
    # writing out
    "export_run": ("export", "export_run"), "save_model": ("export", "save_model"),
    "write_report": ("export", "write_report"), "write_recipe": ("export", "write_recipe"),
    "write_script_for_run": ("export", "write_script_for_run"),
    "save_project": ("export", "save_project"), "load_project": ("export", "load_project"),
    "ProjectEntry": ("export", "ProjectEntry"), "protected_paths": ("export", "protected_paths"),
    "recipe_json": ("export.report", "recipe_json"),
    "write_sweep_report": ("export.sweep_report", "write_sweep_report"),
    "write_text_atomic": ("export.atomic", "write_text_atomic"),
    "write_bytes_atomic": ("export.atomic", "write_bytes_atomic"),
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'quantgui.core' has no attribute {name!r}") from None
    value = importlib.import_module(f"{__name__}.{module}")
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
