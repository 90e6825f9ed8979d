"""resources/ must be found from an editable install and from a built wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_resource_found_from_this_install():
    from quantgui.resources import resource_path
    icon = resource_path("icon.svg")
    assert icon.read_text().lstrip().startswith("<svg")


def test_wheel_ships_resources_and_every_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("quantgui-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "quantgui/resources/icon.svg" in names
    assert "quantgui/resources/__init__.py" in names
    # Every package in the source tree reaches the wheel (a forgotten subpackage breaks only
    # non-editable installs, which no other test would notice).
    for init in (ROOT / "quantgui").rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        assert rel in names, rel
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "quantgui-cli = quantgui.cli:main" in entry and "[gui_scripts]" in entry
