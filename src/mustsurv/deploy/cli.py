"""``mustsurv predict``: score a new cohort with a bundle, from the command line or from Python.

    mustsurv predict BUNDLE --out predictions.tsv [--features-dir DIR [--slide-sheet SHEET]]
                     [--rna RNA] [--cnv CNV] [--maf MAF ...] [--mcat-csv CSV] [--tokens tokens.h5]
                     [--allow-training-patients] [--threads N]

Every patient may have both modalities, only slide features or only omics. Raw slides are embedded by
the workflow (the slide rules with the bundle's encoder; docs/deploy.md), not by this command.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def predict_cohort(bundle: str | Path, out: str | Path, features_dir: str | Path | None = None,
                   slide_sheet: str | Path | None = None, rna: str | Path | None = None,
                   cnv: str | Path | None = None, maf: Sequence[str | Path] | None = None,
                   mcat_csv: str | Path | None = None, tokens: str | Path | None = None,
                   allow_training_patients: bool = False) -> pd.DataFrame:
    """Score a new cohort with a bundle and write one TSV row per patient.

    Args:
        bundle: the ``.mustsurv`` file.
        out: the TSV to write (:data:`mustsurv.deploy.predict.COLUMNS` and ``survival_at_<edge>``).
        features_dir: folder of ``<slide_id>.h5`` patch features.
        slide_sheet: slide -> patient sheet (else the first 12 characters of the slide id).
        rna: RNA matrix.
        cnv: CNV matrix.
        maf: MAF files.
        mcat_csv: an MCAT all_clean CSV instead of the tables.
        tokens: a workflow ``tokens.h5`` instead of the tables.
        allow_training_patients: score the bundle's training patients too.

    Returns:
        The rows written.
    """
    from mustsurv.deploy.bundle import load_bundle
    from mustsurv.deploy.inputs import read_new_cohort
    from mustsurv.deploy.predict import score, write_scores

    loaded = load_bundle(bundle)
    patients = read_new_cohort(loaded, features_dir, slide_sheet, rna, cnv, maf, mcat_csv, tokens)
    pred = score(loaded, patients, allow_training_patients=allow_training_patients)
    write_scores(pred, out)
    return pred


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``predict``'s options to its sub-parser (:mod:`mustsurv.cli`).

    Args:
        p: the ``predict`` sub-command's parser.
    """
    p.add_argument("bundle", help="a .mustsurv bundle (results/cohorts/{cohort}/bundles/{method}.mustsurv)")
    p.add_argument("--out", required=True, help="the TSV to write")
    p.add_argument("--features-dir", help="folder of <slide_id>.h5 patch features (TRIDENT/CLAM layout)")
    p.add_argument("--slide-sheet", help="slide sheet (slide_id, patient_id, ...) mapping slides to patients")
    p.add_argument("--rna", help="RNA gene x sample matrix")
    p.add_argument("--cnv", help="GISTIC CNV gene x sample matrix")
    p.add_argument("--maf", nargs="+", help="MAF file(s)")
    p.add_argument("--mcat-csv", help="MCAT all_clean CSV (instead of --rna/--cnv/--maf)")
    p.add_argument("--tokens", help="a workflow tokens.h5 (instead of the tables)")
    p.add_argument("--allow-training-patients", action="store_true",
                   help="score patients the bundle was trained on (their rows say training_patient)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads")


def run(args: argparse.Namespace) -> int:
    """Run ``mustsurv predict``.

    Args:
        args: the parsed options (:func:`add_arguments`).

    Returns:
        The exit status: 0, or 2 for an input error (its message on stderr).
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import torch

    from mustsurv.deploy.bundle import BundleError
    from mustsurv.deploy.inputs import PredictInputError

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        pred = predict_cohort(args.bundle, args.out, args.features_dir, args.slide_sheet, args.rna, args.cnv,
                              args.maf, args.mcat_csv, args.tokens, args.allow_training_patients)
    except (BundleError, PredictInputError, FileNotFoundError) as exc:
        print(f"mustsurv predict: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("mustsurv.predict").info("scored %d patient(s) in %.1f s: %s -> %s", len(pred),
                                               time.perf_counter() - start, pred["scenario"].value_counts().to_dict(), args.out)
    return 0
