"""MUST's missing-modality inference vs zero-filling, on a finished run (the demo by default).

For every cohort and fold of a results tree: the C-index of MUST's own predictions (complete,
missing_genomics, missing_pathology; from ``predictions/must/fold{k}.tsv``) and of the same trained
model with the missing modality zero-filled (complete-data head; standardised genomics set to zeros =
the training mean, or a bag of zero patch features), on the same test patients. For each cohort and
missing modality it reports the paired difference MUST − zero-filled over folds (mean, 95 % t-interval,
folds won), because a demo fold has only ~13 test patients and a single C-index moves by ±0.1.

``--study-patients N`` first builds a fresh demo study with N patients per demo cohort (MUST only, the
repository's config otherwise) in ``--workdir``, so that the comparison has enough test patients.

    python benchmarks/must_zero_fill.py --workdir /tmp/demo                 # a finished demo run
    python benchmarks/must_zero_fill.py --workdir /tmp/zf --study-patients 192 --out benchmarks/results/must_zero_fill_192.json
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from results_io import write_result
from scipy import stats

from mustsurv.evaluate.zero_fill import zero_fill_cindex
from mustsurv.study import layout
from mustsurv.survival.metrics import c_index
from mustsurv.train.data import fold_datasets
from mustsurv.train.trainer import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SCENARIO_OF = {"genomics": "missing_genomics", "pathology": "missing_pathology"}


def fold_scores(cohort: str, fold: int) -> dict[str, float]:
    """MUST's C-index per scenario and zero-filled without each modality, on fold ``fold``'s test patients
    (paths relative to the working directory)."""
    pred = pd.read_csv(layout.predictions(cohort, "must", fold), sep="\t")
    scores = {s: c_index(g["time"], g["event"], g["risk"]) for s, g in pred.groupby("scenario")}
    model, _ = load_checkpoint(layout.must_checkpoint(cohort, "must", fold, 3), torch.device("cpu"))
    test = fold_datasets(**layout.fold_inputs(cohort, fold)).test
    for modality in SCENARIO_OF:
        scores[f"zero_{modality}"] = zero_fill_cindex(model, list(test), modality)
    scores["test_patients"] = float(len(test))
    return scores


def paired(must: list[float], zero: list[float]) -> dict[str, float]:
    """Mean of the per-fold differences MUST − zero-filled, its 95 % t-interval and the folds MUST wins."""
    diff = np.asarray(must) - np.asarray(zero)
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    return {"mean_difference": round(float(diff.mean()), 4), "ci95": [round(float(diff.mean() - half), 4),
            round(float(diff.mean() + half), 4)], "folds_won": int((diff > 0).sum()), "folds": len(diff)}


def build_study(workdir: Path, patients: int, cores: int) -> float:
    """A fresh demo study with ``patients`` per demo cohort and MUST only; returns its wall seconds."""
    if (workdir / "results").exists():
        raise SystemExit(f"{workdir} already has results/; give a fresh --workdir")
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "config", workdir / "config", dirs_exist_ok=True)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for block in cfg["cohorts"].values():
        if "demo" in block:
            block["demo"]["patients"] = patients
    cfg["methods"] = ["must"]
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "--snakefile", str(REPO / "Snakefile"),
                    "--directory", str(workdir), "results/tables/table2.csv"], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("."))
    ap.add_argument("--cohorts", nargs="+", default=["DEMO1", "DEMO2"])
    ap.add_argument("--study-patients", type=int, default=None, help="build a demo study of this size first")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/must_zero_fill.json"))
    args = ap.parse_args()
    out = args.out.resolve()
    workdir = args.workdir.resolve()
    extra: dict[str, object] = {}
    if args.study_patients:
        extra = {"study_patients_per_cohort": args.study_patients,
                 "study_wall_s": round(build_study(workdir, args.study_patients, args.cores), 1)}
    os.chdir(workdir)  # the slide summary lists features paths relative to the working directory
    torch.set_num_threads(2)
    result: dict[str, dict] = {}
    for cohort in args.cohorts:
        folds = glob.glob(layout.fold(cohort, "*"))
        per_fold = [fold_scores(cohort, k) for k in range(len(folds))]
        r = {k: {"mean": round(float(np.mean([f[k] for f in per_fold])), 4),
                 "sd": round(float(np.std([f[k] for f in per_fold], ddof=1)), 4),
                 "folds": [round(f[k], 4) for f in per_fold]} for k in per_fold[0]}
        for modality, scenario in SCENARIO_OF.items():
            r[f"must_minus_zero_{modality}"] = paired(r[scenario]["folds"], r[f"zero_{modality}"]["folds"])
            d = r[f"must_minus_zero_{modality}"]
            print(f"{cohort}: complete {r['complete']['mean']:.3f} | without {modality}: MUST "
                  f"{r[scenario]['mean']:.3f} vs zero-filled {r['zero_' + modality]['mean']:.3f} "
                  f"(difference {d['mean_difference']:+.3f}, 95% CI {d['ci95']}, {d['folds_won']}/{d['folds']} folds)")
        result[cohort] = r
    write_result({"workdir": str(workdir), **extra, "cohorts": result}, out)


if __name__ == "__main__":
    main()
