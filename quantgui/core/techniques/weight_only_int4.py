"""PLACEHOLDER: Weight-only INT4. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class WeightOnlyInt4(Technique):
    name = "weight_only_int4"
    title = "Weight-only INT4"
    summary = "Not implemented yet."
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = WeightOnlyInt4()
