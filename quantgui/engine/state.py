"""What the engine process holds between requests, and how it measures and guards its memory.

Models and optimized variants live here, addressed by id: a client never holds a module, it
names one. Variants are big (a full copy of the model each), so only the newest `KEEP_VARIANTS`
are kept; an evicted id can no longer export a model or a script (its result, which the client
has, can still export a report or recipe). A model is kept while it is the newest one opened or
a kept variant came from it.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

from quantgui.core import UserError

#: Newest optimized variants kept for export.
KEEP_VARIANTS = 8
#: Copies of the model's weights a run holds at its peak: the original, the optimized copy,
#: and a working copy some steps make (calibration, conversion, a reload check).
RUN_COPIES = 3
#: Bytes of activations per byte of input, at least (as core.memory.ACTIVATION_FACTOR).
ACTIVATION_FACTOR = 4


class MemoryRefused(UserError):
    """The work would need more memory than is free: refused before it starts."""

    def __init__(self, message: str, need: int, available: int) -> None:
        super().__init__(message)
        self.need_bytes = need
        self.available_bytes = available


@dataclass
class Kept:
    variant_id: str
    model_id: str
    label: str
    loaded: Any       # the LoadedModel it was made from (export needs its example and files)
    result: Any       # the RunResult, whose .variant is the optimized model

    def to_json(self) -> dict[str, Any]:
        return {"variant_id": self.variant_id, "model_id": self.model_id, "label": self.label,
                "source": self.loaded.info.source}


class Store:
    """Models and variants by id (thread-safe: the reader thread lists, the worker changes)."""

    def __init__(self, keep: int = KEEP_VARIANTS) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._models: "OrderedDict[str, Any]" = OrderedDict()
        self._variants: "OrderedDict[str, Kept]" = OrderedDict()  # oldest first
        self._ids = itertools.count(1)

    def add_model(self, loaded: Any) -> str:
        with self._lock:
            model_id = f"m{next(self._ids)}"
            self._models[model_id] = loaded
            self._prune_models()
            return model_id

    def model(self, model_id: Any) -> Any:
        with self._lock:
            loaded = self._models.get(str(model_id))
        if loaded is None:
            raise UserError(f"model {model_id!r:.40} is not open in the engine (open it again)")
        return loaded

    def add_variant(self, model_id: str, result: Any, label: str) -> tuple[str, list[str]]:
        """Keep `result.variant` under a new id (set on the result); returns (id, evicted ids)."""
        with self._lock:
            variant_id = f"v{next(self._ids)}"
            result.variant_id = variant_id
            loaded = self._models.get(model_id)
            self._variants[variant_id] = Kept(variant_id, model_id, label, loaded, result)
            evicted = []
            while len(self._variants) > self.keep:
                old, _ = self._variants.popitem(last=False)
                evicted.append(old)
            self._prune_models()
            return variant_id, evicted

    def variant(self, variant_id: Any) -> Kept:
        with self._lock:
            kept = self._variants.get(str(variant_id))
        if kept is None:
            raise UserError(f"the optimized model of this run is no longer in the engine (only "
                            f"the newest {self.keep} runs keep theirs, and projects or a "
                            f"restarted engine have none): re-run to export it")
        return kept

    def variants(self) -> list[dict[str, Any]]:
        with self._lock:
            return [k.to_json() for k in reversed(self._variants.values())]

    def forget(self, variant_id: Any = None, model_id: Any = None) -> bool:
        with self._lock:
            if variant_id is not None:
                gone = self._variants.pop(str(variant_id), None) is not None
            else:
                gone = self._models.pop(str(model_id), None) is not None
            self._prune_models()
            return gone

    def _prune_models(self) -> None:
        """Drop models that are neither the newest nor the origin of a kept variant."""
        newest = next(reversed(self._models), None)
        used = {k.model_id for k in self._variants.values()}
        for model_id in [m for m in self._models if m != newest and m not in used]:
            del self._models[model_id]


# --- the memory guard ---------------------------------------------------------------------------

def module_bytes(module: Any) -> int:
    tensors = itertools.chain(module.parameters(), module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def input_bytes(loaded: Any, batch_size: Optional[int]) -> int:
    """Bytes of the example input at `batch_size` (its own batch when None)."""
    example = loaded.example
    if example is None:
        return 0
    tensors = [t for t in example.tensors() if hasattr(t, "element_size")]
    total = sum(t.numel() * t.element_size() for t in tensors)
    batch = max(1, int(example.batch_size or 1))
    if batch_size is None or int(batch_size) == batch:
        return total
    return total // batch * int(batch_size)


def estimate_run_bytes(loaded: Any, batch_size: Optional[int]) -> int:
    return module_bytes(loaded.module) * RUN_COPIES + input_bytes(loaded, batch_size) * \
        ACTIVATION_FACTOR


def check_memory(need: int, what: str) -> None:
    """MemoryRefused unless `need` bytes fit in what the system can still give."""
    from quantgui.core import human_bytes
    from quantgui.core.safeload import available_memory
    available = available_memory()
    if need > available:
        raise MemoryRefused(f"{what} needs about {_size(need, human_bytes)} of memory and "
                            f"{_size(available, human_bytes)} is free: not started (use a "
                            f"smaller batch, or close other programs)", need, available)


def _size(n: int, human: Any) -> str:
    return human(n) if n < 1e12 else f"{n / 1e9:,.0f} GB"


# --- peak memory --------------------------------------------------------------------------------

def rss_bytes() -> Optional[int]:
    """The process's resident memory now (Linux /proc), else None."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _hwm_bytes() -> Optional[int]:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class PeakMemory:
    """The highest resident memory while the block runs: the kernel's high-water mark, reset at
    the start (/proc/self/clear_refs), where allowed; else sampled every 50 ms in a thread."""

    INTERVAL_S = 0.05

    def __init__(self) -> None:
        self.peak: Optional[int] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._hwm = False

    def __enter__(self) -> "PeakMemory":
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # resets VmHWM to the current RSS
            self._hwm = _hwm_bytes() is not None
        except OSError:
            self._hwm = False
        self.peak = rss_bytes()
        if not self._hwm:
            self._thread = threading.Thread(target=self._sample, name="engine-rss", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            self._note(rss_bytes())

    def _note(self, value: Optional[int]) -> None:
        if value is not None and (self.peak is None or value > self.peak):
            self.peak = value

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._note(_hwm_bytes() if self._hwm else rss_bytes())
