"""The typed records that cross every boundary, torch-free: what a run produced, what the
engine says about a model and its techniques, what a recommendation found.

Every type has `to_json()` (strict JSON: non-finite numbers become None, a "schema" version on
the records that travel alone) and `from_json()` (the one reader: an exact round trip of
`to_json`, older files read as far as they go, a newer schema refused with a UserError). The
engine builds them (measure/ computes, run/ assembles); the CLI writes them; the GUI, history,
reports and projects read their fields. Importing this package never imports torch.
"""

from ._json import SCHEMA, check_schema, json_safe
from .accuracy import AccuracyChange, ClassAccuracy, Flip, Similarity
from .model import DataInfo, ModelInfo, TechniqueSpec, technique_specs
from .quality import Fidelity
from .recommendation import Recommendation, Trial, pick
from .sensitivity import SensitivityReport, UnitQuality, UnitSensitivity
from .run import Measurement, RunResult, StepReport, recipe_from_json
from .timing import LatencyStats, Timing
from .verdict import Verdict

__all__ = ["AccuracyChange", "ClassAccuracy", "DataInfo", "Fidelity", "Flip", "LatencyStats",
           "Measurement", "ModelInfo", "Recommendation", "RunResult", "SCHEMA", "SensitivityReport", "Similarity",
           "StepReport", "TechniqueSpec", "Timing", "Trial", "UnitQuality", "UnitSensitivity", "Verdict", "check_schema",
           "json_safe", "pick", "recipe_from_json", "technique_specs"]
