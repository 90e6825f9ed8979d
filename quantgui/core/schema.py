"""A small validator for the JSON files QuantGUI reads (recipes, projects).

Each file format declares its schema next to its `to_json` (recipe.py, export/project.py) out
of the nodes here. `check` stops at the first bad value and names it by its JSON path, so every
problem is one line naming the file and the place:

    recipe.json: $.steps[3].params.amount: must be a finite number, got NaN
    s.qgproj.json: $.entries[2].recipe.steps[0].name: unknown technique 'foo' (known: ...)

No third-party validator: a handful of node types is all two formats need. Files carry a
`version`: missing means 1 (files written before there was one), a newer one than this QuantGUI
knows is refused with "update QuantGUI" (its meaning may have changed), anything but a positive
whole number is refused. Steps are checked against the technique registry and each technique's
ParamSpecs (`params.check`), the same rules the CLI's --step and the GUI's panels follow.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional

from . import params as params_mod
from .errors import UserError
from .params import shown

#: Default length limit of a text value (labels, names, dates).
MAX_TEXT = 10_000
#: Measured data (a run's result, the environment): free-form JSON within these limits.
DATA_MAX_DEPTH = 16
DATA_MAX_VALUES = 200_000
DATA_MAX_TEXT = 100_000
#: Integers in measured data are counts and byte sizes; past this they are not measurements
#: (and would overflow the float arithmetic that shows them).
DATA_MAX_INT = 2**63


def json_path(parts: Any) -> str:
    """The JSON path of ("steps", 3, "params"): $.steps[3].params (odd keys quoted, cut short)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", part):
            out += f".{part}"
        else:
            out += "[" + json.dumps(part[:64] + ("…" if len(part) > 64 else "")) + "]"
    return out


class Invalid(Exception):
    """The first bad value: its JSON path (as parts) and why."""

    def __init__(self, parts: tuple, reason: str) -> None:
        super().__init__(f"{json_path(parts)}: {reason}")
        self.parts, self.reason = parts, reason


def check(node: "Node", value: Any, where: str, parts: tuple = ()) -> Any:
    """`value` checked (and normalised) by `node`; a UserError "<where>: <path>: <reason>"."""
    try:
        return node.check(value, parts)
    except Invalid as exc:
        raise UserError(f"{where}: {exc}") from None


def kind(value: Any) -> str:
    """What a JSON value is, for "must be X, got Y"."""
    if isinstance(value, bool) or value is None:
        return shown(value)
    if isinstance(value, (int, float)):
        return f"the number {shown(value)}"
    if isinstance(value, str):
        return f"the text {shown(value)}"
    return shown(value)


class Node:
    def check(self, value: Any, parts: tuple) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Node):
    max_len: int = MAX_TEXT

    def check(self, value: Any, parts: tuple) -> Any:
        if not isinstance(value, str):
            raise Invalid(parts, f"must be text, got {kind(value)}")
        if len(value) > self.max_len:
            raise Invalid(parts, f"is {len(value):,} characters long (at most {self.max_len:,})")
        return value


@dataclass(frozen=True)
class Const(Node):
    """Exactly this value (a file format marker)."""
    value: Any
    reason: str

    def check(self, value: Any, parts: tuple) -> Any:
        if type(value) is not type(self.value) or value != self.value:
            raise Invalid(parts, f"{self.reason} (expected {shown(self.value)}, got "
                                 f"{kind(value)})")
        return value


@dataclass(frozen=True)
class Version(Node):
    """A file's format version: a positive whole number no newer than `current`."""
    current: int
    what: str

    def check(self, value: Any, parts: tuple) -> Any:
        # bool is a subclass of int: `"version": true` would otherwise read as version 1
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise Invalid(parts, f"must be a positive whole number, got {kind(value)}")
        if value > self.current:
            raise Invalid(parts, f"{self.what} version {shown(value)} is newer than this QuantGUI "
                                 f"understands ({self.current}); update QuantGUI")
        return value


@dataclass(frozen=True)
class Nullable(Node):
    """`node`, or null."""
    node: Node

    def check(self, value: Any, parts: tuple) -> Any:
        return None if value is None else self.node.check(value, parts)


