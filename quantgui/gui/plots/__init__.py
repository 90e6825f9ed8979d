"""Live and final plots of optimization runs (pyqtgraph).

`ResultsView` shows one run (size, latency, accuracy, QAT loss); `HistoryView` compares every
variant run this session. Both follow the Qt palette (light/dark).
"""

from .history_view import HistoryView
from .pareto import pareto_front
from .results_view import ResultsView

__all__ = ["HistoryView", "ResultsView", "pareto_front"]
