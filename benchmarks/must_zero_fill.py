"""MUST's missing-modality inference vs zero-filling, on a finished run (the demo by default).

For every cohort and fold of a results tree: the C-index of MUST's own predictions (complete,
missing_genomics, missing_pathology; from ``predictions/must/fold{k}.tsv``) and of the same trained
model with the missing modality zero-filled (complete-data head; standardised genomics set to zeros =
the training mean, or a bag of zero patch features), on the same test patients. Writes
``benchmarks/results/must_zero_fill.json``.

    python benchmarks/must_zero_fill.py [--workdir .] [--cohorts DEMO1 DEMO2]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mustsurv.evaluate.zero_fill import zero_fill_cindex
from mustsurv.survival.metrics import c_index
from mustsurv.train.data import fold_datasets
from mustsurv.train.trainer import load_checkpoint

SCENARIO_OF = {"genomics": "missing_genomics", "pathology": "missing_pathology"}


def fold_scores(workdir: Path, cohort: str, fold: int) -> dict[str, float]:
    base = workdir / "results" / "cohorts" / cohort
    pred = pd.read_csv(base / "predictions" / "must" / f"fold{fold}.tsv", sep="\t")
    scores = {s: c_index(g["time"], g["event"], g["risk"]) for s, g in pred.groupby("scenario")}
    model, _ = load_checkpoint(base / "models" / "must" / f"fold{fold}" / "ldm.pt", torch.device("cpu"))
    _, test = fold_datasets(base / "cohort.tsv", base / "splits" / f"fold{fold}.json",
                            base / "omics" / "tokens.h5", base / "slides" / "summary.tsv")
    for modality in SCENARIO_OF:
        scores[f"zero_{modality}"] = zero_fill_cindex(model, list(test), modality)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("."))
    ap.add_argument("--cohorts", nargs="+", default=["DEMO1", "DEMO2"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/must_zero_fill.json"))
    args = ap.parse_args()
    args.out = args.out.resolve()
    workdir = args.workdir.resolve()
    os.chdir(workdir)  # the slide summary lists features paths relative to the working directory
    args.workdir = Path(".")
    torch.set_num_threads(2)
    result: dict[str, dict] = {}
    for cohort in args.cohorts:
        folds = sorted((args.workdir / "results" / "cohorts" / cohort / "splits").glob("fold*.json"))
        per_fold = [fold_scores(args.workdir, cohort, k) for k in range(len(folds))]
        keys = per_fold[0].keys()
        result[cohort] = {k: {"mean": float(np.mean([f[k] for f in per_fold])),
                              "sd": float(np.std([f[k] for f in per_fold], ddof=1)),
                              "folds": [round(f[k], 4) for f in per_fold]} for k in keys}
        for modality, scenario in SCENARIO_OF.items():
            r = result[cohort]
            print(f"{cohort}: complete {r['complete']['mean']:.3f} | without {modality}: MUST "
                  f"{r[scenario]['mean']:.3f} vs zero-filled {r['zero_' + modality]['mean']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"workdir": str(workdir), "cohorts": result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
