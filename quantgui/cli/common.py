"""What the subcommands share: the model options, reading them, checks made before any work,
and writing JSON."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
from typing import Any, Callable, Optional

PROG = "quantgui-cli"
#: The timed part of one measurement; an hour is far past any useful budget (and a typo).
MAX_TIME_BUDGET_S = 3600.0


class CliError(Exception):
    """Bad command-line usage found after parsing (exit 2, like argparse's own errors)."""


#: Where JSON for stdout goes while `pure_json_stdout` sends everything else to stderr.
_json_stream: Optional[Any] = None


def show_result(data: dict, text: Callable[[], str], json_out: Optional[str], inputs: Any,
                gap: str = "") -> None:
    """What `run`, `tune` and `sensitivity` print: with `--json -` only the JSON on stdout;
    else the text, then the JSON file when one is named (the measurement is shown before the
    file is written: a failed write must not lose it)."""
    if json_out == "-":
        emit_json(data, None)
        return
    print(text())
    if json_out:
        emit_json(data, json_out, inputs)
        print(f"{gap}wrote {json_out}")


def emit_json(data: Any, path: Optional[str], protected: Optional[list] = None) -> None:
    from ..core.export.atomic import write_text_atomic
    text = json.dumps(data, indent=2, allow_nan=False)
    if path in (None, "-"):
        print(text, file=_json_stream or sys.stdout)
        return
    # Written whole or not at all: a failed write leaves neither a half file nor a temp file.
    write_text_atomic(path, text + "\n", protected=protected)


def check_output_path(path: Optional[str]) -> None:
    """Fail before minutes of work, not after, when the output cannot be written."""
    if path in (None, "-"):
        return
    if Path(path).is_dir():
        raise CliError(f"{path}: is a folder; give a file name")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise CliError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        from ..core.export.atomic import read_only
        raise read_only(parent)  # the line the GUI shows for the same folder


def check_outputs(args: argparse.Namespace,
                   outputs: list[tuple[str, Optional[str], bool]]) -> list:
    """Before any work: no output (flag, path, is_folder) may write over an input or another
    output; returns the inputs, which every writer is given to protect."""
    from ..core.export import check_output_paths
    return check_output_paths(outputs, model=args.model, arch=args.arch, data=args.data,
                              example_input=args.example_input,
                              recipe=getattr(args, "recipe", None))


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
    p.add_argument("--example-input", metavar="FILE", help=".pt/.npz holding an example input")
    p.add_argument("--input-shape", metavar="DIMS", help="example input shape, e.g. 8,3,224,224")
    p.add_argument("--input-dtype", metavar="TYPE",
                   help="data type of the --input-shape input: float32 (default), float16, "
                        "bfloat16, int64 (token ids), int32 or bool")
    from .data_args import add_data_arguments
    add_data_arguments(p)


def input_shape(text: Optional[str]) -> Optional[tuple[int, ...]]:
    from ..core.errors import UserError
    from ..core.opening.example_input import parse_shape
    try:
        return parse_shape(text) if text else None
    except UserError as exc:
        raise CliError(f"--input-shape: {exc}") from None


def arch_kwargs(text: Optional[str]) -> Optional[dict]:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"--arch-kwargs: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CliError("--arch-kwargs: expected a JSON object like '{\"width\": 64}'")
    return value


def input_dtype(args: argparse.Namespace) -> Optional[str]:
    from ..core.errors import UserError
    from ..core.opening.example_input import parse_dtype
    if args.input_dtype is None:
        return None
    try:
        parse_dtype(args.input_dtype)
    except UserError as exc:
        raise CliError(f"--input-dtype: {exc}") from None
    if not args.input_shape:
        raise CliError("--input-dtype goes with --input-shape (the dtype of the input it makes)")
    return args.input_dtype


def open_from_args(args: argparse.Namespace, task: Any, need_example: bool = True,
                   recipe: Any = None) -> Any:
    """Open the model the arguments name; `need_example=False` (inspect) opens one without an
    example input too (its `example` is then None). Without --data, `recipe`'s stored data
    reference is used."""
    from ..core.opening.loading import open_model
    from .data_args import data_from_args
    if args.example_input and args.input_shape:
        raise CliError("give either --example-input or --input-shape, not both")
    return open_model(args.model, arch=args.arch, arch_kwargs=arch_kwargs(args.arch_kwargs),
                      trust=args.trust, example_input=args.example_input,
                      input_shape=input_shape(args.input_shape),
                      data=data_from_args(args, recipe), task=task,
                      input_dtype=input_dtype(args), need_example=need_example)


def recipe_from_args(args: argparse.Namespace) -> Any:
    from ..core.errors import UserError
    from ..core.params import parse_kv
    from ..core.recipe import Recipe, Step
    from ..core.run.preflight import preflight
    where = args.recipe or "--step"
    if args.recipe:
        recipe = Recipe.load(args.recipe)  # its errors already name the file
    else:
        steps = []
        for text in args.step:
            name, _, rest = text.partition(":")
            steps.append(Step(name.strip(), parse_kv(rest, f"--step {text}")))
        recipe = Recipe(steps)
    problems = preflight(None, recipe)  # the recipe's own rules; the model's come after opening
    if problems:  # name where the recipe came from, like every bad-input message
        raise UserError(f"{where}: {problems[0].text(json_paths=bool(args.recipe))}")
    return recipe


def check_counts(args: argparse.Namespace, **extra_flags: str) -> None:
    """Before any work: --batch, --threads (and the command's own counts) >= 1, a finite
    --time-budget in (0, 1 h], and a writable --json path."""
    flags = {"batch": "--batch", "threads": "--threads", **extra_flags}
    for attr, flag in flags.items():
        value = getattr(args, attr)
        if value is not None and value < 1:
            raise CliError(f"{flag}: must be at least 1, got {value}")
    check_range("--time-budget", args.time_budget, 0.0, MAX_TIME_BUDGET_S, low_open=True)
    check_output_path(args.json_out)
    note_thread_cap(args)


def note_thread_cap(args: argparse.Namespace) -> None:
    """The engine never runs more threads than CPUs (env.cap_threads); say so when it caps."""
    from ..core.env import cap_threads
    capped = cap_threads(args.threads) if args.threads is not None else None
    if capped is not None and capped < args.threads:
        print(f"{PROG}: note: --threads {args.threads} capped at {capped}, the number of CPUs "
              f"this process may use", file=sys.stderr)
        args.threads = capped


def check_range(flag: str, value: Optional[float], low: float, high: float,
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


def add_budget_arguments(p: argparse.ArgumentParser) -> None:
    """The quality budget (core/budget.py): one meaning in `run`, `recommend` and recipes."""
    g = p.add_argument_group("quality budget (judged by the paired 95% interval)")
    g.add_argument("--max-accuracy-drop", type=float, metavar="POINTS",
                   help="with labeled data: the largest top-1 accuracy drop accepted, in "
                        "points (0.5 = half a point; recommend's default 1)")
    g.add_argument("--min-cosine", type=float, metavar="C",
                   help="the lowest cosine to the original's outputs any sample may have "
                        "(recommend's default 0.99 without labels)")
    g.add_argument("--min-agreement", type=float, metavar="FRACTION",
                   help="top-1 agreement with the original's predictions (0.99 = 99%%)")
    g.add_argument("--min-sqnr", type=float, metavar="DB",
                   help="signal-to-quantization-noise ratio to the original's outputs, in dB")


def budget_from_args(args: argparse.Namespace) -> Any:
    """The budget the options give (None when none is given); bad values fail before any
    work, with the flag named ("--min-cosine: must be at least -1 and at most 1, got 5")."""
    from ..core.budget import BOUNDS, QualityBudget
    values = {}
    for key, (low, high, _) in BOUNDS.items():
        value = getattr(args, key, None)
        check_range("--" + key.replace("_", "-"), value, low, high)
        if value is not None:
            values[key] = float(value)
    return QualityBudget(**values) if values else None
