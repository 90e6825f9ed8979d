"""AOTInductor: compile the exported graph ahead of time into a .pt2 package (a shared library
plus weights) that runs without the model's Python code.

torch.export (non-strict: strict export resets Dynamo and silently recompiles every compiled
variant, pitfall 4) -> torch._inductor.aoti_compile_and_package (Inductor's C++ kernels, with
freezing: BatchNorm folded, weights pre-packed) -> torch._inductor.aoti_load_package. On the
digits CNN it measured like torch.compile with freezing (2.4x); the compile takes 15-30 s and is
reported apart from latency. The package is QuantGUI's own, written into the step's temporary
folder; a .pt2 given by a user is never loaded this way (loading one runs its code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError
from ..params import param
from . import hooks
from ._runtime_util import (Binder, RuntimeModule, dynamic_shapes, export_inputs, first_line,
                            quiet, start)
from .base import Technique
from .hooks import ScriptCode


@dataclass
class Params:
    dynamic: bool = param(
        True, "Compile for any batch size (and sequence length of token inputs) where the "
              "model allows; off: only the example's shapes.")
    max_autotune: bool = param(
        False, "Benchmark GEMM kernel choices while compiling: can be a little faster, "
               "compiles much longer.")


class AOTInductor(Technique):
    name = "aoti"
    title = "AOTInductor (.pt2 package)"
    summary = ("Compile ahead of time into a .pt2 package (C++ kernels + weights) that loads "
               "without Python model code; the compile takes 15-30 s, reported apart.")
    Params = Params
    stage = 60
    group = "runtime"

    def applies_to(self, model):
        return None  # torch.export's failure on this model is said by apply, with its reason

    def apply(self, variant, params, ctx):
        from torch._inductor import aoti_compile_and_package, aoti_load_package
        module, _threads, folder, base, phases, spec = start(variant, ctx, "aoti", "aoti")
        path = base / "model.pt2"
        binder = Binder(module, ctx.example)
        with phases.phase("export", "torch.export"), torch.no_grad(), quiet():
            program, dynamic, errors = None, False, []
            for dyn in ((True, False) if params.dynamic else (False,)):
                inputs = export_inputs(ctx.example) if dyn else ctx.example
                try:
                    program = torch.export.export(
                        module, tuple(inputs.args), dict(inputs.kwargs), strict=False,
                        dynamic_shapes=dynamic_shapes(binder, module, inputs) if dyn else None)
                    dynamic = dyn
                    break
                except Exception as exc:  # noqa: BLE001 - said below with the exporter's words
                    errors.append(first_line(exc))
            if program is None:
                raise UserError(f"torch.export failed: {errors[-1]}")
        configs = {"freezing": True}
        if params.max_autotune:
            configs["max_autotune"] = True
        with phases.phase("compile", "AOTInductor compile (15-30 s; cannot be interrupted "
                          "midway)"), quiet():
            aoti_compile_and_package(program, package_path=str(path), inductor_configs=configs)
        names = list(binder.names)
        # the package takes the example's convention: its positional tensors, then its keywords
        keywords = [n for n in names if n in ctx.example.kwargs]

        def reopen(files):
            compiled = aoti_load_package(str(files["pt2"]))

            def run_flat(feeds):
                given = dict(zip(names, (torch.from_numpy(f) for f in feeds)))
                outs = compiled(*[given[n] for n in names if n not in keywords],
                                **{n: given[n] for n in keywords})
                return [o.numpy() for o in torch.utils._pytree.tree_leaves(outs)]
            return run_flat
        files = {"pt2": path}
        with phases.phase("load", "loading the package"):
            run_flat = reopen(files)
        dynamic = dynamic and bool(program.range_constraints)
        runtime = RuntimeModule("aoti", run_flat, binder, names, spec, folder, files,
                                fixed_shape=not dynamic, reopen=reopen, in_torch=True)
        phases.record()
        for key, value in (("exporter", "torch.export (non-strict)"), ("dynamic_axes", dynamic),
                           ("freezing", True), ("max_autotune", params.max_autotune),
                           ("compiled", True)):
            ctx.decide(key, value)
        if not dynamic:
            ctx.note("aoti: the package is fixed to the example's shapes; evaluation uses full "
                     "batches only")
        result = variant.evolve(module=runtime, channels_last=False)
        result.tags.update({"runtime": "aoti", "fixed_shape": not dynamic,
                            "artifact": str(path)})
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        autotune = bool(step.param("max_autotune", False))
        configs = "{'freezing': True" + (", 'max_autotune': True}" if autotune else "}")
        body = ("import tempfile\n"
                "from torch._inductor import aoti_compile_and_package, aoti_load_package\n"
                "call['channels_last'] = False\n"
                "program = torch.export.export(model.eval(), tuple(EXAMPLE.args), "
                "dict(EXAMPLE.kwargs), strict=False)\n"
                "path = os.path.join(tempfile.mkdtemp(prefix='aoti-'), 'model.pt2')\n"
                f"aoti_compile_and_package(program, package_path=path, "
                f"inductor_configs={configs})\n"
                "# the minimal code to run the saved package: aoti_load_package(path)(*inputs)\n"
                "SAVEABLE['artifact'], SAVEABLE['reload'] = path, aoti_load_package\n"
                "model = aoti_load_package(path)\n")
        return ScriptCode(body, "AOTInductor .pt2 package (freezing)")

    def why_not_faster(self, ctx):
        return ["AOTInductor generates the same kernels as torch.compile: on a model whose time "
                "is all in large GEMMs it gains little over eager FP32"]

    def recommend_hints(self, traits, capabilities):
        return [hooks.Hint(("aoti",), hooks.COMPILE + 2,
                           "AOTInductor: torch.compile's kernels in a deployable .pt2 package",
                           costly=True)]


TECHNIQUE = AOTInductor()
