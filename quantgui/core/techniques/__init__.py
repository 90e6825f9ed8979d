"""Registry of techniques. Adding one: write a module with a `TECHNIQUE` instance, list it here."""

from __future__ import annotations

import importlib

from ..errors import UserError
from .base import StepContext, Technique
from .hooks import (Hint, ModelTraits, NoScript, ScriptCode, StepRecord, VerdictContext,
                    fast_formats)

# Display and default-recipe order; recipe validation uses each technique's `stage`.
_MODULES = (
    "prune",
    "transformer_fastpath",
    "dynamic_int8",
    "static_int8",
    "qat_int8",
    "weight_only_int8",
    "weight_only_int4",
    "fp16",
    "bf16",
    "channels_last",
    "freeze",
    "compile",
    "runtime_ort",
    "runtime_openvino",
    "runtime_aoti",
    "inference_mode",
)

_registry: dict[str, Technique] = {}


def all_techniques() -> dict[str, Technique]:
    if not _registry:
        for mod in _MODULES:
            tech = importlib.import_module(f"{__name__}.{mod}").TECHNIQUE
            _registry[tech.name] = tech
    return _registry


def get(name: str) -> Technique:
    techs = all_techniques()
    if name not in techs:
        raise UserError(f"unknown technique '{name}'; known: {', '.join(techs)}")
    return techs[name]


__all__ = ["Hint", "ModelTraits", "NoScript", "ScriptCode", "StepContext", "StepRecord",
           "Technique", "VerdictContext", "all_techniques", "fast_formats", "get"]
