"""PLACEHOLDER: Pruning. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class Prune(Technique):
    name = "prune"
    title = "Pruning"
    summary = "Not implemented yet."
    Params = Params
    stage = 10
    group = None

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = Prune()
