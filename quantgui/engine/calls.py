"""What every engine method takes and checks: the `Call` (its task, the store, a way to send
partial results), the cancel that carries what was found so far, and the parameter checks whose
refusals are one-line `ProtocolError`s."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from quantgui.core import Cancelled

from .protocol import ProtocolError
from .state import Store


class CancelledWith(Cancelled):
    """Cancelled, with what was found so far (recommend's best) for the error's data."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__("cancelled by the user")
        self.data = data


@dataclasses.dataclass
class Call:
    task: Any                                   # core.progress.Task of this request
    store: Store
    partial: Callable[[dict[str, Any]], None]   # sends a "partial" event


def _only(params: dict, allowed: tuple[str, ...]) -> dict:
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise ProtocolError(f"unknown parameter(s) {', '.join(extra)} (expected "
                            f"{', '.join(allowed)})")
    return {k: v for k, v in params.items() if v is not None}


def _need(params: dict, name: str) -> Any:
    if params.get(name) in (None, ""):
        raise ProtocolError(f"missing parameter \"{name}\"")
    return params[name]


def _count(params: dict, name: str) -> int:
    value = _need(params, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ProtocolError(f"\"{name}\" must be a whole number from 1, got {value!r:.40}")
    return value
