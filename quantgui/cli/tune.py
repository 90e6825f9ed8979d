"""`quantgui-cli tune`: the anytime auto-tune (core/tune.py). Each trial is one stderr line as it
ends (stdout stays the result, like `recommend`); then the chosen recipe, its speedup with the
95% CI, size, quality against the budget and the explanation. Ctrl-C or --time-limit stops the
search and prints (and saves) the best so far; Ctrl-C exits 130."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from .common import (CliError, add_budget_arguments, add_model_arguments, budget_from_args,
                     check_counts, check_output_path, check_outputs, open_from_args, show_result)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|h)?\s*$")
MAX_TIME_LIMIT_S = 7 * 24 * 3600.0


def parse_duration(text: str) -> float:
    """'90', '90s', '10m', '1.5h' -> seconds; anything else a one-line error naming the flag."""
    match = _DURATION.match(text or "")
    if not match:
        raise CliError(f"--time-limit: {text!r:.40} is not a duration (e.g. 90s, 10m, 1.5h)")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if not 0 < seconds <= MAX_TIME_LIMIT_S:
        raise CliError(f"--time-limit: must be more than 0 and at most 7 days, got {text}")
    return seconds


def add_tune(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("tune", help="anytime auto-tune: the fastest recipe within a quality "
                       "budget, falling back the most sensitive layers where a format misses it")
    add_model_arguments(p)
    p.add_argument("--time-limit", metavar="DURATION",
                   help="stop after this long with the best so far (e.g. 90s, 10m, 1h)")
    p.add_argument("--log", metavar="TRIALS.jsonl",
                   help="write every trial to this JSON-lines log (with --resume: continue it)")
    p.add_argument("--resume", action="store_true",
                   help="skip the trials --log already holds for this model, data and budget")
    p.add_argument("--out", metavar="RECIPE.json",
                   help="save the chosen recipe (with its budget) to this file")
    p.add_argument("--json", nargs="?", const="-", metavar="OUT.json", dest="json_out",
                   help="write the whole result as JSON (stdout without a file name)")
    p.add_argument("--max-candidates", type=int, metavar="N",
                   help="try at most N of recommend's candidates (fallbacks come on top)")
    p.add_argument("--samples", type=int, metavar="N",
                   help="evaluation samples of the sensitivity ranking (default 256)")
    p.add_argument("--compile", action="store_true",
                   help="also try torch.compile recipes (10-30 s each to compile)")
    p.add_argument("--batch", type=int, metavar="N", help="batch size (default: the example's)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: current)")
    p.add_argument("--time-budget", type=float, default=1.0, metavar="SECONDS",
                   help="timing per trial (default 1.0)")
    add_budget_arguments(p)
    from .cluster_tune import add_cluster_argument
    add_cluster_argument(p)
    return p


def trial_line(n: int, t: Any) -> str:
    """'[3] fallback dynamic_int8 + keep sensitive: 1.84x (95% CI 1.71-1.95), size 0.31x,
    meets the budget: ...'."""
    from ..core.results.tune import Effect
    e = Effect.of(n - 1, t.trial)
    what = t.stage + (f" (keeps {', '.join(t.kept)})" if t.stage == "fallback" else "") + \
        (f" (keeps {', '.join(t.kept)} in BF16)" if t.stage == "mixed" else "") + \
        (" (from the log)" if t.from_log else "")
    return f"[{n}] {what}: {e.recipe}: {e.words()}"


def format_result(result: Any) -> str:
    lines = []
    best = result.best
    if best is None:
        lines.append(f"\nresult: {result.message}")
    else:
        from ..core.results.tune import Effect
        e = Effect.of(result.best_index, best.trial)
        lines += [f"\nrecipe: {e.recipe}",
                  f"speed: {e.words().split(', ')[0]}",
                  f"size: {'-' if e.size_ratio is None else f'{e.size_ratio:.2f}x'} the original",
                  f"quality: {e.quality} ({result.budget.describe()})"]
        explanation = result.lines()
        if explanation:
            lines.append("why:")
            lines += [f"  - {line}" for line in explanation]
        lines.append(f"({len(result.trials)} trials"
                     + (f", stopped: {result.stopped}" if result.stopped else "") + ")")
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def cmd_tune(args: argparse.Namespace, task: Any) -> int:
    from ..core.progress import Task
    from ..core.run import RunOptions
    from ..core.tune import TuneOptions, tune
    check_counts(args, max_candidates="--max-candidates", samples="--samples")
    limit = None if args.time_limit is None else parse_duration(args.time_limit)
    if args.resume and not args.log:
        raise CliError("--resume: needs --log, the trial log to continue")
    budget = budget_from_args(args)
    check_output_path(args.out)
    check_output_path(args.log)
    cluster = args.cluster not in (None, "", "local")
    if args.log and not args.resume and os.path.lexists(args.log) and not cluster:
        raise CliError(f"{args.log}: already exists; pass --resume to continue that tune, or "
                       f"name a new log file")
    if args.log and args.resume and os.path.lexists(args.log):
        from ..core.safeload import regular_file
        regular_file(args.log, "trial log")  # a FIFO or a folder: refused before any work
    inputs = check_outputs(args, [("--json", args.json_out, False), ("--out", args.out, False),
                                  ("--log", args.log, False)])
    if cluster:  # every machine type of a cluster: the model is opened on its nodes, not here
        from .cluster_tune import cmd_cluster_tune
        return cmd_cluster_tune(args, task, budget, limit, inputs)
    loaded = open_from_args(args, task)
    options = TuneOptions(
        run=RunOptions(batch_size=args.batch, threads=args.threads,
                       time_budget_s=args.time_budget, min_rounds=6, warmup=2),
        max_candidates=args.max_candidates, include_compile=args.compile,
        sensitivity_samples=args.samples)
    count = [0]

    def on_trial(t: Any) -> None:  # one stderr line per trial; stdout stays the result
        count[0] += 1
        print(trial_line(count[0], t), file=sys.stderr, flush=True)

    def progress(p: Any) -> None:
        if p.phase == "tune" and p.total is None and p.message.startswith("ranking"):
            print(f"    {p.message}", file=sys.stderr, flush=True)
    result = tune(loaded, budget, options, Task(progress, task.cancel_token), args.log,
                  args.resume, limit, on_trial)
    # The measurements first, the files after: a failed write must not lose them.
    show_result(result.to_json(), lambda: format_result(result), args.json_out, inputs)
    if args.out and result.recipe is not None:
        sys.stdout.flush()
        result.recipe.save(args.out)
        print(f"saved recipe to {args.out}", file=sys.stderr if args.json_out == "-"
              else sys.stdout)
    interrupted = result.cancelled and result.stopped == "cancelled"
    return 130 if interrupted else 0  # the best so far is printed and saved either way

