"""An engine process with test patches installed: what the in-process GUI tests did with
monkeypatch (a technique that raises, a full disk, no shipped weights) now has to happen in
the engine process. `command(patches)` is the EngineClient command that starts it; the
patches are data (JSON), applied before the server starts reading requests."""

from __future__ import annotations

import errno
import json
import os
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def command(patches: dict[str, Any]) -> list[str]:
    code = (f"import sys; sys.path.insert(0, {REPO!r}); "
            f"from tests.gui.engine_patches import main; main({json.dumps(patches)!r})")
    return [sys.executable, "-c", code]


def _raising(errors: list[list[str]]) -> Any:
    """apply() raising errors[k] on its k-th call (the last one again after that)."""
    import builtins
    calls = []

    def apply(variant: Any, params: Any, ctx: Any) -> Any:
        kind, message = errors[min(len(calls), len(errors) - 1)]
        calls.append(kind)
        raise getattr(builtins, kind)(message)
    return apply


def install(patches: dict[str, Any]) -> None:
    if "raise" in patches:  # {"raise": {"technique": [["RuntimeError", "kaboom"], ...]}}
        from quantgui.core.techniques import get
        for name, errors in patches["raise"].items():
            tech = get(name)
            object.__setattr__(tech, "apply", _raising(errors))
    if patches.get("disk_full"):
        from quantgui.core.export import atomic

        def disk_full(path: Any, data: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")
        atomic._write_file = disk_full
    if "shipped_folder" in patches:
        from pathlib import Path

        from quantgui.core import examples
        examples.shipped_folder = lambda: Path(patches["shipped_folder"])
    if patches.get("no_ray"):  # `import ray` fails in the engine as when it is not installed
        sys.modules["ray"] = None
    if patches.get("refuse_training"):
        from quantgui.core import examples

        def refuse(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("the example was trained at first launch")
        examples._train = refuse


def main(text: str) -> None:
    install(json.loads(text))
    from quantgui.engine.server import main as serve
    code = serve()
    sys.stderr.flush()
    os._exit(code)
