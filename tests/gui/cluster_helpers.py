"""What the Sweep and Auto-tune views' cluster tests share: typing an address into the view's
Cluster address field, and recording what the window sends to the engine."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt


def enter_address(qtbot: Any, field: Any, text: str) -> None:
    field.clear()
    qtbot.keyClicks(field, text)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def record_requests(window: Any, monkeypatch: Any) -> list:
    """[(method, params)] of every request the window submits from now on (still sent)."""
    sent: list = []
    submit = window.engine.submit
    monkeypatch.setattr(window.engine, "submit",
                        lambda method, params=None, **kw: (sent.append((method, params)),
                                                           submit(method, params, **kw))[1])
    return sent
