"""OpenVINO: convert the model to OpenVINO's IR and run it with its CPU plugin.

`openvino.convert_model` takes the PyTorch model directly (TorchScript/FX frontend) or the ONNX
file the dynamo exporter writes; FP32 keeps the model's precision (INFERENCE_PRECISION_HINT
f32: on AMX CPUs OpenVINO would otherwise run BF16 silently), INT8 is NNCF's post-training
quantization calibrated on the user's data. INFERENCE_NUM_THREADS = the measurement's threads,
one stream under the latency hint, so the comparison with PyTorch is at equal threads.

On an AVX2-only EPYC (issue 11's table) OpenVINO FP32 matched ONNX Runtime on a BERT-sized
encoder (1.31x) but its ~190 us per request made it slower than PyTorch at batch 1 on a small
CNN (0.77x); NNCF INT8 paid only on the CNN at batch 64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError
from ..params import param
from . import hooks
from ._runtime_util import (SHAPES_HELP, Binder, RuntimeModule, calibration_batches,
                            export_inputs, export_onnx, first_line, fixed_shapes,
                            graph_is_dynamic, missing, quiet, start)
from .base import Technique
from .hooks import ScriptCode

MODULES = ("openvino",)
INT8_MODULES = ("openvino", "nncf")


@dataclass
class Params:
    precision: str = param(
        "fp32", "fp32: the model's own precision. int8: NNCF post-training quantization "
                "calibrated on your data (needs nncf).", choices=("fp32", "int8"))
    source: str = param(
        "pytorch", "What OpenVINO converts: the PyTorch model itself, or the ONNX file the "
                   "dynamo exporter writes (needs onnx).", choices=("pytorch", "onnx"))
    hint: str = param(
        "latency", "OpenVINO performance hint. latency: one stream, all threads on one call. "
                   "throughput: several streams for parallel requests (QuantGUI times one "
                   "request at a time, so latency usually measures faster).",
        choices=("latency", "throughput"))
    skip_layers: str = param(
        "", "Comma-separated regular expressions of node names NNCF keeps in FP32 "
            "(int8 only).", label="Keep FP32")
    calibration_samples: int = param(
        300, "Training samples NNCF calibrates INT8 on.", min=1, max=100_000)
    shapes: str = param("dynamic", SHAPES_HELP, choices=("dynamic", "fixed"))


def _flat_arrays(binder: Binder, inputs, order) -> list:
    bound = binder.bind(tuple(inputs.args), dict(inputs.kwargs))
    return [bound[n].numpy() for n in order]


SCRIPT_NNCF = """import nncf  # INT8 calibrated on the run's samples, in batches of the example's size
samples = torch.load(CALIBRATION_FILE, map_location='cpu', weights_only=True)['args'][0]
n = EXAMPLE.args[0].shape[0]  # full batches: a fixed-shape model takes no other
batches = [b.numpy() for b in samples.split(n) if len(b) == n] or [EXAMPLE.args[0].numpy()]
ov_model = nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))
"""

SCRIPT_RESHAPE = """ov_model.reshape({p.get_any_name(): list(t.shape) for p, t in zip(  # fixed shapes
    ov_model.inputs, list(EXAMPLE.args) + list(EXAMPLE.kwargs.values()))})
"""

SCRIPT = """import tempfile
import openvino as ov
call['channels_last'] = False  # OpenVINO picks its own layouts
example = tuple(EXAMPLE.args) if not EXAMPLE.kwargs else dict(EXAMPLE.kwargs)
ov_model = ov.convert_model(model.eval(), example_input=example)
{reshape}{quantize}path = os.path.join(tempfile.mkdtemp(prefix='openvino-'), 'model.xml')
ov.save_model(ov_model, path, compress_to_fp16=False)  # model.xml + model.bin
def load(p):  # the minimal code to run the saved IR with OpenVINO
    compiled = ov.Core().compile_model(p, 'CPU', {{
        'PERFORMANCE_HINT': {hint!r}, 'INFERENCE_PRECISION_HINT': 'f32',
        'INFERENCE_NUM_THREADS': torch.get_num_threads()}})
    def call_model(*args, **kwargs):  # takes the same inputs as the PyTorch model
        res = compiled([t.contiguous().numpy() for t in list(args) + list(kwargs.values())])
        outs = [torch.from_numpy(res[o]) for o in compiled.outputs]
        return outs[0] if len(outs) == 1 else outs
    return call_model
