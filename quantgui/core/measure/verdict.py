"""The verdict on a run: faster, slower, not faster or inconclusive; the quality beside it; why.

"My quantized model got slower" is the field's most common complaint; tools that said nothing
left users to find out in production. When an optimized model is not faster, the likely causes
are read off the steps and the modules (which layers changed type, what the weights are) and
stated before anyone ships it: each step's technique states its own (`why_not_faster`), this
module the generic ones.

The speed label comes from the 95% confidence interval (lo, hi) of the speedup, in this order:

1. no steps: "not faster" (before and after are the same model; the run is a noise check);
2. fewer than `MIN_DECISIVE_ROUNDS` (6) timed rounds: "inconclusive" (fewer paired rounds cannot
   support a 95% claim however they agree: with n rounds all on one side, the chance of that
   under "no difference" is 2 * 0.5**n, a sign test, which drops below 5% only at n = 6);
3. lo > `FASTER_ABOVE` (1.03): "faster" (the whole interval is a real gain; a noisy timing
   adds a warning);
4. hi < `SLOWER_BELOW` (0.97): "slower";
5. hi <= `NEGLIGIBLE_GAIN` (1.05), with a timing that is neither noisy nor short of rounds:
   "not faster" (the interval rules out any gain worth having);
6. otherwise "inconclusive": the interval is too wide to tell a real gain from none (it reaches
   past 1.05x while its lower end is below 1.03x), or the timing behind it was noisy or short of
   rounds. `Verdict.inconclusive_reason` says which, `suggested_budget_s` what to measure with.

So "not faster" is never shown beside a point speedup above 1.05x (the point lies inside the
interval), and a wide interval is never read as a decision either way.

Quality is part of the verdict, not a footnote: an accuracy drop beyond `ACCURACY_DROP`, a mean
output cosine below `MIN_COSINE` or NaN/Inf outputs make `Verdict.quality` "degraded", and the
summary says so beside the speed ("faster, but outputs diverge (cosine 0.952)"). The `Verdict`
type (results/verdict.py) and `RunResult.headline()` compose the same words for every face
(CLI, GUI, history, report); `RunResult.from_json` judges results saved before these fields
existed again.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from .. import env
from ..results import Fidelity, Timing, Verdict
from ..techniques import StepRecord, VerdictContext, all_techniques
from ..verdict_words import (FASTER, FASTER_ABOVE, INCONCLUSIVE, LABELS, MIN_DECISIVE_ROUNDS,
                             NOT_FASTER, SLOWER, Quality, assess_quality, label_for)
from .size import has_tensor_subclass_weights, leaf_types

__all__ = ["FASTER", "INCONCLUSIVE", "LABELS", "NOT_FASTER", "SLOWER", "Quality", "Verdict",
           "assess_quality", "inconclusive_reason", "label_for", "likely_reasons", "quality_of",
           "quality_warnings", "verdict"]



# --- the inconclusive case and quality of a run ----------------------------------------------

def _budget(seconds: Optional[float]) -> str:
    return f"{seconds:g} s"


def inconclusive_reason(timing: Timing) -> str:
    """Why the timing cannot decide, with what to do about it."""
    lo, hi = timing.ci95
    budget = f" in the {_budget(timing.budget_s)} time budget" if timing.budget_s else ""
    if timing.rounds < MIN_DECISIVE_ROUNDS:
        parts = [f"too few rounds: only {timing.rounds} were timed{budget}, and fewer than "
                 f"{MIN_DECISIVE_ROUNDS} cannot support a 95% claim, whatever they show"]
    else:
        parts = [f"the 95% CI {lo:.2f}-{hi:.2f}x is too wide to tell a real gain from none"]
        if timing.few_rounds:
            parts.append(f"too few rounds: only {timing.rounds} fit{budget}")
    if timing.noisy:
        parts.append(f"noisy machine ({timing.noisy_reason})")
    text = "; ".join(parts)
    if timing.suggested_budget_s:
        text += f"; measure longer: a {_budget(timing.suggested_budget_s)} time budget"
    else:
        text += "; more time adds no rounds here: close other programs and measure again"
    return text


def quality_of(before_accuracy: Optional[float], after_accuracy: Optional[float],
               fid: Optional[Fidelity]) -> Quality:
    if fid is None:
        return assess_quality(before_accuracy, after_accuracy, None)
    return assess_quality(before_accuracy, after_accuracy, fid.cosine, fid.cosine_min,
                          fid.nonfinite)


def quality_warnings(before_accuracy: Optional[float], after_accuracy: Optional[float],
                     fid: Optional[Fidelity]) -> list[str]:
    return quality_of(before_accuracy, after_accuracy, fid).reasons


# --- reasons ------------------------------------------------------------------------------------

def _is_compiled(variant: Any, names: set) -> bool:
    return bool(variant.tags.get("compiled")) or hasattr(variant.module, "_orig_mod") \
        or "compile" in names


def likely_reasons(steps: Sequence[Any], variant: Any, original: Any, batch_size: int,
                   timing: Optional[Timing] = None, fallback: bool = True) -> list[str]:
    """Why an optimized model may not be faster. Each step's technique gives its own reasons
    (`Technique.why_not_faster`, from the step's params and decisions, the modules and this
    CPU); what is left here is generic: no steps, a quantization that changed no layer, a
    noisy timing."""
    if not steps:
        return ["the recipe has no steps: before and after are the same model"]
    records = [StepRecord.of(s, batch_size) for s in steps]
    names = tuple(r.name for r in records)
    module = getattr(variant, "module", variant)
    eager = variant.tags.get("eager_module") or getattr(module, "_orig_mod", module)
    compiled = _is_compiled(variant, set(names))
    subclass = has_tensor_subclass_weights(eager)
    caps = tuple(env.cpu_capabilities())
    techs = all_techniques()
    reasons: list[str] = []
    for record in records:
        tech = techs.get(record.name)
        if tech is None:
            continue
        ctx = VerdictContext(record, names, eager, original, batch_size, caps, compiled,
                             subclass)
        reasons += [r for r in tech.why_not_faster(ctx) if r not in reasons]
    quantizing = any(getattr(techs.get(n), "quantizes", False) for n in names)
    # A PT2E graph quantizes ops, not modules: its leaf types say nothing about what changed.
    pt2e = any(r.decisions.get("api") == "pt2e" for r in records) \
        or "pt2e" in str(variant.tags.get("quantized_api", "")).lower()
    if quantizing and not pt2e and leaf_types(eager) == leaf_types(original) and not subclass \
            and type(eager).__name__ not in ("GraphModule", "RecursiveScriptModule"):
        reasons.append("no layer changed type: the quantization step replaced nothing, so the "
                       "FP32 kernels ran")
    if timing is not None and timing.noisy:
        reasons.append(f"the measurement was noisy ({timing.noisy_reason}); close other "
                       f"programs or give timing a longer budget")
    if not reasons and fallback:  # (an undecided measurement claims nothing, not even this)
        threads = timing.threads if timing is not None else "these"
        reasons.append(f"no specific cause found: on this CPU, at batch {batch_size} with "
                       f"{threads} threads, the optimized kernels are no faster than FP32")
    return reasons


def verdict(timing: Timing, steps: Sequence[Any], variant: Any, original: Any, batch_size: int,
            before_accuracy: Optional[float] = None, after_accuracy: Optional[float] = None,
            fid: Optional[Fidelity] = None) -> Verdict:
    reliable = not timing.noisy and not timing.few_rounds
    label = label_for(timing.ci95, timing.rounds, reliable, has_steps=bool(steps))
    quality = quality_of(before_accuracy, after_accuracy, fid)
    warnings = list(quality.reasons)
    if label == INCONCLUSIVE:
        # The causes of a slowdown matter only when the estimate itself is no gain.
        reasons = likely_reasons(steps, variant, original, batch_size, fallback=False) \
            if timing.speedup <= FASTER_ABOVE else []
        return Verdict(label, reasons, warnings, quality, inconclusive_reason(timing),
                       timing.suggested_budget_s)
    reasons = [] if label == FASTER else likely_reasons(steps, variant, original, batch_size,
                                                         timing)
    if label == FASTER and timing.noisy:
        warnings.append(f"the measurement was noisy ({timing.noisy_reason}); the speedup's "
                        f"confidence interval still clears {FASTER_ABOVE:.2f}x")
    if timing.few_rounds:  # a slow model in a short budget: the verdict rests on few rounds
        (warnings if label == FASTER else reasons).append(timing.few_rounds)
    return Verdict(label, reasons, warnings, quality)
