"""The quality budget control: how much quality the user trades for speed, stated once.

One bound at a time (the one the data can measure: an accuracy drop with labels, else a
fidelity floor); it becomes the recipe's `budget` (core/budget.py), so runs are judged by it,
Suggest searches within it, and recipe files and projects keep it.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QWidget

from quantgui.core.budget import QualityBudget  # torch-free

#: (budget field, label, default, lowest, highest, step, decimals, suffix, tooltip)
KINDS = [
    (None, "none", 0.0, 0.0, 0.0, 0.0, 0, "", "No budget: runs are judged by the default "
     "quality check only"),
    ("max_accuracy_drop", "max accuracy drop", 1.0, 0.0, 100.0, 0.1, 2, " pt",
     "With labeled data: the largest top-1 accuracy drop accepted, in points. Met only when "
     "the whole paired 95% interval of the change is within it."),
    ("min_cosine", "min cosine", 0.99, -1.0, 1.0, 0.001, 4, "",
     "The lowest cosine to the original's outputs any evaluated sample may have."),
    ("min_agreement", "min top-1 agreement", 0.99, 0.0, 1.0, 0.001, 4, "",
     "Share of samples whose top-1 prediction equals the original's (0.99 = 99%), judged by "
     "its 95% interval."),
    ("min_sqnr", "min SQNR", 30.0, -100.0, 200.0, 1.0, 1, " dB",
     "Signal-to-quantization-noise ratio of the outputs to the original's, in dB."),
]


class BudgetBox(QGroupBox):
    changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__("Quality budget", parent)
        self.setObjectName("budgetBox")
        self.kind = QComboBox()
        self.kind.setObjectName("budgetKind")
        for key, label, *_rest in KINDS:
            self.kind.addItem(label, key)
        self.value = QDoubleSpinBox()
        self.value.setObjectName("budgetValue")
        form = QFormLayout(self)
        form.addRow("Bound:", self.kind)
        form.addRow("Value:", self.value)
        self._values: dict[str, float] = {k[0]: k[2] for k in KINDS if k[0]}
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.value.valueChanged.connect(self._value_changed)
        self._kind_changed()

    def _spec(self) -> tuple:
        return KINDS[max(0, self.kind.currentIndex())]

    def _kind_changed(self) -> None:
        key, _label, default, low, high, step, decimals, suffix, tip = self._spec()
        self.value.blockSignals(True)
        self.value.setDecimals(decimals)
        self.value.setRange(low, high)
        self.value.setSingleStep(step)
        self.value.setSuffix(suffix)
        self.value.setValue(self._values.get(key, default) if key else 0.0)
        self.value.blockSignals(False)
        self.value.setEnabled(key is not None)
        self.kind.setToolTip(tip)
        self.value.setToolTip(tip)
        self.changed.emit()

    def _value_changed(self) -> None:
        key = self._spec()[0]
        if key:
            self._values[key] = float(self.value.value())
        self.changed.emit()

    def budget(self) -> Optional[QualityBudget]:
        key = self._spec()[0]
        return None if key is None else QualityBudget(**{key: float(self.value.value())})

    def set_budget(self, budget: Any) -> None:
        """Show a recipe's budget (its first bound; None or empty: no budget)."""
        values = {} if budget is None else budget.to_json()
        key = next(iter(values), None)
        if key is not None:
            self._values[key] = float(values[key])
        index = next(i for i, k in enumerate(KINDS) if k[0] == key)
        if index == self.kind.currentIndex():
            self._kind_changed()
        else:
            self.kind.setCurrentIndex(index)
