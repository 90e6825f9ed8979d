"""PLACEHOLDER: torch.compile. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class Compile(Technique):
    name = "compile"
    title = "torch.compile"
    summary = "Not implemented yet."
    Params = Params
    stage = 50
    group = 'graph'

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = Compile()
