"""quantgui.core is the engine: it must run without Qt (CLI, scripts, a server).

Checked twice: statically (no import statement under quantgui/core names a Qt binding or
pyqtgraph, even inside a function) and dynamically (importing every core module in a fresh
interpreter leaves no Qt module loaded, which also catches indirect imports).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import quantgui.core

FORBIDDEN = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "qtpy", "pyqtgraph")
CORE = Path(quantgui.core.__file__).parent


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def test_no_qt_import_statements_in_core():
    offenders = []
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10  # the walk really found the engine
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                    node.func, "id", None)) in ("import_module", "__import__") and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
            offenders += [f"{path.relative_to(CORE)}:{node.lineno}: {n}" for n in names
                          if _forbidden(n)]
    assert offenders == []


def test_importing_all_of_core_loads_no_qt():
    code = f"""
import importlib, json, pkgutil, sys
import quantgui.core as core
names = []
for info in pkgutil.walk_packages(core.__path__, "quantgui.core."):
    importlib.import_module(info.name)
    names.append(info.name)
from quantgui.core.techniques import all_techniques
all_techniques()  # technique modules are imported lazily by the registry
qt = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
print(json.dumps({{"modules": names, "qt": qt}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "quantgui.core.run" in result["modules"]
    assert "quantgui.core.measure.latency" in result["modules"]
    assert result["qt"] == []
