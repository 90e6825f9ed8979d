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
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

PROG = "quantgui-cli"


class CliError(Exception):
    """Bad command-line usage found after parsing (exit 2, like argparse's own errors)."""


#: Where JSON for stdout goes while `_pure_json_stdout` sends everything else to stderr.
_json_stream: Optional[Any] = None


def _emit_json(data: Any, path: Optional[str], protected: Optional[list] = None) -> None:
    from .core.export.atomic import write_text_atomic
    text = json.dumps(data, indent=2, allow_nan=False)
    if path in (None, "-"):
        print(text, file=_json_stream or sys.stdout)
        return
    # Written whole or not at all: a failed write leaves neither a half file nor a temp file.
    write_text_atomic(path, text + "\n", protected=protected)


def _check_output_path(path: Optional[str]) -> None:
    """Fail before minutes of work, not after, when the output cannot be written."""
    if path in (None, "-"):
        return
    if Path(path).is_dir():
        raise CliError(f"{path}: is a folder; give a file name")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CliError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        from .core.export.atomic import read_only
        raise read_only(parent)  # the line the GUI shows for the same folder


def _check_outputs(args: argparse.Namespace,
                   outputs: list[tuple[str, Optional[str], bool]]) -> list:
    """Before any work: no output (flag, path, is_folder) may write over an input or another
    output; returns the inputs, which every writer is given to protect."""
    from .core.export import check_output_paths
    return check_output_paths(outputs, model=args.model, arch=args.arch, data=args.data,
                              example_input=args.example_input,
                              recipe=getattr(args, "recipe", None))


# --- shared model options -----------------------------------------------------------------------

def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="example:NAME, a TorchScript/exported/pickled file, a state_dict with "
                        "--arch, or a Hugging Face directory")
    p.add_argument("--arch", metavar="SPEC", help="architecture for a state_dict: file.py:Class "
                                                  "or package.module:factory")
    p.add_argument("--arch-kwargs", metavar="JSON", help="keyword arguments for --arch (JSON)")
    p.add_argument("--trust", action="store_true",
                   help="open a model file that runs code when loaded (a pickled module, a "
                        ".pt2 holding pickles, a Hugging Face folder with its own code); "
                        "never needed for --arch, which names code you chose to run")
    p.add_argument("--data", metavar="FILE", help=".npz/.pt with 'inputs' (and 'labels')")
    p.add_argument("--example-input", metavar="FILE", help=".pt/.npz holding an example input")
    p.add_argument("--input-shape", metavar="DIMS", help="example input shape, e.g. 8,3,224,224")


def _input_shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    from .core.example_input import parse_shape
    from .core.errors import UserError
    try:
        return parse_shape(text) if text else None
    except UserError as exc:
        raise CliError(f"--input-shape: {exc}") from None


def _arch_kwargs(text: Optional[str]) -> Optional[dict]:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--arch-kwargs: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CliError("--arch-kwargs: expected a JSON object like '{\"width\": 64}'")
    return value


def open_from_args(args: argparse.Namespace, task: Any) -> Any:
    from .core.loading import open_model
    if args.example_input and args.input_shape:
        raise CliError("give either --example-input or --input-shape, not both")
    return open_model(args.model, arch=args.arch, arch_kwargs=_arch_kwargs(args.arch_kwargs),
                      trust=args.trust, example_input=args.example_input,
                      input_shape=_input_shape(args.input_shape), data=args.data, task=task)


# --- subcommands --------------------------------------------------------------------------------

