"""ONNX Runtime: export the model to ONNX and run it with ORT's CPU kernels.

Why it can win on CPUs without VNNI/AMX: ORT pre-packs GEMM weights at session load (MLAS
reached 171-201 GFLOP/s where MKL's addmm gave 125-153 on an AVX2 EPYC) and its per-call
overhead is ~40 us against ~145 us for the TorchScript interpreter, so batch-1 calls gain most.

Pipeline: torch.onnx.export (dynamo exporter, dynamic batch and sequence axes where the model
allows) -> the transformer optimizer for BERT-like models (attention/LayerNorm/GELU fusions) ->
optionally INT8 via onnxruntime.quantization (dynamic, or static QDQ calibrated on the user's
data; per-channel weights; a skip list) -> a session with graph optimization ALL, intra-op
threads = the measurement's, inter-op 1, and spinning off (ORT's threads otherwise spin 20-100
ms after each call and slowed whichever variant ran next in the interleaved timer 1.3-3x).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..params import param
from . import hooks
from ._runtime_util import (SHAPES_HELP, Binder, RuntimeModule, calibration_batches,
                            export_onnx, first_line, graph_is_dynamic, missing, quiet, start)
from .base import Technique
from .hooks import ScriptCode

LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC"}


@dataclass
class Params:
    quantize: str = param(
        "none", "INT8 in ONNX Runtime. none: FP32 (lossless). dynamic: INT8 weights, "
        "activations quantized per call (Linear/Transformer models). static: QDQ with "
        "activation ranges calibrated on your data (conv nets).",
        choices=("none", "dynamic", "static"))
    per_channel: bool = param(
        True, "One INT8 scale per output channel (keeps an encoder's pooled cosine at 0.992 "
              "where per-tensor gave 0.961).")
    skip_layers: str = param(
        "", "Comma-separated name parts; ONNX nodes whose names contain one stay FP32 "
            "(e.g. classifier,embeddings).", label="Keep FP32")
    optimizer: str = param(
        "auto", "ONNX Runtime's transformer optimizer (fuses attention, LayerNorm, GELU). auto: "
                "for BERT-like models only.", choices=("auto", "on", "off"))
    graph_optimization: str = param(
        "all", "Session graph optimization level (all: layout changes and fusions too).",
        choices=tuple(LEVELS))
    calibration_samples: int = param(
        256, "Training samples used to calibrate static INT8.", min=1, max=100_000)
    shapes: str = param("dynamic", SHAPES_HELP, choices=("dynamic", "fixed"))


def _session_options(ort, level: str, threads: int):
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def bert_like(module) -> bool:
    config = getattr(module, "config", None)
    if getattr(config, "model_type", None) in ("bert", "roberta", "distilbert", "xlm-roberta",
                                               "electra", "mpnet", "albert", "camembert"):
        return True
    return any(isinstance(m, torch.nn.MultiheadAttention) for m in module.modules())


def _transformer_optimize(src: Path, dst: Path, module) -> str:
    from onnxruntime.transformers.optimizer import optimize_model
    config = getattr(module, "config", None)
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    with quiet():
        opt = optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden,
                             opt_level=0)
        opt.save_model_to_file(str(dst))
        fused = {k: v for k, v in (opt.get_fused_operator_statistics() or {}).items() if v}
    return ", ".join(f"{k} {v}" for k, v in sorted(fused.items())) or "no fusions matched"


def _excluded(path: Path, skip: str) -> list[str]:
    parts = [p.strip() for p in skip.split(",") if p.strip()]
    if not parts:
        return []
    import onnx
    graph = onnx.load(str(path), load_external_data=False).graph
    names = [n.name for n in graph.node if any(p in n.name for p in parts)]
    # The quantizer first splits each Gemm into MatMul + Add named "<gemm>_MatMul"/"_Add":
    # those are the names it checks, so they are excluded too.
    gemms = {n.name for n in graph.node if n.op_type == "Gemm"}
    return names + [f"{n}_{op}" for n in names if n in gemms for op in ("MatMul", "Add")]


def _calibration(ctx, names, binder, samples: int, fixed: bool):
    """Calibration feeds from the user's training data (else the example), in batches of the
    run's batch size (full ones only for a fixed graph)."""
    from onnxruntime.quantization import CalibrationDataReader
    batches = calibration_batches(ctx, samples, fixed, "onnxruntime")
    order = binder.order(names)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            ctx.task.check()
            inputs = next(self.items, None)
            if inputs is None:
                return None
            bound = binder.bind(tuple(inputs.args), dict(inputs.kwargs))
            return {g: bound[b].numpy() for g, b in zip(names, order)}
    return Reader(), sum(b.batch_size for b in batches)


SCRIPT_EXPORT = """import tempfile
import onnxruntime as ort
call['channels_last'] = False  # ONNX Runtime picks its own layouts
path = os.path.join(tempfile.mkdtemp(prefix='onnx-'), 'model.onnx')
torch.onnx.export(model.eval(), tuple(EXAMPLE.args), path, kwargs=dict(EXAMPLE.kwargs) or None,
                  dynamo=True)"""

