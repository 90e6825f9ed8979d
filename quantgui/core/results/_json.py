"""JSON for the result types: strict output (`json_safe`) and tolerant readers.

Results cross the process boundary and live in project files as JSON. Writing: `json_safe`
turns every non-finite float into None (JSON has no NaN/Infinity). Reading: a result is data a
file may have damaged or an older QuantGUI may have written without some field, so each reader
takes what has the right type and falls back to "unknown" otherwise (None, NaN, 0, empty):
a number that is not a finite number is never shown as one. Only a newer schema than this
QuantGUI knows is refused (`check_schema`), with a UserError naming where it was read.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..errors import UserError

#: The version of the JSON every result type writes under "schema"; files without one are 1.
SCHEMA = 1

NAN = math.nan


def json_safe(value: Any) -> Any:
    """`value` as data `json.dumps(..., allow_nan=False)` accepts: non-finite floats become
    None, tuples lists, keys strings; scalars with `.item()` (numpy, one-element tensors) their
    Python value; anything else its text."""
    if isinstance(value, bool) or value is None or type(value) in (str, int):
        return value
    if isinstance(value, str):  # str subclasses (torch.__version__) as plain text
        return str(value)
    if isinstance(value, int):  # int subclasses (enums) as plain numbers
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError, RuntimeError):  # a tensor of more than one value
            pass
    return str(value)


def check_schema(data: Any, where: str, what: str = "result") -> dict:
    """`data` as a dict whose "schema" this QuantGUI reads; UserError otherwise."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a {what} (expected a JSON object)")
    version = data.get("schema", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"{where}: \"schema\" must be a whole number from 1, got {version!r:.40}")
    if version > SCHEMA:
        raise UserError(f"{where}: this {what} was written by a newer QuantGUI (schema "
                        f"{version}; this one reads up to {SCHEMA}): update QuantGUI to open it")
    return data


# --- tolerant readers ---------------------------------------------------------------------------

def obj(data: Any, key: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def number(data: Any, key: str) -> Optional[float]:
    """A finite number, or None."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def real(data: Any, key: str) -> float:
    """A number that JSON may have stored as None because it was not finite: NaN then."""
    value = number(data, key)
    return NAN if value is None else value


def whole(data: Any, key: str, default: int = 0) -> int:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def maybe_whole(data: Any, key: str) -> Optional[int]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text(data: Any, key: str, default: str = "") -> str:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else default


def maybe_text(data: Any, key: str) -> Optional[str]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def texts(data: Any, key: str) -> list[str]:
    value = data.get(key) if isinstance(data, dict) else None
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def items(data: Any, key: str) -> list:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, list) else []


def flag(data: Any, key: str) -> bool:
    return (data.get(key) if isinstance(data, dict) else None) is True


def numbers(values: Any) -> list[float]:
    """The finite numbers of a list (anything else is dropped: it cannot be plotted)."""
    out = []
    for v in values if isinstance(values, list) else []:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append(float(v))
    return out
