"""Readers of per-patient survival: clinical tables and the MCAT/PORPOISE "all_clean" CSV.

Every reader returns per-*patient* rows (patient ids under the cohort's ``patient_ids`` rule,
:func:`mustsurv.barcodes.patient_ids`; rows of one patient must agree, and distinct ids that collide under
a rule other than ``tcga`` are an error) and reports what it changed or dropped through the ``mustsurv.omics`` logger;
bad input raises :class:`~mustsurv.omics.tables.OmicsInputError` with a message naming the file and the fix.

Formats:

- Clinical (:func:`read_clinical`), for the cohort's ``endpoint`` E (OS, DSS, PFI, DFI): TCGA-CDR (``E``
  0/1, ``E.time`` in days, converted to months with :data:`DAYS_PER_MONTH`), cBioPortal (``E_MONTHS``,
  ``E_STATUS`` ``1:...``/``0:...``; PFI is spelled ``PFS``, DFI ``DFS``, :data:`CBIOPORTAL_PREFIX`) or
  MCAT (``survival_months``, ``censorship`` where 1 = censored; overall survival only).
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

from mustsurv.barcodes import check_collisions, patient_ids, resolve_rule
from mustsurv.omics.tables import (
    DATA_TYPES,
    OmicsInputError,
    read_table,
    report_nonfinite,
    to_float,
)
from mustsurv.study.vocabulary import ENDPOINTS, PATIENT_ID

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 365.25 / 12
"""Days per month used to convert TCGA-CDR ``OS.time`` (days) to months."""

CBIOPORTAL_PREFIX = {"OS": "OS", "DSS": "DSS", "PFI": "PFS", "DFI": "DFS"}
"""cBioPortal's column prefix of each endpoint (``<prefix>_MONTHS``, ``<prefix>_STATUS``)."""


def _parse_status(values: pd.Series) -> pd.Series:
    """cBioPortal ``OS_STATUS`` (``1:DECEASED``, ``0:LIVING``, ``DECEASED``, ``Dead`` ...) -> 1/0/NaN."""
    s = values.astype("string").str.strip().str.upper()
    out = pd.Series(np.nan, index=values.index)
    out[s.str.startswith("1") | s.str.contains("DECEASED|DEAD|PROGRESS|RECURRED", regex=True)] = 1.0
    out[s.str.startswith("0") | s.str.contains("LIVING|ALIVE|CENSORED|DISEASE ?FREE", regex=True)] = 0.0
    return out


def _patients(path: Path, ids: pd.Series, rule: str) -> pd.Series:
    """Patient ids of a table's id column under ``rule`` (NaN kept); distinct ids colliding outside the TCGA rule fail."""
    known = ids.dropna().astype(str)
    try:
        mapped = patient_ids(known, rule, str(path))
        check_collisions(known, mapped, resolve_rule(known, rule), str(path))
    except ValueError as err:
        raise OmicsInputError(str(err)) from err
    return pd.Series(mapped, index=known.index, dtype=object).reindex(ids.index)


def _survival_frame(path: Path, patient: pd.Series, time: pd.Series, event: pd.Series, rule: str) -> pd.DataFrame:
    """Validate and de-duplicate a per-patient survival table (NaN kept for missing time/event); OmicsInputError names the problem.
    """
    df = pd.DataFrame({PATIENT_ID: _patients(path, patient, rule), "time": time, "event": event}
                      ).dropna(subset=[PATIENT_ID])
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


