"""A file name or a recipe value never becomes code in the standalone script QuantGUI writes.

The generated script is Python the user runs; names from files go into its comments and
docstrings. A model called 'm\"\"\"<newline>import os ...' must stay text there."""

import ast

import torch

from quantgui.core.export import generate_script
from quantgui.core.opening.loading import open_model
from quantgui.core.recipe import Recipe

from . import corpus

HOSTILE_NAME = 'm"""\nimport os; os.system("touch CANARY")\n"""\n# \\N{x} \x1b[2J.pt'


def test_a_hostile_model_file_name_stays_text_in_the_script(tmp_path):
    path = tmp_path / HOSTILE_NAME
    torch.jit.save(torch.jit.script(corpus.Tiny()), str(path))
    loaded = open_model(path, input_shape=(2, 4))
    text = generate_script(loaded, Recipe.of("bf16"))[0]
    tree = ast.parse(text)  # it is still valid Python...
    doc = ast.get_docstring(tree)
    assert "os.system" in doc  # ...the name is in the docstring, as text
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "system"]
    assert calls == [], "the file name became code"
    assert "\x1b" not in text and "\\x1b[2J" in doc
