"""quantgui-cli: the engine from a terminal; the same API the GUI calls.

Exit codes are a contract shared with the GUI's tests and with users' scripts:
0 success; 2 bad input (one line on stderr, "quantgui-cli: error: <what>: <reason>");
1 internal error (one line, the traceback with --debug); 130 cancelled with Ctrl-C; 143 SIGTERM.

Each subcommand is a small `add_*` function (its arguments) plus a `cmd_*` function (its work),
so later commands (`recommend`) and options (`--save DIR`, `--report DIR`) slot in without
touching the others: add a pair and list it in SUBCOMMANDS, or extend `add_run`.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any, Callable, Optional, Sequence
import warnings

from . import commands as c
from . import sensitivity as sens
from . import sweep as sw
from . import tune as tn
from .common import PROG, CliError, emit_json  # noqa: F401  (part of the package's face)
from .process import (one_line, pure_json_stdout, quiet_torch_logging, safe_output, sigint_cancels,
                      sigterm_exits)

#: (name, add arguments, run): add a pair in commands.py and list it here.
SUBCOMMANDS: list[tuple[str, Callable[[Any], argparse.ArgumentParser],
                        Callable[[argparse.Namespace, Any], int]]] = [
    ("examples", c.add_examples, c.cmd_examples),
    ("techniques", c.add_techniques, c.cmd_techniques),
    ("inspect", c.add_inspect, c.cmd_inspect),
    ("run", c.add_run, c.cmd_run),
    ("recommend", c.add_recommend, c.cmd_recommend),
    ("serve", c.add_serve, c.cmd_serve),
    ("sweep", sw.add_sweep, sw.cmd_sweep),
    ("sensitivity", sens.add_sensitivity, sens.cmd_sensitivity),
    ("tune", tn.add_tune, tn.cmd_tune),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Make PyTorch models smaller and "
                                     "faster, with honest before/after measurements.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and warnings")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for _name, add, cmd in SUBCOMMANDS:
        p = add(sub)
        # --debug is accepted after the subcommand too (where users type it).
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help=argparse.SUPPRESS)
        p.set_defaults(func=cmd)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    with safe_output():
        return _main(argv)


def _main(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its usage line
        return int(exc.code or 0)
    debug = bool(getattr(args, "debug", False))

    from ..core.errors import Cancelled, UserError
    from ..core.progress import CancelToken, Task
    token = CancelToken()
    task = Task(None, token)
    try:
        with sigint_cancels(token), sigterm_exits(), quiet_torch_logging(debug), \
                pure_json_stdout(args), warnings.catch_warnings(record=True) as caught:
            # Library warnings (deprecations, torchao notices) would break the "one line on
            # stderr" contract; steps turn the ones that matter into notes. --debug shows all.
            warnings.simplefilter("always" if debug else "ignore")
            code = args.func(args, task)
        if debug:
            for w in caught:
                print(f"{PROG}: warning: {w.category.__name__}: {one_line(w.message)}",
                      file=sys.stderr)
        return code
    except (UserError, CliError) as exc:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print(f"{PROG}: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        else:
            from ..core.errors import internal_error_text
            print(f"{PROG}: internal error: {one_line(internal_error_text(exc))} "
                  f"(run with --debug for the traceback)", file=sys.stderr)
        return 1
