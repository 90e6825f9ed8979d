"""Train the built-in examples and write the weights QuantGUI ships.

    python tools/train_examples.py            # all examples -> resources/examples/
    python tools/train_examples.py --check    # retrain, compare with the manifest, write nothing

Each example is trained by `quantgui.core.examples.train` (the same function the app falls back
to when shipped weights are missing): fixed seeds, the fixed digits split, the epochs and
learning rate of its `ExampleSpec`. Training runs on ONE thread (`torch.set_num_threads(1)`,
set here for the evaluation too and again inside `train`): a multi-threaded kernel splits its
sums by thread count, so the weights would depend on how many cores the machine has. On one
thread a run reproduces bit for bit on the same CPU kind and torch version; another CPU (other
SIMD kernels) or torch may differ in the last bits, so the suite compares a retrained example's
test accuracy within 0.5 points and its weights exactly only where torch and the CPU match the
manifest's.

Writes `<name>.pt` (a weights-only state_dict, read back with `safeload.load_weights`) and
`manifest.json` (sha256, training version, torch version, CPU, test accuracy), all or nothing.
Rerun after changing an architecture or the training, and bump `examples.TRAINING_VERSION`.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's architectures, whatever else is installed

import torch  # noqa: E402

from quantgui.core import env, examples  # noqa: E402
from quantgui.core.export.atomic import staged  # noqa: E402

OUT = ROOT / "resources" / "examples"
REPRODUCIBILITY = (
    "Trained on one thread with fixed seeds: bit-exact run to run on the same CPU kind and "
    "torch version. Another CPU (other SIMD kernels) or torch version may differ in the last "
    "bits of the weights; the suite then checks the retrained test accuracy within 0.5 points.")


def state_bytes(model: torch.nn.Module) -> bytes:
    """The state_dict as torch.save writes it to a buffer (no file name inside the archive, so
    the same weights always give the same bytes)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def train_one(name: str) -> tuple[bytes, dict]:
    model = examples.train(name)
    _, test = examples.splits(name)
    correct = round(examples.accuracy(model, test) * len(test))
    spec = examples.EXAMPLES[name]
    data = state_bytes(model)
    return data, {
        "file": f"{name}.pt", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": spec.epochs, "lr": spec.lr,
        "test_correct": correct, "test_size": len(test), "test_accuracy": correct / len(test),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="examples to train (default: all)")
    p.add_argument("--check", action="store_true",
                   help="retrain and compare with the shipped manifest; write nothing")
    p.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # see the module docstring
    names = args.names or list(examples.EXAMPLES)
    unknown = [n for n in names if n not in examples.EXAMPLES]
    if unknown:
        p.error(f"no such example: {', '.join(unknown)}")

    manifest_path = args.out / examples.MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    # Entries of examples not retrained now stay, if they are of this training version.
    keep = not args.check and old.get("training_version") == examples.TRAINING_VERSION
    entries = dict(old.get("examples") or {}) if keep else {}
    files: dict[str, bytes] = {}
    where = {"torch": torch.__version__, "python": platform.python_version(),
             "cpu": env.environment()["cpu"], "cpu_capabilities": env.cpu_capabilities(),
             "threads": 1}
    failed = False
    for name in names:
        data, entry = train_one(name)
        entry.update(where)
        print(f"{name}: test accuracy {100 * entry['test_accuracy']:.2f}% "
              f"({entry['test_correct']}/{entry['test_size']}), {entry['bytes']:,} bytes, "
              f"sha256 {entry['sha256'][:12]}", flush=True)
        if args.check:
            shipped = (old.get("examples") or {}).get(name, {})
            same = {k: shipped.get(k) == entry[k] for k in ("sha256", "test_correct")}
            print(f"  vs shipped: weights {'identical' if same['sha256'] else 'DIFFER'}, "
                  f"accuracy {'identical' if same['test_correct'] else 'DIFFERS'} "
                  f"(shipped {shipped.get('test_correct')}/{shipped.get('test_size')})")
            failed = failed or not same["test_correct"]
        files[name] = data
        entries[name] = entry
    if args.check:
        return 1 if failed else 0

    manifest = {"format": 1, "training_version": examples.TRAINING_VERSION,
                "made_by": "tools/train_examples.py", "reproducibility": REPRODUCIBILITY,
                "examples": {n: entries[n] for n in examples.EXAMPLES if n in entries}}
    args.out.mkdir(parents=True, exist_ok=True)
    with staged() as stage:  # every file or none
        for name, data in files.items():
            stage.write_bytes(args.out / f"{name}.pt", data)
        stage.write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(files)} example(s) and {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
