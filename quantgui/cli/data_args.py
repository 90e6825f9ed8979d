"""The data options every model command shares: `--data` and how it is read (preprocessing,
columns, split, sample size). They build one `DataSpec` (core/data/spec.py)."""

from __future__ import annotations

import argparse
from typing import Any, Optional


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (accuracy on your own data)")
    g.add_argument("--data", metavar="PATH",
                   help="a folder of class subfolders of images, a folder of images, MNIST-style "
                        "IDX files (or their folder), .csv/.parquet (features + label), "
                        ".txt/.csv/.jsonl sentences for a Hugging Face model, file.py:factory "
                        "(a torch Dataset from code), or .npz/.pt with 'inputs' (and 'labels')")
    g.add_argument("--data-kind", metavar="KIND", help="override the detected kind: image_folder, "
                   "image_flat, idx, table, text, code, tensors")
    g.add_argument("--resize", metavar="N|HxW", help="images: resize (N: the shorter side)")
    g.add_argument("--crop", metavar="N|HxW", help="images: center crop after resizing")
    g.add_argument("--grayscale", action="store_true", help="images: one channel")
    g.add_argument("--channels", choices=("rgb", "bgr"), help="images: channel order (rgb)")
    g.add_argument("--normalize", metavar="imagenet|data|MEAN/STD",
                   help="images: normalize with ImageNet's statistics, the data's own, or "
                        "given ones (e.g. 0.5/0.25 or 0.5,0.5,0.5/0.2,0.2,0.2)")
    g.add_argument("--label-column", metavar="NAME", help="tables/text: the label column")
    g.add_argument("--text-column", metavar="NAME", help="text: the sentence column")
    g.add_argument("--pair-column", metavar="NAME", help="text: a second sentence column")
    g.add_argument("--score-column", metavar="NAME",
                   help="text: the pairs' similarity score (Spearman check)")
    g.add_argument("--max-length", type=int, metavar="TOKENS", help="text: tokens per sentence "
                   "(default 128)")
    g.add_argument("--max-samples", type=int, metavar="N",
                   help="a stratified, seeded subset of N samples")
    g.add_argument("--eval-fraction", type=float, metavar="F",
                   help="part of --data kept for evaluation, the rest calibrates/trains "
                        "(default 0.8 for images, tables, text and code)")
    g.add_argument("--calib-data", metavar="PATH", help="a second source for calibration/QAT")
    g.add_argument("--overlap", action="store_true",
                   help="use every sample for both calibration and evaluation")
    g.add_argument("--seed", type=int, metavar="N", help="seed of splits and subsets (0)")
    g.add_argument("--on-bad-image", choices=("skip", "stop"),
                   help="unreadable images: leave them out with a count (skip, default) or stop")
    add_fashion_argument(g)


def add_fashion_argument(p: Any) -> None:
    p.add_argument("--fashion-mnist", metavar="DIR",
                   help="the folder holding the Fashion-MNIST IDX files, for example:fashion-cnn "
                        "(or set QUANTGUI_FASHION_MNIST)")


def apply_fashion(args: argparse.Namespace) -> None:
    """--fashion-mnist DIR is the environment setting the fashion-cnn example reads."""
    import os
    if getattr(args, "fashion_mnist", None):
        os.environ["QUANTGUI_FASHION_MNIST"] = args.fashion_mnist


#: option -> DataSpec field (preprocessing ones under "preprocess").
_FIELDS = {"data_kind": "kind", "label_column": "label_column", "text_column": "text_column",
           "pair_column": "pair_column", "score_column": "score_column",
           "max_length": "max_length", "max_samples": "max_samples",
           "eval_fraction": "eval_fraction", "calib_data": "calib_path", "seed": "seed",
           "on_bad_image": "on_bad_image"}


def given_data_options(args: argparse.Namespace) -> list[str]:
    names = list(_FIELDS) + ["resize", "crop", "normalize", "channels"]
    flags = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) is not None]
    return flags + [f for f, on in (("--grayscale", getattr(args, "grayscale", False)),
                                    ("--overlap", getattr(args, "overlap", False))) if on]


def data_from_args(args: argparse.Namespace, recipe: Any = None) -> Optional[Any]:
    """The DataSpec the options name (None: no data); without --data, the recipe's own data
    reference (a reference that runs code needs --trust, like any file that runs code)."""
    from ..core.data.spec import DataSpec, parse_size
    from ..core.errors import TrustRequired, UserError
    apply_fashion(args)
    if getattr(args, "data", None) is None:
        stored = getattr(recipe, "data", None)
        if stored is None:
            extra = given_data_options(args)
            if extra:
                raise UserError(f"{extra[0]}: goes with --data")
            return None
        spec = DataSpec.from_json(stored, f"{args.recipe}: $.data")
        if spec.kind == "code" or (spec.kind == "auto" and _is_code(spec.path)):
            if not args.trust:
                raise TrustRequired(f"{args.recipe}: its data reference runs code "
                                    f"({spec.path}); give --trust to run it")
        return spec
    spec = DataSpec(args.data)
    for option, name in _FIELDS.items():
        value = getattr(args, option, None)
        if value is not None:
            setattr(spec, name, value)
    pre = spec.preprocess
    if args.resize:
        pre.resize = parse_size(args.resize, "--resize")
    if args.crop:
        pre.crop = parse_size(args.crop, "--crop")
    pre.grayscale = bool(args.grayscale)
    pre.normalize = args.normalize
    if args.channels:
        pre.channels = args.channels
    spec.overlap = bool(args.overlap)
    return spec.check()


def _is_code(path: str) -> bool:
    from ..core.data.spec import is_code_spec
    return is_code_spec(path)
