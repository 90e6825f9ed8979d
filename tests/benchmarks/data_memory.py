"""Peak memory of `quantgui-cli run` on a 10,000-image folder (issue 13): the folder is decoded
one batch at a time, so the process must stay under 1 GB however many images there are.

    python tests/benchmarks/data_memory.py [--images 10000] [--keep DIR]

Writes a class-per-subfolder folder of 64x64 JPEGs (10 classes) and a small CNN (architecture
file + state_dict), runs the CLI in a child process (static INT8 calibrated on the folder's
calibration part, evaluated on the rest, resize 32 + ImageNet normalization) and reports the
child's peak resident memory (getrusage). A script, not a timed test: exit 1 above 1 GB.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LIMIT_BYTES = 2**30
NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))
'''


def make_folder(root: Path, count: int) -> None:
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(count):
        c = i % 10
        pixels = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
        pixels[:, :, c % 3] //= 2
        folder = root / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=85)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR (kept) instead of a temp dir")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="quantgui-data-bench-"))
    folder = work / "images"
    if not folder.is_dir() or sum(1 for _ in folder.rglob("*.jpg")) != args.images:
        start = time.perf_counter()
        make_folder(folder, args.images)
        print(f"wrote {args.images:,} images in {time.perf_counter() - start:.1f} s")
    import torch
    (work / "net.py").write_text(NET)
    namespace: dict = {}
    exec(NET, namespace)
    torch.manual_seed(0)
    torch.save(namespace["Net"]().state_dict(), work / "net_weights.pt")
    cmd = [sys.executable, "-m", "quantgui.cli", "run", str(work / "net_weights.pt"),
           "--arch", f"{work / 'net.py'}:Net", "--data", str(folder), "--resize", "32",
           "--normalize", "imagenet", "--batch", "64", "--step", "static_int8",
           "--time-budget", "1"]
    print("$ " + " ".join(cmd[2:]).replace(str(work), "WORK"))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    keep = ("accuracy", "data:", "speedup", "verdict", "skipped", "calibrated")
    for line in proc.stdout.splitlines():
        if line.strip().startswith(keep) or "calibrated on" in line:
            print("  " + line.strip())
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    print(f"images: {args.images:,}; wall time {seconds:.0f} s; peak RSS of quantgui-cli run: "
          f"{peak / 2**20:.0f} MB (limit {LIMIT_BYTES / 2**20:.0f} MB)")
    return 0 if peak < LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
