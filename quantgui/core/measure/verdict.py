"""The verdict on a run: faster, slower or not faster, and why.

"My quantized model got slower" is the field's most common complaint; tools that said nothing
left users to find out in production. When an optimized model is not faster, the likely causes
are read off the steps and the modules (which layers changed type, what the weights are) and
stated before anyone ships it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .. import env
from .latency import Timing
from .quality import Fidelity
from .size import has_tensor_subclass_weights, leaf_types

FASTER_ABOVE = 1.03   # the CI's lower bound must clear this to call it faster
SLOWER_BELOW = 0.97   # the CI's upper bound must be below this to call it slower
ACCURACY_DROP = 0.01  # more than one point of top-1 accuracy lost is a quality warning
MIN_COSINE = 0.99

INT8_STEPS = {"dynamic_int8", "static_int8", "qat_int8"}
QUANT_STEPS = INT8_STEPS | {"weight_only_int8", "weight_only_int4"}
CALL_MODE_STEPS = {"inference_mode"}


@dataclass
class Verdict:
    label: str                                  # "faster" | "slower" | "not faster"
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "reasons": list(self.reasons),
                "warnings": list(self.warnings)}


def label_for(ci95: tuple[float, float]) -> str:
    lo, hi = ci95
    if lo > FASTER_ABOVE:
        return "faster"
    if hi < SLOWER_BELOW:
        return "slower"
    return "not faster"


def _is_compiled(variant: Any, names: set) -> bool:
    return bool(variant.tags.get("compiled")) or hasattr(variant.module, "_orig_mod") \
        or "compile" in names


def likely_reasons(steps: Sequence[Any], variant: Any, original: Any, batch_size: int,
                   timing: Optional[Timing] = None) -> list[str]:
    """Why an optimized model may not be faster, from the steps (`.name`, `.params`) and modules."""
    names = {s.name for s in steps}
    if not steps:
        return ["the recipe has no steps: before and after are the same model"]
    reasons = []
    module = getattr(variant, "module", variant)
    eager = variant.tags.get("eager_module") or getattr(module, "_orig_mod", module)
    compiled = _is_compiled(variant, names)
    for s in steps:
        method = str((s.params or {}).get("method", ""))
        # Only physically removing units (shrink_linear) makes dense kernels do less work.
        if s.name == "prune" and method != "shrink_linear":
            kind = "unstructured" if "unstructured" in method or not method else "structured"
            reasons.append(f"{kind} pruning ({method or 'zeroing'}) leaves every layer "
                           f"dense-sized: the kernels still multiply each zero (shrink_linear "
                           f"removes units for real)")
    if has_tensor_subclass_weights(eager) and not compiled:
        reasons.append("torchao keeps quantized weights as tensor subclasses that dispatch op "
                       "by op in eager mode; they pay off only under torch.compile")
    if "weight_only_int8" in names or "weight_only_int4" in names:
        reasons.append("weight-only quantization on CPU dequantizes the weights on every call: "
                       "it saves memory, not time")
    caps = env.cpu_capabilities()
    if "fp16" in names:
        if "AVX512-FP16" not in caps:
            reasons.append("FP16 on a CPU without native FP16 math (no AVX512-FP16): every op "
                           "converts to FP32 and back")
        else:
            reasons.append("PyTorch's CPU FP16 kernels are rarely faster than FP32 even with "
                           "AVX512-FP16; BF16 is the fast 16-bit format on CPU")
    if "bf16" in names and not env.has_fast_bf16():
        reasons.append("BF16 without AVX512-BF16 or AMX-BF16 on this CPU is emulated in FP32")
    if names & INT8_STEPS and batch_size <= 4:
        reasons.append(f"batch {batch_size} may be too small for INT8 GEMM to pay off: "
                       f"quantizing activations costs the same per call; try a larger batch")
    if names & QUANT_STEPS and str(variant.tags.get("quantized_api", "")).lower().find("pt2e") >= 0 \
            and not compiled:
        reasons.append("a PT2E graph run without torch.compile (freezing) keeps its "
                       "quantize/dequantize ops: it is slower than FP32 until compiled")
    if names & QUANT_STEPS and leaf_types(eager) == leaf_types(original) \
            and not has_tensor_subclass_weights(eager) \
            and type(eager).__name__ not in ("GraphModule", "RecursiveScriptModule"):
        reasons.append("no layer changed type: the quantization step replaced nothing, so the "
                       "FP32 kernels ran")
    if names <= CALL_MODE_STEPS:
        reasons.append("only the call mode changed: inference_mode differs from no_grad by "
                       "about 3% at most")
    if timing is not None and timing.noisy:
        reasons.append(f"the measurement was noisy ({timing.noisy_reason}); close other "
                       f"programs or give timing a longer budget")
    if not reasons:
        threads = timing.threads if timing is not None else "these"
        reasons.append(f"no specific cause found: on this CPU, at batch {batch_size} with "
                       f"{threads} threads, the optimized kernels are no faster than FP32")
    return reasons


def quality_warnings(before_accuracy: Optional[float], after_accuracy: Optional[float],
                     fid: Optional[Fidelity]) -> list[str]:
    warnings = []
    if before_accuracy is not None and after_accuracy is not None \
            and before_accuracy - after_accuracy > ACCURACY_DROP:
        warnings.append(f"accuracy dropped {100 * (before_accuracy - after_accuracy):.1f} points "
                        f"({before_accuracy:.2%} -> {after_accuracy:.2%})")
    if fid is not None:
        if fid.nonfinite:
            warnings.append(f"the optimized model produced {fid.nonfinite} NaN/Inf output values")
        if not fid.cosine >= MIN_COSINE:  # also catches NaN
            warnings.append(f"outputs diverge from the original: mean cosine {fid.cosine:.4f} "
                            f"(min {fid.cosine_min:.4f})")
    return warnings


def verdict(timing: Timing, steps: Sequence[Any], variant: Any, original: Any, batch_size: int,
            before_accuracy: Optional[float] = None, after_accuracy: Optional[float] = None,
            fid: Optional[Fidelity] = None) -> Verdict:
    label = label_for(timing.ci95)
    reasons = [] if label == "faster" else likely_reasons(steps, variant, original, batch_size,
                                                          timing)
    warnings = quality_warnings(before_accuracy, after_accuracy, fid)
    if label == "faster" and timing.noisy:
        warnings.append(f"the measurement was noisy ({timing.noisy_reason}); the speedup's "
                        f"confidence interval still clears {FASTER_ABOVE:.2f}x")
    if timing.few_rounds:  # a slow model in a short budget: the verdict rests on few rounds
        (warnings if label == "faster" else reasons).append(timing.few_rounds)
    return Verdict(label, reasons, warnings)