SCRIPT_STATIC = """from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
samples = torch.load(CALIBRATION_FILE, map_location='cpu', weights_only=True)['args'][0]
names = [i.name for i in ort.InferenceSession(path).get_inputs()]
n = EXAMPLE.args[0].shape[0]  # this export is fixed to EXAMPLE's shape: full batches only
class Reader(CalibrationDataReader):  # single-input models: batches of the example's size
    def __init__(self):
        self.batches = iter([b for b in samples.split(n) if len(b) == n] or [EXAMPLE.args[0]])
    def get_next(self):
        batch = next(self.batches, None)
        return None if batch is None else {{names[0]: batch.numpy()}}
quantize_static(path, path + '.int8.onnx', Reader(), quant_format=QuantFormat.QDQ,
                per_channel={per_channel}, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8)
path += '.int8.onnx'"""

SCRIPT_LOAD = """def load(p):  # the minimal code to run the saved .onnx file with ONNX Runtime
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.{level}
    so.intra_op_num_threads, so.inter_op_num_threads = torch.get_num_threads(), 1
    so.add_session_config_entry('session.intra_op.allow_spinning', '0')
    session = ort.InferenceSession(p, so, providers=['CPUExecutionProvider'])
    names = [i.name for i in session.get_inputs()]
    def call_model(*args, **kwargs):  # takes the same inputs as the PyTorch model
        feeds = [t.contiguous().numpy() for t in list(args) + list(kwargs.values())]
        outs = [torch.from_numpy(o) for o in session.run(None, dict(zip(names, feeds)))]
        return outs[0] if len(outs) == 1 else outs
    return call_model
SAVEABLE['artifact'], SAVEABLE['reload'] = path, load
model = load(path)"""


