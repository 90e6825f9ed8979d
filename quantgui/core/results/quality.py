"""How closely the optimized model's outputs follow the original's (measure/quality.py
measures it). JSON has no Infinity/NaN: see `Fidelity.to_json` and `from_json` for how the
non-finite values travel."""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Optional

from . import _json as j


@dataclass
class Fidelity:
    top1_agreement: Optional[float]  # None when the output has no class axis
    cosine: float                    # mean over samples of the flattened outputs
    cosine_min: float
    max_abs_error: float
    sqnr_db: float                   # math.inf when the outputs are identical
    samples: int
    nonfinite: int = 0               # NaN/Inf values in the optimized outputs

    def to_json(self) -> dict[str, Any]:
        # JSON has no Infinity/NaN: non-finite values become None. An infinite SQNR
        # (identical outputs) is told apart by max_abs_error == 0 (see from_json).
        return j.json_safe({"top1_agreement": self.top1_agreement, "cosine": self.cosine,
                            "cosine_min": self.cosine_min, "max_abs_error": self.max_abs_error,
                            "sqnr_db": self.sqnr_db, "samples": self.samples,
                            "nonfinite": self.nonfinite})

    @classmethod
    def from_json(cls, data: Any) -> "Fidelity":
        """None (not finite, or missing) comes back as NaN, except the SQNR of identical outputs
        (max_abs_error 0), which is +inf again. (A SQNR of -inf, an all-zero original, also
        comes back as NaN: neither is a number a face shows.)"""
        err = j.real(data, "max_abs_error")
        sqnr = j.number(data, "sqnr_db")
        if sqnr is None:
            sqnr = math.inf if err == 0 else math.nan
        return cls(j.number(data, "top1_agreement"), j.real(data, "cosine"),
                   j.real(data, "cosine_min"), err, sqnr, j.whole(data, "samples"),
                   j.whole(data, "nonfinite"))

    @property
    def identical(self) -> bool:
        """The optimized outputs equal the original's exactly."""
        return self.max_abs_error == 0
