"""`--arch package.module:factory` with `--save`: the standalone script imports the module (it
used to treat 'package.module' as a file path and crash)."""

from __future__ import annotations

import subprocess
import sys

import torch

from quantgui import cli

NETS = '''
from torch import nn


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.fc = nn.Linear(4, width)

    def forward(self, x):
        return self.fc(x)


def make(width=8):
    return Net(width)
'''


def test_rebuild_script_imports_the_architecture_module(tmp_path, monkeypatch, capsys):
    root = tmp_path / "project"
    (root / "mypkg").mkdir(parents=True)
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / "nets.py").write_text(NETS)
    monkeypatch.syspath_prepend(str(root))
    weights = tmp_path / "w.pt"
    torch.manual_seed(0)
    torch.save({"fc.weight": torch.randn(6, 4), "fc.bias": torch.randn(6)}, weights)
    out = tmp_path / "out"
    code = cli.main(["run", str(weights), "--arch", "mypkg.nets:make", "--arch-kwargs",
                     '{"width": 6}', "--input-shape", "2,4", "--time-budget", "0.2",
                     "--save", str(out)])
    _, err = capsys.readouterr()
    assert code == 0, err
    script = out / "rebuild_model.py"
    text = script.read_text()
    assert "ARCH_MODULE = 'mypkg.nets'" in text and "ARCH_FILE = None" in text
    # Run it from elsewhere, with the package not on the path: it finds it where QuantGUI did.
    proc = subprocess.run([sys.executable, str(script), "--rounds", "2", "--out",
                           str(tmp_path / "rebuilt.pt2")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "max |after - before| 0" in proc.stdout
