"""The result types live in `quantgui.core.results` (torch-free); this name stays for imports
written before they moved there."""

from ..results import Measurement, RunResult, StepReport, json_safe

__all__ = ["Measurement", "RunResult", "StepReport", "json_safe"]
