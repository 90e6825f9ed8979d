"""PLACEHOLDER: Inference mode. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class InferenceMode(Technique):
    name = "inference_mode"
    title = "Inference mode"
    summary = "Not implemented yet."
    Params = Params
    stage = 90
    group = None

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = InferenceMode()
