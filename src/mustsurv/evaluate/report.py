"""Per-cohort and study-wide tables and figures from the prediction files (what the report rules run)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.cohort.splits import read_fold
from mustsurv.cohort.table import read_cohort_table
from mustsurv.evaluate.decomposition import cosine_map_figure, ecdf_figure
from mustsurv.evaluate.km import km_figure
from mustsurv.evaluate.metrics import LONG_COLUMNS, TrainingOutcomes, fold_metrics
from mustsurv.evaluate.predictions import n_survival, read_predictions, survival_of
from mustsurv.evaluate.tables import (
    ORACLE,
    PredictionFile,
    add_ranks,
    fold_cindices,
    oracle_cindices,
    paper_table,
)
from mustsurv.study.methods import REFERENCES, dagger_of, table_methods
from mustsurv.study.vocabulary import PATIENT_ID, SCENARIOS

log = logging.getLogger(__name__)


def cohort_long_table(cohort: str, predictions: dict[str, list[str]], cohort_tsv: str, splits: list[str],
                      truth: str | None = None) -> pd.DataFrame:
    """Every fold's C-index of every method and scenario for one cohort (+ the oracle for demo cohorts), ranked.

    Args:
        cohort: the cohort name.
        predictions: method -> fold prediction files in fold order.
        cohort_tsv: the cohort table.
        splits: the fold files in fold order.
        truth: the demo's truth table (adds the ``oracle`` rows); None for a real cohort.

    Returns:
        The long table (method, scenario, cohort, fold, cindex, rank).
    """
    files = [PredictionFile(cohort, m, k, p) for m, paths in predictions.items() for k, p in enumerate(paths)]
    long = fold_cindices(files)
    if truth is not None:
        table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
        folds = {}
        for k, split in enumerate(splits):
            test = read_fold(split)["test"]
            folds[k] = table.loc[test, ["time", "event"]].reset_index()
        long = pd.concat([long, oracle_cindices(cohort, pd.read_csv(truth, sep="\t"), folds)], ignore_index=True)
    return add_ranks(long)


def layout(long: pd.DataFrame, cohorts: list[str], which: str) -> pd.DataFrame:
    """Paper Table 1 or 2 from the long table: the table's methods that have results, then the oracle.

    Args:
        long: the long C-index table.
        cohorts: the cohorts, in column order.
        which: ``table1`` or ``table2`` (Table 2 also lists MUST's references after MUST).

    Returns:
        The table in the paper's layout; with an ``endpoint`` column in ``long``, a last column ``endpoint``
        (:func:`endpoint_label`).
    """
    order = table_methods(which) + (tuple(REFERENCES) if which == "table2" else ())
    present = set(long["method"])
    methods = [m for m in order if m in present] + ([ORACLE] if ORACLE in present else [])
    dagger = {m: dagger_of(m) for m in methods if m != ORACLE} if which == "table1" else None
    table = paper_table(long, cohorts, methods, dagger=dagger,
                        every_scenario=table_methods("table2") if which == "table2" else ())
    if "endpoint" in long.columns:
        table["endpoint"] = endpoint_label(long, cohorts)
    return table


def endpoint_label(long: pd.DataFrame, cohorts: list[str]) -> str:
    """Name the survival endpoint(s) of a table's cohorts.

    Args:
        long: the long C-index table with an ``endpoint`` column.
        cohorts: the table's cohorts.

    Returns:
        The endpoint when every cohort has the same one (``DSS``), else ``cohort: endpoint`` pairs joined
        by ``; `` (``BLCA: DSS; LUAD: OS``).
    """
    per = {c: ",".join(sorted(set(long.loc[long["cohort"] == c, "endpoint"]))) for c in cohorts}
    values = set(per.values())
    return values.pop() if len(values) == 1 else "; ".join(f"{c}: {e}" for c, e in per.items())


def km_figures(cohort: str, predictions: dict[str, list[str]], out: dict[tuple[str, str], str],
               selection: str) -> pd.DataFrame:
    """KM figure per (method, scenario): each fold's test patients split at that fold's training median risk
    (the files' ``train_median_risk``), then pooled; returns the log-rank p-values and group sizes.

    Args:
        cohort: The cohort name (titles).
        predictions: Method -> its fold prediction files.
        out: (method, scenario) -> the figure to write.
        selection: The run's selection mode, stated in every title.

    Returns:
        One row per figure: cohort, method, scenario, log-rank p, patients and group sizes.
    """
    rows = []
    for method, paths in predictions.items():
        pooled = pd.concat([read_predictions(p) for p in paths], ignore_index=True)
        for scenario, part in pooled.groupby("scenario"):
            if (method, scenario) not in out:
                continue
            title = f"{cohort} · {method} · {scenario.replace('_', ' ')} · selection: {selection}"
            p = km_figure(part, title, out[(method, scenario)])
            n_high = int((part["risk"] > part["train_median_risk"]).sum())
            rows.append({"cohort": cohort, "method": method, "scenario": scenario, "logrank_p": p,
                         "n_patients": len(part), "n_high_risk": n_high, "n_low_risk": len(part) - n_high})
    missing = set(out) - {(r["method"], r["scenario"]) for r in rows}
    if missing:
        raise ValueError(f"{cohort}: no predictions for {sorted(missing)}; rerun the prediction rules")
    return pd.DataFrame(rows)


def training_outcomes(cohort_tsv: str, split: str) -> tuple[TrainingOutcomes, list[str]]:
    """A fold's training outcomes and bin edges, and its test patients.

    Args:
        cohort_tsv: the cohort table (times and events).
        split: the fold file.

    Returns:
        The training outcomes (its ``train`` ∪ ``validation`` patients) with the bin edges, and the test
        patient ids.
    """
    table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
    fold = read_fold(split)
    fitted = table.loc[list(fold["train"]) + list(fold.get("validation", [])), ["time", "event"]]
    outcomes = TrainingOutcomes(fitted["time"].to_numpy(float), fitted["event"].to_numpy(int),
                                tuple(float(e) for e in fold["bin_edges"]))
    return outcomes, list(fold["test"])


def cohort_metrics(cohort: str, predictions: dict[str, list[str]], cohort_tsv: str, splits: list[str],
                   truth: str | None = None) -> pd.DataFrame:
    """Every fold's survival metrics (:mod:`mustsurv.evaluate.metrics`) of every method and scenario.

    Args:
        cohort: The cohort name.
        predictions: method -> fold prediction files in fold order.
        cohort_tsv: The cohort table.
        splits: The fold files in fold order.
        truth: The demo's truth table: adds the ``oracle`` (true risk; no survival curves, so no IBS).

    Returns:
        The long table, columns :data:`mustsurv.evaluate.metrics.LONG_COLUMNS`.
    """
    folds = [training_outcomes(cohort_tsv, split) for split in splits]
    rows = []
    for method, paths in predictions.items():
        if len(paths) != len(folds):
            raise ValueError(f"{cohort}: {method} has {len(paths)} prediction files for {len(folds)} folds")
        for k, path in enumerate(paths):
            outcomes = folds[k][0]
            df = read_predictions(path)
            if n_survival(df) != len(outcomes.bin_edges) - 1:
                raise ValueError(f"{path}: {n_survival(df)} survival columns for the fold's "
                                 f"{len(outcomes.bin_edges) - 1} bins")
            for scenario, part in df.groupby("scenario", sort=False):
                for r in fold_metrics(part["risk"], part["time"], part["event"], outcomes, survival_of(part)):
                    rows.append(dict(method=method, scenario=scenario, cohort=cohort, fold=k, **r))
    if truth is not None:
        table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
        true_risk = pd.read_csv(truth, sep="\t", dtype={PATIENT_ID: str}).set_index(PATIENT_ID)
        for k, (outcomes, test) in enumerate(folds):
            t, e = table.loc[test, "time"].to_numpy(float), table.loc[test, "event"].to_numpy(int)
            for scenario in SCENARIOS:
                risk = true_risk.loc[test, f"risk_{scenario}"].to_numpy(float)
                for r in fold_metrics(risk, t, e, outcomes):
                    rows.append(dict(method=ORACLE, scenario=scenario, cohort=cohort, fold=k, **r))
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS))


def decomposition_figures(cohort: str, npz_files: list[str], ecdf_png: str | Path, map_png: str | Path) -> dict:
    """Pool the folds' decomposition cosines and draw the ECDF and the cosine map.

    Args:
        cohort: the cohort name (titles).
        npz_files: the folds' decomposition cosine files.
        ecdf_png: the ECDF figure to write.
        map_png: the cosine-map figure to write.

    Returns:
        The mean of every cosine over the pooled test patients.
    """
    parts = [np.load(f) for f in npz_files]
    cos = {k: np.concatenate([p[k] for p in parts]) for k in parts[0].files}
    ecdf_figure(cos, f"{cohort}: MUST decomposition (pooled test folds)", ecdf_png)
    cosine_map_figure(cos["cosine_map"], f"{cohort}: cos(g, û + ĉ) and components", map_png)
    return {k: float(np.mean(v)) for k, v in cos.items() if k != "cosine_map" and len(v)}