@dataclass(frozen=True)
class ListOf(Node):
    item: Node
    max_len: int
    too_many: str = "items"

    def check(self, value: Any, parts: tuple) -> Any:
        if not isinstance(value, list):
            raise Invalid(parts, f"must be a list, got {kind(value)}")
        if len(value) > self.max_len:
            raise Invalid(parts, f"has {len(value):,} {self.too_many}; at most {self.max_len:,}")
        return [self.item.check(v, parts + (i,)) for i, v in enumerate(value)]


@dataclass(frozen=True)
class Obj(Node):
    """An object with these keys (in this order of checking); `required` ones must be there.
    Other keys are refused unless `rest` checks them (free-form parts)."""
    keys: dict
    required: tuple = ()
    rest: Optional[Node] = None

    def check(self, value: Any, parts: tuple) -> Any:
        if not isinstance(value, dict):
            raise Invalid(parts, f"must be an object, got {kind(value)}")
        out = {}
        for key, node in self.keys.items():  # declared order: e.g. the version comes first
            if key in value:
                out[key] = node.check(value[key], parts + (key,))
            elif key in self.required:
                raise Invalid(parts, f"'{key}' is missing")
        for key, item in value.items():
            if key in self.keys:
                continue
            if not isinstance(key, str):
                raise Invalid(parts, f"has a key that is not text: {shown(key)}")
            if self.rest is None:
                raise Invalid(parts + (key,), f"unknown key (known: {', '.join(self.keys)})")
            out[key] = self.rest.check(item, parts + (key,))
        return out


@dataclass(frozen=True)
class Data(Node):
    """Measured data as QuantGUI writes it: JSON within depth/size limits whose numbers are
    finite (or null), an object when `is_object`. Its inner layout is not checked here."""
    is_object: bool = False
    max_depth: int = DATA_MAX_DEPTH
    max_values: int = DATA_MAX_VALUES

    def check(self, value: Any, parts: tuple) -> Any:
        if self.is_object and not isinstance(value, dict):
            raise Invalid(parts, f"must be an object, got {kind(value)}")
        count, stack = 0, [(value, parts)]
        while stack:
            item, where = stack.pop()
            count += 1
            if count > self.max_values:
                raise Invalid(parts, f"holds more than {self.max_values:,} values")
            if len(where) - len(parts) > self.max_depth:
                raise Invalid(where, f"nested more than {self.max_depth} levels deep")
            if isinstance(item, dict):
                for k, v in item.items():
                    if not isinstance(k, str) or len(k) > DATA_MAX_TEXT:
                        raise Invalid(where, f"has a key that is not short text: {shown(k)}")
                    stack.append((v, where + (k,)))
            elif isinstance(item, list):
                stack.extend((v, where + (i,)) for i, v in enumerate(item))
            elif isinstance(item, float) and not math.isfinite(item):
                raise Invalid(where, f"must be a finite number or null, got {shown(item)}")
            elif isinstance(item, int) and not isinstance(item, bool) and \
                    abs(item) > DATA_MAX_INT:
                raise Invalid(where, f"is too large for a measurement ({shown(item)})")
            elif isinstance(item, str) and len(item) > DATA_MAX_TEXT:
                raise Invalid(where, f"is {len(item):,} characters long "
                                     f"(at most {DATA_MAX_TEXT:,})")
            elif not isinstance(item, (str, int, float, bool)) and item is not None:
                raise Invalid(where, f"is not JSON data ({type(item).__name__})")
        return value


@dataclass(frozen=True)
class Steps(Node):
    """A recipe's steps: known techniques, each at most once, with parameters their
    ParamSpecs accept; returns [{"name", "params"}] with the values coerced. `techniques`:
    name -> TechniqueSpec to check against (the GUI has the engine's; it never imports torch);
    None: the registry (which imports torch)."""
    techniques: Any = None

    def check(self, value: Any, parts: tuple) -> Any:
        techs = self.techniques
        if techs is None:
            from .results.model import technique_specs
            techs = technique_specs()
        if not isinstance(value, list):
            raise Invalid(parts, f"must be a list, got {kind(value)}")
        if len(value) > len(techs):  # each technique at most once
            raise Invalid(parts, f"has {len(value):,} steps; a recipe has at most {len(techs)} "
                                 f"(each technique once)")
        first: dict[str, int] = {}
        out = []
        for i, raw in enumerate(value):
            at = parts + (i,)
            step = _STEP.check(raw, at)
            name = step["name"]
            if name not in techs:
                raise Invalid(at + ("name",), f"unknown technique {shown(name)} "
                                              f"(known: {', '.join(techs)})")
            if name in first:
                raise Invalid(at + ("name",), f"'{name}' appears twice (first at "
                                              f"{json_path(parts + (first[name],))}); a recipe "
                                              f"uses each technique once")
            first[name] = i
            out.append({"name": name,
                        "params": step_params(techs[name], step.get("params", {}),
                                              at + ("params",))})
        return out


