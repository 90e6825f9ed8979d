"""Files shipped in the top-level resources/ folder, installed as the package quantgui.resources.

The setuptools package-dir mapping makes the same lookup work from a wheel and from an
editable install.
"""

from __future__ import annotations

from importlib import resources as _resources
from pathlib import Path


def resource_path(name: str) -> Path:
    path = Path(str(_resources.files(__name__).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"QuantGUI resource {name!r} is missing from this installation")
    return path
