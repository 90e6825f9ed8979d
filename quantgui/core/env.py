"""The machine a measurement ran on: torch version, quantized engine, CPU capabilities, threads."""

from __future__ import annotations

import functools
import platform
from typing import Any

import torch

from .cpus import usable_cpus

_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX512",
    "avx512_vnni": "VNNI",
    "avx512_bf16": "AVX512-BF16",
    "avx512_fp16": "AVX512-FP16",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and ":" in line:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return name, frozenset(flags)


def cpu_capabilities() -> list[str]:
    """Human names of the CPU features that matter for INT8/BF16 speed, e.g. ['AVX2', 'AMX-BF16']."""
    _, flags = _cpuinfo()
    caps = [label for flag, label in _FLAGS.items() if flag in flags]
    cap = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    if not caps and cap:
        caps = [cap.upper()]
    return caps


def has_fast_bf16() -> bool:
    caps = cpu_capabilities()
    return "AMX-BF16" in caps or "AVX512-BF16" in caps


def cap_threads(threads: int) -> int:
    """`threads`, but no more than `usable_cpus()`: extra threads only oversubscribe the CPUs,
    and tens of thousands of them crashed torch at exit. The GUI never offers more; the CLI
    says when it capped."""
    return max(1, min(int(threads), usable_cpus()))


def environment() -> dict[str, Any]:
    name, _ = _cpuinfo()
    try:  # metadata only: importing torchao is slow and prints CUDA-library noise on CPU
        from importlib.metadata import version
        torchao_version = version("torchao")
    except Exception:
        torchao_version = None
    return {
        "torch": torch.__version__,
        "torchao": torchao_version,
        "python": platform.python_version(),
        "cpu": name,
        "cpu_capabilities": cpu_capabilities(),
        "torch_cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")(),
        "quantized_engine": torch.backends.quantized.engine,
        "quantized_engines": list(torch.backends.quantized.supported_engines),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
