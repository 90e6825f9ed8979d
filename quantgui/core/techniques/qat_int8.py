"""PLACEHOLDER: Quantization-aware INT8. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class QatInt8(Technique):
    name = "qat_int8"
    title = "Quantization-aware INT8"
    summary = "Not implemented yet."
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = QatInt8()
