"""Per-cohort slide summary (which slides a patient's bag has) and precomputed TRIDENT/CLAM features.

This module owns ``results/cohorts/{cohort}/slides/summary.tsv``: its columns (:data:`SUMMARY_COLUMNS`),
the slide status values (:data:`STATUS_OK`, :data:`STATUS_EMPTY`, :data:`STATUS_FAILED`, also written in
the GeoJSON, coords and features files), :func:`write_summary` and :func:`read_summary`. Columns (one row
per slide, sorted by slide id)::

    slide_id       str    slide id (file name without its suffix)
    patient_id     str    patient id (from the cohort's slide list and `patient_ids` rule)
    status         str    ok, empty_mask (no tissue, no patches) or failed (unreadable; the error is in
                          its features file)
    n_patches      int    rows of the features file
    level0_mpp     float  µm/px at level 0 (empty when unknown)
    magnification  float  scan magnification (empty when unknown)
    features       str    path of the slide's features ``.h5`` (N, D)

A slide is *usable* (column ``usable`` added by :func:`read_summary`) when its status is ``ok`` and it has
patches; the cohort assembly leaves the others out of their patient's bag.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from mustsurv.barcodes import patient_ids
from mustsurv.io import atomic_path
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_EMPTY = "empty_mask"  # no tissue contour: a valid outcome with no patches, not an error
STATUS_FAILED = "failed"  # the slide could not be read; its files carry the error
STATUSES: tuple[str, ...] = (STATUS_OK, STATUS_EMPTY, STATUS_FAILED)

SUMMARY_COLUMNS: tuple[str, ...] = ("slide_id", PATIENT_ID, "status", "n_patches", "level0_mpp", "magnification",
                                    "features")
"""Columns of ``summary.tsv``, in file order."""

_REQUIRED_COLUMNS = ("slide_id", PATIENT_ID, "status", "n_patches", "features")  # what the cohort assembly reads


class SummaryInputError(ValueError):
    """A ``summary.tsv`` cannot be used; the message names the file and the fix."""


class FeatureFileError(ValueError):
    """A features ``.h5`` cannot be used; the message names the file and the fix."""


def _attr(attrs_list: list[Any], *keys: str) -> float:
    """The first of ``keys`` found as a number in ``attrs_list`` (NaN when none is)."""
    for attrs in attrs_list:
        for key in keys:
            if key in attrs:
                try:
                    return float(attrs[key])
                except (TypeError, ValueError):
                    continue
    return float("nan")


def feature_file_info(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a features ``.h5`` (ours, TRIDENT's or CLAM's).

    Needs a 2-D ``features`` dataset (N, D) and, when present, ``coords`` (N, 2); attributes are looked up
    on the file and on ``coords``.

    Args:
        path: the features file.

    Returns:
        ``status``, ``n_patches``, ``dim``, ``level0_mpp`` and ``magnification`` (NaN when unknown).

    Raises:
        FeatureFileError: the file is unreadable or its datasets do not have these shapes; the message names
            the file and the fix.
    """
    fix = "re-export it (TRIDENT/CLAM layout: `features` (N, D), `coords` (N, 2)) or remove it from the folder"
    try:
        with h5py.File(path, "r") as h5:
            if "features" not in h5:
                raise FeatureFileError(f"{path}: no `features` dataset (has {sorted(h5.keys())}); {fix}.")
            shape = h5["features"].shape
            if len(shape) != 2:
                raise FeatureFileError(f"{path}: `features` has shape {shape}, expected (N, D); {fix}.")
            sources = [dict(h5.attrs)]
            if "coords" in h5:
                cshape = h5["coords"].shape
                if len(cshape) != 2 or cshape != (shape[0], 2):
                    raise FeatureFileError(
                        f"{path}: `coords` has shape {cshape}, expected ({shape[0]}, 2) to match `features`; {fix}."
                    )
                sources.append(dict(h5["coords"].attrs))
    except OSError as err:
        raise FeatureFileError(f"{path}: unreadable HDF5 file ({err}); {fix}.") from err
    status = next((str(s["status"]) for s in sources if "status" in s), STATUS_OK if shape[0] else STATUS_EMPTY)
    return {
        "status": status,
        "n_patches": int(shape[0]),
        "dim": int(shape[1]),
        "level0_mpp": _attr(sources, "level0_mpp"),
        "magnification": _attr(sources, "magnification", "level0_magnification"),
    }


