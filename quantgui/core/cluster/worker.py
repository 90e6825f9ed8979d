"""What a cluster node runs for one point: the model files it received as bytes written to a
private folder, opened there by the same safe loaders (`open_model`), measured by the same
`Measurer` a local sweep uses. Ray-free: the Ray executor wraps `measure_point` in a task.

A worker process keeps the opened model and the applied recipes between points (Ray reuses its
workers), so a model is opened once per worker, not once per point."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import tempfile
from typing import Any, Optional

from ..errors import UserError
from ..safeload import regular_file

#: The reference's fields that may name files a node needs: (field, how the file is named).
FILE_FIELDS = ("source", "data", "example_input", "arch")

_MEASURERS: dict[str, Any] = {}


def _arch_file(spec: str) -> Optional[str]:
    path, sep, _ = spec.rpartition(":")
    return path if sep and path.endswith(".py") else None


def pack(model: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[bytes]]:
    """(the reference with file fields replaced by their base names, the fields, the files'
    bytes): what travels to the nodes. A folder (a Hugging Face model) cannot travel yet."""
    ref = dict(model)
    names, blobs = [], []
    for name in FILE_FIELDS:
        value = ref.get(name)
        if not isinstance(value, str) or not value:
            continue
        if name == "source" and value.startswith("example:"):
            continue
        path = _arch_file(value) if name == "arch" else value
        if path is None:  # package.module:factory: the nodes import it themselves
            continue
        if name == "source" and Path(path).expanduser().is_dir():
            raise UserError(f"{path}: a model folder cannot be sent to a cluster yet; "
                            f"save it as one file (.pt2 / TorchScript / a state_dict + --arch)")
        blobs.append(regular_file(path, "model file" if name == "source" else "file")
                     .read_bytes())
        names.append(name)
        base = Path(path).name
        ref[name] = base + value[len(path):] if name == "arch" else base
    return ref, names, blobs


def unpack(ref: dict[str, Any], names: list[str], blobs: tuple[bytes, ...]
           ) -> tuple[dict[str, Any], str]:
    """The reference with its files written to a private folder on this node (one per model:
    the same bytes are written once per worker process)."""
    digest = hashlib.sha256(json.dumps(ref, sort_keys=True).encode()
                            + b"".join(hashlib.sha256(b).digest() for b in blobs)).hexdigest()
    folder = Path(tempfile.gettempdir()) / f"quantgui-node-{os.getuid()}-{digest[:16]}"
    if blobs:  # an example model has no files to write
        folder.mkdir(mode=0o700, exist_ok=True)
    out = dict(ref)
    for name, blob in zip(names, blobs):
        value = ref[name]
        base = _arch_file(value) if name == "arch" else value
        target = folder / Path(base).name
        if not target.exists() or target.read_bytes() != blob:
            tmp = target.with_suffix(target.suffix + f".{os.getpid()}.part")
            tmp.write_bytes(blob)
            os.replace(tmp, target)
        out[name] = str(target) + (value[len(base):] if name == "arch" else "")
    return out, digest


def measure_point(ref: dict[str, Any], names: list[str], point: dict[str, Any], machine: str,
                  node: str, *blobs: bytes) -> dict[str, Any]:
    """One point's JSON (SweepPoint.to_json). A bad model or recipe is the point's error; any
    other exception propagates (the executor reports it as the point's failure)."""
    from ..recipe import Recipe
    from ..results.sweep import SweepPoint
    from ..sweep import Measurer, SweepSpec
    recipe = Recipe.from_json(point["recipe"], "recipe")
    batch, threads = int(point["batch"]), int(point["threads"])
    spec = SweepSpec([recipe], [batch], [threads], float(point["time_budget_s"]),
                     int(point["min_rounds"]))
    try:
        model, key = unpack(ref, names, blobs)
        measurer = _MEASURERS.get(key)
        if measurer is None:
            from . import open_reference
            measurer = Measurer(open_reference(model), machine, node)
            _MEASURERS.clear()  # one model per worker: a new sweep frees the last one's memory
            _MEASURERS[key] = measurer
        measurer.machine, measurer.node = machine, node
        return measurer.measure(recipe, batch, threads, spec).to_json()
    except UserError as exc:
        from ..sweep import recipe_name
        return SweepPoint(recipe_name(recipe), batch, threads, machine, node=node,
                          error=str(exc)).to_json()
