"""The cohort table ``results/cohorts/{cohort}/cohort.tsv``: who is in the study and what they have.

Columns (one row per patient, sorted by patient id)::

    patient_id     str    patient id (under the cohort's ``patient_ids`` rule, :mod:`mustsurv.barcodes`)
    time           float  time to the cohort's endpoint (OS, DSS, PFI or DFI) or censoring, in months
    event          int    1 = event observed, 0 = censored
    has_pathology  int    1 when the patient has at least one usable slide (status ok and n_patches > 0)
    has_genomics   int    1 when the patient is a row of tokens.h5
    slides         str    usable slide ids joined by ',' (empty when has_pathology = 0)

A patient enters the table when it has survival and at least one modality. Patients without survival
(missing time or event) and patients with survival but no modality are dropped; both are counted in the
log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mustsurv.io import atomic_path
from mustsurv.omics.survival import read_clinical, read_mcat_csv
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)

HAS_PATHOLOGY = "has_pathology"
HAS_GENOMICS = "has_genomics"
COLUMNS = (PATIENT_ID, "time", "event", HAS_PATHOLOGY, HAS_GENOMICS, "slides")
"""Columns of ``cohort.tsv``, in file order."""


class CohortInputError(ValueError):
    """A cohort-assembly input cannot be used; the message names the file and the fix."""


def read_survival(clinical: str | Path | None = None, mcat_csv: str | Path | None = None, rule: str = "auto",
                  endpoint: str = "OS") -> pd.DataFrame:
    """Read per-patient survival from the clinical table, else from the MCAT all_clean CSV.

    Args:
        clinical: a clinical table (TCGA-CDR, cBioPortal or MCAT style).
        mcat_csv: an MCAT all_clean CSV, used when ``clinical`` is None.
        rule: the cohort's ``patient_ids`` rule.
        endpoint: ``OS``, ``DSS``, ``PFI`` or ``DFI`` (an MCAT CSV carries ``OS`` only).

    Returns:
        Columns patient_id, time (months), event; NaN = unknown.

    Raises:
        CohortInputError: neither source is given, or an endpoint other than OS is asked of an MCAT CSV.
    """
    if clinical is not None:
        return read_clinical(clinical, rule, endpoint)
    if mcat_csv is not None:
        if endpoint != "OS":
            raise CohortInputError(f"{mcat_csv}: an MCAT all_clean CSV carries overall survival only; endpoint "
                                   f"{endpoint} needs a `clinical` table (TCGA-CDR or cBioPortal).")
        return read_mcat_csv(mcat_csv, rule).survival
    raise CohortInputError("no survival source: configure `clinical` or `mcat_csv` for the cohort.")


def build_cohort_table(survival: pd.DataFrame, genomics_patients: list[str] | set[str] | None = None,
                       summary: pd.DataFrame | None = None, source: str = "survival") -> pd.DataFrame:
    """Assemble the cohort table (columns :data:`COLUMNS`) from survival, tokens' patients and the slide summary.

    Args:
        survival: columns patient_id, time (months), event (NaN allowed = unknown).
        genomics_patients: the rows of tokens.h5; None = the cohort has no genomics.
        summary: :func:`mustsurv.slides.summary.read_summary`'s frame; None = the cohort has no slides.
        source: name of the survival source, used in error messages.

    Returns:
        One row per patient with survival and at least one modality, sorted by patient id.

    Raises:
        CohortInputError: no patient has both survival and a modality.
    """
    known = survival.dropna(subset=["time", "event"])
    n_nosurv = len(survival) - len(known)
    if n_nosurv:
        log.warning("%s: %d patient(s) without survival time or event dropped (e.g. %s)", source, n_nosurv,
                    survival.loc[survival[["time", "event"]].isna().any(axis=1), PATIENT_ID].iloc[0])
    omics = set(genomics_patients or ())
    slides: dict[str, list[str]] = {}
    if summary is not None:
        for pid, sid in zip(summary.loc[summary["usable"], PATIENT_ID], summary.loc[summary["usable"], "slide_id"]):
            slides.setdefault(str(pid), []).append(str(sid))
    with_modality = omics | set(slides)
    surv_ids = set(known[PATIENT_ID])
    lost = sorted(with_modality - set(survival[PATIENT_ID]))
    if lost:
        log.warning("%s: %d patient(s) with omics or slides but no survival row dropped (e.g. %s)", source, len(lost),
                    lost[0])
    table = known[known[PATIENT_ID].isin(with_modality)].copy()
    n_nomod = len(surv_ids - with_modality)
    if n_nomod:
        log.warning("%s: %d patient(s) with survival but neither usable slides nor omics dropped (e.g. %s)", source,
                    n_nomod, sorted(surv_ids - with_modality)[0])
    if table.empty:
        raise CohortInputError(f"{source}: no patient has both survival and a modality; check that patient ids agree "
                               f"between the survival table, the omics tables and the slides (the cohort's `patient_ids` rule).")
    table["event"] = table["event"].astype(int)
    table[HAS_PATHOLOGY] = table[PATIENT_ID].map(lambda p: int(p in slides))
    table[HAS_GENOMICS] = table[PATIENT_ID].map(lambda p: int(p in omics))
    table["slides"] = table[PATIENT_ID].map(lambda p: ",".join(sorted(slides.get(p, []))))
    table = table.sort_values(PATIENT_ID).reset_index(drop=True)[list(COLUMNS)]
    log.info("%s: %d patient(s) (%d events); pathology %d, genomics %d, both %d", source, len(table),
             int(table["event"].sum()), int(table[HAS_PATHOLOGY].sum()), int(table[HAS_GENOMICS].sum()),
             int((table[HAS_PATHOLOGY] & table[HAS_GENOMICS]).sum()))
    return table


def write_cohort_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write the cohort table as TSV atomically (time with 4 decimals).

    Args:
        table: the cohort table.
        path: output ``cohort.tsv``.
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4f", lineterminator="\n")


def read_cohort_table(path: str | Path) -> pd.DataFrame:
    """Read ``cohort.tsv`` (``slides`` as str, empty string when none).

    Args:
        path: the cohort table.

    Returns:
        The table.

    Raises:
        CohortInputError: columns are missing, a time is missing or an event is not 0/1; rebuild it with
            the cohort_table rule.
    """
    path = Path(path)
    df = pd.read_csv(path, sep="\t", dtype={PATIENT_ID: str, "slides": str}, keep_default_na=False,
                     na_values={"time": [""], "event": [""]})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CohortInputError(f"{path}: cohort table lacks column(s) {missing}; rebuild it with the cohort_table rule.")
    if df["time"].isna().any() or not np.isin(df["event"], [0, 1]).all():
        raise CohortInputError(f"{path}: missing time or non-0/1 event; rebuild it with the cohort_table rule.")
    return df