def read_clinical(path: str | Path, rule: str = "auto", endpoint: str = "OS") -> pd.DataFrame:
    """Read the per-patient survival of a clinical table for one endpoint.

    The style is detected from the columns: TCGA-CDR (``E``, ``E.time`` days), cBioPortal
    (``E_MONTHS``, ``E_STATUS``, E spelled as in :data:`CBIOPORTAL_PREFIX`) or MCAT (``survival_months``,
    ``censorship``; 1 = censored; OS only). Patients with a missing time or event are kept with NaN; the
    cohort table drops and counts them.

    Args:
        path: the clinical table.
        rule: the cohort's ``patient_ids`` rule, applied to the patient id column.
        endpoint: ``OS``, ``DSS``, ``PFI`` or ``DFI``.

    Returns:
        Columns ``patient_id`` (str), ``time`` (months, float) and ``event`` (1 = event; float, NaN =
        unknown), one row per patient.

    Raises:
        OmicsInputError: no patient id column, no columns of the endpoint, negative times, events other
            than 0/1, conflicting rows of one patient, or ids that collide under ``rule``.
    """
    path = Path(path)
    if endpoint not in ENDPOINTS:
        raise OmicsInputError(f"{path}: unknown endpoint {endpoint!r}; the cohort's `endpoint` is one of {ENDPOINTS}.")
    df = read_table(path)
    cols = set(df.columns)
    pid_col = next((c for c in ("bcr_patient_barcode", "PATIENT_ID", "case_id", "patient_id", "patient",
                                "case_submitter_id") if c in cols), None)
    if pid_col is None:
        raise OmicsInputError(f"{path}: no patient id column (bcr_patient_barcode, PATIENT_ID, case_id or patient_id).")
    cbio = CBIOPORTAL_PREFIX[endpoint]
    if {endpoint, f"{endpoint}.time"} <= cols:
        time = pd.to_numeric(df[f"{endpoint}.time"], errors="coerce") / DAYS_PER_MONTH
        event = pd.to_numeric(df[endpoint], errors="coerce")
        style = f"TCGA-CDR ({endpoint}.time in days)"
    elif {f"{cbio}_MONTHS", f"{cbio}_STATUS"} <= cols:
        time = pd.to_numeric(df[f"{cbio}_MONTHS"], errors="coerce")
        event = _parse_status(df[f"{cbio}_STATUS"])
        style = f"cBioPortal ({cbio}_MONTHS, {cbio}_STATUS)"
    elif endpoint == "OS" and {"survival_months", "censorship"} <= cols:
        time = pd.to_numeric(df["survival_months"], errors="coerce")
        event = 1.0 - pd.to_numeric(df["censorship"], errors="coerce")
        style = "MCAT (survival_months, censorship)"
    else:
        present = [e for e in ENDPOINTS if {e, f"{e}.time"} <= cols
                   or {f"{CBIOPORTAL_PREFIX[e]}_MONTHS", f"{CBIOPORTAL_PREFIX[e]}_STATUS"} <= cols]
        if {"survival_months", "censorship"} <= cols and "OS" not in present:
            present.append("OS")
        raise OmicsInputError(
            f"{path}: no {endpoint} columns; expected TCGA-CDR `{endpoint}` + `{endpoint}.time` (days) or cBioPortal "
            f"`{cbio}_MONTHS` + `{cbio}_STATUS`" + (", or MCAT `survival_months` + `censorship`" if endpoint == "OS"
                                                     else "") +
            (f". The table has {present}; set the cohort's `endpoint` to one of them." if present else "."))
    out = _survival_frame(path, df[pid_col], time, event, rule)
    log.info("%s: %s %s survival of %d patient(s)", path, style, endpoint, len(out))
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


def read_mcat_csv(path: str | Path, rule: str = "auto") -> McatTable:
    """Read an MCAT/PORPOISE "all_clean" CSV (plain, zip or gzip — detected by content).

    Rows of the same patient (one per slide) must agree on survival; their omics values are averaged
    when they differ (counted in the log). Non-finite feature values become NaN (counted).

    Args:
        path: the CSV.
        rule: the cohort's ``patient_ids`` rule, applied to ``case_id``.

    Returns:
        The table's survival, features and slides.

    Raises:
        OmicsInputError: required columns are missing, there are no feature columns, a feature column is
            duplicated, the survival rows are invalid, or ``case_id`` values collide under ``rule``.
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
                               1.0 - pd.to_numeric(df["censorship"], errors="coerce"), rule)
    patients = _patients(path, df["case_id"], rule)
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
