"""A spin box for float parameters that shows, and accepts, their real value.

QDoubleSpinBox rounds its *value* to `decimals()` and shows fixed-point text: with two decimals
a learning rate of 1e-4 became 0.00, and the recipe read lr=0.0. Here decimals are at Qt's
maximum, where its rounding leaves every double as it is; the text is the shortest one that
reads back as the same double (`repr`: 0.0001, 3e-5); typing accepts scientific notation; and
the arrows step a range spanning decades along 1-2-5 values (1e-4, 2e-4, 5e-4, 1e-3), others by
the parameter's step. Text is Python's float syntax (a '.' decimal point, whatever the locale),
the same as recipes and the command line use.
"""

from __future__ import annotations

import math
import re
from typing import Any, Optional

from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QWidget

#: Qt's largest `decimals` (DBL_MAX_10_EXP + DBL_DIG): rounding to it changes no double.
MAX_DECIMALS = 323
#: A range whose ends are this many times apart steps multiplicatively.
LOG_RANGE = 1000.0
_NICE = (1.0, 2.0, 5.0)
#: What may still become a number while being typed ("", "-", "3e", "3e-").
_PARTIAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d*)?([eE][+-]?\d*)?")


def float_text(value: float) -> str:
    """The shortest text that reads back as exactly `value` ('1e-05' written '1e-5')."""
    mantissa, e, exponent = repr(float(value)).partition("e")
    return f"{mantissa}e{int(exponent)}" if e else mantissa


def _tidy(value: float) -> float:
    """`value` to 12 significant digits: 0.6000000000000001 after stepping is 0.6."""
    return float(f"{value:.12g}")


def is_log_range(lo: Optional[float], hi: Optional[float]) -> bool:
    return lo is not None and hi is not None and lo > 0 and hi / lo >= LOG_RANGE


def nice_step(value: float, steps: int) -> float:
    """The `steps`-th 1-2-5 value above `value` (below it for negative steps); `value` > 0."""
    for _ in range(abs(steps)):
        exp = math.floor(math.log10(value))
        grid = [_tidy(m * 10.0 ** e) for e in (exp - 1, exp, exp + 1) for m in _NICE]
        if steps > 0:
            value = min(g for g in grid if g > value * (1 + 1e-9))
        else:
            value = max(g for g in grid if g < value * (1 - 1e-9))
    return value


class FloatSpinBox(QDoubleSpinBox):
    """See the module docstring. `log`: step along 1-2-5 values (for a range > 0 spanning
    decades) instead of adding `singleStep()`."""

    def __init__(self, log: bool = False, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setDecimals(MAX_DECIMALS)
        self.log = log

    def textFromValue(self, value: float) -> str:
        return float_text(value)

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> Any:
        s = text.strip()
        special = self.specialValueText()
        if special and s == special:
            return QValidator.State.Acceptable
        if special and s and special.startswith(s):
            return QValidator.State.Intermediate
        if not _PARTIAL.fullmatch(s):
            return QValidator.State.Invalid
        try:
            value = float(s)
        except ValueError:
            return QValidator.State.Intermediate  # "", "-", "3e-": still being typed
        # Out of range: Intermediate, so "3" on the way to "3e-5" can be typed; Qt goes back to
        # the last valid value if editing ends there.
        lo = self.minimum() + (self.singleStep() if special else 0.0)  # below: only "auto"
        inside = lo <= value <= self.maximum()
        return QValidator.State.Acceptable if inside else QValidator.State.Intermediate

    def stepBy(self, steps: int) -> None:
        value = self.value()
        if self.specialValueText() and value == self.minimum():  # "auto": up to the range
            value = self.minimum() + self.singleStep() if steps > 0 else value
        elif self.log and value > 0:
            value = nice_step(value, steps)
        else:
            value = _tidy(value + steps * self.singleStep())
        self.setValue(min(max(value, self.minimum()), self.maximum()))
        self.selectAll()
