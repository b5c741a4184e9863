"""MUST missing-modality inference latency: batched DDIM vs a naive per-patient, per-sample loop, and one
patient alone.

Both paths use the same initial noise, so their outputs must agree; the script checks that and reports
milliseconds per patient (50 DDIM steps x 5 samples by default, paper width D = 256, 4-layer
ε-predictor, random weights — latency does not depend on the weights). The batched figure is a batch's
time divided by its patients; the single-patient figure is the latency a patient arriving alone sees
(its 5 samples denoised together), median and 90th percentile over ``--single-patients`` calls.
Results go to ``benchmarks/results/must_inference_latency.json``.

    python benchmarks/must_inference_latency.py [--patients 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from results_io import (
    write_result,  # benchmarks/results_io.py (the script's folder is on sys.path)
)

from mustsurv.models.diffusion import ConditionalLatentDiffusion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=64)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--mlp-ratio", type=float, default=4.0, help="FFN width of the ε-predictor over D")
    ap.add_argument("--batch", type=int, default=64, help="patients denoised together in the batched path")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--naive-patients", type=int, default=8, help="patients timed in the (slow) naive loop")
    ap.add_argument("--single-patients", type=int, default=32, help="patients timed one at a time")
    ap.add_argument("--out", default="benchmarks/results/must_inference_latency.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ldm = ConditionalLatentDiffusion(dim=args.dim, layers=args.layers, mlp_ratio=args.mlp_ratio).eval()
    b, s, d = args.patients, args.samples, args.dim
    cond, cls = torch.randn(b, d), torch.randn(d)
    noise = torch.randn(b, s, d)

    with torch.no_grad():
        ldm.sample(cond[:2], cls, noise=noise[:2], steps=args.steps)  # warm-up
        t0 = time.perf_counter()
        batched = torch.cat([ldm.sample(cond[i:i + args.batch], cls, noise=noise[i:i + args.batch], steps=args.steps)
                             for i in range(0, b, args.batch)])
        t_batched = time.perf_counter() - t0
        n = min(args.naive_patients, b)
        t0 = time.perf_counter()
        naive = torch.stack([
            torch.cat([ldm.sample(cond[i:i + 1], cls, noise=noise[i:i + 1, j:j + 1], steps=args.steps)[0]
                       for j in range(s)])
            for i in range(n)
        ])
        t_naive = time.perf_counter() - t0
        single = []
        for i in range(min(args.single_patients, b)):
            t0 = time.perf_counter()
            ldm.sample(cond[i:i + 1], cls, noise=noise[i:i + 1], steps=args.steps)
            single.append(1000 * (time.perf_counter() - t0))
    max_diff = float((batched[:n] - naive).abs().max())
    ms_batched = 1000 * t_batched / b
    ms_naive = 1000 * t_naive / n
    result = {
        "what": "DDIM sampling of one missing modality-specific component per patient",
        "ddim_steps": args.steps, "samples": s, "dim": d, "layers": args.layers, "mlp_ratio": args.mlp_ratio,
        "threads": args.threads,
        "patients_batched": b, "batch_size": args.batch, "patients_naive": n,
        "ms_per_patient_batched": round(ms_batched, 2), "ms_per_patient_naive": round(ms_naive, 2),
        "speedup": round(ms_naive / ms_batched, 2), "max_abs_difference": max_diff,
        "patients_single": len(single), "ms_single_patient_median": round(statistics.median(single), 2),
        "ms_single_patient_p90": round(statistics.quantiles(single, n=10)[-1], 2),
        "outputs_identical_within_1e-4": max_diff < 1e-4,
        "target": "speedup >= 20 and < 50 ms per patient on a 2-core CPU",
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
