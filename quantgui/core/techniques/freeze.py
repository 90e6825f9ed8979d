"""PLACEHOLDER: Freeze (optimize for inference). To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class Freeze(Technique):
    name = "freeze"
    title = "Freeze (optimize for inference)"
    summary = "Not implemented yet."
    Params = Params
    stage = 50
    group = 'graph'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = Freeze()
