"""PLACEHOLDER: Transformer fast path. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class TransformerFastpath(Technique):
    name = "transformer_fastpath"
    title = "Transformer fast path"
    summary = "Not implemented yet."
    Params = Params
    stage = 20
    group = None

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = TransformerFastpath()
