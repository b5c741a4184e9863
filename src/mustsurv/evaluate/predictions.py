"""The predictions file contract shared by every method.

``results/cohorts/{cohort}/predictions/{method}/fold{k}.tsv``: one row per test patient and scenario,
columns ``patient_id, scenario, risk, time, event`` (risk: higher = earlier death; time in months;
event 1 = death observed). A method writes only the scenarios it supports.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.io import atomic_path
from mustsurv.study.vocabulary import PATIENT_ID, SCENARIOS

COLUMNS: tuple[str, ...] = (PATIENT_ID, "scenario", "risk", "time", "event")


def write_predictions(df: pd.DataFrame, path: str | Path) -> None:
    """Validate and write a predictions table atomically."""
    check_predictions(df, str(path))
    with atomic_path(path) as tmp:
        df.loc[:, list(COLUMNS)].to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read and validate a predictions table."""
    df = pd.read_csv(path, sep="\t", dtype={PATIENT_ID: str, "scenario": str})
    check_predictions(df, str(path))
    return df


def check_predictions(df: pd.DataFrame, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` when the table breaks the contract."""
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{where}: predictions lack column(s) {sorted(missing)}")
    unknown = set(df["scenario"]) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"{where}: unknown scenario(s) {sorted(unknown)}; expected {SCENARIOS}")
    if not np.isfinite(df["risk"].to_numpy(dtype=float)).all():
        raise ValueError(f"{where}: non-finite risk values")
    if df.duplicated(["patient_id", "scenario"]).any():
        raise ValueError(f"{where}: a patient appears twice in one scenario")
