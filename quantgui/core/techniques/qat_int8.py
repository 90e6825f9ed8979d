"""Quantization-aware training: fine-tune with fake INT8 quantization in the forward pass so the
weights adapt to the rounding, then convert to a static INT8 model (FX graph mode).

Worth it when static PTQ loses accuracy; costs a few epochs of training and needs labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from . import _engines, _fx_int8, _layers
from ..errors import UserError
from ..model.variant import Variant
from ..params import param
from .base import StepContext, Technique
from .hooks import NoScript


@dataclass
class Params:
    epochs: int = param(
        2, "Fine-tuning epochs with fake quantization. More epochs recover more accuracy but "
        "each costs a pass over the training data (forward + backward).", min=1, max=100)
    lr: float = param(
        1e-4, "Adam learning rate. Small, because the model is already trained: large rates "
        "undo the training instead of adapting it to INT8.", min=1e-7, max=1e-1,
        label="Learning rate")
    batch_size: int = param(
        128, "Training batch size. Fake quantization costs about the same per step at 64 or "
        "128 samples, so larger batches make an epoch faster.", min=1, max=4096)
    engine: Optional[str] = param(
        None, "Quantized kernel library of the converted model. Empty = auto: converted for "
        "each engine and the fastest on your batch kept.", choices=_engines.ENGINE_CHOICES)
    per_channel: bool = param(
        True, "One weight scale per output channel: better accuracy at the same size/speed.")
    skip: list[str] = _layers.skip_param()


class QatInt8(Technique):
    name = "qat_int8"
    title = "QAT INT8"
    summary = ("Fine-tunes with simulated INT8 before converting: recovers accuracy static "
               "INT8 loses, same speed and ~4x smaller; needs labeled training data.")
    Params = Params
    stage = 30
    group = "numeric format"
    needs_labels = True
    quantizes = True

    def applies_to(self, model: nn.Module) -> Optional[str]:
        reason = _engines.program_reason(model, "QAT cannot swap its layers for fake-quantized "
                                                "ones")
        if reason:
            return reason
        if getattr(getattr(model, "config", None), "_attn_implementation", None) is not None:
            return ("QAT uses FX graph mode, which traces positional inputs only, and a Hugging "
                    "Face model takes keyword inputs: use static_int8 (PT2E) or dynamic_int8")
        if not _engines.has_any(model, _fx_int8.QUANTIZABLE):
            return "no nn.Linear/Conv layers to quantize"
        return None

    def apply(self, variant: Variant, params: Params, ctx: StepContext) -> Variant:
        if ctx.train is None:
            raise UserError("qat_int8 fine-tunes the model and needs labeled training data; "
                            "give a data file with 'inputs' and 'labels'")
        if not ctx.train.labeled:
            raise UserError(f"qat_int8 needs labels, but {ctx.train.name} has inputs only; "
                            "use static_int8 to calibrate without labels")
        model = variant.module
        if not isinstance(model, nn.Module):
            raise UserError("qat_int8 needs an nn.Module (an earlier step converted it)")
        if params.engine is not None:
            _engines.check_engine(params.engine)
        model.eval()  # trace in eval form; prepare_qat_fx fuses conv+bn into QAT modules
        mapping = _fx_int8.qconfig_mapping(params.engine, "moving_average", params.per_channel,
                                           qat=True)
        _fx_int8.skip_layers(mapping, model, params.skip, ctx)
        fake_quant = _fx_int8.prepare(model.train(), mapping, ctx.example, qat=True)
        last_loss = self._train(fake_quant, params, ctx)
        fake_quant.eval()
        result = _fx_int8.convert_for_fastest_engine(fake_quant, variant, params.engine, ctx,
                                                     model.eval())
        ctx.decide("api", "fx")
        ctx.note(f"QAT: {params.epochs} epoch(s) on {ctx.train.name} (Adam lr {params.lr:g}, "
                 f"batch {params.batch_size}), final training loss {last_loss:.4f}; BatchNorm "
                 "statistics frozen for the last epoch")
        ctx.metrics["final_train_loss"] = round(last_loss, 5)
        _fx_int8.deprecation_note(ctx)
        _fx_int8.note_coverage(model, result.module, ctx)
        result.tags.update({"quantized_api": "torch.ao FX QAT", "engine": result.quantized_engine,
                            "quantization": "qat_int8"})
        return result

    @staticmethod
    def _train(model: nn.Module, params: Params, ctx: StepContext) -> float:
        data = ctx.train
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
        per_epoch = data.num_batches(params.batch_size)
        total = per_epoch * params.epochs
        generator = torch.Generator().manual_seed(0)
        step, loss_value = 0, float("nan")
        model.train()
        for epoch in range(1, params.epochs + 1):
            if epoch == params.epochs and params.epochs > 1:
                # Standard QAT recipe: stop updating BN statistics late in training so the
                # folded conv weights settle.
                model.apply(torch.ao.nn.intrinsic.qat.freeze_bn_stats)
            order = torch.randperm(len(data), generator=generator)
            for start in range(0, len(data), params.batch_size):
                ctx.task.check()
                idx = order[start:start + params.batch_size]
                inputs = data.inputs.map(lambda t: t[idx] if t.dim() > 0 else t)
                labels = data.labels[idx]
                optimizer.zero_grad()
                out = model(*inputs.args, **inputs.kwargs)
                if not isinstance(out, torch.Tensor) or out.dim() != 2:
                    raise UserError("qat_int8 trains with cross-entropy and needs the model to "
                                    "return (batch, classes) logits")
                loss = loss_fn(out, labels)
                loss.backward()
                optimizer.step()
                step += 1
                loss_value = float(loss.detach())
                ctx.task.report("train", step, total, "training", loss=loss_value, epoch=epoch)
        return loss_value

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        return NoScript("QAT fine-tunes the weights on the training data; the script would have "
                        "to repeat that training, so it has no script template yet (save the "
                        "model instead)")

    def why_not_faster(self, ctx):
        return _engines.int8_batch_reason(ctx.batch_size)

    def recommend_hints(self, traits, capabilities):
        # Only worth its training time when static INT8 lost accuracy: recommend's search adds
        # it after such a trial (recommend._qat_fallback), never up front.
        return []


TECHNIQUE = QatInt8()
