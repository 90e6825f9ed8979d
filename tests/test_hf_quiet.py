"""Opening a Hugging Face folder prints nothing but QuantGUI's own output.

transformers' progress bars and notices, torchao's "Failed to load ..." lines (transformers
imports it) and torch's pytree warning used to fill stderr; a failure must still be one line.
A real process, since stdout/stderr purity is the point. The folder is a tiny random BERT.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "a",
         "is", "and", "of", "to"]


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def _inspect(folder, cwd):
    return subprocess.run([sys.executable, "-m", "quantgui.cli", "inspect", str(folder)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_inspect_prints_only_its_own_output(bert_folder, tmp_path):
    proc = _inspect(bert_folder, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["source", str(bert_folder)]
    assert lines[1].split() == ["format", "huggingface"]
    assert any(line.startswith("example input") and "input_ids: (8, 64) int64" in line
               for line in lines)
    # every line is one of inspect's own
    own = ("source", "format", "class", "parameters", "size", "example input", "layers:",
           "techniques:", "  ", "note:", "machine:")
    assert all(line.startswith(own) for line in lines), lines


def test_a_broken_folder_fails_in_one_line(bert_folder, tmp_path):
    broken = tmp_path / "broken-bert"
    broken.mkdir()
    for f in bert_folder.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    proc = _inspect(broken, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"quantgui-cli: error: {broken}: "), proc.stderr
    assert proc.stdout == ""
