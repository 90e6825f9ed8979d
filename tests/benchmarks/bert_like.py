"""A BERT-sized encoder built locally (random init, no download) for the benchmarks.

6 layers, hidden 384, 12 heads, intermediate 1536 (the shape of the small sentence encoders
people deploy), batch 8 x 128 tokens. Built from `transformers.BertConfig` when transformers is
installed, else a plain `nn.TransformerEncoder` of the same size.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

LAYERS, HIDDEN, HEADS, INTERMEDIATE = 6, 384, 12, 1536
BATCH, SEQ, VOCAB = 8, 128, 30522


def example_input(batch: int = BATCH, seq: int = SEQ, vocab: int = VOCAB) -> dict:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (batch, seq), generator=gen)
    mask = torch.ones(batch, seq, dtype=torch.long)
    # realistic padding: the second half of the batch is shorter
    for i in range(batch // 2, batch):
        mask[i, seq // 2 + 8 * i:] = 0
    ids = ids * mask
    return {"input_ids": ids, "attention_mask": mask}


class PlainEncoder(nn.Module):
    """Fallback without transformers: embeddings + nn.TransformerEncoder, same sizes."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.pos = nn.Embedding(512, HIDDEN)
        layer = nn.TransformerEncoderLayer(HIDDEN, HEADS, INTERMEDIATE, dropout=0.0,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)

    def forward(self, input_ids, attention_mask=None):
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = self.embed(input_ids) + self.pos(pos)[None]
        pad = None if attention_mask is None else attention_mask == 0
        return self.encoder(h, src_key_padding_mask=pad)


def have_transformers() -> bool:
    try:
        import transformers  # noqa: F401
        return True
    except Exception:
        return False


def build() -> nn.Module:
    torch.manual_seed(0)
    if have_transformers():
        from transformers import BertConfig, BertModel
        cfg = BertConfig(num_hidden_layers=LAYERS, hidden_size=HIDDEN, num_attention_heads=HEADS,
                         intermediate_size=INTERMEDIATE, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)
        return BertModel(cfg, add_pooling_layer=True).eval()
    return PlainEncoder().eval()


def save_folder(root: Optional[Path] = None) -> Optional[Path]:
    """Save the random-init BERT as a Hugging Face folder (None without transformers)."""
    if not have_transformers():
        return None
    root = Path(root or tempfile.mkdtemp(prefix="quantgui-bench-bert-"))
    folder = root / "bert-6x384"
    if not (folder / "config.json").exists():
        build().save_pretrained(folder)
    return folder


if __name__ == "__main__":
    m = build()
    x = example_input()
    with torch.no_grad():
        out = m(**x)
    print(type(m).__name__, sum(p.numel() for p in m.parameters()), getattr(out, "last_hidden_state", out).shape,
          os.environ.get("QUANTGUI_CACHE"))
