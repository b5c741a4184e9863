"""Reading the delimited text tables of the genomic half and of survival (shared by every omics reader).

:func:`read_table` opens a TSV/CSV as its users download it: plain or zip/gzip/bz2-compressed (detected from
the content, not the name), ``#`` header lines skipped, tab or comma detected from the header, the usual
missing markers (``NA``, ``[Not Available]`` ...) read as NaN. Bad input raises :class:`OmicsInputError`
with a message naming the file and the fix; :func:`to_float` and :func:`report_nonfinite` turn value
columns into float arrays and count what they change in the ``mustsurv.omics`` log.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import logging
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DATA_TYPES: tuple[str, ...] = ("rnaseq", "cnv", "mut")
"""Data types of the omics features; a feature is named ``{GENE}_{type}``."""

_MISSING_STRINGS = ["", "NA", "NaN", "nan", "null", "NULL", "[Not Available]", "[Not Applicable]",
                    "[Unknown]", "[Discrepancy]", "[Not Evaluated]", "#N/A"]


class OmicsInputError(ValueError):
    """An input table cannot be used; the message names the file and the fix."""


def _open_text(path: Path) -> io.TextIOBase:
    """Open ``path`` as text, detecting zip/gzip/bz2 compression from the first bytes, not the name."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(b"PK\x03\x04"):
        zf = zipfile.ZipFile(path)
        members = [m for m in zf.namelist() if not m.endswith("/") and not m.startswith("__MACOSX")]
        if len(members) != 1:
            raise OmicsInputError(f"{path}: a zip archive must hold exactly one table, found {members[:5]}; unzip it and "
                                  f"point the config at the table.")
        return io.TextIOWrapper(zf.open(members[0]), encoding="utf-8")
    if magic.startswith(b"\x1f\x8b"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    if magic.startswith(b"BZh"):
        return io.TextIOWrapper(bz2.open(path), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def read_table(path: str | Path, numeric: Callable[[str], bool] | None = None) -> pd.DataFrame:
    """Read a delimited text table (``NaN`` for the usual missing markers).

    Cells are kept as strings, except in the columns after the first (an id column) whose header
    ``numeric(name)`` accepts: pandas parses those directly (a column with a non-number cell stays
    text, and :func:`to_float` then names the cell). Lines starting with ``#`` (cBioPortal / MAF
    headers) are skipped; the separator is a tab if the header line has one, else a comma. Duplicated
    header names are kept as they are (not renamed), so callers can detect them.

    Args:
        path: the table (plain, zip, gzip or bz2).
        numeric: predicate on a column name: parse that column as numbers; None parses none.

    Returns:
        The table.

    Raises:
        OmicsInputError: the file is missing, not UTF-8 text, empty, has no rows, or is a zip with more than
            one member.
    """
    path = Path(path)
    if not path.is_file():
        raise OmicsInputError(f"{path}: file not found; fix the path in the config.")
    try:
        with _open_text(path) as fh:
            lines = fh.read().splitlines()
    except UnicodeDecodeError as err:
        raise OmicsInputError(f"{path}: not a UTF-8 text table ({err}); export it as TSV or CSV.") from err
    body = [ln for ln in lines if not ln.startswith("#")]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise OmicsInputError(f"{path}: the table is empty (only '#' comment lines or nothing).")
    sep = "\t" if "\t" in body[0] else ","
    header = next(csv.reader([body[0]], delimiter=sep))
    if len(body) < 2:
        raise OmicsInputError(f"{path}: the table has a header but no rows.")
    df = pd.read_csv(
        io.StringIO("\n".join(body[1:])),
        sep=sep,
        header=None,
        names=list(range(len(header))),
        dtype={i: str for i, name in enumerate(header) if numeric is None or i == 0 or not numeric(name)},
        keep_default_na=False,
        na_values=_MISSING_STRINGS,
        index_col=False,
    )
    df.columns = header
    return df


def to_float(values: pd.DataFrame, path: Path) -> np.ndarray:
    """Convert string cells (rows x columns) to float64.

    Args:
        values: the cells.
        path: the source file, for messages.

    Returns:
        The float64 array.

    Raises:
        OmicsInputError: a non-numeric cell; the message names its column and value.
    """
    try:
        return values.to_numpy(dtype=np.float64)  # fast path: every cell parses
    except (ValueError, TypeError):
        pass
    names = list(values.columns)
    values = values.set_axis(range(len(names)), axis=1)
    out = values.apply(pd.to_numeric, errors="coerce")
    bad = (out.isna() & values.notna()).to_numpy()
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise OmicsInputError(
            f"{path}: non-numeric value {values.iat[row, col]!r} in column {names[col]!r}; every value column must "
            f"hold numbers (or be empty/NA for missing)."
        )
    return out.to_numpy(dtype=np.float64)


def report_nonfinite(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Replace +-Inf by NaN and log the number of NaN/Inf cells.

    Args:
        arr: the values.
        path: the source file, for the log.
        what: name of the data, for the log.

    Returns:
        The array with Inf replaced.
    """
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        log.warning("%s: %d infinite %s value(s) set to NaN (not measured)", path, n_inf, what)
        arr = np.where(np.isinf(arr), np.nan, arr)
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        log.warning("%s: %d of %d %s value(s) are NaN (not measured); they are imputed fold-wise from the training "
                    "patients", path, n_nan, arr.size, what)
    return arr
