"""Paper-scale cohorts on one machine: peak memory and time of MUST's stages with the bounded feature store.

For each size (GB of float32 features on disk) the script builds a synthetic precomputed ``features_dir``
cohort (TRIDENT-style ``.h5`` files, ``features`` (N, 1536) and ``coords`` (N, 2), one slide per patient,
N drawn log-normally and clipped to [2k, 30k] patches like TCGA diagnostic slides) with omics tokens of six
families, a cohort table and ``config/paper.yaml``'s fold 0. In a fresh process per size it then runs, at
paper width (``config/paper.yaml``: D = 256, r = 64), with ``training.feature_cache_gb`` = ``--cache-gb``:
one stage-2 epoch, the stage-3 pair collection and ``--stage3-steps`` LDM steps, and the prediction of every
patient in the three scenarios (paper DDIM settings). Before each of them the feature files are evicted
from the OS page cache (``posix_fadvise(..., POSIX_FADV_DONTNEED)``), so that reads come from disk. Another
fresh process times the same stage-2 epoch with the old in-memory behaviour (every bag pre-loaded in
float32, no budget). Peak RSS is ``ru_maxrss`` of each process. The synthetic cohort is deleted afterwards.

Results go to ``benchmarks/results/paper_scale.json``: per size the features' GB on disk, patients and
patches, peak RSS, seconds per patient of each stage, the store's hit rates and counters, the in-memory
epoch and the ratio, and an extrapolated wall time of a full 5-fold paper run on this CPU.

    python benchmarks/paper_scale.py [--sizes 1.5 3 6] [--cache-gb 1] [--stage3-steps 200] [--threads 2]
    python benchmarks/paper_scale.py --sizes 0.02 --min-patches 100 --max-patches 400 --cache-gb 0.005 \\
        --stage3-steps 4 --ddim-steps 2 --n-samples 1 --out /tmp/paper_scale_smoke.json   # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from results_io import (
    write_result,  # benchmarks/results_io.py (the script's folder is on sys.path)
)

FEATURE_DIM = 1536
FAMILIES = {"TSG": 82, "Onc": 328, "ProtKin": 513, "CellDiff": 452, "TransFac": 183, "CytoGrowth": 277}
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- the cohort
def build_cohort(root: Path, gb: float, lo: int, hi: int, seed: int = 0) -> dict[str, str]:
    """Write a synthetic cohort of about ``gb`` GB of float32 features under ``root``; return its file paths."""
    from mustsurv.cohort.splits import build_folds, write_fold
    from mustsurv.cohort.table import build_cohort_table, write_cohort_table
    from mustsurv.config import load_config
    from mustsurv.omics.tokens import build_tokens, write_tokens
    from mustsurv.slides.summary import build_summary, read_summary, write_summary

    rng = np.random.default_rng(seed)
    features_dir = root / "features"
    features_dir.mkdir(parents=True)
    target, total, sizes = gb * 1e9, 0, []
    median = math.sqrt(lo * hi)  # log-normal around the geometric middle of the range
    while total < target or len(sizes) < 10:
        n = int(np.clip(rng.lognormal(math.log(median), 0.6), lo, hi))
        sizes.append(n)
        total += n * FEATURE_DIM * 4
    paths, patients = {}, {}
    for i, n in enumerate(sizes):
        slide = f"TCGA-SY-{i:04d}-01Z-00-DX1"
        path = features_dir / f"{slide}.h5"
        with h5py.File(path, "w") as h5:
            ds = h5.create_dataset("features", shape=(n, FEATURE_DIM), dtype=np.float32)
            for start in range(0, n, 4096):  # written in blocks: the builder stays small
                stop = min(n, start + 4096)
                ds[start:stop] = rng.standard_normal((stop - start, FEATURE_DIM), dtype=np.float32)
            h5["coords"] = np.stack([np.arange(n) % 512, np.arange(n) // 512], axis=1).astype(np.int64) * 224
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())  # clean pages, so that POSIX_FADV_DONTNEED can drop them
        paths[slide], patients[slide] = str(path), slide[:12]
    summary = root / "summary.tsv"
    write_summary(summary, build_summary(paths, patients))
    ids = sorted(set(patients.values()))
    genes = {fam: [f"{fam}{j}" for j in range(d)] for fam, d in FAMILIES.items()}
    omics = pd.DataFrame(rng.normal(size=(len(ids), sum(FAMILIES.values()))), index=ids,
                         columns=[f"{g}_rnaseq" for fam in genes.values() for g in fam])
    tokens = root / "tokens.h5"
    write_tokens(tokens, build_tokens(omics, genes))
    survival = pd.DataFrame({"patient_id": ids, "time": rng.uniform(1, 120, len(ids)).round(2),
                             "event": (rng.uniform(size=len(ids)) < 0.4).astype(int)})
    table = build_cohort_table(survival, genomics_patients=ids, summary=read_summary(summary))
    write_cohort_table(table, root / "cohort.tsv")
    cv = load_config(REPO / "config" / "paper.yaml")["cv"]
    record = build_folds(table, folds=cv["folds"], seed=cv["seed"], n_bins=cv["n_bins"],
                         validation_fraction=cv["validation_fraction"])[0]
    write_fold(root / "fold0.json", record)
    return {"cohort": str(root / "cohort.tsv"), "split": str(root / "fold0.json"), "tokens": str(tokens),
            "summary": str(summary), "features_dir": str(features_dir)}


def drop_page_cache(features_dir: str) -> None:
    """Evict the feature files from the OS page cache."""
    for path in Path(features_dir).glob("*.h5"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------- one process
def measure(data: dict[str, str], args: argparse.Namespace) -> dict:
    """Run the stages in this (fresh) process and return the measurements."""
    import torch

    from mustsurv.cohort.store import FeatureStore
    from mustsurv.config import load_config
    from mustsurv.models.batch import set_max_tokens
    from mustsurv.models.registry import build_model
    from mustsurv.study.vocabulary import SCENARIOS
    from mustsurv.train.data import fold_datasets
    from mustsurv.train.must import (
        ldm_training_pairs,
        predict,
        train_stage2,
        train_stage3,
    )
    from mustsurv.train.pipeline import must_kwargs
    from mustsurv.train.selection import Selection
    from mustsurv.train.trainer import OptimConfig, seed_everything

    torch.set_num_threads(args.threads)
    cfg = load_config(REPO / "config" / "paper.yaml")
    must, training = cfg["must"], cfg["training"]
    set_max_tokens(training["max_tokens_per_batch"])
    in_memory = args.mode == "in_memory"
    store = (FeatureStore(dtype=torch.float32, read_ahead=0) if in_memory
             else FeatureStore(budget_gb=args.cache_gb))
    selection = Selection.from_config(cfg["selection"])
    fold = fold_datasets(data["cohort"], data["split"], data["tokens"], data["summary"], store=store,
                         fit_on_validation=selection.fit_on_validation)
    train, test = fold.train, fold.test
    seed_everything(0)
    model = build_model("must", **must_kwargs(train.family_sizes, train.pathology_dim, train.n_bins,
                                              must["model"]))
    out: dict = {"mode": args.mode, "train_patients": len(train), "test_patients": len(test)}
    if in_memory:  # the old behaviour: every bag read once, kept in float32
        for i in range(len(train)):
            train[i]["pathology"].load()
    before = store.counters()
    drop_page_cache(data["features_dir"])
    start = time.perf_counter()
    train_stage2(model, train, OptimConfig(**{**must["stage2"], "epochs": 1}, seed=0))
    out["stage2_epoch_s"] = time.perf_counter() - start
    out["stage2_counters"] = since(before, store.counters())
    out["peak_rss_gb_after"] = {"stage2_epoch": peak_rss_gb()}
    if not in_memory:
        stage3 = {**must["stage3"], "steps": args.stage3_steps, "checkpoint_every": 10**9}
        drop_page_cache(data["features_dir"])
        start = time.perf_counter()
        ldm_training_pairs(model, train)
        out["stage3_pairs_s"] = time.perf_counter() - start
        out["peak_rss_gb_after"]["stage3_pairs"] = peak_rss_gb()
        drop_page_cache(data["features_dir"])
        start = time.perf_counter()
        train_stage3(model, train, seed=0, **stage3)
        out["stage3_s"] = time.perf_counter() - start
        out["stage3_step_s"] = max(0.0, out["stage3_s"] - out["stage3_pairs_s"]) / (2 * args.stage3_steps)
        out["stage3_counters"] = store.counters()
        out["peak_rss_gb_after"]["stage3"] = peak_rss_gb()
        everyone = [*train, *test]
        drop_page_cache(data["features_dir"])
        start = time.perf_counter()
        pred = predict(model, everyone, SCENARIOS, batch_size=must["inference"]["batch_size"],
                       n_samples=args.n_samples or must["inference"]["n_samples"],
                       steps=args.ddim_steps or must["inference"]["ddim_steps"])
        out["predict_s"] = time.perf_counter() - start
        out["predict_rows"] = len(pred)
        out["predict_patients"] = len(everyone)
        out["final_counters"] = store.counters()
        out["peak_rss_gb_after"]["prediction"] = peak_rss_gb()
    store.close()
    out["peak_rss_gb"] = peak_rss_gb()
    return out


def peak_rss_gb() -> float:
    """This process's peak resident set so far (``ru_maxrss``), in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def since(before: dict, after: dict) -> dict:
    """The store's counters of one stage (after minus before), with its hit rate."""
    out = {k: after[k] - before[k] for k in ("files_read", "hits", "misses", "prefetched", "evicted", "uncached")}
    asked = out["hits"] + out["misses"]
    return {**out, "hit_rate": out["hits"] / asked if asked else float("nan"), "cached_gb": after["cached_gb"]}


