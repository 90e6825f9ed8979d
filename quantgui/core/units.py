"""Human-readable sizes, shared by the report and the app (MB = 10^6 bytes everywhere)."""

from __future__ import annotations

from typing import Optional


def human_bytes(n: Optional[float], missing: str = "—") -> str:
    if n is None:
        return missing
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"
