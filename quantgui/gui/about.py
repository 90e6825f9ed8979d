"""Help > About: versions of everything a bug report needs, and this CPU's capabilities."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtWidgets import QMessageBox, QWidget


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    import PySide6
    import quantgui
    out = {"QuantGUI": quantgui.__version__,
           "torch": _version("torch"),
           "torchao": _version("torchao"),
           "PySide6": PySide6.__version__,
           "pyqtgraph": _version("pyqtgraph"),
           "Python": platform.python_version()}
    if "torch" in sys.modules:  # the running build can differ from the metadata (local builds)
        out["torch"] = sys.modules["torch"].__version__
    return out


def cpu_text() -> str:
    if "torch" not in sys.modules:
        return "(the engine is still starting)"
    from quantgui.core import env
    caps = ", ".join(env.cpu_capabilities()) or "no INT8/BF16 acceleration detected"
    name = env.environment().get("cpu", platform.machine())
    return f"{name}<br>{caps}"


def about_text() -> str:
    rows = "".join(f"<tr><td>{k}</td><td><b>{v}</b></td></tr>" for k, v in versions().items())
    return (f"<h3>QuantGUI</h3><p>Make PyTorch models smaller and faster by pointing and "
            f"clicking, and prove it with honest before/after numbers measured on this "
            f"machine.</p><table cellspacing='4'>{rows}</table>"
            f"<p><b>CPU</b>: {cpu_text()}</p>")


def show_about(parent: QWidget) -> QMessageBox:
    box = QMessageBox(parent)
    box.setObjectName("aboutBox")
    box.setWindowTitle("About QuantGUI")
    box.setText(about_text())
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.open()
    return box
