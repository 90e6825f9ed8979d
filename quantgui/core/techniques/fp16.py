"""PLACEHOLDER: FP16. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class Fp16(Technique):
    name = "fp16"
    title = "FP16"
    summary = "Not implemented yet."
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = Fp16()