SAVEABLE['artifact'], SAVEABLE['reload'] = path, load
model = load(path)"""


class OpenVino(Technique):
    name = "openvino"
    title = "OpenVINO"
    summary = ("Convert to OpenVINO IR and run with its CPU plugin; FP32 or NNCF INT8 "
               "calibrated on your data.")
    Params = Params
    stage = 60
    group = "runtime"
    outside_torch = True

    def applies_to(self, model):
        return missing(MODULES, "openvino")

    def apply(self, variant, params, ctx):
        need = INT8_MODULES if params.precision == "int8" else MODULES
        reason = missing(need, "openvino") or (
            missing(("onnx", "onnxscript"), "onnx") if params.source == "onnx" else None)
        if reason:
            raise UserError(reason)
        import openvino as ov
        module, threads, folder, base, phases, spec = start(variant, ctx, "openvino", "openvino")
        binder = Binder(module, ctx.example)
        fixed = params.shapes == "fixed"
        with phases.phase("export", f"converting from {params.source}"), torch.no_grad():
            try:
                if params.source == "onnx":
                    exported = export_onnx(module, ctx.example, base / "model.onnx",
                                           dynamic_axes=not fixed)
                    with quiet():
                        model = ov.convert_model(str(base / "model.onnx"))
                    ctx.decide("opset", exported["opset"])
                else:
                    grown = ctx.example if fixed else export_inputs(ctx.example)
                    example = (dict(binder.bind(tuple(grown.args), dict(grown.kwargs)))
                               if grown.kwargs else tuple(grown.args))
                    with quiet():
                        model = ov.convert_model(module, example_input=example)
            except UserError:
                raise
            except Exception as exc:  # noqa: BLE001 - the converter fails in many ways
                raise UserError(f"openvino.convert_model failed: {first_line(exc)}") from exc
        graph_names = [p.get_any_name() for p in model.inputs]
        if fixed:  # before NNCF, so the quantized graph is the fixed one
            try:
                model.reshape(fixed_shapes(binder, ctx.example, graph_names))
            except Exception as exc:  # noqa: BLE001 - say why, the user can pick dynamic
                raise UserError(f"openvino: could not fix the model to the example's shapes: "
                                f"{first_line(exc)}") from exc
        order = binder.order(graph_names)
        skipped = [p.strip() for p in params.skip_layers.split(",") if p.strip()]
        if params.precision == "int8":
            import nncf
            batches = calibration_batches(ctx, params.calibration_samples, fixed, "openvino")
            ctx.decide("calibration_samples", sum(b.batch_size for b in batches))
            dataset = nncf.Dataset([_flat_arrays(binder, b, order) for b in batches])
            ignored = nncf.IgnoredScope(patterns=skipped, validate=False) if skipped else None
            with phases.phase("quantize", "NNCF INT8 calibration"), quiet():
                model = nncf.quantize(model, dataset, subset_size=len(batches),
                                      **({"ignored_scope": ignored} if ignored else {}))
        xml = base / "model.xml"
        # No pinning: OpenVINO would bind its threads to the cores PyTorch's threads use.
        config = {"PERFORMANCE_HINT": params.hint.upper(), "INFERENCE_NUM_THREADS": threads,
                  "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
        if params.hint == "latency":
            config["NUM_STREAMS"] = 1

        def reopen(files):
            core = ov.Core()
            compiled = core.compile_model(core.read_model(str(files["xml"]), str(files["bin"])),
                                          "CPU", config)
            request = compiled.create_infer_request()
            outputs = list(compiled.outputs)

            def run_flat(feeds):
                request.infer(feeds)
                return [request.get_tensor(o).data.copy() for o in outputs]
            return run_flat
        files = {"xml": xml, "bin": base / "model.bin"}
        with phases.phase("load", "compiling for the CPU"):
            ov.save_model(model, str(xml), compress_to_fp16=False)
            run_flat = reopen(files)
        shapes = [[d.get_length() if d.is_static else -1 for d in p.get_partial_shape()]
                  for p in model.inputs]
        dynamic = graph_is_dynamic(shapes)
        runtime = RuntimeModule("openvino", run_flat, binder, graph_names, spec, folder, files,
                                fixed_shape=not dynamic, reopen=reopen)
        phases.record()
        for key, value in (("converter", f"openvino.convert_model ({params.source})"),
                           ("precision", params.precision), ("hint", params.hint),
                           ("inference_precision", "f32"), ("threads", threads),
                           ("cpu_pinning", False),
                           ("streams", 1 if params.hint == "latency" else None),
                           ("shapes", params.shapes), ("dynamic_axes", dynamic),
                           ("ignored_patterns", skipped),
                           ("quantizer", "nncf" if params.precision == "int8" else None)):
            ctx.decide(key, value)
        ctx.note("openvino: its oneTBB threads busy-wait after each request; interleaved "
                 "with PyTorch on 2 cores they slowed the next PyTorch call 1.4-2.4x "
                 "(tests/benchmarks/peers.py --spin-check), so a speedup measured against the "
                 "PyTorch baseline may be overstated; ONNX Runtime's spinning is switched off")
        if not dynamic:
            ctx.note("openvino: the model is fixed to the example's shapes; evaluation uses "
                     "full batches only")
        result = variant.evolve(module=runtime, channels_last=False)
        result.tags.update({"runtime": "openvino", "fixed_shape": not dynamic,
                            "artifact": str(xml)})
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        precision = step.param("precision", "fp32")
        hint = str(step.param("hint", "latency")).upper()
        reshape = SCRIPT_RESHAPE if step.param("shapes", "dynamic") == "fixed" else ""
        body = SCRIPT.format(hint=hint, reshape=reshape,
                             quantize=SCRIPT_NNCF if precision == "int8" else "")
        samples = 0
        if precision == "int8":
            samples = int(step.decided("calibration_samples", 0) or 0) or int(
                step.param("calibration_samples", 300))
        return ScriptCode(body, f"OpenVINO {precision.upper()} ({hint.lower()} hint)",
                          calibration_samples=samples)

    def why_not_faster(self, ctx):
        reasons = []
        if ctx.batch_size <= 2:
            reasons.append("OpenVINO's per-request overhead (~190 us measured on an AVX2 CPU) "
                           "weighs most at batch 1")
        if ctx.step.decisions.get("precision") == "int8" and not (
                set(ctx.capabilities) & {"VNNI", "AMX-INT8"}):
            reasons.append("this CPU has no VNNI/AMX: NNCF's INT8 kernels gain little over FP32")
        return reasons

    def recommend_hints(self, traits, capabilities):
        if missing(MODULES, "openvino"):
            return []
        fast_int8 = bool(set(capabilities) & {"VNNI", "AMX-INT8"})
        band = hooks.RUNTIME_FIRST if not fast_int8 else hooks.RUNTIME_LATER
        # Fixed shapes: the recommendation is for the run's batch (see runtime_ort).
        fixed = {"shapes": "fixed"}
        hints = [hooks.Hint((("openvino", fixed),), band + 3, "OpenVINO FP32: fused CPU kernels")]
        if not missing(INT8_MODULES, "openvino") and (traits.conv_net or fast_int8):
            hints.append(hooks.Hint((("openvino", {"precision": "int8", **fixed}),), band + 4,
                                    "OpenVINO + NNCF INT8 calibrated on your data"))
        return hints


TECHNIQUE = OpenVino()