def step_params(tech: Any, value: Any, parts: tuple) -> dict:
    """A step's parameters checked by the technique's ParamSpecs (a `TechniqueSpec`'s
    `params`; values coerced)."""
    if not isinstance(value, dict):
        raise Invalid(parts, f"must be an object, got {kind(value)}")
    specs = {s.name: s for s in tech.params}
    out = {}
    for key, item in value.items():
        if key not in specs:
            raise Invalid(parts + (str(key),), f"unknown parameter of {tech.name} "
                                               f"(known: {', '.join(specs) or 'none'})")
        try:
            out[key] = params_mod.check(specs[key], item)
        except params_mod.ParamError as exc:
            raise Invalid(parts + (key,), str(exc)) from None
    return out


class Raw(Node):
    """Any value, checked later by its owner (a step's parameters, by its technique)."""

    def check(self, value: Any, parts: tuple) -> Any:
        return value


_STEP = Obj({"name": Text(200), "params": Raw()}, required=("name",))


# --- locating a problem in JSON text (safeload.parse_json names where the file is bad) ----------

def _first(data: Any, bad: Any) -> Optional[tuple[str, Any]]:
    """(JSON path, value) of the first value in document order for which `bad(value)`; walks
    with one iterator per open container, so memory follows the depth, not the size."""
    if bad(data):
        return "$", data
    if not isinstance(data, (dict, list)):
        return None
    parts: list = []
    stack = [iter(data.items() if isinstance(data, dict) else enumerate(data))]
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            if parts:
                parts.pop()
            continue
        key, item = step
        if bad(item):
            return json_path(parts + [key]), item
        if isinstance(item, (dict, list)):
            parts.append(key)
            stack.append(iter(item.items() if isinstance(item, dict) else enumerate(item)))
    return None


def non_finite_path(data: Any) -> Optional[tuple[str, str]]:
    """(path, JSON spelling) of the first NaN/Infinity, or None."""
    found = _first(data, lambda v: isinstance(v, float) and not math.isfinite(v))
    if found is None:
        return None
    path, value = found
    return path, "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


NON_FINITE = re.compile(r"NaN|Infinity")
# Strings (with their escapes) and the characters that open, close or separate JSON values.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def deep_path(text: str, limit: int) -> str:
    """The JSON path of the first container nested deeper than `limit`, found by scanning the
    text (the parser may have given up); the path is cut after its first parts."""
    stack: list[list] = []   # [index of the current item] in a list, [current key] in an object
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            if len(stack) >= limit:
                break
            stack.append([0] if token == "[" else [None])
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ",":
            if stack:
                stack[-1][0] = stack[-1][0] + 1 if isinstance(stack[-1][0], int) else None
        elif stack and stack[-1][0] is None:  # a string where an object expects its key
            try:
                stack[-1][0] = str(json.loads(token))
            except ValueError:
                stack[-1][0] = token[1:-1]
    parts = [frame[0] if frame[0] is not None else "?" for frame in stack]
    return json_path(parts[:8]) + ("…" if len(parts) > 8 else "")


def long_int_path(text: str) -> str:
    """The JSON path of the first integer too long to convert (parsed again, keeping it as text)."""
    def keep_long(digits: str) -> Any:
        return _LongInt(digits) if len(digits.lstrip("-")) > limit else int(digits)
    limit = int_digit_limit()
    try:
        found = _first(json.loads(text, parse_int=keep_long), lambda v: isinstance(v, _LongInt))
    except (ValueError, RecursionError):
        found = None
    return found[0] if found else "$"


def int_digit_limit() -> int:
    """Python's limit on the digits of an integer read from text (int() refuses more)."""
    return getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300


class _LongInt(str):
    """An integer literal too long for int(), kept as its digits to be located."""
