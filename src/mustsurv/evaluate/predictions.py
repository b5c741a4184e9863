"""The predictions file contract shared by every method.

``results/cohorts/{cohort}/predictions/{method}/fold{k}.tsv``: one row per test patient and scenario; a
method writes only the scenarios it supports. Columns, in this order:

* ``patient_id``, ``scenario``;
* ``risk``: −Σ_k survival_k (higher = earlier death; the C-index tables rank patients by it);
* ``time`` (months), ``event`` (1 = death observed): the test patient's outcome;
* ``train_median_risk``: the median risk, in the same scenario, of the fold's training patients (the
  patients the model was fit on) that the scenario admits; constant within a scenario. The Kaplan–Meier
  figures split each fold's test patients at it;
* ``survival_1 … survival_K``: the predicted survival after each of the K time bins,
  ``survival_k = S(e_k) = Π_{j≤k} (1 − h_j)``, where ``h_j`` is the hazard of bin j and
  ``[0, e_1, …, e_{K−1}, inf]`` are the fold file's ``bin_edges`` (bin j covers ``[e_{j−1}, e_j)``).
  ``survival_k`` (k < K) is therefore the predicted probability of surviving past the edge ``e_k``;
  ``survival_K`` refers to the open last bin (edge ``inf``) and enters only the risk. Values lie in
  [0, 1] and do not increase along k.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.io import atomic_path
from mustsurv.study.vocabulary import PATIENT_ID, SCENARIOS

BASE_COLUMNS: tuple[str, ...] = (PATIENT_ID, "scenario", "risk", "time", "event", "train_median_risk")
"""The columns every predictions file has, before its ``survival_k`` columns."""
SURVIVAL_PREFIX = "survival_"
_SURVIVAL = re.compile(rf"^{SURVIVAL_PREFIX}(\d+)$")
_TOL = 1e-6  # the file keeps 6 significant digits


def survival_columns(n_bins: int) -> list[str]:
    """``survival_1 … survival_K`` for ``n_bins`` K."""
    return [f"{SURVIVAL_PREFIX}{k}" for k in range(1, n_bins + 1)]


def survival_of(df: pd.DataFrame) -> np.ndarray:
    """The predicted survival after each bin.

    Args:
        df: A predictions table (N rows).

    Returns:
        (N, K) float array, column k−1 = ``survival_k``.
    """
    return df.loc[:, survival_columns(n_survival(df))].to_numpy(dtype=float)


def n_survival(df: pd.DataFrame) -> int:
    """K, the number of ``survival_k`` columns of a predictions table (0 when it has none)."""
    return sum(1 for c in df.columns if _SURVIVAL.match(str(c)))


def write_predictions(df: pd.DataFrame, path: str | Path) -> None:
    """Validate and write a predictions table atomically (columns in the contract's order)."""
    check_predictions(df, str(path))
    columns = [*BASE_COLUMNS, *survival_columns(n_survival(df))]
    with atomic_path(path) as tmp:
        df.loc[:, columns].to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions table."""
    df = pd.read_csv(path, sep="\t", dtype={PATIENT_ID: str, "scenario": str})
    check_predictions(df, str(path))
    return df


def check_predictions(df: pd.DataFrame, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` when the table breaks the contract (see the module docstring)."""
    missing = set(BASE_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{where}: predictions lack column(s) {sorted(missing)}; files written before the "
                         f"survival columns were added must be predicted again")
    unknown = set(df["scenario"]) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"{where}: unknown scenario(s) {sorted(unknown)}; expected {SCENARIOS}")
    if not np.isfinite(df["risk"].to_numpy(dtype=float)).all():
        raise ValueError(f"{where}: non-finite risk values")
    if df.duplicated(["patient_id", "scenario"]).any():
        raise ValueError(f"{where}: a patient appears twice in one scenario")
    median = df["train_median_risk"].to_numpy(dtype=float)
    if not np.isfinite(median).all():
        raise ValueError(f"{where}: train_median_risk is missing or not finite (predict with the training patients)")
    if (df.groupby("scenario")["train_median_risk"].nunique() > 1).any():
        raise ValueError(f"{where}: train_median_risk differs within a scenario")
    k = n_survival(df)
    found = sorted(int(_SURVIVAL.match(str(c)).group(1)) for c in df.columns if _SURVIVAL.match(str(c)))
    if k == 0 or found != list(range(1, k + 1)):
        raise ValueError(f"{where}: predictions need the columns survival_1 … survival_K, found {found}")
    surv = survival_of(df)
    if not np.isfinite(surv).all() or (surv < 0).any() or (surv > 1).any():
        raise ValueError(f"{where}: survival values outside [0, 1]")
    if (np.diff(surv, axis=1) > _TOL).any():
        raise ValueError(f"{where}: survival increases along the bins")
