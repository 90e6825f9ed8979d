"""Results of real runs, for the tests that need one (plots, history, report, projects,
round trips): no test writes a result by hand, because hand-written results drift from what
the engine produces.

Each distinct run (example, steps, labels) is made once per test session with short
measurements and kept as its JSON; every call returns a fresh `RunResult` read from that JSON,
so a test may mutate its copy (an inconclusive verdict, a slower latency) without touching
another test's."""

from __future__ import annotations

import dataclasses

#: Short measurements: the numbers are not what these tests check (tests/gui/conftest.py FAST).
FAST = dict(time_budget_s=0.2, min_rounds=4, max_rounds=20, warmup=1, eval_limit=2)

_loaded: dict[tuple[str, bool], object] = {}
_runs: dict[tuple, tuple] = {}  # key -> (the RunResult as the run returned it, its JSON)
#: Variants of runtime steps, kept: small, and rebuilding one costs a compile (aoti ~10 s).
_variants: dict[tuple, object] = {}


def loaded(example: str = "digits-mlp", labels: bool = True):
    """The built-in example, opened once; `labels=False`: its data without labels (the GUI's
    "None — fidelity only")."""
    key = (example, labels)
    if key not in _loaded:
        from quantgui.core import open_model
        model = open_model(f"example:{example}")
        if not labels:
            def unlabeled(ds):
                return None if ds is None else dataclasses.replace(ds, labels=None)
            model = dataclasses.replace(model, test=unlabeled(model.test),
                                        train=unlabeled(model.train))
        _loaded[key] = model
    return _loaded[key]


def _run(example: str, steps: tuple, labels: bool) -> tuple:
    key = (example, labels, repr(steps))
    if key not in _runs:
        from quantgui.core import Recipe, RunOptions, run_recipe
        result = run_recipe(loaded(example, labels), Recipe.of(*steps), RunOptions(**FAST))
        if result.variant.tags.get("runtime"):
            _variants[key] = result.variant
        result.variant = None  # the optimized model is not kept across tests (but see above)
        _runs[key] = (result, result.to_json())
    return _runs[key]


def run_json(example: str = "digits-mlp", *steps, labels: bool = True) -> dict:
    """`RunResult.to_json()` of a real run of `steps` (names or (name, params)) on `example`."""
    return _run(example, steps, labels)[1]


def as_run(example: str = "digits-mlp", *steps, labels: bool = True):
    """The `RunResult` exactly as `run_recipe` returned it (without its variant): shared, so
    read it, never change it."""
    return _run(example, steps, labels)[0]


def real_result(example: str = "digits-mlp", *steps, labels: bool = True):
    """A fresh `RunResult` of that run (its own copy: mutate it freely)."""
    from quantgui.core import RunResult
    return RunResult.from_json(run_json(example, *steps, labels=labels))


def runtime_variant(example: str = "digits-mlp", *steps, labels: bool = True):
    """The optimized variant of a run whose last step is a runtime (onnxruntime, openvino,
    aoti), shared: call it, never change it."""
    _run(example, steps, labels)
    return _variants[(example, labels, repr(steps))]