def add_examples(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("examples", help="built-in examples with their real test accuracy")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def cmd_examples(args: argparse.Namespace, task: Any) -> int:
    from .core import examples
    from .core.run import pct, table
    rows = examples.describe()
    if args.json:
        _emit_json(rows, None)
        return 0
    print(table([("name", "test accuracy", "parameters", "suggested", "description")] +
                [(f"example:{r['name']}", pct(r["test_accuracy"]), f"{r['parameters']:,}",
                  ", ".join(r["suggested"]), r["description"]) for r in rows]))
    return 0


def add_techniques(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("techniques", help="techniques, their parameters and help")
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def cmd_techniques(args: argparse.Namespace, task: Any) -> int:
    from .core import params as params_mod
    from .core.recipe import STAGES
    from .core.techniques import all_techniques
    techs = all_techniques()
    if args.json:
        _emit_json([{"name": t.name, "title": t.title, "summary": t.summary, "stage": t.stage,
                     "group": t.group, "needs_labels": t.needs_labels,
                     "params": [s.to_json() for s in params_mod.specs(t.Params)]}
                    for t in techs.values()], None)
        return 0
    for t in techs.values():
        print(f"{t.name}  ({t.title}; stage {t.stage}: {STAGES.get(t.stage, '')}"
              + (f"; one {t.group} step per recipe" if t.group else "") + ")")
        print(f"    {t.summary}")
        for s in params_mod.specs(t.Params):
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
    from .core import env
    from .core.run import mb, table
    loaded = open_from_args(args, task)
    info = loaded.info.to_json()
    environment = env.environment()
    if args.json:
        _emit_json({"model": info, "environment": environment}, None)
        return 0
    print(table([("source", info["source"]), ("format", info["format"]),
                 ("class", info["name"]), ("parameters", f"{info['parameters']:,}"),
                 ("size", mb(info["size_bytes"])), ("example input", info["example_input"])]))
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
    return p


def recipe_from_args(args: argparse.Namespace) -> Any:
    from .core.errors import UserError
    from .core.params import parse_kv
    from .core.recipe import Recipe, Step
    where = args.recipe or "--step"
    if args.recipe:
        recipe = Recipe.load(args.recipe)  # its errors already name the file
    else:
        steps = []
        for text in args.step:
            name, _, rest = text.partition(":")
            steps.append(Step(name.strip(), parse_kv(rest, f"--step {text}")))
        recipe = Recipe(steps)
    try:
        recipe.validate(json_paths=bool(args.recipe))
    except UserError as exc:  # name where the recipe came from, like every bad-input message
        raise UserError(f"{where}: {exc}") from None
    return recipe


#: The timed part of one measurement; an hour is far past any useful budget (and a typo).
MAX_TIME_BUDGET_S = 3600.0


def _check_counts(args: argparse.Namespace, **extra_flags: str) -> None:
    """Before any work: --batch, --threads (and the command's own counts) >= 1, a finite
    --time-budget in (0, 1 h], and a writable --json path."""
    flags = {"batch": "--batch", "threads": "--threads", **extra_flags}
    for attr, flag in flags.items():
        value = getattr(args, attr)
        if value is not None and value < 1:
            raise CliError(f"{flag}: must be at least 1, got {value}")
    _check_range("--time-budget", args.time_budget, 0.0, MAX_TIME_BUDGET_S, low_open=True)
    _check_output_path(args.json_out)
    _cap_threads(args)


def _cap_threads(args: argparse.Namespace) -> None:
    """The engine never runs more threads than CPUs (env.cap_threads); say so when it caps."""
    from .core.env import cap_threads
    if args.threads is not None and cap_threads(args.threads) < args.threads:
        capped = cap_threads(args.threads)
        print(f"{PROG}: note: --threads {args.threads} capped at {capped}, the number of CPUs "
              f"this process may use", file=sys.stderr)
        args.threads = capped


def _check_range(flag: str, value: Optional[float], low: float, high: float,
                 low_open: bool = False) -> None:
    """A float option is finite and within [low, high] ((low, high] with `low_open`): argparse's
    float() also takes 'nan' and 'inf', which would pass every comparison or run forever."""
    import math
    if value is None:
        return
    if not math.isfinite(value):
        raise CliError(f"{flag}: must be a finite number, got {value}")
    if value < low or (low_open and value == low) or value > high:
        raise CliError(f"{flag}: must be {'more than' if low_open else 'at least'} {low:g} and "
                       f"at most {high:g}, got {value:g}")


def cmd_run(args: argparse.Namespace, task: Any) -> int:
    from .core.export import export_folders, protected_paths
    from .core.run import RunOptions, format_result, run_recipe
    _check_counts(args, eval_limit="--eval-limit")
    inputs = _check_outputs(args, [("--json", args.json_out, False), ("--save", args.save, True),
                                   ("--report", args.report, True)])
    recipe = recipe_from_args(args)  # a bad recipe fails before the model is even opened
    loaded = open_from_args(args, task)
    inputs += protected_paths(loaded)
    options = RunOptions(batch_size=args.batch, threads=args.threads,
                         time_budget_s=args.time_budget, eval_limit=args.eval_limit)
    result = run_recipe(loaded, recipe, options, task)
    # The measurement first: an export that fails (a full disk) must not lose it.
    if args.json_out == "-":
        _emit_json(result.to_json(), None)
    else:
        print(format_result(result))
        if args.json_out:
            _emit_json(result.to_json(), args.json_out, inputs)
            print(f"\nwrote {args.json_out}")
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
    p.add_argument("--max-accuracy-drop", type=float, metavar="FRACTION",
                   help="with labeled data: largest accuracy loss accepted (default 0.01)")
    p.add_argument("--min-cosine", type=float, metavar="C",
                   help="output cosine vs the original (default 0.99 when there are no labels)")
    p.add_argument("--max-candidates", type=int, metavar="N", help="try at most N recipes")
    p.add_argument("--compile", action="store_true",
                   help="also try torch.compile recipes (10-30 s each to compile)")
    p.add_argument("--batch", type=int, metavar="N", help="batch size (default: the example's)")
    p.add_argument("--threads", type=int, metavar="N", help="torch threads (default: current)")
    p.add_argument("--time-budget", type=float, default=1.0, metavar="SECONDS",
                   help="timing per candidate (default 1.0)")
    p.add_argument("--json", metavar="OUT.json", dest="json_out",
                   help="write the recommendation and every trial as JSON ('-' for stdout)")
    p.add_argument("--save-recipe", metavar="FILE.json", help="save the best recipe")
    return p


def cmd_recommend(args: argparse.Namespace, task: Any) -> int:
    from .core.progress import Task
    from .core.recommend import recommend
    from .core.run import RunOptions
    _check_counts(args, max_candidates="--max-candidates")
    _check_range("--max-accuracy-drop", args.max_accuracy_drop, 0.0, 1.0)
    _check_range("--min-cosine", args.min_cosine, -1.0, 1.0)
    _check_output_path(args.save_recipe)
    inputs = _check_outputs(args, [("--json", args.json_out, False),
                                   ("--save-recipe", args.save_recipe, False)])
    loaded = open_from_args(args, task)
    options = RunOptions(batch_size=args.batch, threads=args.threads,
                         time_budget_s=args.time_budget, min_rounds=6, warmup=2)

    def progress(p: Any) -> None:  # one stderr line per candidate; stdout stays the result
        if p.phase == "recommend" and p.done < (p.total or 0):
            print(f"[{p.done + 1}/{p.total}] trying {p.message}", file=sys.stderr, flush=True)
    rec = recommend(loaded, args.max_accuracy_drop, args.min_cosine, options,
                    Task(progress, task.cancel_token), max_candidates=args.max_candidates,
                    include_compile=args.compile)
    # The measurements first, the files after: a failed write must not lose them.
    if args.json_out == "-":
        _emit_json(rec.to_json(), None)
    else:
        print(rec.table())
        print(f"\nrecommendation: {rec.message}")
        if args.json_out:
            _emit_json(rec.to_json(), args.json_out, inputs)
            print(f"wrote {args.json_out}")
    if args.save_recipe and rec.best is not None:
        sys.stdout.flush()
        rec.best.recipe.save(args.save_recipe)
        if args.json_out != "-":
            print(f"saved recipe to {args.save_recipe}")
    return 130 if rec.cancelled else 0  # the best so far is printed either way


#: (name, add arguments, run). Later subcommands (e.g. `recommend`) are appended here.
SUBCOMMANDS: list[tuple[str, Callable[[Any], argparse.ArgumentParser],
                        Callable[[argparse.Namespace, Any], int]]] = [
    ("examples", add_examples, cmd_examples),
    ("techniques", add_techniques, cmd_techniques),
    ("inspect", add_inspect, cmd_inspect),
    ("run", add_run, cmd_run),
    ("recommend", add_recommend, cmd_recommend),
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


# --- running ------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


@contextlib.contextmanager
def _quiet_torch_logging(debug: bool):
    """torch logs notices (e.g. on importing torchao) straight to stderr; they would break the
    one-line error contract, so they are shown only with --debug."""
    logger = logging.getLogger("torch")
    previous = logger.level
    if not debug:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


#: After the first Ctrl-C the engine gets this long to stop at a cancel check (it cleans up
#: and, in `recommend`, prints the best so far) before it is interrupted where it stands.
CANCEL_GRACE_S = 1.0


@contextlib.contextmanager
def _sigint_cancels(token: Any):
    """The first Ctrl-C always ends the process (exit 130), promptly. When engine work is
    polling the cancel token it is asked to stop at its next check; if it has not within
    CANCEL_GRACE_S, or nothing polls the token (a long forward call, a blocking read),
    KeyboardInterrupt is raised in the main thread: Python delivers it as soon as the current
    C call (e.g. one forward) returns. A second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    import _thread
    timers: list[threading.Timer] = []
    main_id = threading.main_thread().ident
    lock = threading.Lock()
    active = [True]  # the timer never signals once `handler` is no longer installed

    def interrupt_unless_stopped() -> None:
        with lock:
            if token.acknowledged or not active[0]:
                return
            # A real signal, so a blocking system call returns; `handler` runs again, raises.
            if hasattr(signal, "pthread_kill") and main_id is not None:
                signal.pthread_kill(main_id, signal.SIGINT)
            else:
                _thread.interrupt_main()

    def handler(signum: int, frame: Any) -> None:
        engine_polling = token.polled_within(CANCEL_GRACE_S)
        if token.cancelled or not engine_polling:
            raise KeyboardInterrupt
        token.cancel()
        timer = threading.Timer(CANCEL_GRACE_S, interrupt_unless_stopped)
        timer.daemon = True
        timers.append(timer)
        timer.start()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        with lock:
            active[0] = False
        for timer in timers:
            timer.cancel()
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _sigterm_exits():
    """SIGTERM (kill, a service manager) unwinds like an exception, so cleanup runs, and the
    process exits 143 (128 + SIGTERM). The engine never takes this SystemExit for the model's
    own (usercode.ours)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _pure_json_stdout(args: argparse.Namespace):
    """With JSON on stdout, whatever else is printed (a model or architecture file that prints,
    a library) goes to stderr, so stdout parses as JSON."""
    global _json_stream
    if not (getattr(args, "json_out", None) == "-" or getattr(args, "json", None) is True):
        yield
        return
    _json_stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_stream = None


@contextlib.contextmanager
def _safe_output():
    """Everything printed passes through `printable`: names and messages that came from a file
    cannot send escape sequences to the terminal (clear the screen, fake text)."""
    from .core.text import SafeStream
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeStream(saved[0]), SafeStream(saved[1])
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def main(argv: Optional[Sequence[str]] = None) -> int:
    with _safe_output():
        return _main(argv)


def _main(argv: Optional[Sequence[str]]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its usage line
        return int(exc.code or 0)
    debug = bool(getattr(args, "debug", False))

    from .core.errors import Cancelled, UserError
    from .core.progress import CancelToken, Task
    token = CancelToken()
    task = Task(None, token)
    try:
        with _sigint_cancels(token), _sigterm_exits(), _quiet_torch_logging(debug), \
                _pure_json_stdout(args), warnings.catch_warnings(record=True) as caught:
            # Library warnings (deprecations, torchao notices) would break the "one line on
            # stderr" contract; steps turn the ones that matter into notes. --debug shows all.
            warnings.simplefilter("always" if debug else "ignore")
            code = args.func(args, task)
        if debug:
            for w in caught:
                print(f"{PROG}: warning: {w.category.__name__}: {_one_line(w.message)}",
                      file=sys.stderr)
        return code
    except (UserError, CliError) as exc:
        if debug:
            traceback.print_exc()
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print(f"{PROG}: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        else:
            print(f"{PROG}: internal error: {type(exc).__name__}: {_one_line(exc)} "
                  f"(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
