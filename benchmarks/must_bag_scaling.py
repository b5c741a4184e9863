"""MUST forward + backward time and peak memory for one patient whose bag has 1k ... 200k patches
(paper width D = 256, r = 64, 8 heads; 1536-d UNI2-h-sized patch features; CPU).

Each size runs in a fresh process, so its peak resident memory (ru_maxrss) is its own. The target: time
about linear in the bag size and the 200k bag within 4 GB. Results go to
``benchmarks/results/must_bag_scaling.json``.

    python benchmarks/must_bag_scaling.py [--sizes 1000 10000 100000 200000] [--threads 2] [--checkpoint-patches 20000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from results_io import (
    write_result,  # benchmarks/results_io.py (the script's folder is on sys.path)
)

FAMILIES = [82, 328, 513, 452, 183, 277]


def one(n: int, threads: int, checkpoint_patches: int | None) -> dict:
    import torch

    from mustsurv.allocator import release_large_buffers
    from mustsurv.models import build_model, collate
    from mustsurv.models.batch import PatientItem

    torch.set_num_threads(threads)
    release_large_buffers()  # as the training scripts do
    torch.manual_seed(0)
    model = build_model("must", family_dims=FAMILIES, pathology_dim=1536, dim=256, rank=64, heads=8, n_bins=4,
                        checkpoint_patches=checkpoint_patches)
    item = PatientItem(patient_id="P0", pathology=torch.randn(n, 1536), genomics=[torch.randn(d) for d in FAMILIES],
                       time=10.0, event=1, bin=1)
    batch = collate([item])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    loss, _ = model.main_loss(batch)
    loss.backward()
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"patches": n, "seconds": round(seconds, 2), "peak_rss_mb": round(peak, 1),
            "rss_before_forward_mb": round(base, 1), "input_mb": round(n * 1536 * 4 / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 200000])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-patches", type=int, default=20000,
                    help="MUST's checkpoint_patches (bags above it train with activation checkpointing; -1 = never)")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default="benchmarks/results/must_bag_scaling.json")
    args = ap.parse_args()
    ckpt = None if args.checkpoint_patches < 0 else args.checkpoint_patches
    if args.one is not None:
        print(json.dumps(one(args.one, args.threads, ckpt)))
        return
    rows = []
    for n in args.sizes:
        res = subprocess.run([sys.executable, __file__, "--one", str(n), "--threads", str(args.threads),
                              "--checkpoint-patches", str(args.checkpoint_patches)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            rows.append({"patches": n, "error": res.stderr.strip().splitlines()[-1] if res.stderr else str(res.returncode)})
        else:
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    ok = [r for r in rows if "seconds" in r]
    result = {
        "what": "MUST main_loss forward + backward for one patient (D=256, r=64, 8 heads, 1536-d patches, CPU)",
        "threads": args.threads, "checkpoint_patches": ckpt, "sizes": rows,
        "seconds_per_1k_patches": [round(1000 * r["seconds"] / r["patches"], 3) for r in ok],
        "largest_within_4gb": max((r["patches"] for r in ok if r["peak_rss_mb"] <= 4096), default=None),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
