"""Latency of scoring a new patient without genomics with a bundle (issue 18), paper width by default.

(a) The generative part alone (c̃ → S DDIM samples of ũ_G → head → risk and its spread,
    :func:`mustsurv.deploy.predict.generate_and_score`) for one patient at a time (median and 90th percentile
    over ``--single-patients`` calls) and batched over ``--patients`` patients (ms per patient). Targets:
    < 150 ms alone, < 25 ms per patient batched.
(b) ``mustsurv predict`` end to end (:func:`mustsurv.deploy.cli.predict_cohort`) for one patient from a
    features ``.h5`` with a ``--bag``-patch bag: bundle loading timed separately from reading, encoding,
    generating and writing. Reported, no target.

Random weights (latency does not depend on them); D = 256, 4-layer ε-predictor, 50 DDIM steps x 5 samples,
2 threads by default. The bundle and the features file are written to a temporary folder. Results go to
``benchmarks/results/must_predict_latency.json``.

    python benchmarks/must_predict_latency.py [--threads 2] [--patients 100] [--bag 10000]
    python benchmarks/must_predict_latency.py --dim 32 --layers 1 --steps 2 --bag 100 --patients 4 \\
        --single-patients 3 --out /tmp/smoke.json     # smoke test
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from results_io import (
    write_result,  # benchmarks/results_io.py (the script's folder is on sys.path)
)

from mustsurv.deploy.bundle import member_record, training_record, write_bundle
from mustsurv.deploy.cli import predict_cohort
from mustsurv.deploy.predict import generate_and_score
from mustsurv.models.registry import build_model
from mustsurv.study.vocabulary import GENOMICS

FAMILY_DIMS = [94, 334, 521, 468, 1496, 479]  # MCAT's six family sizes (BLCA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4, help="ε-predictor layers")
    ap.add_argument("--steps", type=int, default=50, help="DDIM steps")
    ap.add_argument("--samples", type=int, default=5, help="DDIM samples per patient")
    ap.add_argument("--pathology-dim", type=int, default=1536, help="patch feature dimension (UNI2-h: 1536)")
    ap.add_argument("--bag", type=int, default=10_000, help="patches in the end-to-end patient's bag")
    ap.add_argument("--patients", type=int, default=100, help="patients of the batched figure")
    ap.add_argument("--single-patients", type=int, default=20, help="patients timed one at a time")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/must_predict_latency.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    kwargs = {"family_dims": FAMILY_DIMS, "pathology_dim": args.pathology_dim, "dim": args.dim,
              "rank": max(1, args.dim // 4), "heads": 8 if args.dim % 8 == 0 else 1, "ldm_layers": args.layers,
              "n_bins": 4}
    model = build_model("must", **kwargs).eval()
    d, b = args.dim, args.patients
    u_hat, c_tilde = torch.randn(b, d), torch.randn(b, d)
    ids = [f"P{i:04d}" for i in range(b)]

    def generative(lo: int, hi: int) -> None:
        generate_and_score(model, u_hat[lo:hi], c_tilde[lo:hi], GENOMICS, ids[lo:hi], args.samples, args.steps, 0)

    generative(0, 1)  # warm-up
    single = []
    for i in range(min(args.single_patients, b)):
        t0 = time.perf_counter()
        generative(i, i + 1)
        single.append(1000 * (time.perf_counter() - t0))
    t0 = time.perf_counter()
    generative(0, b)
    ms_batched = 1000 * (time.perf_counter() - t0) / b

    with tempfile.TemporaryDirectory(prefix="mustsurv-latency-") as tmp:
        folder = Path(tmp) / "features"
        folder.mkdir()
        slide = folder / "TCGA-ZZ-0001-01Z-00-DX1.h5"
        with h5py.File(slide, "w") as h5:
            h5["features"] = np.random.default_rng(0).standard_normal((args.bag, args.pathology_dim), np.float32)
            h5["coords"] = np.zeros((args.bag, 2), np.int64)
        edges = [0.0, 12.0, 24.0, 48.0, float("inf")]
        bundle = Path(tmp) / "must.mustsurv"
        write_bundle(bundle, {
            "method": "must", "cohort": "latency", "kind": "final",
            "scenarios": ["complete", "missing_genomics", "missing_pathology"],
            "members": [member_record("must", kwargs, model, None, edges)], "bin_edges": edges,
            "genomics": {"family_names": [f"F{k}" for k in range(6)],
                         "features": [[f"G{k}_{j}_rnaseq" for j in range(n)] for k, n in enumerate(FAMILY_DIMS)],
                         "rna_transform": "none"},
            "encoder": {"name": "uni2_h", "dim": args.pathology_dim, "target_mpp": 0.5, "patch_size": 224},
            "cutoffs": {s: {"median": -2.0, "tertiles": [-2.5, -1.5]}
                        for s in ("complete", "missing_genomics", "missing_pathology")},
            "inference": {"n_samples": args.samples, "ddim_steps": args.steps, "batch_size": 16, "seed": 0},
            "training": training_record(["TCGA-AA-0001"], [10.0], [1], {}), "config": {}})
        from mustsurv.deploy.bundle import load_bundle

        t0 = time.perf_counter()
        load_bundle(bundle)
        s_load = time.perf_counter() - t0
        t0 = time.perf_counter()
        pred = predict_cohort(bundle, Path(tmp) / "pred.tsv", features_dir=folder)
        s_end = time.perf_counter() - t0
        bundle_mb = bundle.stat().st_size / 2**20
    result = {
        "what": "scoring a patient without genomics with a bundle: (a) generative part c~ -> u_G -> risk, "
                "(b) mustsurv predict end to end from a features .h5 (bundle load separate)",
        "dim": d, "ldm_layers": args.layers, "ddim_steps": args.steps, "samples": args.samples,
        "threads": args.threads, "pathology_dim": args.pathology_dim,
        "a_single_patients": len(single), "a_ms_single_patient_median": round(statistics.median(single), 2),
        "a_ms_single_patient_p90": round(statistics.quantiles(single, n=10)[-1], 2) if len(single) > 1 else None,
        "a_patients_batched": b, "a_ms_per_patient_batched": round(ms_batched, 2),
        "a_target": "< 150 ms for one patient alone, < 25 ms per patient batched",
        "a_within_target": statistics.median(single) < 150 and ms_batched < 25,
        "b_bag_patches": args.bag, "b_bundle_mb": round(bundle_mb, 1), "b_s_bundle_load": round(s_load, 3),
        "b_s_predict_end_to_end": round(s_end, 3), "b_scenario": str(pred["scenario"].iloc[0]),
        "paper_reference": "879 ms per patient on an A6000 (paper)",
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
