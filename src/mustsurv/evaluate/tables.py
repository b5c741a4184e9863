"""C-index per fold (long form) and the paper's tables (method, P, G, one column per cohort, Overall).

Cells are ``mean ± std`` of the per-fold C-index over folds. ``Overall`` is the mean of the cohort
means (± their standard deviation across cohorts), so every cohort weighs the same whatever its size.
Scenarios map to the paper's availability marks: complete = ● ●, missing genomics = ● ○ (pathology
only), missing pathology = ○ ● (genomics only).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.evaluate.predictions import read_predictions
from mustsurv.io import atomic_path
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.survival.metrics import c_index

MARKS = {"complete": ("●", "●"), "missing_genomics": ("●", "○"), "missing_pathology": ("○", "●")}
ORACLE = "oracle"


@dataclass(frozen=True)
class PredictionFile:
    """One method's predictions for one cohort and fold.

    Attributes:
        cohort: the cohort.
        method: the method (or MUST run label).
        fold: the fold index.
        path: the predictions TSV.
    """

    cohort: str
    method: str
    fold: int
    path: str


def fold_cindices(files: list[PredictionFile]) -> pd.DataFrame:
    """Compute the C-index of every prediction file, per scenario.

    Args:
        files: the prediction files.

    Returns:
        Long table (method, scenario, cohort, fold, cindex, n_patients, n_events), one row per file and
        scenario, sorted.
    """
    rows = []
    for f in files:
        df = read_predictions(f.path)
        for scenario, part in df.groupby("scenario", sort=False):
            rows.append(
                dict(method=f.method, scenario=scenario, cohort=f.cohort, fold=f.fold,
                     cindex=c_index(part["time"], part["event"], part["risk"]),
                     n_patients=len(part), n_events=int(part["event"].sum()))
            )
    return _order(pd.DataFrame(rows, columns=["method", "scenario", "cohort", "fold", "cindex", "n_patients",
                                              "n_events"]))


def oracle_cindices(cohort: str, truth: pd.DataFrame, folds: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """C-index of the demo's true risk per scenario on each fold's test patients.

    Args:
        cohort: the cohort.
        truth: the demo's truth table (``patient_id``, ``risk_<scenario>``).
        folds: fold -> test patients with ``patient_id``, ``time``, ``event``.

    Returns:
        Long table as :func:`fold_cindices`'s, method ``oracle``.
    """
    rows = []
    truth = truth.set_index("patient_id")
    for fold, test in folds.items():
        for scenario in SCENARIOS:
            risk = truth.loc[test["patient_id"], f"risk_{scenario}"].to_numpy()
            rows.append(dict(method=ORACLE, scenario=scenario, cohort=cohort, fold=fold,
                             cindex=c_index(test["time"], test["event"], risk),
                             n_patients=len(test), n_events=int(test["event"].sum())))
    return pd.DataFrame(rows)


def _order(df: pd.DataFrame) -> pd.DataFrame:
    """Sort a long table by method, scenario (in :data:`SCENARIOS` order), cohort and fold."""
    order = {s: i for i, s in enumerate(SCENARIOS)}
    return df.sort_values(["method", "scenario", "cohort", "fold"],
                          key=lambda c: c.map(order) if c.name == "scenario" else c).reset_index(drop=True)


def add_ranks(long: pd.DataFrame) -> pd.DataFrame:
    """Rank the methods' mean C-index per (cohort, scenario) (1 = best; the oracle is not ranked).

    Rank 1 and 2 are the paper's bold and underline.

    Args:
        long: the long C-index table.

    Returns:
        ``long`` with a ``rank`` column (NaN for the oracle).
    """
    means = long[long["method"] != ORACLE].groupby(["cohort", "scenario", "method"])["cindex"].mean().reset_index()
    means["rank"] = means.groupby(["cohort", "scenario"])["cindex"].rank(ascending=False, method="min").astype(int)
    return long.merge(means[["cohort", "scenario", "method", "rank"]], on=["cohort", "scenario", "method"], how="left")


def paper_table(long: pd.DataFrame, cohorts: list[str], methods: list[str], dagger: dict[str, bool] | None = None,
                digits: int = 3, every_scenario: Collection[str] = ()) -> pd.DataFrame:
    """Lay the C-indices out as in the paper: rows (method, scenario) in ``methods`` order then scenario order.

    Columns ``method, P, G, <cohorts…>, Overall`` (plus ``†`` when ``dagger`` is given).

    Args:
        long: the long C-index table.
        cohorts: the cohorts, in column order.
        methods: the methods, in row order.
        dagger: per method, whether it needs identical modalities at training and inference; None = no ``†``
            column.
        digits: decimals of the cells.
        every_scenario: the methods that get a row of ``–`` for a scenario they cannot predict (Table 2:
            LD-CVAE without pathology); other methods' such rows are left out (Table 1: each unimodal method
            has its one scenario; Table 2's references have no complete-data row).

    Returns:
        The table.
    """
    rows = []
    for method in methods:
        for scenario in SCENARIOS:
            part = long[(long["method"] == method) & (long["scenario"] == scenario)]
            if part.empty and not (method in every_scenario and method in set(long["method"])):
                continue
            p, g = MARKS[scenario]
            row = {"method": method, "P": p, "G": g}
            if dagger is not None:
                row["†"] = "†" if dagger.get(method, False) else ""
            cohort_means = []
            for cohort in cohorts:
                vals = part.loc[part["cohort"] == cohort, "cindex"].to_numpy()
                row[cohort] = _cell(vals, digits)
                if len(vals):
                    cohort_means.append(vals.mean())
            row["Overall"] = _cell(np.array(cohort_means), digits) if len(cohort_means) == len(cohorts) else "–"
            rows.append(row)
    return pd.DataFrame(rows)


def _cell(vals: np.ndarray, digits: int) -> str:
    """``mean ± sample std``; a single value has no spread and is shown alone; none is ``–``."""
    if len(vals) == 0:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{vals.mean():.{digits}f} ± {vals.std(ddof=1):.{digits}f}"


def write_table(df: pd.DataFrame, path: str | Path, sep: str = ",") -> None:
    """Write a table atomically (UTF-8).

    Args:
        df: the table.
        path: the file to write.
        sep: the column separator.
    """
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=sep, index=False, encoding="utf-8")
