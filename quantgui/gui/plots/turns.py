"""Plots that all changed at once (a result arrived, a run started) paint in turns.

Qt paints every dirty widget of a window in one pass, so a result that changes five plots
holds the event loop for all five paints at once (57-141 ms measured, issue 10). `paint_later`
keeps the given plots from painting (`setUpdatesEnabled(False)`; their data is already set)
and lets them paint one per event-loop turn, so a click or a timer is answered between them.
A held widget renders blank in `grab()`: the window, the results view and the plots release
every held widget first (`release_all`), as does anything else that grabs plots.
The turns are real timers: a 0 ms single shot is a posted event, handled in the same pass as
the paints it should come between.
"""

from __future__ import annotations

from typing import Any

import shiboken6
from PySide6.QtCore import QTimer

TURN_MS = 1
_held: list[Any] = []   # widgets waiting for their turn, in order
_waiting = [False]      # a turn is scheduled


def paint_later(*widgets: Any) -> None:
    """Each visible widget given paints in a later turn of its own (in the order given)."""
    for w in widgets:
        if w.isVisible() and w.updatesEnabled() and w not in _held:
            w.setUpdatesEnabled(False)
            _held.append(w)
    if _held and not _waiting[0]:
        _waiting[0] = True
        QTimer.singleShot(TURN_MS, _turn)


def release_all() -> None:
    """Every held widget may paint now: before a grab, which renders a held one blank."""
    while _held:
        w = _held.pop(0)
        if shiboken6.isValid(w):
            w.setUpdatesEnabled(True)


def held() -> list[Any]:
    """The widgets still waiting to paint (tests)."""
    return [w for w in _held if shiboken6.isValid(w)]


def _turn() -> None:
    _waiting[0] = False
    while _held:
        w = _held.pop(0)
        if shiboken6.isValid(w):  # (a window closed meanwhile deletes its plots)
            w.setUpdatesEnabled(True)  # (also schedules its paint)
            break
    if _held:
        _waiting[0] = True
        QTimer.singleShot(TURN_MS, _turn)
