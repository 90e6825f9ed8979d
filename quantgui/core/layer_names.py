"""Skip lists, torch-free: which module names a list of fnmatch patterns names. A pattern names
a module when it matches the module's qualified name or the name of a module containing it, so
`encoder.layer.5` (or `encoder.layer.5.*`) keeps the whole block and `classifier` the head.

Preflight (torch-free) and the techniques (`techniques/_layers.py`) share these; `skipped` is
also copied as source into the standalone script, so the script keeps exactly the same layers.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence


def skipped(name, patterns):
    """True when a skip pattern names this module or one containing it."""
    import fnmatch
    parts = name.split(".")
    return bool(name) and any(fnmatch.fnmatchcase(".".join(parts[:i]), p)
                              for p in patterns for i in range(1, len(parts) + 1))


def matching(name: str, patterns: Sequence[str]) -> Optional[str]:
    """The first pattern naming `name` or a module containing it, else None."""
    for pattern in patterns or ():
        if skipped(name, [pattern]):
            return pattern
    return None


def unmatched(names: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """The patterns that name no module of `names`."""
    names = [n for n in names if n]
    return [p for p in patterns if not any(skipped(n, [p]) for n in names)]


def unmatched_message(missing: Sequence[str], names: Sequence[str]) -> str:
    """One line: which skip pattern matched nothing, and what the modules are called."""
    examples = [n for n in names if n][:3]
    like = f" (its modules are named like {', '.join(examples)})" if examples else ""
    which = ", ".join(repr(p) for p in missing)
    return (f"skip pattern{'s' if len(missing) > 1 else ''} {which} match"
            f"{'' if len(missing) > 1 else 'es'} no module of this model{like}")


def escape(name: str) -> str:
    """A pattern naming exactly `name` (fnmatch's special characters bracketed)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