class OnnxRuntime(Technique):
    name = "onnxruntime"
    title = "ONNX Runtime"
    summary = ("Run the model in ONNX Runtime (pre-packed GEMMs, low call overhead; optional "
               "INT8): often the fastest on CPUs without VNNI/AMX.")
    Params = Params
    stage = 60
    group = "runtime"
    outside_torch = True

    def applies_to(self, model):
        return missing(("onnxruntime", "onnx", "onnxscript"), "onnx")

    def apply(self, variant, params, ctx):
        reason = self.applies_to(variant.module)
        if reason:
            raise UserError(reason)
        import onnxruntime as ort
        module, threads, folder, base, phases, spec = start(variant, ctx, "onnxruntime", "onnx")
        with phases.phase("export", "exporting to ONNX"), torch.no_grad():
            exported = export_onnx(module, ctx.example, base / "model.fp32.onnx",
                                   dynamic_axes=params.shapes == "dynamic")
        path = base / "model.fp32.onnx"
        use_opt = params.optimizer == "on" or (params.optimizer == "auto" and bert_like(module))
        optimizer = "none"
        if use_opt:
            with phases.phase("optimize", "transformer optimizer"):
                try:
                    fused = _transformer_optimize(path, base / "model.opt.onnx", module)
                    path, optimizer = base / "model.opt.onnx", "transformer (bert)"
                    ctx.note(f"onnxruntime: transformer optimizer fused {fused}")
                except Exception as exc:  # noqa: BLE001 - the plain graph still runs
                    ctx.note(f"onnxruntime: transformer optimizer failed ({first_line(exc)}); "
                             f"running the exported graph")
        binder = Binder(module, ctx.example)
        probe = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [i.name for i in probe.get_inputs()]
        del probe
        skipped: list[str] = []
        if params.quantize != "none":
            from onnxruntime import quantization as q
            skipped = _excluded(path, params.skip_layers)
            out = base / "model.int8.onnx"
            with phases.phase("quantize", f"{params.quantize} INT8"), quiet():
                if params.quantize == "dynamic":
                    q.quantize_dynamic(str(path), str(out), per_channel=params.per_channel,
                                       weight_type=q.QuantType.QInt8, nodes_to_exclude=skipped)
                else:
                    reader, count = _calibration(ctx, names, binder, params.calibration_samples,
                                                 not exported["dynamic"])
                    ctx.decide("calibration_samples", count)
                    q.quantize_static(str(path), str(out), reader, quant_format=q.QuantFormat.QDQ,
                                      per_channel=params.per_channel,
                                      activation_type=q.QuantType.QUInt8,
                                      weight_type=q.QuantType.QInt8, nodes_to_exclude=skipped)
            path = out
        def reopen(files):
            session = ort.InferenceSession(
                str(files["onnx"]), _session_options(ort, params.graph_optimization, threads),
                providers=["CPUExecutionProvider"])
            out_names = [o.name for o in session.get_outputs()]
            graph_names = [i.name for i in session.get_inputs()]

            def run_flat(feeds):
                return session.run(out_names, dict(zip(graph_names, feeds)))
            run_flat.session = session
            return run_flat
        files = {"onnx": path}
        with phases.phase("load", "creating the session"):
            run_flat = reopen(files)
        inputs = run_flat.session.get_inputs()
        dynamic = exported["dynamic"] and graph_is_dynamic([i.shape for i in inputs])
        graph_names = [i.name for i in inputs]
        runtime = RuntimeModule("onnxruntime", run_flat, binder, graph_names, spec, folder,
                                files, fixed_shape=not dynamic, reopen=reopen)
        phases.record()
        for key, value in (("exporter", exported["exporter"]), ("opset", exported["opset"]),
                           ("shapes", params.shapes), ("dynamic_axes", dynamic), ("providers", ["CPUExecutionProvider"]),
                           ("graph_optimization", params.graph_optimization),
                           ("optimizer", optimizer), ("quantization", params.quantize),
                           ("per_channel", params.per_channel if params.quantize != "none"
                            else None),
                           ("excluded_nodes", len(skipped)), ("intra_op_threads", threads),
                           ("inter_op_threads", 1), ("allow_spinning", False)):
            ctx.decide(key, value)
        if not dynamic:
            ctx.note(f"onnxruntime: the graph is fixed to the example's shapes "
                     f"({[list(i.shape) for i in inputs]}); evaluation uses full batches only")
        result = variant.evolve(module=runtime, channels_last=False)
        result.tags.update({"runtime": "onnxruntime", "fixed_shape": not dynamic,
                            "artifact": str(path)})
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        quant = step.param("quantize", "none")
        per_channel = bool(step.param("per_channel", True))
        opt = step.decided("optimizer", "none") != "none"
        level = LEVELS.get(step.param("graph_optimization", "all"), "ORT_ENABLE_ALL")
        lines = [SCRIPT_EXPORT]
        if step.decided("dynamic_axes", False):
            lines.append("# (QuantGUI's run exported dynamic batch axes; this export is fixed to "
                         "EXAMPLE's shapes)")
        if opt:
            lines.append("from onnxruntime.transformers.optimizer import optimize_model\n"
                         "optimize_model(path, model_type='bert', opt_level=0)"
                         ".save_model_to_file(path + '.opt.onnx')\npath += '.opt.onnx'")
        if quant == "dynamic":
            lines.append("from onnxruntime.quantization import QuantType, quantize_dynamic\n"
                         f"quantize_dynamic(path, path + '.int8.onnx', per_channel={per_channel}, "
                         f"weight_type=QuantType.QInt8)\npath += '.int8.onnx'")
        elif quant == "static":
            lines.append(SCRIPT_STATIC.format(per_channel=per_channel))
        lines.append(SCRIPT_LOAD.format(level=level))
        samples = int(step.decided("calibration_samples", 0) or 0) if quant == "static" else 0
        what = "FP32" if quant == "none" else f"{quant} INT8" + (
            " per-channel" if per_channel else "")
        return ScriptCode("\n".join(lines) + "\n", f"ONNX Runtime {what}" + (
            " + transformer optimizer" if opt else ""), calibration_samples=samples or (
            step.param("calibration_samples", 256) if quant == "static" else 0))

    def why_not_faster(self, ctx):
        reasons = []
        d = ctx.step.decisions
        if d.get("quantization") == "dynamic" and ctx.batch_size == 1:
            reasons.append("dynamic INT8 quantizes activations on every call; at batch 1 that "
                           "cost can eat the INT8 GEMM's gain")
        if d.get("quantization") in ("dynamic", "static") and not (
                set(ctx.capabilities) & {"VNNI", "AMX-INT8"}):
            reasons.append("this CPU has no VNNI/AMX: an INT8 GEMM is not much faster than "
                           "ONNX Runtime's pre-packed FP32 one")
        return reasons

    def recommend_hints(self, traits, capabilities):
        if missing(("onnxruntime", "onnx", "onnxscript"), "onnx"):
            return []
        caps = set(capabilities)
        fast_int8 = bool(caps & {"VNNI", "AMX-INT8"})
        # AVX2-only CPUs: ORT's pre-packed FP32 and per-channel INT8 beat eager INT8 (issue
        # 11's table), so they go before the eager INT8 band; with VNNI/AMX they follow it.
        band = hooks.RUNTIME_FIRST if not fast_int8 else hooks.RUNTIME_LATER
        # Fixed shapes: the recommendation is for the run's batch, and a graph fixed to it drops
        # the dynamic axes' shape arithmetic (a small transformer at batch 1: 122 vs 147 us).
        why = "ONNX Runtime: pre-packed GEMMs and ~40 us per call"
        fixed = {"shapes": "fixed"}
        hints = [hooks.Hint((("onnxruntime", fixed),), band, why)]
        if traits.linear_heavy or traits.transformer:
            hints.append(hooks.Hint(
                (("onnxruntime", {"quantize": "dynamic", "per_channel": True, **fixed}),),
                band + 1, "ONNX Runtime dynamic INT8, per-channel weights (keeps fidelity)"))
        if traits.conv_net:
            hints.append(hooks.Hint(
                (("onnxruntime", {"quantize": "static", "per_channel": True, **fixed}),),
                band + 2,
                "ONNX Runtime static QDQ INT8 calibrated on your data"))
        return hints


TECHNIQUE = OnnxRuntime()
