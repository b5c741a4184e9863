"""Readers of per-patient survival: clinical tables and the MCAT/PORPOISE "all_clean" CSV.

Every reader returns per-*patient* rows (patient id = first 12 characters of a TCGA barcode,
:mod:`mustsurv.barcodes`) and reports what it changed or dropped through the ``mustsurv.omics`` logger;
bad input raises :class:`~mustsurv.omics.tables.OmicsInputError` with a message naming the file and the fix.

Formats:

- Clinical (:func:`read_clinical`): TCGA-CDR (``OS`` 0/1, ``OS.time`` in days, converted to months with
  :data:`DAYS_PER_MONTH`), cBioPortal (``OS_MONTHS``, ``OS_STATUS`` ``1:DECEASED``/``0:LIVING``) or
  MCAT (``survival_months``, ``censorship`` where 1 = censored).
- MCAT/PORPOISE "all_clean" CSV (:func:`read_mcat_csv`): one row per slide, survival in MCAT style and
  feature columns suffixed ``_rnaseq``/``_cnv``/``_mut``. Compression is detected from the content
  (some ``.csv.zip`` files are plain CSV).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.barcodes import patient_of
from mustsurv.omics.tables import (
    DATA_TYPES,
    OmicsInputError,
    read_table,
    report_nonfinite,
    to_float,
)
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 365.25 / 12
"""Days per month used to convert TCGA-CDR ``OS.time`` (days) to months."""


def _parse_status(values: pd.Series) -> pd.Series:
    """cBioPortal ``OS_STATUS`` (``1:DECEASED``, ``0:LIVING``, ``DECEASED``, ``Dead`` ...) -> 1/0/NaN."""
    s = values.astype("string").str.strip().str.upper()
    out = pd.Series(np.nan, index=values.index)
    out[s.str.startswith("1") | s.str.contains("DECEASED|DEAD", regex=True)] = 1.0
    out[s.str.startswith("0") | s.str.contains("LIVING|ALIVE", regex=True)] = 0.0
    return out


def _survival_frame(path: Path, patient: pd.Series, time: pd.Series, event: pd.Series) -> pd.DataFrame:
    """Validate and de-duplicate a per-patient survival table (NaN kept for missing time/event); OmicsInputError names the problem.
    """
    df = pd.DataFrame({PATIENT_ID: patient.map(lambda s: patient_of(str(s)) if pd.notna(s) else s),
                       "time": time, "event": event}).dropna(subset=[PATIENT_ID])
    neg = df["time"] <= 0
    if neg.any():
        raise OmicsInputError(f"{path}: survival time <= 0 for {df.loc[neg, PATIENT_ID].tolist()[:5]} (a patient needs "
                              f"some follow-up); correct these rows or remove them from the table.")
    bad_event = df["event"].notna() & ~df["event"].isin([0.0, 1.0])
    if bad_event.any():
        raise OmicsInputError(f"{path}: event values must be 0/1, found {df.loc[bad_event, 'event'].unique()[:5]}.")
    exact = df.duplicated(keep="first")
    if exact.any():
        log.info("%s: %d repeated row(s) of the same patient with identical survival collapsed", path, int(exact.sum()))
        df = df[~exact]
    clash = df[PATIENT_ID].duplicated(keep=False)
    if clash.any():
        clashing = sorted(set(df.loc[clash, PATIENT_ID]))[:5]
        raise OmicsInputError(f"{path}: patients with conflicting survival rows {clashing}; keep one row per patient.")
    return df.reset_index(drop=True)


def read_clinical(path: str | Path) -> pd.DataFrame:
    """Read the per-patient survival of a clinical table.

    The style is detected from the columns: TCGA-CDR (``OS``, ``OS.time`` days), cBioPortal
    (``OS_MONTHS``, ``OS_STATUS``) or MCAT (``survival_months``, ``censorship``; 1 = censored).
    Patients with a missing time or event are kept with NaN; the cohort table drops and counts them.

    Args:
        path: the clinical table.

    Returns:
        Columns ``patient_id`` (str), ``time`` (months, float) and ``event`` (1 = death; float, NaN =
        unknown), one row per patient.

    Raises:
        OmicsInputError: no patient id column, no recognised survival columns, negative times, events other
            than 0/1, or conflicting rows of one patient.
    """
    path = Path(path)
    df = read_table(path)
    cols = set(df.columns)
    pid_col = next((c for c in ("bcr_patient_barcode", "PATIENT_ID", "case_id", "patient_id", "patient",
                                "case_submitter_id") if c in cols), None)
    if pid_col is None:
        raise OmicsInputError(f"{path}: no patient id column (bcr_patient_barcode, PATIENT_ID, case_id or patient_id).")
    if {"OS", "OS.time"} <= cols:
        time = pd.to_numeric(df["OS.time"], errors="coerce") / DAYS_PER_MONTH
        event = pd.to_numeric(df["OS"], errors="coerce")
        style = "TCGA-CDR (OS.time in days)"
    elif {"OS_MONTHS", "OS_STATUS"} <= cols:
        time = pd.to_numeric(df["OS_MONTHS"], errors="coerce")
        event = _parse_status(df["OS_STATUS"])
        style = "cBioPortal (OS_MONTHS, OS_STATUS)"
    elif {"survival_months", "censorship"} <= cols:
        time = pd.to_numeric(df["survival_months"], errors="coerce")
        event = 1.0 - pd.to_numeric(df["censorship"], errors="coerce")
        style = "MCAT (survival_months, censorship)"
    else:
        raise OmicsInputError(
            f"{path}: no survival columns; expected TCGA-CDR `OS` + `OS.time` (days), cBioPortal `OS_MONTHS` + "
            f"`OS_STATUS`, or MCAT `survival_months` + `censorship`.")
    out = _survival_frame(path, df[pid_col], time, event)
    log.info("%s: %s survival of %d patient(s)", path, style, len(out))
    return out


@dataclass
class McatTable:
    """Content of an MCAT/PORPOISE "all_clean" table, one row per patient.

    Attributes:
        survival: columns patient_id, time (months), event.
        features: patient x feature float frame (index ``patient_id``, features suffixed
            ``_rnaseq``/``_cnv``/``_mut``, values as in the file).
        slides: patient id -> slide ids listed in the file.
    """

    survival: pd.DataFrame
    features: pd.DataFrame
    slides: dict[str, list[str]] = field(default_factory=dict)


def read_mcat_csv(path: str | Path) -> McatTable:
    """Read an MCAT/PORPOISE "all_clean" CSV (plain, zip or gzip — detected by content).

    Rows of the same patient (one per slide) must agree on survival; their omics values are averaged
    when they differ (counted in the log). Non-finite feature values become NaN (counted).

    Args:
        path: the CSV.

    Returns:
        The table's survival, features and slides.

    Raises:
        OmicsInputError: required columns are missing, there are no feature columns, a feature column is
            duplicated, or the survival rows are invalid.
    """
    path = Path(path)
    df = read_table(path, numeric=lambda c: c.rsplit("_", 1)[-1] in DATA_TYPES)
    need = {"case_id", "survival_months", "censorship"}
    missing = need - set(df.columns)
    if missing:
        raise OmicsInputError(f"{path}: not an MCAT all_clean table, missing column(s) {sorted(missing)} (expected "
                              f"case_id, slide_id, survival_months, censorship and *_rnaseq/_cnv/_mut features).")
    feats = [c for c in df.columns if c.rsplit("_", 1)[-1] in DATA_TYPES and "_" in c]
    if not feats:
        raise OmicsInputError(f"{path}: no feature columns ending in _rnaseq, _cnv or _mut.")
    if len(set(feats)) != len(feats):
        dup = sorted({c for c in feats if feats.count(c) > 1})
        raise OmicsInputError(f"{path}: duplicated feature column(s) {dup[:5]}; each feature must appear once.")
    survival = _survival_frame(path, df["case_id"], pd.to_numeric(df["survival_months"], errors="coerce"),
                               1.0 - pd.to_numeric(df["censorship"], errors="coerce"))
    patients = df["case_id"].map(patient_of)
    slides: dict[str, list[str]] = {}
    if "slide_id" in df.columns:
        for pid, sid in zip(patients, df["slide_id"]):
            if pd.notna(sid):
                slides.setdefault(pid, []).append(str(sid))
    arr = report_nonfinite(to_float(df[feats], path), path, "omics")
    frame = pd.DataFrame(arr, index=pd.Index(patients, name=PATIENT_ID), columns=feats)
    n_rows = len(frame)
    repeated = frame[frame.index.duplicated(keep=False)].groupby(level=0, sort=False)
    if len(repeated):
        spread = (repeated.max() - repeated.min()).abs().fillna(0.0).max(axis=1) > 0
        counts = repeated.count()
        partial = (counts.gt(0) & counts.lt(repeated.size(), axis=0)).any(axis=1)  # NaN on some rows only
        differ = spread | partial
        if differ.any():
            log.warning("%s: %d patient(s) have different omics values on their slide rows; the values are averaged "
                        "(e.g. %s)", path, int(differ.sum()), differ[differ].index[0])
    frame = frame.groupby(level=0, sort=False).mean()
    log.info("%s: %d row(s) (slides) -> %d patient(s), %d feature(s) (%s)", path, n_rows, len(frame), len(feats),
             ", ".join(f"{t}={sum(c.endswith('_' + t) for c in feats)}" for t in DATA_TYPES))
    return McatTable(survival=survival, features=frame, slides=slides)
