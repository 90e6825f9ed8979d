"""Saving a model that another runtime runs (ONNX Runtime, OpenVINO, AOTInductor): its own
artifact, not a PyTorch file.

The runtime step wrote the artifact into its private temporary folder; here it is copied into
the export folder (staged: all or nothing), reopened from the staged copies with the same
runtime and settings, run on the example, and kept only when its output matches the in-memory
variant, like every other format (save_model.py).

| runtime | files | loaded by |
|---|---|---|
| onnxruntime | `{name}.onnx` | `onnxruntime.InferenceSession` |
| openvino | `{name}.xml` + `{name}.bin` (IR) | `openvino.Core().compile_model` |
| aoti | `{name}.pt2` (AOTInductor package) | `torch._inductor.aoti_load_package` |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..model.inputs import Inputs
from ..model.variant import Variant
from ..progress import Task
from .atomic import staged
from .variant_io import compare

#: runtime -> (format name, {file kind: suffix}, why)
ARTIFACTS = {
    "onnxruntime": ("onnx", {"onnx": ".onnx"},
                    "the ONNX Runtime step's own graph (what was measured)"),
    "openvino": ("openvino", {"xml": ".xml", "bin": ".bin"},
                 "the OpenVINO step's own IR (what was measured)"),
    "aoti": ("aoti", {"pt2": ".pt2"},
             "the AOTInductor step's own package (what was measured)"),
}

HOW_TO_LOAD = {
    "onnx": ("import onnxruntime as ort\nso = ort.SessionOptions()\n"
             "so.add_session_config_entry('session.intra_op.allow_spinning', '0')\n"
             "session = ort.InferenceSession({path!r}, so, providers=['CPUExecutionProvider'])\n"
             "out = session.run(None, {{i.name: x.numpy() for i, x in "
             "zip(session.get_inputs(), [{args}])}})"),
    "openvino": ("import openvino as ov\ncompiled = ov.Core().compile_model({path!r}, 'CPU', "
                 "{{'INFERENCE_PRECISION_HINT': 'f32'}})\n"
                 "out = compiled([x.numpy() for x in [{args}]])"),
    "aoti": ("import torch\nfrom torch._inductor import aoti_load_package\n"
             "model = aoti_load_package({path!r})  # runs its compiled code: your own file only\n"
             "out = model({args})"),
}


def is_runtime(variant: Variant) -> bool:
    return variant.tags.get("runtime") in ARTIFACTS and hasattr(variant.module, "reopened")


def save_runtime(variant: Variant, example: Inputs, out_dir: Path, name: str,
                 protected: Optional[list], task: Task, precision: str) -> Any:
    from .save_model import ExportCheckFailed, SavedModel  # (save_model imports this module)
    module = variant.module
    fmt, suffixes, why = ARTIFACTS[variant.tags["runtime"]]
    reference = variant(example)
    targets = {kind: out_dir / f"{name}{suffix}" for kind, suffix in suffixes.items()}
    with staged(task, protected) as stage:
        task.report("export", 0, 3, f"saving as {fmt}")
        staged_files = {kind: stage.write_bytes(target, module.files[kind].read_bytes())
                        for kind, target in targets.items()}
        task.report("export", 1, 3, f"reloading the {fmt} file to check it")
        reloaded = variant.evolve(module=module.reopened(staged_files))
        check = compare(reference, reloaded(example), precision)
        if not check.passed:
            raise ExportCheckFailed(f"the {fmt} file does not reproduce the model: "
                                    f"{check.describe()}; nothing was saved")
        task.report("export", 2, 3, f"writing {targets[next(iter(targets))].name}")
    main = next(iter(targets.values()))
    if not task.cancelled:
        task.report("export", 3, 3, f"saved {main.name}")
    args = ", ".join(f"x{i}" for i in range(len(example.tensors())))
    notes = []
    if variant.tags.get("fixed_shape"):
        notes.append("the graph is fixed to the example's input shapes")
    return SavedModel(main, fmt, f"{fmt}: {why}", check, list(targets.values()),
                      [{"format": fmt, "ok": True, "detail": "copied from the runtime step"}],
                      HOW_TO_LOAD[fmt].format(path=str(main), args=args), notes)
