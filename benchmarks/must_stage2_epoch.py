"""One MUST stage-2 epoch in the paper's form (batch size 1, gradient accumulation over 32 patients)
vs the grouped form (one forward/backward per accumulation group), at paper width on synthetic bags.

Both forms give the same gradient: the script checks it on one group with dropout off (max abs
difference of every parameter's gradient), then times one epoch of each from the same weights.
Results go to ``benchmarks/results/must_stage2_epoch.json``.

    python benchmarks/must_stage2_epoch.py [--patients 64] [--min-patches 500] [--max-patches 2000]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from results_io import (
    write_result,  # benchmarks/results_io.py (the script's folder is on sys.path)
)

from mustsurv.models import build_model
from mustsurv.models.batch import PatientItem
from mustsurv.train.must import train_stage2
from mustsurv.train.trainer import OptimConfig, accumulate_group

FAMILIES = [82, 328, 513, 452, 183, 277]  # BLCA-like family sizes (RNA part of MCAT's six families)


def patients(n: int, lo: int, hi: int, dim: int, seed: int = 0) -> list[PatientItem]:
    g = torch.Generator().manual_seed(seed)
    return [
        PatientItem(patient_id=f"P{i:03d}",
                    pathology=torch.randn(int(torch.randint(lo, hi + 1, (1,), generator=g)), dim, generator=g),
                    genomics=[torch.randn(d, generator=g) for d in FAMILIES], time=float(1 + i % 37),
                    event=int(i % 3 != 0), bin=i % 4)
        for i in range(n)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=64)
    ap.add_argument("--min-patches", type=int, default=500)
    ap.add_argument("--max-patches", type=int, default=2000)
    ap.add_argument("--pathology-dim", type=int, default=1536)
    ap.add_argument("--accumulation", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/must_stage2_epoch.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = patients(args.patients, args.min_patches, args.max_patches, args.pathology_dim)
    model = build_model("must", family_dims=FAMILIES, pathology_dim=args.pathology_dim, dim=256, rank=64, heads=8,
                        n_bins=4)

    # same gradient: one group, dropout off
    exact = copy.deepcopy(model).eval()
    grads = []
    for grouped in (False, True):
        exact.zero_grad(set_to_none=True)
        accumulate_group(exact, exact.main_loss, data[:8], grouped, torch.device("cpu"))
        grads.append({n: p.grad.clone() for n, p in exact.named_parameters() if p.grad is not None})
    max_diff = max(float((grads[0][n] - grads[1][n]).abs().max()) for n in grads[0])
    scale = max(float(g.abs().max()) for g in grads[0].values())

    seconds = {}
    for grouped in (False, True):
        m = copy.deepcopy(model)
        cfg = OptimConfig(epochs=1, lr=2e-4, weight_decay=1e-5, accumulation_steps=args.accumulation, grouped=grouped)
        t0 = time.perf_counter()
        train_stage2(m, data, cfg)
        seconds["grouped" if grouped else "bs1_accumulation"] = round(time.perf_counter() - t0, 2)
    result = {
        "what": "one MUST stage-2 epoch (paper width D=256, r=64, 8 heads; UNI2-h-sized 1536-d patches)",
        "patients": args.patients, "patches_per_bag": [args.min_patches, args.max_patches],
        "accumulation_steps": args.accumulation, "threads": args.threads,
        "seconds": seconds,
        "speedup_grouped": round(seconds["bs1_accumulation"] / seconds["grouped"], 2),
        "gradient_max_abs_difference": max_diff, "gradient_max_abs": scale,
        "same_gradient": max_diff <= 1e-4 * max(1.0, scale),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
