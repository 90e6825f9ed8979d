"""Hugging Face model folders (config.json + weights), opened offline.

Only local files are read (`local_files_only=True`): QuantGUI never downloads. A folder whose
config asks for custom code (`auto_map`) runs that code, so it needs the same explicit trust as a
pickled model. The example input is realistic when the folder has a tokenizer (a few sentences,
padded to a fixed length, batch 8); otherwise random token ids of shape (8, 128).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .. import safeload
from ..errors import UserError
from ..model.inputs import Inputs

BATCH = 8
SEQ_LEN = 128
INSTALL_HINT = "pip install quantgui[hf]"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Quantization makes a model smaller and often faster on a CPU.",
    "I loved this film, the acting was wonderful and the story moving.",
    "The service was slow and the food arrived cold.",
    "Please send the quarterly report before Friday afternoon.",
    "A small model that answers quickly is often good enough.",
    "Rain is expected tomorrow across most of the northern region.",
    "Measure before and after; never trust a speedup you did not time.",
)


@dataclass
class HFModel:
    module: nn.Module
    example: Inputs
    origin: dict[str, Any]
    name: str
    vocab_size: Optional[int]
    accepted: tuple[str, ...]          # keyword arguments forward() accepts
    notes: list[str] = field(default_factory=list)
    tokenizer: Any = None              # the folder's tokenizer, None when it has no usable one
    max_length: int = SEQ_LEN          # longest sequence the example may have

    def random_ids(self, shape: Sequence[int]) -> Inputs:
        """Token ids of a given shape (what --input-shape means for a language model)."""
        return Inputs((), {"input_ids": _ids(tuple(shape), self.vocab_size)})

    def tokenize(self, sentences: Sequence[str]) -> Inputs:
        """The user's own sentences through the folder's tokenizer, padded to the longest."""
        texts = [str(t).strip() for t in sentences if str(t).strip()]
        if not texts:
            raise UserError(f"{self.origin.get('path')}: type at least one sentence")
        if self.tokenizer is None:
            raise UserError(f"{self.origin.get('path')}: the folder has no usable tokenizer, so "
                            f"typed sentences cannot be turned into token ids; give an input "
                            f"shape instead")
        inputs = _encode(self.tokenizer, texts, "longest", self.max_length, self.accepted)
        if inputs is None:
            raise UserError(f"{self.origin.get('path')}: the tokenizer could not encode the "
                            f"sentences")
        return inputs


#: Loggers that speak while a folder is opened: transformers' notices, torchao's "Failed to load
#: ..._C_cutlass" for CUDA libraries a CPU machine lacks (transformers imports torchao), torch's
#: pytree warning about an Enum torchao registers. None of it is the user's business, and it
#: would break the CLI's one-line contract; errors still surface as exceptions.
NOISY_LOGGERS = ("transformers", "huggingface_hub", "torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_libraries():
    """Quiet NOISY_LOGGERS while a Hugging Face folder is opened (and its progress bars for
    good: they draw on stderr)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        try:
            from transformers.utils import logging as hf_logging
            hf_logging.disable_progress_bar()
        except ImportError:
            pass  # said where transformers is needed
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def _ids(shape: tuple, vocab: Optional[int]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    # Skip the lowest ids: most vocabularies put [PAD]/[UNK]/special tokens there.
    high = max(2, vocab or 1000)
    low = min(high - 1, 5)
    return torch.randint(low, high, shape, generator=gen, dtype=torch.long)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _read_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except Exception as exc:
        raise UserError(f"{folder / 'config.json'}: not a readable JSON config "
                        f"({type(exc).__name__}: {_first_line(exc)})") from None


def has_tokenizer_files(folder: Path) -> bool:
    return any((folder / f).exists() for f in TOKENIZER_FILES)


def _tokenizer(folder: Path) -> Any:
    """The folder's tokenizer with a pad token, or None (a broken tokenizer only costs the
    realistic example, not the model)."""
    if not has_tokenizer_files(folder):
        return None
    from transformers import AutoTokenizer
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:
        return None
    if tok.pad_token is None:
        if tok.eos_token is None:
            return None
        tok.pad_token = tok.eos_token  # GPT-style vocabularies have no pad token
    return tok


def _encode(tok: Any, texts: Sequence[str], padding: str, length: int,
            accepted: tuple[str, ...]) -> Optional[Inputs]:
    try:
        enc = tok(list(texts), padding=padding, truncation=True, max_length=length,
                  return_tensors="pt")
    except Exception:
        return None
    kwargs = {k: v for k, v in dict(enc).items()
              if isinstance(v, torch.Tensor) and (not accepted or k in accepted)}
    return Inputs((), kwargs) if "input_ids" in kwargs else None


def load(folder: Path, trust: bool) -> HFModel:
    """Open a Hugging Face folder; TrustRequired for a folder whose opening runs its code."""
    with quiet_libraries():
        return _load(folder, trust)


def _load(folder: Path, trust: bool) -> HFModel:
    raw = _read_config(folder)
    if raw.get("auto_map") and not trust:
        raise safeload.trust_required(folder, "Hugging Face model",
                                      "its config.json names Python code of its own (auto_map)")
    try:
        import transformers
        from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification
    except ImportError:
        raise UserError(f"{folder}: opening a Hugging Face model needs the transformers "
                        f"package: {INSTALL_HINT}") from None
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True,
                                            trust_remote_code=trust)
    except Exception as exc:
        raise UserError(f"{folder}: cannot read the Hugging Face config "
                        f"({type(exc).__name__}: {_first_line(exc)})") from None
    archs = list(getattr(config, "architectures", None) or [])
    auto = (AutoModelForSequenceClassification
            if any(a.endswith("ForSequenceClassification") for a in archs) else AutoModel)
    # Weights in pytorch_model.bin are pickles: unless trusted, transformers' torch.load is held
    # to weights_only (it asks for that itself in recent versions; older ones did not).
    guard = safeload.weights_only_guard() if not trust else contextlib.nullcontext({})
    with guard as state:
        try:
            module = auto.from_pretrained(str(folder), local_files_only=True,
                                          trust_remote_code=trust)
        except Exception as exc:
            if state.get("refused"):
                raise safeload.trust_required(folder, "Hugging Face model",
                                              f"its weights are a pickle that references "
                                              f"{state['refused']}") from None
            raise UserError(f"{folder}: cannot load the Hugging Face model "
                            f"({type(exc).__name__}: {_first_line(exc)})") from None
    module.eval()
    try:
        accepted = tuple(inspect.signature(module.forward).parameters)
    except (TypeError, ValueError):
        accepted = ()
    notes = [f"Hugging Face {getattr(config, 'model_type', '?')} model "
             f"(transformers {transformers.__version__}), loaded as {type(module).__name__}"]
    length = min(SEQ_LEN, getattr(config, "max_position_embeddings", None) or SEQ_LEN)
    tok = _tokenizer(folder)
    example = (_encode(tok, SENTENCES[:BATCH], "max_length", length, accepted)
               if tok is not None else None)
    vocab = getattr(config, "vocab_size", None)
    if example is not None:
        notes.append(f"example input: {BATCH} sentences from the folder's tokenizer")
    else:
        example = Inputs((), {"input_ids": _ids((BATCH, length), vocab)})
        notes.append(f"example input: random token ids ({BATCH}, {length}) "
                     f"(no usable tokenizer in the folder)")
    origin = {"path": str(folder.resolve()), "class": type(module).__name__,
              "model_type": getattr(config, "model_type", None)}
    return HFModel(module, example, origin, type(module).__name__, vocab, accepted, notes,
                   tokenizer=tok, max_length=length)
