"""External validation: a training cohort's bundles predict another cohort in every scenario.

:func:`external_predictions` scores every patient of the test cohort in each scenario the method predicts
(the other modality masked), refusing a test cohort that shares a patient with the bundle's training
patients, and writes the predictions-file contract (:mod:`mustsurv.evaluate.predictions`) with
``train_median_risk`` = the bundle's training median, so the Kaplan–Meier split uses the *training*
cut-off. :func:`external_report` computes Harrell's and Uno's C, the integrated Brier score and the
time-dependent AUC (:func:`mustsurv.evaluate.metrics.fold_metrics`, the training cohort's outcomes as the
censoring reference), the log-rank p of the training-median split, and for a demo test cohort the oracle
C-index (true risk of the same patients) and the ratio to it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.deploy.bundle import load_bundle
from mustsurv.deploy.inputs import cohort_patients
from mustsurv.deploy.predict import score
from mustsurv.evaluate.predictions import (
    read_predictions,
    survival_of,
    write_predictions,
)
from mustsurv.io import atomic_path
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)

EXTERNAL_COLUMNS: tuple[str, ...] = ("train", "test", "method", "scenario", "n", "events", "harrell_c", "uno_c",
                                     "ibs", "mean_auc", "logrank_p", "oracle_c", "ratio_to_oracle")
"""Columns of ``results/tables/external.csv`` (one row per pair, method and scenario)."""


class SharedPatientsError(ValueError):
    """An external pair whose test cohort holds training patients of the bundle."""


def external_predictions(bundle_path: str | Path, cohort_tsv: str | Path, tokens_h5: str | Path | None,
                         summary_tsv: str | Path | None, out: str | Path, pair: str) -> pd.DataFrame:
    """Predict every test-cohort patient in every scenario of the bundle's method.

    Args:
        bundle_path: the training cohort's bundle.
        cohort_tsv: the test cohort's table (outcomes).
        tokens_h5: its tokens, or None.
        summary_tsv: its slide summary, or None.
        out: the predictions file to write.
        pair: ``{train} -> {test}``, for messages.

    Returns:
        The predictions (contract columns).

    Raises:
        SharedPatientsError: a test patient is a training patient of the bundle.
    """
    bundle = load_bundle(bundle_path)
    patients = cohort_patients(bundle, cohort_tsv, tokens_h5, summary_tsv)
    shared = [p for p in patients.ids if bundle.is_training_patient(p)]
    if shared:
        raise SharedPatientsError(f"external pair {pair}: {len(shared)} patient(s) of {cohort_tsv} are training patients "
                                  f"of {bundle_path} (e.g. {shared[0]}); an external cohort must not share patients - "
                                  f"remove the pair from `external` or the patients from the test cohort")
    frames = []
    for scenario in bundle.scenarios:
        pred = score(bundle, patients, scenario)
        pred["time"] = [patients.time[p] for p in pred[PATIENT_ID]]
        pred["event"] = [patients.event[p] for p in pred[PATIENT_ID]]
        pred["train_median_risk"] = bundle.data["cutoffs"][scenario]["median"]
        frames.append(pred)
    pred = pd.concat(frames, ignore_index=True)
    write_predictions(pred, out)
    log.info("%s %s: %d rows (%s)", pair, bundle.method, len(pred), pred["scenario"].value_counts().to_dict())
    return pred


def external_report(train: str, test: str, predictions: dict[str, str | Path], bundles: dict[str, str | Path],
                    metrics_out: str | Path, km_out: dict[tuple[str, str], str | Path],
                    truth: str | Path | None = None) -> pd.DataFrame:
    """Metrics and Kaplan–Meier figures of an external pair.

    Args:
        train: the training cohort.
        test: the test cohort.
        predictions: method -> its external predictions file.
        bundles: method -> its bundle (training outcomes and bin edges).
        metrics_out: the long metrics TSV to write (method, scenario, metric, value, time, note).
        km_out: (method, scenario) -> the figure to write.
        truth: the demo test cohort's truth table (oracle C-index), or None.

    Returns:
        The pair's summary rows (:data:`EXTERNAL_COLUMNS`).
    """
    from mustsurv.evaluate.km import km_figure, training_median_split
    from mustsurv.evaluate.metrics import TrainingOutcomes, fold_metrics
    from mustsurv.survival.metrics import c_index, logrank

    true_risk = None if truth is None else pd.read_csv(truth, sep="\t", dtype={PATIENT_ID: str}).set_index(PATIENT_ID)
    long, rows = [], []
    for method, path in predictions.items():
        pred = read_predictions(path)
        training = load_bundle(bundles[method]).data
        outcomes = TrainingOutcomes(np.asarray(training["training"]["time"]), np.asarray(training["training"]["event"]),
                                    tuple(training["bin_edges"]))
        for scenario, part in pred.groupby("scenario", sort=False):
            t, e, r = part["time"].to_numpy(float), part["event"].to_numpy(int), part["risk"].to_numpy(float)
            values = fold_metrics(r, t, e, outcomes, survival_of(part))
            long += [{"method": method, "scenario": scenario, **v} for v in values]
            by = {v["metric"]: v["value"] for v in values}
            high = training_median_split(part)
            p = logrank(t, e, high.astype(int)) if 0 < high.sum() < len(high) else float("nan")
            km_figure(part, f"{method} {train} → {test}, {scenario}", km_out[(method, str(scenario))],
                      split=f"the {train} training median")
            oracle = float("nan")
            if true_risk is not None:
                oracle = c_index(t, e, true_risk.loc[part[PATIENT_ID], f"risk_{scenario}"].to_numpy(float))
            rows.append({"train": train, "test": test, "method": method, "scenario": scenario, "n": len(part),
                         "events": int(e.sum()), "harrell_c": by.get("harrell_c"), "uno_c": by.get("uno_c"),
                         "ibs": by.get("ibs"), "mean_auc": by.get("mean_auc"), "logrank_p": p, "oracle_c": oracle,
                         "ratio_to_oracle": by.get("harrell_c", float("nan")) / oracle})
    with atomic_path(metrics_out) as tmp:
        pd.DataFrame(long).to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return pd.DataFrame(rows, columns=list(EXTERNAL_COLUMNS))


def write_external_table(summaries: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Write ``results/tables/external.csv`` from every pair's summary.

    Args:
        summaries: the pairs' summary CSVs (:func:`external_report`'s rows).
        out: the CSV.

    Returns:
        The table.
    """
    frames = [pd.read_csv(p) for p in summaries]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(EXTERNAL_COLUMNS))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    return table

