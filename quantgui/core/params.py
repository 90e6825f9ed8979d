"""Technique parameters as dataclass fields with the metadata a form needs.

    @dataclass
    class Params:
        amount: float = param(0.5, "Fraction of weights to zero.", min=0.0, max=0.95, step=0.05)
        method: str = param("l1_unstructured", "How weights are chosen.",
                            choices=("l1_unstructured", "ln_structured"))

The GUI builds a widget per field from this metadata (spin boxes with ranges, combos for
choices, tooltips from help), the CLI parses `key=value` with it and recipes validate with it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Optional, Sequence

from .errors import UserError


def param(default: Any, help: str, *, min: Optional[float] = None, max: Optional[float] = None,
          step: Optional[float] = None, choices: Optional[Sequence[Any]] = None,
          label: Optional[str] = None) -> Any:
    meta = {"help": help, "min": min, "max": max, "step": step,
            "choices": tuple(choices) if choices is not None else None, "label": label}
    if isinstance(default, list):  # a list parameter: each instance gets its own list
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter as a form or a parser sees it."""

    name: str
    type: type
    default: Any
    help: str
    min: Optional[float] = None
    max: Optional[float] = None
    step: Optional[float] = None
    choices: Optional[tuple] = None
    label: Optional[str] = None
    optional: bool = False  # None is allowed (e.g. "auto")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type.__name__, "default": self.default,
                "help": self.help, "min": self.min, "max": self.max, "step": self.step,
                "choices": list(self.choices) if self.choices else None,
                "optional": self.optional, "label": self.label}

    @classmethod
    def from_json(cls, data: Any, where: str = "parameter") -> "ParamSpec":
        """The spec `to_json` wrote (a face builds its forms from the engine's specs)."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise UserError(f"{where}: a parameter without a name")
        typ = TYPES.get(data.get("type"))
        if typ is None:
            raise UserError(f"{where}: parameter '{data['name']}' has an unknown type "
                            f"{shown(data.get('type'))}")

        def num(key: str) -> Optional[float]:
            v = data.get(key)
            return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        choices = data.get("choices")
        label = data.get("label")
        return cls(data["name"], typ, data.get("default"), str(data.get("help") or ""),
                   num("min"), num("max"), num("step"),
                   tuple(choices) if isinstance(choices, list) and choices else None,
                   label if isinstance(label, str) else None, data.get("optional") is True)


#: The parameter types a spec may have, by the name `ParamSpec.to_json` writes. A `list`
#: parameter is a list of short texts (e.g. module-name patterns): JSON holds a list, the CLI
#: and the GUI's line edit write it comma-separated.
TYPES: dict[Any, type] = {"int": int, "float": float, "str": str, "bool": bool, "list": list}


def _resolve_type(annotation: Any) -> tuple[type, bool]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    import types
    if isinstance(annotation, types.UnionType):
        args = [a for a in annotation.__args__ if a is not type(None)]
        return args[0], True
    return annotation, False


def specs(params_cls: type) -> list[ParamSpec]:
    hints = typing.get_type_hints(params_cls)
    out = []
    for f in fields(params_cls):
        typ, optional = _resolve_type(hints[f.name])
        typ = typing.get_origin(typ) or typ  # list[str] -> list
        meta = f.metadata
        default = (f.default if f.default is not MISSING else
                   f.default_factory() if f.default_factory is not MISSING else None)
        out.append(ParamSpec(f.name, typ, default, meta.get("help", ""), meta.get("min"),
                             meta.get("max"), meta.get("step"), meta.get("choices"),
                             meta.get("label"), optional))
    return out


class ParamError(ValueError):
    """Why a value does not fit a parameter ("must be a finite number, got nan"); callers add
    where it came from (a step and parameter name, or a JSON path)."""


#: Text longer than this is no parameter value (choices and engine names are short).
MAX_TEXT = 200


def shown(value: Any) -> str:
    """A value as an error message quotes it: short, and JSON's spelling for the odd ones."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int) and value.bit_length() > 64:
        try:
            return f"a {len(str(abs(value)))}-digit integer"
        except ValueError:  # str() refuses integers of over 4300 digits
            return "an integer of over 4300 digits"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def check(spec: ParamSpec, value: Any) -> Any:
    """`value` coerced to `spec`'s type (strings are parsed) and checked against its choices and
    bounds; ParamError saying why not. Numbers must be finite: NaN passes every `<` test and
    would reach the technique as a valid amount or learning rate."""
    if value is None:
        if spec.optional:
            return None
        raise ParamError("may not be empty")
    if isinstance(value, str) and len(value) > MAX_TEXT and spec.type is not list:
        raise ParamError(f"is {len(value):,} characters long; no value is longer than {MAX_TEXT}")
    if isinstance(value, str) and spec.optional and value.lower() in ("auto", "none", ""):
        return None
    if spec.type is list:
        return _text_list(value)
    if isinstance(value, (dict, list, tuple)):
        raise ParamError(f"must be {spec.type.__name__}, got {shown(value)}")
    try:
        value = _convert(spec.type, value)
    except OverflowError:
        raise ParamError(f"{shown(value)} is too large for a number") from None
    except (TypeError, ValueError):
        raise ParamError(f"must be {spec.type.__name__}, got {shown(value)}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError(f"must be a finite number, got {shown(value)}")
    if spec.choices is not None and value not in spec.choices:
        raise ParamError(f"must be one of {', '.join(map(str, spec.choices))}; got {shown(value)}")
    if spec.min is not None and value < spec.min:
        raise ParamError(f"{shown(value)} is below its minimum {spec.min}")
    if spec.max is not None and value > spec.max:
        raise ParamError(f"{shown(value)} is above its maximum {spec.max}")
    return value


#: A list parameter holds at most this many items (a skip list names layers; a model has a few
#: thousand at most).
MAX_ITEMS = 10_000


def _text_list(value: Any) -> list:
    """A list parameter's value: a list of non-empty texts, or one text of comma-separated items
    (what the CLI and the GUI's line edit write); blanks around items are dropped."""
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, (list, tuple)):
        raise ParamError(f"must be a list of texts, got {shown(value)}")
    if len(value) > MAX_ITEMS:
        raise ParamError(f"has {len(value):,} items; at most {MAX_ITEMS:,}")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise ParamError(f"must be a list of texts, got an item {shown(item)}")
        if len(item) > MAX_TEXT:
            raise ParamError(f"has an item {len(item):,} characters long; at most {MAX_TEXT}")
        if item.strip():
            out.append(item.strip())
    return out