def run_child(data: dict[str, str], mode: str, args: argparse.Namespace) -> dict:
    """Measure in a fresh Python process (its own peak RSS)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as fh:
        result = fh.name
    cmd = [sys.executable, __file__, "--child", json.dumps(data), "--mode", mode, "--result", result,
           "--cache-gb", str(args.cache_gb), "--stage3-steps", str(args.stage3_steps), "--threads", str(args.threads),
           "--n-samples", str(args.n_samples), "--ddim-steps", str(args.ddim_steps)]
    subprocess.run(cmd, check=True)
    out = json.loads(Path(result).read_text())
    Path(result).unlink()
    return out


def extrapolate(bounded: dict, cfg: dict, folds: int) -> dict:
    """Wall time of a full paper run (every fold, every stage, the prediction files) from the measurements."""
    must = cfg["must"]
    epochs = must["stage1"]["epochs"] + must["stage2"]["epochs"]
    # predict() predicts the test and the training patients in 3 scenarios, and again in the 2 missing
    # scenarios without the LDM: about 5/3 of the measured prediction of every patient
    per_fold = (epochs * bounded["stage2_epoch_s"] + bounded["stage3_pairs_s"]
                + 2 * must["stage3"]["steps"] * bounded["stage3_step_s"] + bounded["predict_s"] * 5 / 3)
    return {"hours": folds * per_fold / 3600,
            "formula": "folds x ((stage1 + stage2 epochs) x stage-2 epoch + stage-3 pairs + 2 x stage3.steps x "
                       "step + 5/3 x prediction of every patient); stage-1 epochs counted as stage-2 epochs "
                       "(an upper bound)"}


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `finally` then deletes the cohort
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1.5, 3.0, 6.0], help="GB of float32 features")
    ap.add_argument("--cache-gb", type=float, default=1.0, help="training.feature_cache_gb")
    ap.add_argument("--stage3-steps", type=int, default=200)
    ap.add_argument("--n-samples", type=int, default=0, help="DDIM samples (0: config/paper.yaml)")
    ap.add_argument("--ddim-steps", type=int, default=0, help="DDIM steps (0: config/paper.yaml)")
    ap.add_argument("--min-patches", type=int, default=2000)
    ap.add_argument("--max-patches", type=int, default=30000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default=None, help="where the synthetic cohorts go (default: a temporary folder)")
    ap.add_argument("--skip-in-memory", action="store_true", help="do not time the old in-memory store")
    ap.add_argument("--out", default="benchmarks/results/paper_scale.json")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="bounded", help=argparse.SUPPRESS)
    ap.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        Path(args.result).write_text(json.dumps(measure(json.loads(args.child), args)))
        return

    from mustsurv.config import load_config

    cfg = load_config(REPO / "config" / "paper.yaml")
    sizes = []
    for gb in args.sizes:
        root = Path(tempfile.mkdtemp(prefix=f"paper_scale_{gb:g}gb_", dir=args.workdir))
        try:
            start = time.perf_counter()
            data = build_cohort(root, gb, args.min_patches, args.max_patches)
            built = time.perf_counter() - start
            files = list(Path(data["features_dir"]).glob("*.h5"))
            patches = 0
            for f in files:
                with h5py.File(f, "r") as h5:
                    patches += h5["features"].shape[0]
            bounded = run_child(data, "bounded", args)
            entry = {"target_gb": gb, "features_gb_on_disk": sum(f.stat().st_size for f in files) / 1e9,
                     "patients": len(files), "patches": patches, "build_s": built,
                     "peak_rss_gb": bounded["peak_rss_gb"],
                     "seconds_per_patient": {
                         "stage2_epoch": bounded["stage2_epoch_s"] / bounded["train_patients"],
                         "stage3_pairs": bounded["stage3_pairs_s"] / bounded["train_patients"],
                         "prediction_3_scenarios": bounded["predict_s"] / bounded["predict_patients"]},
                     "stage3_seconds_per_ldm_step": bounded["stage3_step_s"],
                     "hit_rate": {"stage2_epoch": bounded["stage2_counters"]["hit_rate"],
                                  "all": bounded["final_counters"]["hit_rate"]},
                     "bounded": bounded,
                     "full_paper_run_extrapolated": extrapolate(bounded, cfg, cfg["cv"]["folds"])}
            if not args.skip_in_memory:
                old = run_child(data, "in_memory", args)
                entry["in_memory"] = old
                entry["stage2_epoch_ratio_bounded_vs_in_memory"] = bounded["stage2_epoch_s"] / old["stage2_epoch_s"]
            sizes.append(entry)
            write_partial(sizes, args, cfg)  # a run stopped at a later size keeps the sizes it finished
            print(f"paper_scale: {gb:g} GB done: peak RSS {entry['peak_rss_gb']:.2f} GB", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)  # the disk is shared: never leave the cohort behind


def write_partial(sizes: list[dict], args: argparse.Namespace, cfg: dict) -> None:
    """Write the result of the sizes measured so far (the whole result once the last size is done)."""
    result = {
        "what": "MUST at paper width on synthetic TRIDENT-style cohorts with the bounded feature store "
                "(page cache dropped before each stage)",
        "cache_gb": args.cache_gb, "max_tokens_per_batch": cfg["training"]["max_tokens_per_batch"],
        "stage3_steps_measured": args.stage3_steps, "patches_per_bag": [args.min_patches, args.max_patches],
        "feature_dim": FEATURE_DIM, "threads": args.threads, "sizes": sizes,
        "sizes_requested": list(args.sizes),
    }
    if len(sizes) > 1:
        result["peak_rss_largest_vs_smallest"] = sizes[-1]["peak_rss_gb"] / sizes[0]["peak_rss_gb"]
    write_result(result, args.out)


if __name__ == "__main__":
    main()
