"""resources/ must be found from an editable install and from a built wheel; every module the
package and the suite import must be declared in pyproject.toml."""

import ast
import re
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
    # The examples' trained weights and their manifest, byte for byte (no first-run training).
    from quantgui.core.examples import EXAMPLES
    shipped = sorted(p.name for p in (ROOT / "resources" / "examples").iterdir())
    assert shipped == sorted([f"{n}.pt" for n in EXAMPLES] + ["manifest.json"])
    with zipfile.ZipFile(wheel) as zf:
        for name in shipped:
            packed = zf.read(f"quantgui/resources/examples/{name}")
            assert packed == (ROOT / "resources" / "examples" / name).read_bytes(), name
    # Every package in the source tree reaches the wheel (a forgotten subpackage breaks only
    # non-editable installs, which no other test would notice).
    for init in (ROOT / "quantgui").rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        assert rel in names, rel
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "quantgui-cli = quantgui.cli:main" in entry and "[gui_scripts]" in entry


# --- every third-party import is declared ---------------------------------------------------
# A fresh virtual environment gets only what pyproject declares: a module the suite imports but
# no extra brings passes on a machine that happens to have it and fails for everyone else.

def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the test extra brings tomli there
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements) -> set:
    """Canonical distribution names of PEP 508 requirement strings (markers ignored)."""
    return {_canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", r).group(1))
            for r in requirements}


def _third_party_imports(files, local: set) -> dict:
    """{top-level module: [file, ...]} imported by `files`, leaving out the standard library,
    quantgui itself and `local` (modules that live next to the tests). Counts `import x`,
    `from x import y` and literal `importlib.import_module("x")` / `pytest.importorskip("x")`."""
    found: dict = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Call) and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) \
                    and getattr(node.func, "attr", getattr(node.func, "id", None)) \
                    in ("import_module", "importorskip"):
                names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in local or top in ("quantgui", ""):
                    continue
                found.setdefault(top, []).append(path.relative_to(ROOT).as_posix())
    return found


def _undeclared(imports: dict, declared: set) -> list:
    """The modules of `imports` that no distribution in `declared` provides."""
    from importlib.metadata import packages_distributions
    providers = packages_distributions()
    missing = []
    for module, files in sorted(imports.items()):
        # not installed here: the distribution is usually named like the module (tomli)
        dists = {_canonical(d) for d in providers.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} (distribution {'/'.join(sorted(dists))}) imported by "
                           f"{sorted(set(files))[0]}")
    return missing


def test_test_extra_declares_every_module_the_suite_imports():
    """`pip install -e ".[test]"` (README) must bring everything tests/ and tests/gui/ import."""
    project = _pyproject()["project"]
    declared = _declared(project["dependencies"]) | _declared(
        project["optional-dependencies"]["test"])
    files = [p for p in sorted((ROOT / "tests").rglob("*.py")) if "benchmarks" not in p.parts]
    # modules next to the tests, the test packages themselves, and `tests` (pythonpath ".")
    local = {p.stem for p in files} | {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}
    local.add("tests")
    imports = _third_party_imports(files, local)
    assert {"torch", "PySide6", "pytest"} <= set(imports), sorted(imports)  # the scan works
    missing = _undeclared(imports, declared)
    assert not missing, "add these to the test extra in pyproject.toml: " + "; ".join(missing)


def test_every_module_the_package_imports_is_declared():
    """quantgui/ imports only what `dependencies` or one of the extras (hf) declares."""
    project = _pyproject()["project"]
    declared = _declared(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= _declared(extra)
    imports = _third_party_imports(sorted((ROOT / "quantgui").rglob("*.py")), set())
    missing = _undeclared(imports, declared)
    assert not missing, "declare these in pyproject.toml: " + "; ".join(missing)
