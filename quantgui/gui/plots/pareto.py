"""Pareto front of (latency, quality) points: lower latency and higher quality are better.

Pure logic (no Qt) so it can be tested on its own.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence


def _ok(v: Optional[float]) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """a is at least as fast and as good as b, and strictly better in one of them."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(points: Sequence[tuple[Optional[float], Optional[float]]]) -> list[int]:
    """Indices of the non-dominated points, ordered by latency (then by quality, best first).

    Points with a missing or non-finite coordinate take no part. Identical points do not
    dominate each other, so both stay on the front.
    """
    valid = [(i, (float(p[0]), float(p[1]))) for i, p in enumerate(points)
             if len(p) == 2 and _ok(p[0]) and _ok(p[1])]
    front = [i for i, p in valid if not any(dominates(q, p) for j, q in valid if j != i)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))
