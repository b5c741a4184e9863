"""Does ``training.precision: bf16`` cost accuracy? MUST stage 2 in float32 vs bf16 on a planted cohort.

A synthetic cohort with a planted risk (patch features and genomic families shift with it, survival time
falls with it) is cut into ``--folds`` seeded train/validation splits (there are no test patients). On each
fold, MUST is trained in stage 2 from the same initial weights with the paper's form (batch size 1 +
accumulation) in float32 and in bf16, and both are scored on the validation patients only: the survival
NLL and Harrell's C-index of the complete-data risk (float32 evaluation). The criterion, fixed in advance:
no loss when bf16's mean validation C-index is at least float32's minus ``--tolerance`` and its mean
validation NLL at most float32's plus ``--tolerance``. Results go to
``benchmarks/results/must_precision_validation.json``.

    python benchmarks/must_precision_validation.py [--patients 96] [--folds 3] [--epochs 20]
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch
from results_io import (
    write_result,  # benchmarks/results_io.py (the script's folder is on sys.path)
)

from mustsurv.models import build_model
from mustsurv.models.batch import PatientItem, collate
from mustsurv.survival import c_index
from mustsurv.train.must import train_stage2
from mustsurv.train.trainer import OptimConfig

FAMILIES = [82, 328, 513, 452, 183, 277]


def planted_cohort(n: int, lo: int, hi: int, dim: int, seed: int = 0) -> list[PatientItem]:
    """``n`` patients whose latent risk shifts their patches (along one direction) and families; four
    time bins by quartile; a quarter censored."""
    g = torch.Generator().manual_seed(seed)
    risk = torch.rand(n, generator=g) * 3 - 1.5
    direction = torch.randn(dim, generator=g) / dim**0.5 * 4
    times = torch.exp(-risk + 0.3 * torch.randn(n, generator=g)) * 10
    edges = torch.quantile(times, torch.tensor([0.25, 0.5, 0.75]))
    items = []
    for i in range(n):
        size = int(torch.randint(lo, hi + 1, (1,), generator=g))
        bag = torch.randn(size, dim, generator=g) + risk[i] * direction * (torch.rand(size, 1, generator=g) < 0.3)
        families = [torch.randn(d, generator=g) + 0.5 * risk[i] * (k % 2 * 2 - 1) for k, d in enumerate(FAMILIES)]
        items.append(PatientItem(patient_id=f"P{i:03d}", pathology=bag, genomics=families, time=float(times[i]),
                                 event=int(i % 4 != 0), bin=int(torch.bucketize(times[i], edges))))
    return items


@torch.no_grad()
def score(model: torch.nn.Module, items: list[PatientItem]) -> dict[str, float]:
    """Validation survival NLL (patient mean) and C-index of the complete-data risk, in float32."""
    model.eval()
    nll = statistics.fmean(model.main_loss(collate([it]))[1]["surv"] for it in items)
    risk = torch.cat([model.predict_risk(collate([it]), "complete", n_samples=1, steps=1) for it in items])
    return {"validation_nll": nll, "validation_c_index": c_index([it["time"] for it in items],
                                                                 [it["event"] for it in items], risk.tolist())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=96)
    ap.add_argument("--min-patches", type=int, default=100)
    ap.add_argument("--max-patches", type=int, default=400)
    ap.add_argument("--pathology-dim", type=int, default=384)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--accumulation", type=int, default=8)
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/must_precision_validation.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = planted_cohort(args.patients, args.min_patches, args.max_patches, args.pathology_dim)
    folds = []
    for fold in range(args.folds):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(fold)).tolist()
        cut = len(data) * 2 // 3
        train, validation = [data[i] for i in order[:cut]], [data[i] for i in order[cut:]]
        torch.manual_seed(fold)
        init = build_model("must", family_dims=FAMILIES, pathology_dim=args.pathology_dim, dim=64, rank=16, heads=4,
                           n_bins=4)  # the demo's width (config/config.yaml)
        row = {"fold": fold}
        for precision in ("float32", "bf16"):
            model = copy.deepcopy(init)
            cfg = OptimConfig(epochs=args.epochs, lr=2e-4, weight_decay=1e-5, accumulation_steps=args.accumulation,
                              seed=fold, precision=precision)
            train_stage2(model, train, cfg)
            row[precision] = score(model, validation)
        folds.append(row)
    mean = {p: {k: statistics.fmean(f[p][k] for f in folds) for k in ("validation_nll", "validation_c_index")}
            for p in ("float32", "bf16")}
    result = {
        "what": "MUST stage 2, float32 vs training.precision bf16, validation patients of a planted cohort",
        "patients": args.patients, "patches_per_bag": [args.min_patches, args.max_patches],
        "pathology_dim": args.pathology_dim, "width": {"dim": 64, "rank": 16, "heads": 4},
        "folds": folds, "epochs": args.epochs, "accumulation_steps": args.accumulation, "mean": mean,
        "tolerance": args.tolerance,
        "bf16_no_loss": (mean["bf16"]["validation_c_index"] >= mean["float32"]["validation_c_index"] - args.tolerance
                         and mean["bf16"]["validation_nll"] <= mean["float32"]["validation_nll"] + args.tolerance),
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