def feature_file_error(path: str | os.PathLike) -> str:
    """The error of a failed slide's features file.

    Args:
        path: the features file.

    Returns:
        Its ``error`` attribute ('' when there is none or the file is unreadable).
    """
    try:
        with h5py.File(path, "r") as h5:
            return str(h5.attrs.get("error", ""))
    except OSError:
        return ""


def build_summary(features: dict[str, str], patients: dict[str, str] | None = None) -> pd.DataFrame:
    """Build the summary table of a cohort's slides.

    Args:
        features: ``{slide_id: features h5}``.
        patients: ``{slide_id: patient id}`` (the cohort's slide list); slides not in it get their ids under
            the ``auto`` rule (:func:`mustsurv.barcodes.patient_ids`).

    Returns:
        One row per slide, sorted by slide id, columns :data:`SUMMARY_COLUMNS`.

    Raises:
        FeatureFileError: a features file is unusable or has an unknown status, or slides' features differ in
            dimension; the message says to delete it.
    """
    patients = dict(patients or {})
    rest = [s for s in features if s not in patients]
    patients.update(zip(rest, patient_ids(rest, "auto", "slide summary")))
    rows = []
    dims: dict[int, list[str]] = {}
    for slide_id, path in sorted(features.items()):
        info = feature_file_info(path)
        if info["status"] not in STATUSES:
            raise FeatureFileError(f"{path}: unknown status {info['status']!r}; delete it so it is recomputed.")
        rows.append({
            "slide_id": slide_id,
            PATIENT_ID: patients[slide_id],
            "status": info["status"],
            "n_patches": info["n_patches"],
            "level0_mpp": info["level0_mpp"],
            "magnification": info["magnification"],
            "features": str(path),
        })
        if info["n_patches"]:
            dims.setdefault(info["dim"], []).append(str(path))
    if len(dims) > 1:
        common = max(dims, key=lambda d: len(dims[d]))
        odd = [p for d, paths in dims.items() if d != common for p in paths]
        raise FeatureFileError(f"features of {len(odd)} slide(s) are not {common}-d like the cohort's others (e.g. "
                               f"{odd[0]}: {feature_file_info(odd[0])['dim']}-d); every slide of a cohort needs the same "
                               f"encoder: delete or re-export these files.")
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def write_summary(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Write the summary as TSV atomically (NaN as empty cells).

    Args:
        path: the ``summary.tsv`` to write.
        df: the summary (:func:`build_summary`).
    """
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="", float_format="%.6g")


def read_summary(path: str | os.PathLike, report: bool = True) -> pd.DataFrame:
    """Read a summary written by :func:`write_summary` and mark usable slides.

    Args:
        path: the ``summary.tsv``.
        report: log the number of unusable slides by status.

    Returns:
        The file's columns (:data:`SUMMARY_COLUMNS`; ``n_patches`` as int64, an empty cell read as 0) plus
        ``usable`` (bool: status ``ok`` and n_patches > 0).

    Raises:
        SummaryInputError: a column the cohort assembly needs is missing or a slide appears twice; the
            message names the file and the rule that rebuilds it.
    """
    path = Path(path)
    df = pd.read_csv(path, sep="\t", dtype={"slide_id": str, PATIENT_ID: str, "status": str, "features": str})
    missing = [c for c in _REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise SummaryInputError(f"{path}: slide summary lacks column(s) {missing}; expected {list(SUMMARY_COLUMNS)} "
                                f"(written by the slides_summary rule).")
    if df["slide_id"].duplicated().any():
        raise SummaryInputError(f"{path}: duplicated slide_id {df.loc[df['slide_id'].duplicated(), 'slide_id'].iloc[0]!r}"
                                f"; rebuild it with the slides_summary rule.")
    df["n_patches"] = pd.to_numeric(df["n_patches"], errors="coerce").fillna(0).astype(np.int64)
    df["usable"] = (df["status"] == STATUS_OK) & (df["n_patches"] > 0)
    unusable = df.loc[~df["usable"]]
    if len(unusable) and report:
        log.warning("%s: %d of %d slide(s) are not usable (status/zero patches: %s)", path, len(unusable), len(df),
                    ", ".join(f"{k}={v}" for k, v in unusable["status"].fillna("?").value_counts().items()))
    return df
