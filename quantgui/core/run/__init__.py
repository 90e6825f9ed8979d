"""Running a recipe (`runner`), what it produced (`results`) and its text form (`text`).

The names below are the package's face; callers import them from `quantgui.core.run`.
"""

from .results import Measurement, RunResult, StepReport, json_safe
from .runner import (RunOptions, StepError, batched_example, check_labels, optimize, run_recipe,
                     torch_threads)
from .text import format_result, mb, num, pct, table

__all__ = ["Measurement", "RunOptions", "RunResult", "StepError", "StepReport", "batched_example",
           "check_labels", "format_result", "json_safe", "mb", "num", "optimize", "pct",
           "run_recipe", "table", "torch_threads"]
