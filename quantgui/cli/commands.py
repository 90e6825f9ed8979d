"""The subcommands: each is an `add_*` function (its arguments) and a `cmd_*` function (its
work); SUBCOMMANDS in __init__.py lists them."""

from __future__ import annotations

import argparse
from dataclasses import replace
import sys
from typing import Any

from .common import (add_budget_arguments, add_model_arguments, budget_from_args, check_counts,
                     check_output_path, check_outputs, emit_json, open_from_args, show_result,
                     recipe_from_args)


def add_examples(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("examples", help="built-in examples with their real test accuracy")
    p.add_argument("--json", action="store_true", help="print JSON")
    from .data_args import add_fashion_argument
    add_fashion_argument(p)
    return p


def cmd_examples(args: argparse.Namespace, task: Any) -> int:
    from ..core import examples
    from ..core.run import pct, table
    from .data_args import apply_fashion
    apply_fashion(args)
    rows = examples.describe() + fashion_rows()
    if args.json:
        emit_json(rows, None)
        return 0
    print(table([("name", "test accuracy", "parameters", "suggested", "description")] +
                [(f"example:{r['name']}", pct(r["test_accuracy"]), f"{r['parameters']:,}",
                  ", ".join(r["suggested"]), r["description"]) for r in rows]))
    from ..core.examples import fashion
    if not fashion.available():
        print(f"\n{fashion.HOW_TO_GET}")
    return 0


def fashion_rows() -> list:
    """The fashion-cnn example's row when its Fashion-MNIST files are given (trained once)."""
    from ..core.examples import accuracy, fashion
    if not fashion.available():
        return []
    model, _, test = fashion.build()
    return [{"name": fashion.NAME, "description": fashion.DESCRIPTION,
             "parameters": sum(p.numel() for p in model.parameters()),
             "test_accuracy": accuracy(model, test), "suggested": ["static_int8", "qat_int8"]}]


def add_techniques(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("techniques", help="techniques, their parameters and help")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def cmd_techniques(args: argparse.Namespace, task: Any) -> int:
    from ..core.recipe import STAGES
    from ..core.results import technique_specs
    techs = technique_specs()  # what the GUI's panels and preflight read, too
    if args.json:
        emit_json([t.to_json() for t in techs.values()], None)
        return 0
    for t in techs.values():
        print(f"{t.name}  ({t.title}; stage {t.stage}: {STAGES.get(t.stage, '')}"
              + (f"; one {t.group} step per recipe" if t.group else "") + ")")
        print(f"    {t.summary}")
        for s in t.params:
            bounds = []
            if s.choices:
                bounds.append("one of " + "|".join(map(str, s.choices)))
            if s.min is not None or s.max is not None:
                bounds.append(f"range {s.min if s.min is not None else ''}.."
                              f"{s.max if s.max is not None else ''}")
            default = "auto" if s.default is None and s.optional else s.default
            print(f"    {s.name}={default}  [{s.type.__name__}"
                  + (f"; {'; '.join(bounds)}" if bounds else "") + f"]  {s.help}")
    print("\nuse: quantgui-cli run MODEL --step NAME[:key=value,...] ...")
    return 0


def add_inspect(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help="what the model is and which techniques apply")
    add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def cmd_inspect(args: argparse.Namespace, task: Any) -> int:
    from ..core import env
    from ..core.opening.example_input import HOW_TO_GIVE
    from ..core.run import mb, table
    loaded = open_from_args(args, task, need_example=False)  # what it is, even without input
    info = loaded.info.to_json()
    environment = env.environment()
    if args.json:
        emit_json({"model": info, "environment": environment}, None)
        return 0
    print(table([("source", info["source"]), ("format", info["format"]),
                 ("class", info["name"]), ("parameters", f"{info['parameters']:,}"),
                 ("size", mb(info["size_bytes"])),
                 ("example input", info["example_input"] or "none (needed to run it)")]))
    if loaded.test is not None:
        print(f"test data: {loaded.test.name}, {len(loaded.test)} samples"
              + (", labeled" if loaded.test.labeled else ", no labels"))
    print("layers: " + ", ".join(f"{k} x{n}" for k, n in info["layer_counts"].items()))
    print("techniques:")
    for name, reason in info["applicability"].items():
        print(f"  {name:22s} {'applies' if reason is None else 'no: ' + reason}")
    for note in info["notes"]:
        print(f"note: {note}")
    print(f"machine: {environment['cpu']} ({', '.join(environment['cpu_capabilities'])}), "
          f"{environment['threads']} threads, torch {environment['torch']}")
    if loaded.example is None:
        print(f"to run it: {HOW_TO_GIVE}")
    return 0


def add_run(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="apply a recipe and measure before vs after")
    add_model_arguments(p)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--step", action="append", default=[], metavar="NAME[:key=value,...]",
                     help="a recipe step; repeat for several (no steps: time the model "
                          "against itself, a noise check)")
    how.add_argument("--recipe", metavar="FILE.json", help="a saved recipe")
    p.add_argument("--batch", type=int, metavar="N", help="batch size (default: the example's)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: current)")
    p.add_argument("--time-budget", type=float, default=3.5, metavar="SECONDS",
                   help="time for the interleaved timing (default 3.5)")
    p.add_argument("--eval-limit", type=int, metavar="BATCHES",
                   help="evaluate on at most this many batches")
    p.add_argument("--json", metavar="OUT.json", dest="json_out",
                   help="write the full result as JSON ('-' for stdout)")
    p.add_argument("--save", metavar="DIR", help="save the optimized model (checked by "
                   "reloading) and a standalone rebuild script into DIR")
    p.add_argument("--report", metavar="DIR", help="write report.html, report.md and "
                   "recipe.json into DIR")
    add_budget_arguments(p)
    return p


def cmd_run(args: argparse.Namespace, task: Any) -> int:
    from ..core.export import export_folders, protected_paths
    from ..core.run import RunOptions, format_result, run_recipe
    from ..core.run.preflight import preflight, require
    check_counts(args, eval_limit="--eval-limit")
    budget = budget_from_args(args)  # over the recipe's own budget
    inputs = check_outputs(args, [("--json", args.json_out, False), ("--save", args.save, True),
                                   ("--report", args.report, True)])
    recipe = recipe_from_args(args)  # a bad recipe fails before the model is even opened
    loaded = open_from_args(args, task, recipe=recipe)
    require(preflight(loaded, recipe))  # each step on this model and its data, before timing
    inputs += protected_paths(loaded)
    options = RunOptions(batch_size=args.batch, threads=args.threads,
                         time_budget_s=args.time_budget, eval_limit=args.eval_limit,
                         budget=budget)
    result = run_recipe(loaded, recipe, options, task)
    # The measurement first: an export that fails (a full disk) must not lose it.
    show_result(result.to_json(), lambda: format_result(result), args.json_out, inputs, "\n")
    sys.stdout.flush()
    lines = export_folders(args.save, args.report, loaded, result, inputs, task)
    if lines:  # with --json -, stdout holds only the JSON
        print(("" if args.json_out == "-" else "\n") + "\n".join(lines),
              file=sys.stderr if args.json_out == "-" else sys.stdout)
    return 0


def add_recommend(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("recommend", help="try the recipes likely to pay on this model and CPU, "
                       "measure each, print the fastest within a quality bound")
    add_model_arguments(p)
    p.add_argument("--max-candidates", type=int, metavar="N", help="try at most N recipes")
    p.add_argument("--compile", action="store_true",
                   help="also try torch.compile recipes (10-30 s each to compile)")
    p.add_argument("--batch", type=int, metavar="N", help="batch size (default: the example's)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: current)")
    p.add_argument("--time-budget", type=float, default=1.0, metavar="SECONDS",
                   help="timing per candidate (default 1.0)")
    p.add_argument("--json", metavar="OUT.json", dest="json_out",
                   help="write the recommendation and every trial as JSON ('-' for stdout)")
    p.add_argument("--save-recipe", metavar="FILE.json", help="save the best recipe (with "
                   "the budget it was chosen by)")
    add_budget_arguments(p)
    return p


def cmd_recommend(args: argparse.Namespace, task: Any) -> int:
    from ..core.progress import Task
    from ..core.recommend import recommend
    from ..core.run import RunOptions
    check_counts(args, max_candidates="--max-candidates")
    budget = budget_from_args(args)
    check_output_path(args.save_recipe)
    inputs = check_outputs(args, [("--json", args.json_out, False),
                                   ("--save-recipe", args.save_recipe, False)])
    loaded = open_from_args(args, task)
    options = RunOptions(batch_size=args.batch, threads=args.threads,
                         time_budget_s=args.time_budget, min_rounds=6, warmup=2)

    def progress(p: Any) -> None:  # one stderr line per candidate; stdout stays the result
        if p.phase == "recommend" and p.done < (p.total or 0):
            print(f"[{p.done + 1}/{p.total}] trying {p.message}", file=sys.stderr, flush=True)
    rec = recommend(loaded, options=options, task=Task(progress, task.cancel_token),
                    max_candidates=args.max_candidates, include_compile=args.compile,
                    budget=budget)
    # The measurements first, the files after: a failed write must not lose them.
    if args.json_out == "-":
        emit_json(rec.to_json(), None)
    else:
        print(rec.table())
        print(f"\nrecommendation: {rec.message}")
        if args.json_out:
            emit_json(rec.to_json(), args.json_out, inputs)
            print(f"wrote {args.json_out}")
    if args.save_recipe and rec.best is not None:
        sys.stdout.flush()
        from ..core.budget import QualityBudget
        chosen_by = QualityBudget(**rec.bound.get("budget", {}))
        saved = replace(rec.best.recipe, budget=None if chosen_by.empty else chosen_by)
        saved.save(args.save_recipe)
        if args.json_out != "-":
            print(f"saved recipe to {args.save_recipe}")
    return 130 if rec.cancelled else 0  # the best so far is printed either way


def add_serve(sub: Any) -> argparse.ArgumentParser:
    return sub.add_parser("serve", help="serve the engine protocol on stdin/stdout (JSON lines; "
                          "what the GUI's engine process speaks, see quantgui/engine/protocol.py)")


def cmd_serve(args: argparse.Namespace, task: Any) -> int:
    from ..engine.server import main as serve
    return serve()
