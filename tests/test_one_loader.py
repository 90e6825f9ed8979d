"""Only quantgui/core/safeload.py may call a loader that can unpickle or run an archive's code.

The check reads the source with `ast`, so code inside string templates (the standalone scripts
QuantGUI writes for the user) does not count, while any real call anywhere in the package does,
however it is imported or aliased at the call site.
"""

import ast
from pathlib import Path

import quantgui

PACKAGE = Path(quantgui.__file__).parent
ALLOWED = {PACKAGE / "core" / "safeload.py"}
#: dotted call names that unpickle or load an archive's code
UNSAFE = {"torch.load", "torch.jit.load", "torch.export.load", "pickle.load", "pickle.loads",
          "np.load", "numpy.load", "jit.load", "export.load", "torch.serialization.load",
          "cloudpickle.load", "cloudpickle.loads", "dill.load", "dill.loads", "joblib.load",
          "_pickle.load", "_pickle.loads", "pickle.Unpickler", "torch._C._pickle_load_obj"}
#: names that, imported bare (`from torch import load`), are the same calls
BARE = {"load", "loads", "Unpickler"}
MODULES = {"torch", "pickle", "numpy", "torch.jit", "torch.export", "cloudpickle", "dill",
           "joblib", "_pickle", "torch.serialization"}


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def unsafe_calls(path):
    tree = ast.parse(path.read_text(), str(path))
    imported_bare = {alias.asname or alias.name
                     for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and node.module in MODULES for alias in node.names if alias.name in BARE}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in UNSAFE or name in imported_bare:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}(...)")
    return found


def test_only_safeload_unpickles():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path not in ALLOWED:
            found += unsafe_calls(path)
    assert not found, "unpickling loads outside quantgui/core/safeload.py:\n" + "\n".join(found)


def test_the_check_finds_what_it_looks_for(tmp_path):
    """The scanner itself works: it sees direct, aliased and bare-imported calls, not strings."""
    sample = tmp_path / "sample.py"
    sample.write_text("import torch\nfrom pickle import loads as l2\nimport numpy as np\n"
                      "torch.load('a')\nnp.load('b')\nl2(b'')\n"
                      "TEMPLATE = 'torch.load(path)'\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        hits = unsafe_calls(sample)
    finally:
        PACKAGE = saved
    assert [h.split(": ")[1] for h in hits] == ["torch.load(...)", "np.load(...)", "l2(...)"]
