"""`quantgui-cli sweep`: recipes x batch sizes x thread counts, here or on a Ray cluster, and
`--profile`: where the time goes per layer, before vs after, for one configuration."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from .common import (MAX_TIME_BUDGET_S, CliError, add_model_arguments, arch_kwargs,
                     check_output_path, check_outputs, check_range, emit_json, input_dtype,
                     input_shape)


def add_sweep(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("sweep", help="time recipes over batch sizes and thread counts "
                       "(latency and throughput, before vs after, crossovers)")
    add_model_arguments(p)
    p.add_argument("--recipe", action="append", default=[], dest="recipes",
                   metavar="FILE.json|STEP[:k=v,...][+STEP...]",
                   help="a recipe to sweep: a saved recipe file, or steps joined with '+' "
                        "(e.g. dynamic_int8+inference_mode); repeat for several")
    p.add_argument("--batch", default="1,8,32", metavar="N,N,...",
                   help="batch sizes (default 1,8,32)")
    p.add_argument("--threads", metavar="N,N,...",
                   help="torch thread counts (default: the current one)")
    p.add_argument("--time-budget", type=float, default=0.5, metavar="SECONDS",
                   help="timing per point (default 0.5)")
    p.add_argument("--cluster", default="local",
                   metavar="local|auto|HOST:PORT|ray://HOST:PORT",
                   help="where to measure: this machine (default), or every machine type of a "
                        "Ray cluster: auto ($RAY_ADDRESS, else a private local one), a head's "
                        "HOST:PORT, or ray:// through the Ray Client (pip install "
                        "\"quantgui[ray]\")")
    p.add_argument("--json", metavar="OUT.json", dest="json_out",
                   help="write the sweep as JSON ('-' for stdout)")
    p.add_argument("--csv", metavar="OUT.csv", dest="csv_out",
                   help="write the table as CSV ('-' for stdout)")
    p.add_argument("--report", metavar="DIR",
                   help="write report.html, report.md and sweep.json into DIR (a table, the "
                        "crossovers, the recommendation and the plots per machine type)")
    p.add_argument("--profile", action="store_true",
                   help="also profile per layer, before vs after, the first recipe at the "
                        "largest batch and first thread count")
    return p


def int_list(flag: str, text: str) -> list[int]:
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise CliError(f"{flag}: expected whole numbers from 1 separated by commas, "
                           f"got {part!r:.30}")
        values.append(int(part))
    return values


def parse_recipe(text: str) -> Any:
    from ..core.errors import UserError
    from ..core.params import parse_kv
    from ..core.recipe import Recipe, Step
    from ..core.run.preflight import preflight
    if text.endswith(".json"):
        return Recipe.load(text)  # its errors name the file
    steps = []
    for part in text.split("+"):
        name, _, rest = part.partition(":")
        if not name.strip():
            raise CliError(f"--recipe {text}: empty step")
        steps.append(Step(name.strip(), parse_kv(rest, f"--recipe {text}")))
    recipe = Recipe(steps)
    problems = preflight(None, recipe)
    if problems:
        raise UserError(f"--recipe {text}: {problems[0].text()}")
    return recipe


def model_reference(args: argparse.Namespace) -> dict[str, Any]:
    if args.example_input and args.input_shape:
        raise CliError("give either --example-input or --input-shape, not both")
    shape = input_shape(args.input_shape)
    return {"source": args.model, "arch": args.arch, "arch_kwargs": arch_kwargs(args.arch_kwargs),
            "trust": args.trust, "data": args.data, "example_input": args.example_input,
            "input_shape": list(shape) if shape else None, "input_dtype": input_dtype(args)}


def cmd_sweep(args: argparse.Namespace, task: Any) -> int:
    from ..core.cluster import executor_for
    from ..core.progress import Task
    from ..core.sweep import SweepSpec, format_sweep
    from .common import note_thread_cap
    if not args.recipes:
        raise CliError("give at least one --recipe")
    check_range("--time-budget", args.time_budget, 0.0, MAX_TIME_BUDGET_S, low_open=True)
    batches = int_list("--batch", args.batch)
    if args.threads:
        threads = int_list("--threads", args.threads)
    else:
        import torch
        threads = [torch.get_num_threads()]
    if args.cluster in (None, "", "local"):  # a cluster's nodes cap their own threads
        capped = []
        for t in threads:
            args.threads = t
            note_thread_cap(args)
            capped.append(args.threads)
        threads = capped
    for path in (args.json_out, args.csv_out):
        check_output_path(path)
    if args.json_out == "-" and args.csv_out == "-":
        raise CliError("--json - and --csv - both want stdout; give one a file name")
    inputs = check_outputs(args, [("--json", args.json_out, False),
                                  ("--csv", args.csv_out, False),
                                  ("--report", args.report, True)])
    spec = SweepSpec([parse_recipe(r) for r in args.recipes], batches, threads,
                     args.time_budget)
    executor = executor_for(args.cluster)
    model = model_reference(args)

    def progress(p: Any) -> None:  # one stderr line per point; stdout stays the result
        if p.phase == "sweep" and p.done < (p.total or 0):
            print(f"[{p.done + 1}/{p.total}] {p.message}", file=sys.stderr, flush=True)
    result = executor.run(model, spec, Task(progress, task.cancel_token))
    profile = None
    if args.profile and not result.cancelled and result.error is None:
        profile = run_profile(model, spec, task)
    # The measurements first, the files after: a failed write must not lose them.
    from ..core.export.sweep_report import sweep_text  # the one CSV writer (the GUI's too)
    data = result.to_json()
    if profile is not None:
        data["profile"] = profile.to_json()
    if args.json_out == "-":
        emit_json(data, None)
    elif args.csv_out == "-":
        sys.stdout.write(sweep_text(result, "csv"))
    else:
        print(format_sweep(result))
        if profile is not None:
            print(profile.table())
    if args.json_out not in (None, "-"):
        emit_json(data, args.json_out, inputs)
    if args.csv_out not in (None, "-"):
        from ..core.export.atomic import write_text_atomic
        write_text_atomic(args.csv_out, sweep_text(result, "csv"), protected=inputs)
    written = [f"wrote {path}" for path in (args.json_out, args.csv_out)
               if path not in (None, "-")]
    if args.report and result.points:
        from ..core.export.sweep_report import write_sweep_report
        written += write_sweep_report(args.report, result, profile, protected=inputs,
                                      task=task).lines()
    for line in written:  # stdout stays the JSON or CSV when one went there
        print(line, file=sys.stderr if "-" in (args.json_out, args.csv_out) else sys.stdout)
    if result.error:  # the cluster went away: what was measured is printed above
        raise CliError(f"--cluster {args.cluster}: {result.error}")
    return 130 if result.cancelled else 0


def run_profile(model: dict[str, Any], spec: Any, task: Any) -> Optional[Any]:
    from ..core.cluster import open_reference
    from ..core.measure.profile import profile_layers
    loaded = open_reference(model, task)
    return profile_layers(loaded, spec.recipes[0], spec.batches[-1], spec.threads[0], task=task)
