"""What the engine tells a face about the model it opened (`ModelInfo`), that model's data
(`DataInfo`) and the techniques it offers (`TechniqueSpec`): enough to show the model, build the
technique panels and run `preflight` without torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import UserError
from ..params import ParamSpec
from . import _json as j


@dataclass
class ModelInfo:
    source: str                    # what the user opened: "example:digits-cnn", a path
    format: str                    # "example", "torchscript", "exported", "state_dict",
                                   # "pickled", "huggingface"
    name: str                      # class name (or HF model type)
    parameters: int
    size_bytes: int                # serialized size of the model as it would be saved
    layer_counts: dict[str, int]   # leaf module type -> count
    example_input: Optional[str]   # e.g. "(8, 1, 8, 8) float32"; None: the model has none yet
    #: technique name -> None when it applies, else the reason it does not.
    applicability: dict[str, Optional[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Shape of the (primary) output on the example input; None until the model has run on one.
    output_shape: Optional[list[int]] = None
    #: Qualified names of the model's submodules (what skip patterns match); empty when it has
    #: none to name (TorchScript, an exported program) or the info predates them.
    module_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"schema": j.SCHEMA, "source": self.source, "format": self.format,
                            "name": self.name, "parameters": self.parameters,
                            "size_bytes": self.size_bytes,
                            "layer_counts": dict(self.layer_counts),
                            "example_input": self.example_input,
                            "applicability": dict(self.applicability),
                            "notes": list(self.notes), "output_shape": self.output_shape,
                            "module_names": list(self.module_names)})

    @classmethod
    def from_json(cls, data: Any, where: str = "model info") -> "ModelInfo":
        data = j.check_schema(data, where, "model description")
        counts = {str(k): v for k, v in j.obj(data, "layer_counts").items()
                  if isinstance(v, int) and not isinstance(v, bool)}
        applies = {str(k): (v if isinstance(v, str) else None)
                   for k, v in j.obj(data, "applicability").items()}
        shape = j.items(data, "output_shape")
        return cls(j.text(data, "source"), j.text(data, "format"), j.text(data, "name"),
                   j.whole(data, "parameters"), j.whole(data, "size_bytes"), counts,
                   j.maybe_text(data, "example_input"), applies, j.texts(data, "notes"),
                   [int(n) for n in shape if isinstance(n, int) and not isinstance(n, bool)]
                   if "output_shape" in data and data["output_shape"] is not None else None,
                   j.texts(data, "module_names"))


@dataclass
class DataInfo:
    """One split of a model's data as preflight sees it: how many samples, whether labeled,
    the range of the labels."""

    name: str
    samples: int
    labeled: bool
    label_min: Optional[int] = None
    label_max: Optional[int] = None
    #: How many named classes the data has (image subfolders, named labels), None: unnamed.
    classes: Optional[int] = None

    @classmethod
    def of(cls, dataset: Any) -> Optional["DataInfo"]:
        """The facts of a `data.Dataset` (None stays None)."""
        if dataset is None:
            return None
        labels = getattr(dataset, "labels", None)
        names = getattr(dataset, "classes", None)
        count = len(names) if names else None
        n = len(dataset)
        if labels is None or len(labels) == 0:
            return cls(str(dataset.name), n, labels is not None, classes=count)
        return cls(str(dataset.name), n, True, int(labels.min()), int(labels.max()), count)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "samples": self.samples, "labeled": self.labeled,
                "label_min": self.label_min, "label_max": self.label_max,
                "classes": self.classes}

    @classmethod
    def from_json(cls, data: Any) -> Optional["DataInfo"]:
        if not isinstance(data, dict):
            return None
        return cls(j.text(data, "name"), j.whole(data, "samples"), j.flag(data, "labeled"),
                   j.maybe_whole(data, "label_min"), j.maybe_whole(data, "label_max"),
                   j.maybe_whole(data, "classes"))


@dataclass(frozen=True)
class TechniqueSpec:
    """A technique as data: what panels show, parsers accept and preflight checks (the
    technique itself, with its torch code, stays in the engine)."""

    name: str
    title: str
    summary: str
    stage: int
    group: Optional[str] = None
    needs_labels: bool = False
    params: tuple[ParamSpec, ...] = ()

    @classmethod
    def of(cls, technique: Any) -> "TechniqueSpec":
        """The spec of a registered `techniques.base.Technique`."""
        from ..params import specs
        return cls(technique.name, technique.title, technique.summary, technique.stage,
                   technique.group, bool(technique.needs_labels),
                   tuple(specs(technique.Params)))

    def param(self, name: str) -> Optional[ParamSpec]:
        return next((p for p in self.params if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"schema": j.SCHEMA, "name": self.name, "title": self.title,
                "summary": self.summary, "stage": self.stage, "group": self.group,
                "needs_labels": self.needs_labels, "params": [p.to_json() for p in self.params]}

    @classmethod
    def from_json(cls, data: Any, where: str = "technique") -> "TechniqueSpec":
        data = j.check_schema(data, where, "technique description")
        name = j.text(data, "name")
        if not name:
            raise UserError(f"{where}: a technique without a name")
        return cls(name, j.text(data, "title", name), j.text(data, "summary"),
                   j.whole(data, "stage"), j.maybe_text(data, "group"),
                   j.flag(data, "needs_labels"),
                   tuple(ParamSpec.from_json(p, f"{where} {name}")
                         for p in j.items(data, "params")))


_specs_of: tuple[tuple, dict[str, TechniqueSpec]] = ((), {})


def technique_specs() -> dict[str, TechniqueSpec]:
    """The registered techniques as specs, in registry order (imports the registry, hence
    torch: a face without torch gets them from the engine as JSON). Made again only when the
    registry changed (tests register their own techniques)."""
    global _specs_of
    from ..techniques import all_techniques
    registry = all_techniques()
    key = tuple((name, id(t)) for name, t in registry.items())
    if key != _specs_of[0]:
        _specs_of = (key, {name: TechniqueSpec.of(t) for name, t in registry.items()})
    return dict(_specs_of[1])
