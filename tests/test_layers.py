"""The layers hold: import-linter checks the contracts in pyproject.toml ([tool.importlinter]):
the engine never imports a face or Qt, techniques never import measurement/running/export, the
GUI reaches the engine only through quantgui.core's public API, and the engine process
(quantgui.engine) stays apart: core never imports it, the GUI only its torch-free protocol."""

import shutil
import subprocess
import sys
from pathlib import Path

import quantgui.core as core

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("KEPT") == 8, proc.stdout


def test_the_public_api_resolves_and_stays_light():
    """Every name `quantgui.core` offers resolves; the torch-free ones do not import torch."""
    code = ("import sys, quantgui.core as c\n"
            "light = [c.UserError, c.Recipe, c.RunResult, c.ModelInfo, c.Recommendation,"
            " c.preflight, c.Problem, c.TechniqueSpec, c.human_bytes, c.printable,"
            " c.usable_cpus, c.param_specs, c.Task, c.parse_shape, c.DTYPE_NAMES,"
            " c.write_text_atomic, c.write_bytes_atomic]\n"
            "assert 'torch' not in sys.modules, 'a torch-free name imported torch'\n"
            "missing = [n for n in c.__all__ if getattr(c, n, None) is None]\n"
            "assert not missing, missing\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recommend" not in core.__all__  # a module name: `from quantgui.core import` it is
