"""PLACEHOLDER: Channels-last. To be replaced by its real implementation."""

from dataclasses import dataclass

from .base import Technique


@dataclass
class Params:
    pass


class ChannelsLast(Technique):
    name = "channels_last"
    title = "Channels-last"
    summary = "Not implemented yet."
    Params = Params
    stage = 40
    group = None

    def applies_to(self, model):
        return "not implemented yet"


TECHNIQUE = ChannelsLast()
