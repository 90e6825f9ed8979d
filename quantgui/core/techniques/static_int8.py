"""PLACEHOLDER: Static INT8. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class StaticInt8(Technique):
    name = "static_int8"
    title = "Static INT8"
    summary = "Not implemented yet."
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = StaticInt8()
