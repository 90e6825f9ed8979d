"""`quantgui-cli sensitivity`: per layer (or transformer block), what one numeric format costs in
quality when only that layer is converted and when all but it are, and its share of the time."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from .common import CliError, add_model_arguments, check_output_path, check_outputs, show_result


def add_sensitivity(sub: Any) -> argparse.ArgumentParser:
    from ..core.sensitivity import FORMATS, SAMPLES
    p = sub.add_parser("sensitivity", help="per-layer sensitivity to a numeric format (quality "
                       "with only each layer converted / all but it; time share)")
    add_model_arguments(p)
    p.add_argument("--format", default="dynamic_int8", choices=FORMATS,
                   help="the numeric format measured (default dynamic_int8)")
    p.add_argument("--params", default="", metavar="k=v,...",
                   help="the format's parameters, as in --step (e.g. per_channel=false)")
    p.add_argument("--expand", action="store_true",
                   help="one row per layer, also inside transformer blocks (default: a block "
                        "such as encoder.layer.3 is one unit)")
    p.add_argument("--samples", type=int, default=SAMPLES, metavar="N",
                   help=f"evaluation samples from the data (default {SAMPLES})")
    p.add_argument("--batch", type=int, metavar="N", help="batch size (default: the example's)")
    p.add_argument("--no-cache", action="store_true",
                   help="measure again even when the cache holds this model, data and format")
    p.add_argument("--json", nargs="?", const="-", metavar="OUT.json", dest="json_out",
                   help="write the report as JSON (stdout without a file name)")
    return p


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%" if math.isfinite(x) else f"{'-':>6}"


def format_report(report: Any) -> str:
    """The table: units in the order of `rank` (most sensitive first)."""
    from ..core.results.sensitivity import rank
    from ..core.text import printable
    head = (f"sensitivity of {printable(report.source)} to {report.format} "
            f"({', '.join(f'{k}={v}' for k, v in report.params.items()) or 'defaults'})\n"
            f"quality on {printable(report.data)}: "
            f"{'accuracy change (paired 95% CI)' if report.metric == 'accuracy' else 'fidelity to the original'}"
            f"; all converted: {report.full.words() if report.full else '-'}")
    by_name = {u.name: u for u in report.units}
    rows = [(printable(u.name), printable(u.kind), _pct(u.params_share),
             _pct(u.time_share_before), _pct(u.time_share_after),
             u.only.words() if u.only else "-", u.all_but.words() if u.all_but else "-")
            for u in (by_name[n] for n in rank(report))]
    titles = ("rank unit", "kind", "params", "time FP32", "time after", "only this converted",
              "all but this converted")
    width = [max([len(titles[0])] + [len(r[0]) + 5 for r in rows])] + [
        max([len(t)] + [len(r[i]) for r in rows]) for i, t in enumerate(titles) if i]
    lines = [head, "", "  ".join(t.ljust(w) for t, w in zip(titles, width))]
    for i, r in enumerate(rows, 1):
        cells = (f"{i:>3}. {r[0]}",) + r[1:]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, width)).rstrip())
    if report.cancelled:
        lines.append(f"\ncancelled: {len(report.units)} of {report.total_units} units measured")
    lines += [f"note: {printable(n)}" for n in report.notes]
    return "\n".join(lines)


def cmd_sensitivity(args: argparse.Namespace, task: Any) -> int:
    from ..core.errors import UserError
    from ..core.params import parse_kv
    from ..core.progress import Task
    from ..core.sensitivity import sensitivity
    from .common import open_from_args
    for flag, value in (("--samples", args.samples), ("--batch", args.batch)):
        if value is not None and value < 1:
            raise CliError(f"{flag}: must be at least 1, got {value}")
    check_output_path(args.json_out)
    inputs = check_outputs(args, [("--json", args.json_out, False)])
    params = parse_kv(args.params, "--params")
    loaded = open_from_args(args, task)

    def progress(p: Any) -> None:  # one stderr line per unit; stdout stays the result
        if p.phase == "sensitivity" and p.total and p.done < p.total:
            print(f"[{p.done + 1}/{p.total}] {p.message}", file=sys.stderr, flush=True)
    try:
        report = sensitivity(loaded, args.format, params, expand=args.expand,
                             samples=args.samples, batch_size=args.batch,
                             task=Task(progress, task.cancel_token),
                             use_cache=not args.no_cache)
    except UserError as exc:
        raise UserError(f"{args.model}: {exc}") from exc
    show_result(report.to_json(), lambda: format_report(report), args.json_out, inputs)
    return 130 if report.cancelled else 0
