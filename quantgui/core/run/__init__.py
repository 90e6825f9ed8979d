"""Running a recipe (`runner`), checking one before it runs (`preflight`) and its text form
(`text`); the result types are in `quantgui.core.results`.

The names below are the package's face; callers import them from `quantgui.core.run`. They are
resolved on first use, so `preflight` and `text` (torch-free) can be imported without the
runner (torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "Measurement": "..results", "RunResult": "..results", "StepReport": "..results",
    "json_safe": "..results",
    "RunOptions": ".runner", "StepError": ".runner", "batched_example": ".runner",
    "check_labels": ".runner", "optimize": ".runner", "run_recipe": ".runner",
    "torch_threads": ".runner",
    "Problem": ".preflight", "preflight": ".preflight", "require": ".preflight",
    "format_result": ".text", "mb": ".text", "num": ".text", "pct": ".text", "table": ".text",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    try:
        module = _NAMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
