"""`quantgui-cli tune --cluster auto|HOST:PORT|ray://HOST:PORT`: the auto-tune on every machine
type of a Ray cluster (core/cluster/ray_tune.py), one block per type: the machine type with its
CPU flags, then what a local tune prints for it (the recipe, speedup with its 95% CI, size,
quality against the budget, why). `--json` holds every type; `--log` and `--out` are one file
per type (`per_type_path`: `trials.jsonl` -> `trials.<type>-<hash>.jsonl`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import CliError, show_result


def add_cluster_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default="local",
                   metavar="local|auto|HOST:PORT|ray://HOST:PORT",
                   help="where to tune: this machine (default), or every machine type of a Ray "
                        "cluster, one tune per type on a node of it: auto ($RAY_ADDRESS, else a "
                        "private local one), a head's HOST:PORT, or ray:// through the Ray "
                        "Client (pip install \"quantgui[ray]\"); --log and --out become one "
                        "file per type")


def request_from_args(args: argparse.Namespace, budget: Any, limit: Any) -> dict[str, Any]:
    """What every node's tune is asked (tune_worker.tune_on_node's `request`)."""
    run = {"time_budget_s": args.time_budget, "min_rounds": 6, "warmup": 2}
    if args.batch is not None:
        run["batch_size"] = args.batch
    if args.threads is not None:
        run["threads"] = args.threads
    return {"budget": None if budget is None else budget.to_json(), "run": run,
            "max_candidates": args.max_candidates, "include_compile": args.compile,
            "samples": args.samples, "time_limit_s": limit}


def format_type(entry: Any) -> str:
    from .tune import format_result
    e = entry.environment
    head = (f"== machine type: {entry.machine}\n   CPU: {e.get('cpu', '?')}, flags "
            f"{entry.flags}, {e.get('cores', '?')} cores, torch {e.get('torch', '?')} "
            f"(node {entry.node or '?'}, worker pid {entry.pid or '?'})")
    lines = [head]
    if entry.error:
        lines.append(f"error: {entry.error}")
    if entry.result is not None:
        lines.append(format_result(entry.result).lstrip("\n"))
    return "\n".join(lines)


def format_cluster(result: Any) -> str:
    blocks = [format_type(t) for t in result.types] or ["no machine type answered"]
    return "\n\n".join(blocks)


def cmd_cluster_tune(args: argparse.Namespace, task: Any, budget: Any, limit: Any,
                     inputs: Any) -> int:
    from ..core.cluster import tuner_for
    from ..core.progress import Task
    from .sweep import model_reference
    from .tune import trial_line
    tuner = tuner_for(args.cluster)
    if args.log and not args.resume:  # refused before connecting, not after
        from ..core.cluster.ray_tune import existing_type_logs
        there = existing_type_logs(args.log)
        if there:
            raise CliError(f"{there[0]}: already exists; pass --resume to continue that tune, "
                           f"or name a new log file")
    counts: dict[str, int] = {}

    def on_trial(machine: str, t: Any) -> None:  # one stderr line per trial
        counts[machine] = counts.get(machine, 0) + 1
        print(f"{machine}: {trial_line(counts[machine], t)}", file=sys.stderr, flush=True)
    result = tuner.run(model_reference(args), request_from_args(args, budget, limit),
                       Task(None, task.cancel_token), args.log, args.resume, on_trial)
    errors = [t.error for t in result.types if t.error]
    if result.types and len(errors) == len(result.types) and not any(
            t.result is not None and t.result.trials for t in result.types):
        more = len({e for e in errors}) - 1  # nothing measured anywhere: one line, exit 2
        raise CliError(errors[0] + (f" (and {more} other error(s))" if more else ""))
    # The measurements first, the files after: a failed write must not lose them.
    show_result(result.to_json(), lambda: format_cluster(result), args.json_out, inputs)
    if args.out:
        from ..core.cluster.ray_tune import per_type_path
        for entry in result.types:
            recipe = None if entry.result is None else entry.result.recipe
            if recipe is not None:
                path = per_type_path(args.out, entry.machine)
                sys.stdout.flush()
                recipe.save(path)
                print(f"saved {entry.machine}'s recipe to {path}",
                      file=sys.stderr if args.json_out == "-" else sys.stdout)
    if result.error:  # the cluster went away: what was measured is printed above
        raise CliError(f"--cluster {args.cluster}: {result.error}")
    return 130 if result.stopped == "cancelled" else 0
