"""Help > About: versions of everything a bug report needs, and this CPU's capabilities."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Optional

from PySide6.QtWidgets import QMessageBox, QWidget

from quantgui.core import html_text


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def versions(engine: Optional[dict] = None) -> dict[str, str]:
    import PySide6
    import quantgui
    out = {"QuantGUI": quantgui.__version__,
           "torch": _version("torch"),
           "torchao": _version("torchao"),
           "PySide6": PySide6.__version__,
           "pyqtgraph": _version("pyqtgraph"),
           "Python": platform.python_version()}
    if engine and engine.get("torch"):  # the engine's build can differ from the metadata
        out["torch"] = str(engine["torch"])
    return out


def cpu_text(engine: Optional[dict] = None) -> str:
    """The CPU and its capabilities, as the engine process found them."""
    if not engine:
        return "(the engine is still starting)"
    caps = ", ".join(engine.get("cpu_capabilities") or []) or \
        "no INT8/BF16 acceleration detected"
    return f"{html_text(str(engine.get('cpu') or platform.machine()))}<br>{html_text(caps)}"


def about_text(engine: Optional[dict] = None) -> str:
    rows = "".join(f"<tr><td>{k}</td><td><b>{html_text(v)}</b></td></tr>"
                   for k, v in versions(engine).items())
    return (f"<h3>QuantGUI</h3><p>Make PyTorch models smaller and faster by pointing and "
            f"clicking, and prove it with honest before/after numbers measured on this "
            f"machine.</p><table cellspacing='4'>{rows}</table>"
            f"<p><b>CPU</b>: {cpu_text(engine)}</p>")


def show_about(parent: QWidget) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("aboutBox")
    box.setWindowTitle("About QuantGUI")
    box.setText(about_text(getattr(getattr(parent, "engine", None), "info", None)))
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
