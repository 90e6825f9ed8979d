"""PLACEHOLDER: Dynamic INT8. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class DynamicInt8(Technique):
    name = "dynamic_int8"
    title = "Dynamic INT8"
    summary = "Not implemented yet."
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = DynamicInt8()