def list_text(value: Any) -> str:
    """A list parameter as the CLI and the GUI's line edit write it: 'a,b'."""
    return ",".join(value) if isinstance(value, (list, tuple)) else "" if value is None \
        else str(value)


def _convert(typ: type, value: Any) -> Any:
    if typ is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ValueError(value)
        return value
    if typ is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)  # (NaN and infinities are not integers either)
        return int(value)
    if typ is float:
        if isinstance(value, bool):
            raise ValueError(value)
        return float(value)  # OverflowError for integers beyond the float range
    if typ is str:
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    return value


def _coerce(spec: ParamSpec, value: Any, where: str) -> Any:
    try:
        return check(spec, value)
    except ParamError as exc:
        raise UserError(f"{where}: parameter '{spec.name}': {exc}") from None


def problems(param_specs: Sequence[ParamSpec], values: Optional[dict]
             ) -> list[tuple[Optional[str], str]]:
    """Why `values` do not fit the specs, as (parameter or None, reason) pairs: unknown names
    first (one pair), then each value `check` refuses. Empty when they fit."""
    values = dict(values or {})
    by_name = {s.name: s for s in param_specs}
    out: list[tuple[Optional[str], str]] = []
    unknown = sorted(set(values) - set(by_name), key=str)
    if unknown:
        out.append((None, f"unknown parameter(s) {', '.join(map(str, unknown))}; "
                          f"known: {', '.join(by_name) or 'none'}"))
    for name, value in values.items():
        if name in by_name:
            try:
                check(by_name[name], value)
            except ParamError as exc:
                out.append((name, f"parameter '{name}': {exc}"))
    return out


def build(params_cls: type, values: Optional[dict], where: str = "step") -> Any:
    """Validated instance of `params_cls` from a dict (strings are parsed); UserError otherwise."""
    values = dict(values or {})
    found = problems(specs(params_cls), values)
    if found:
        raise UserError(f"{where}: {found[0][1]}")
    by_name = {s.name: s for s in specs(params_cls)}
    kwargs = {name: _coerce(by_name[name], v, where) for name, v in values.items()}
    return params_cls(**kwargs)


def to_dict(params: Any) -> dict:
    return dataclasses.asdict(params)


def parse_kv(text: str, where: str = "step") -> dict:
    """'a=1,b=x' -> {'a': '1', 'b': 'x'} (values are coerced later by `build`). A part without
    '=' continues the value before it, so a list parameter reads naturally:
    'skip=encoder.layer.5.*,classifier,per_channel=false' -> skip 'encoder.layer.5.*,classifier'
    (a list parameter splits it at the commas)."""
    out: dict[str, str] = {}
    if not text:
        return out
    last = None
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            if last is None:
                raise UserError(f"{where}: expected key=value, got {part!r}")
            out[last] += "," + part.strip()
            continue
        k, v = part.split("=", 1)
        last = k.strip()
        out[last] = v.strip()
    return out
