"""Models whose own code misbehaves inside the engine process (an architecture file in
tmp_path plus its weights): they warn, raise, abort the process or exit it, after the few calls
opening the model makes, so the model opens and the run is what meets the behaviour. The
engine restarts count from zero again, so re-opening such a model after a crash works."""

from __future__ import annotations

from pathlib import Path

ARCH = '''import os
import time
import warnings

import torch
from torch import nn

CALLS = 0
BEHAVIOUR = {behaviour!r}
FLAG = {flag!r}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        global CALLS
        CALLS += 1
        if BEHAVIOUR == "warn":
            warnings.warn("careful: test warning", UserWarning)
        elif CALLS > 3 and (not FLAG or os.path.exists(FLAG)):
            if BEHAVIOUR == "raise":
                raise RuntimeError("kaboom inside the model")
            if BEHAVIOUR == "abort":
                os.abort()
            if BEHAVIOUR == "exit":
                os._exit(3)
            if BEHAVIOUR == "hang":  # a long call that never checks for cancel
                time.sleep(600)
        return self.fc2(torch.relu(self.fc1(x)))
'''


def misbehaving_model(tmp_path: Path, behaviour: str, flag: str = "") -> dict:
    """open_source keyword arguments of a small MLP whose forward does `behaviour` ("warn",
    "raise", "abort", "exit", "hang") after 3 calls (while the file `flag` exists, when given)."""
    import importlib.util

    import torch
    folder = tmp_path / f"model_{behaviour}"
    folder.mkdir()
    arch = folder / "nets.py"
    arch.write_text(ARCH.format(behaviour=behaviour, flag=flag))
    spec = importlib.util.spec_from_file_location(f"nets_{behaviour}", arch)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    weights = folder / "weights.pt"
    torch.save(module.Net().state_dict(), weights)
    return {"source": str(weights), "arch": f"{arch}:Net", "input_shape": (2, 4)}
