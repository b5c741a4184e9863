"""One MUST stage-2 epoch in the paper's form (batch size 1, gradient accumulation over 32 patients)
vs the grouped form (one forward/backward per accumulation group), at paper width on synthetic bags.

A third, ``bs1_accumulation_bf16``, is the
paper's form with ``training.precision: bf16`` (not the same arithmetic: its gradient's relative
difference is reported). The exact forms give the same gradient: the script checks it on one group with
dropout off (max abs difference of every parameter's gradient against the paper's form), then times ``--repeats`` epochs of each form from the same weights, the forms interleaved
(form A, form B, form C, form A, ...), and reports each form's fastest epoch.
The script also counts the epoch's arithmetic (matrix products and convolutions, forward and backward,
torch's ``FlopCounterMode``) and times this CPU's matrix products at the epoch's own shapes in float32 and
bfloat16, which gives the epoch's achieved rate and the ceiling of any exact float32 form: the epoch's
operations at the fastest measured product rate. Results go to ``benchmarks/results/must_stage2_epoch.json``.

    python benchmarks/must_stage2_epoch.py [--patients 64] [--min-patches 500] [--max-patches 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import math
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


def paper_model(pathology_dim: int) -> torch.nn.Module:
    """MUST at paper width (D = 256, r = 64, 8 heads, 4 bins) on the BLCA-like families, random weights."""
    return build_model("must", family_dims=FAMILIES, pathology_dim=pathology_dim, dim=256, rank=64, heads=8,
                       n_bins=4)


def epoch_flops(model: torch.nn.Module, data: list[PatientItem], accumulation: int) -> tuple[int, dict[str, int]]:
    """Count one epoch's floating-point operations in the paper's form (no optimiser step).

    torch's count of a convolution's backward ignores its groups (a depthwise convolution's backward counts C
    times too much); it is replaced by twice the forward convolutions (the input and the weight gradient).

    Returns:
        The total and the count per operator (matrix products, convolutions), forward and backward.
    """
    from torch.utils.flop_counter import FlopCounterMode

    m = copy.deepcopy(model)
    counter = FlopCounterMode(display=False)
    with counter:
        for start in range(0, len(data), accumulation):
            accumulate_group(m, m.main_loss, data[start:start + accumulation], False, torch.device("cpu"))
    counts = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    if "aten.convolution_backward" in counts:  # its formula ignores groups (x C for depthwise): input and
        counts["aten.convolution_backward"] = 2 * counts.get("aten.convolution", 0)  # weight gradients
    return sum(counts.values()), counts


def product_rate(a_shape: tuple[int, ...], b_shape: tuple[int, ...], dtype: torch.dtype, seconds: float = 1.0) -> float:
    """GFLOP/s of ``a @ b`` for random ``a`` (a_shape) and ``b`` (b_shape) in ``dtype``, the best of 5 timed runs."""
    a, b = torch.randn(*a_shape).to(dtype), torch.randn(*b_shape).to(dtype)
    flops = 2 * a_shape[-2] * a_shape[-1] * b_shape[-1] * (a_shape[0] if len(a_shape) == 3 else 1)
    for _ in range(3):
        a @ b
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds / 5:
        a @ b
        n += 1
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            a @ b
        best = min(best, (time.perf_counter() - t0) / n)
    return flops / best / 1e9


PRODUCTS = {  # the epoch's largest matrix products, (a, b) shapes (a bag of 1,250 patches, D = 256, 8 heads)
    "patch_projection": ((1250, 1536), (1536, 256)),
    "qkv_projection": ((1297, 256), (256, 768)),
    "pseudo_inverse_step": ((8, 128, 128), (8, 128, 128)),
}

FORMS = {  # name -> (grouped, training.precision)
    "bs1_accumulation": (False, "float32"),
    "grouped": (True, "float32"),
    "bs1_accumulation_bf16": (False, "bf16"),
}
EXACT = ("grouped",)  # same arithmetic as the paper's form


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=64)
    ap.add_argument("--min-patches", type=int, default=500)
    ap.add_argument("--max-patches", type=int, default=2000)
    ap.add_argument("--pathology-dim", type=int, default=1536)
    ap.add_argument("--accumulation", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="epochs timed per form, interleaved; the fastest is kept")
    ap.add_argument("--out", default="benchmarks/results/must_stage2_epoch.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = patients(args.patients, args.min_patches, args.max_patches, args.pathology_dim)
    model = paper_model(args.pathology_dim)

    # same gradient: one group, dropout off
    exact = copy.deepcopy(model).eval()
    grads = {}
    for name, (grouped, precision) in FORMS.items():
        exact.zero_grad(set_to_none=True)
        accumulate_group(exact, exact.main_loss, data[:8], grouped, torch.device("cpu"), precision)
        grads[name] = {n: p.grad.clone() for n, p in exact.named_parameters() if p.grad is not None}
    paper = grads["bs1_accumulation"]
    scale = max(float(g.abs().max()) for g in paper.values())
    diffs = {name: max(float((paper[n] - g[n]).abs().max()) for n in paper) for name, g in grads.items()
             if name != "bs1_accumulation"}
    flat = {name: torch.cat([g[n].flatten() for n in paper]) for name, g in grads.items()}
    relative_bf16 = float((flat["bs1_accumulation_bf16"] - flat["bs1_accumulation"]).norm()
                          / flat["bs1_accumulation"].norm())

    times: dict[str, list[float]] = {name: [] for name in FORMS}
    for _ in range(args.repeats):
        for name, (grouped, precision) in FORMS.items():
            m = copy.deepcopy(model)
            cfg = OptimConfig(epochs=1, lr=2e-4, weight_decay=1e-5, accumulation_steps=args.accumulation,
                              grouped=grouped, precision=precision)
            t0 = time.perf_counter()
            train_stage2(m, data, cfg)
            times[name].append(time.perf_counter() - t0)
    seconds = {name: round(min(t), 2) for name, t in times.items()}
    bs1 = seconds["bs1_accumulation"]
    flops, flops_per_op = epoch_flops(model, data, args.accumulation)
    rates = {f"{name}_{dtype_name}": round(product_rate(a, b, dtype), 1) for name, (a, b) in PRODUCTS.items()
             for dtype_name, dtype in (("float32", torch.float32), ("bf16", torch.bfloat16))}
    best_float32 = max(v for k, v in rates.items() if k.endswith("float32"))
    result = {
        "what": "one MUST stage-2 epoch (paper width D=256, r=64, 8 heads; UNI2-h-sized 1536-d patches)",
        "patients": args.patients, "patches_per_bag": [args.min_patches, args.max_patches],
        "accumulation_steps": args.accumulation, "threads": args.threads, "repeats": args.repeats,
        "seconds": seconds,
        "seconds_all_repeats": {name: [round(x, 2) for x in t] for name, t in times.items()},
        "speedup_grouped": round(bs1 / seconds["grouped"], 2),
        "gradient_max_abs_difference": diffs["grouped"], "gradient_max_abs": scale,
        "same_gradient": diffs["grouped"] <= 1e-4 * max(1.0, scale),
        "speedup_bf16": round(bs1 / seconds["bs1_accumulation_bf16"], 2),
        "gradient_max_abs_difference_per_form": diffs,
        "same_gradient_per_form": {name: diffs[name] <= 1e-4 * max(1.0, scale) for name in EXACT},
        "bf16_gradient_relative_difference": relative_bf16,
        "arithmetic": {
            "epoch_gflop": round(flops / 1e9, 1),
            "gflop_per_operator": {k: round(v / 1e9, 1) for k, v in sorted(flops_per_op.items(), key=lambda kv: -kv[1])},
            "product_gflops_per_s": rates,
            "epoch_achieved_gflops_per_s": round(flops / 1e9 / bs1, 1),
            "exact_float32_ceiling_speedup": round(bs1 / (flops / 1e9 / best_float32), 2),
            "note": "exact_float32_ceiling_speedup: the paper's form's epoch over the time of its counted "
                    "operations at the fastest float32 product rate measured here (no form with the same "
                    "arithmetic in float32 can be faster than that)",
        },
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
