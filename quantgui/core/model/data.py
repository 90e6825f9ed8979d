"""Moved to `quantgui.core.data` (one module per data source); these names keep working."""

from ..data.dataset import Dataset, check_inputs, nonfinite_reason  # noqa: F401
from ..data.tensors import load_data_file  # noqa: F401

__all__ = ["Dataset", "check_inputs", "nonfinite_reason", "load_data_file"]
