"""Measurement: sizes, interleaved latency, accuracy, fidelity and the verdict.

Split by concern (size / latency / quality / verdict); import everything from here.
"""

from ..verdict_words import LABELS, Quality, assess_quality, label_for
from .latency import LatencyStats, Timing, bootstrap_ratio_ci, time_interleaved
from .quality import (AccuracyCounter, Evaluation, Fidelity, FidelityAccumulator, accuracy,
                      evaluate, fidelity)
from .size import eager_module, has_tensor_subclass_weights, leaf_types, memory_bytes, saved_bytes
from .verdict import Verdict, likely_reasons, quality_warnings, verdict

__all__ = [
    "AccuracyCounter", "Evaluation", "Fidelity", "FidelityAccumulator", "LABELS", "LatencyStats",
    "Quality", "Timing", "Verdict", "accuracy", "assess_quality", "bootstrap_ratio_ci",
    "eager_module", "evaluate", "fidelity", "has_tensor_subclass_weights", "label_for",
    "leaf_types", "likely_reasons", "memory_bytes", "quality_warnings", "saved_bytes",
    "time_interleaved", "verdict",
]
