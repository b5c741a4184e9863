"""Listing a cohort's slides from a slide sheet or a glob, with patient ids."""

from __future__ import annotations

import glob as globmod
from pathlib import Path

import pandas as pd

from mustsurv.barcodes import patient_of
from mustsurv.study.vocabulary import PATIENT_ID

SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide")


def read_sheet(sheet: str | Path) -> pd.DataFrame:
    """Read a slide sheet (TSV or CSV) with columns ``slide_id``, ``patient_id``, ``path`` [, ``mpp``].

    Relative paths are resolved against the sheet's folder. ``patient_id`` may be omitted; it then
    defaults to the first 12 characters of ``slide_id``.

    Args:
        sheet: the sheet file; ``.csv`` is read comma-separated, anything else tab-separated.

    Returns:
        One row per slide, ``path`` made absolute where it was relative.

    Raises:
        ValueError: a required column is missing or a ``slide_id`` is duplicated.
    """
    sheet = Path(sheet)
    sep = "," if sheet.suffix.lower() == ".csv" else "\t"
    df = pd.read_csv(sheet, sep=sep, dtype={"slide_id": str, PATIENT_ID: str, "path": str})
    missing = {"slide_id", "path"} - set(df.columns)
    if missing:
        raise ValueError(
            f"slide sheet {sheet}: missing column(s) {sorted(missing)}; it needs slide_id, path "
            f"(and optionally patient_id, mpp)."
        )
    if PATIENT_ID not in df.columns:
        df[PATIENT_ID] = df["slide_id"].map(patient_of)
    dup = df["slide_id"][df["slide_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"slide sheet {sheet}: duplicated slide_id {dup[:5]}; each slide must appear once.")
    df["path"] = [p if Path(p).is_absolute() else str(sheet.parent / p) for p in df["path"]]
    return df


def list_slides(sheet: str | Path | None = None, glob: str | None = None) -> dict[str, str]:
    """List a cohort's slides from a sheet or a glob.

    Args:
        sheet: a slide sheet (see :func:`read_sheet`); wins over ``glob``.
        glob: a file pattern; files with a slide suffix are kept, the slide id is the file name without suffix.

    Returns:
        ``{slide_id: path}``; empty when neither is given.
    """
    if sheet is not None:
        df = read_sheet(sheet)
        return dict(zip(df["slide_id"], df["path"]))
    if glob is not None:
        out = {}
        for path in sorted(globmod.glob(glob)):
            p = Path(path)
            if p.suffix.lower() in SLIDE_SUFFIXES:
                out[p.stem] = str(p)
        return out
    return {}
