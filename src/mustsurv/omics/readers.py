"""Readers of the real input formats of the genomic half and of survival, as TCGA users have them.

Every reader returns per-*patient* tables (patient id = first 12 characters of a TCGA barcode) and
reports what it changed or dropped through the ``mustsurv.omics`` logger; bad input raises
:class:`OmicsInputError` with a message naming the file and the fix.

Formats:

- Gene x sample matrices (:func:`read_rna`, :func:`read_cnv`): cBioPortal ``data_mrna_seq_v2_rsem.txt`` /
  ``data_cna.txt`` (``Hugo_Symbol``, ``Entrez_Gene_Id``, one column per sample barcode), GISTIC
  ``all_thresholded.by_genes.txt`` (``Gene Symbol``, ``Locus ID``, ``Cytoband``) and UCSC Xena
  (first column = gene symbol, e.g. ``sample``; legacy ``SYMBOL|ENTREZ`` ids are split at ``|``).
  ``#`` lines are skipped, the separator (tab or comma) is detected from the header.
- MAF (:func:`read_maf`): one or several files; non-silent classifications (:data:`NON_SILENT`) become a
  binary patient x gene matrix over every patient that appears in the MAF(s).
- Clinical (:func:`read_clinical`): TCGA-CDR (``OS`` 0/1, ``OS.time`` in days, converted to months with
  :data:`DAYS_PER_MONTH`), cBioPortal (``OS_MONTHS``, ``OS_STATUS`` ``1:DECEASED``/``0:LIVING``) or
  MCAT (``survival_months``, ``censorship`` where 1 = censored).
- MCAT/PORPOISE "all_clean" CSV (:func:`read_mcat_csv`): one row per slide, survival in MCAT style and
  feature columns suffixed ``_rnaseq``/``_cnv``/``_mut``. Compression is detected from the content
  (some ``.csv.zip`` files are plain CSV).

Sample -> patient: samples whose TCGA sample-type code (characters 14-15) is 10-29 (normal tissue,
controls) are dropped; of several tumour samples of one patient the lowest type code wins (01 primary
before 06 metastasis) and remaining ties (e.g. ``-01A``/``-01B``) are averaged. Duplicated genes are
averaged, ``Inf`` becomes ``NaN`` (= not measured), and each of these is counted in the log.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal

import numpy as np
import pandas as pd

from mustsurv.cohort.slides import patient_of

log = logging.getLogger(__name__)

DATA_TYPES: tuple[str, ...] = ("rnaseq", "cnv", "mut")
"""Data types of the omics features; a feature is named ``{GENE}_{type}``."""

NON_SILENT: frozenset[str] = frozenset(
    {
        "Missense_Mutation",
        "Nonsense_Mutation",
        "Nonstop_Mutation",
        "Frame_Shift_Del",
        "Frame_Shift_Ins",
        "In_Frame_Del",
        "In_Frame_Ins",
        "Splice_Site",
        "Translation_Start_Site",
    }
)
"""MAF ``Variant_Classification`` values counted as a mutation (the usual non-synonymous set)."""

DAYS_PER_MONTH = 365.25 / 12
"""Days per month used to convert TCGA-CDR ``OS.time`` (days) to months."""

RnaTransform = Literal["auto", "log2p1", "none"]

# Columns of gene x sample matrices that name the gene (first match wins) or annotate it (dropped).
_GENE_COLUMNS = ("Hugo_Symbol", "Gene Symbol", "gene_symbol", "GeneSymbol", "Gene", "gene", "gene_id", "sample")
_ANNOTATION_COLUMNS = frozenset({"Entrez_Gene_Id", "Locus ID", "Cytoband", "Gene ID", "Entrez_Id", "Description"})
_MISSING_STRINGS = ["", "NA", "NaN", "nan", "null", "NULL", "[Not Available]", "[Not Applicable]",
                    "[Unknown]", "[Discrepancy]", "[Not Evaluated]", "#N/A"]


class OmicsInputError(ValueError):
    """An input table cannot be used; the message names the file and the fix."""


# --------------------------------------------------------------------------------------------------
# Generic table reading


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
    text, and :func:`_to_float` then names the cell). Lines starting with ``#`` (cBioPortal / MAF
    headers) are skipped; the separator is a tab if the header line has one, else a comma. Duplicated
    header names are kept as they are (not renamed), so callers can detect them.
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


def _to_float(values: pd.DataFrame, path: Path) -> np.ndarray:
    """Convert string cells (rows x columns) to float64; a non-numeric cell raises naming its column and value."""
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


def _report_nonfinite(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    """Replace +-Inf by NaN and log the number of NaN/Inf cells."""
    n_inf = int(np.isinf(arr).sum())
    if n_inf:
        log.warning("%s: %d infinite %s value(s) set to NaN (not measured)", path, n_inf, what)
        arr = np.where(np.isinf(arr), np.nan, arr)
    n_nan = int(np.isnan(arr).sum())
    if n_nan:
        log.warning("%s: %d of %d %s value(s) are NaN (not measured); they are imputed fold-wise from the training "
                    "patients", path, n_nan, arr.size, what)
    return arr


# --------------------------------------------------------------------------------------------------
# Sample barcodes -> patients


def sample_type(sample_id: str) -> int | None:
    """TCGA sample-type code (``01`` primary tumour, ``06`` metastasis, ``11`` normal ...) or None."""
    code = sample_id[13:15]
    return int(code) if len(sample_id) >= 15 and sample_id[12] == "-" and code.isdigit() else None


def collapse_samples(matrix: pd.DataFrame, path: Path, what: str) -> pd.DataFrame:
    """Sample x feature -> patient x feature: drop normal/control samples, keep the lowest tumour type, average ties.

    ``matrix`` has one row per sample id (index). Returns a float frame indexed by patient id.
    """
    samples = pd.Series(matrix.index, index=matrix.index)
    types = samples.map(sample_type)
    normal = types.notna() & (types >= 10) & (types < 30)
    if normal.any():
        log.info("%s: %d normal/control sample(s) dropped (TCGA sample type 10-29), e.g. %s", path, int(normal.sum()),
                 samples[normal].iloc[0])
    matrix = matrix.loc[~normal.to_numpy()]
    types = types[~normal.to_numpy()]
    patients = [patient_of(s) for s in matrix.index]
    rank = types.fillna(0).to_numpy()
    frame = matrix.copy()
    frame.index = pd.Index(patients, name="patient")
    order = pd.DataFrame({"patient": patients, "rank": rank})
    best = order.groupby("patient")["rank"].transform("min").to_numpy()
    keep = rank == best
    n_lost = int((~keep).sum())
    if n_lost:
        log.info("%s: %d later tumour sample(s) of patients with a primary sample dropped (%s)", path, n_lost, what)
    frame = frame.loc[keep]
    dup = frame.index.duplicated(keep=False)
    if dup.any():
        n_pat = len(set(frame.index[dup]))
        log.warning("%s: %d patient(s) have several samples of the same type (%s); their %s values are averaged, "
                    "e.g. %s", path, n_pat, ", ".join(sorted(set(matrix.index[keep][dup]))[:3]), what,
                    frame.index[dup][0])
        frame = frame.groupby(level=0, sort=False).mean()
    return frame


# --------------------------------------------------------------------------------------------------
# Gene x sample matrices


def read_gene_matrix(path: str | Path, what: str) -> pd.DataFrame:
    """Read a gene x sample matrix (cBioPortal, GISTIC or Xena) into a patient x gene float frame.

    ``what`` names the data in messages (``"RNA"``, ``"CNV"``). Rows without a gene symbol are dropped,
    duplicated gene symbols are averaged, duplicated sample columns are averaged; all counted in the log.
    Returns float64 values with NaN for missing cells, index = patient id, columns = gene symbols.
    """
    path = Path(path)
    df = read_table(path, numeric=lambda c: c not in _GENE_COLUMNS and c not in _ANNOTATION_COLUMNS)
    header = list(df.columns)
    gene_col = next((c for c in _GENE_COLUMNS if c in header), header[0])
    if header.count(gene_col) > 1:
        raise OmicsInputError(f"{path}: the gene column {gene_col!r} appears twice in the header.")
    gene_pos = header.index(gene_col)
    sample_pos = [i for i, c in enumerate(header) if i != gene_pos and c not in _ANNOTATION_COLUMNS]
    if not sample_pos:
        raise OmicsInputError(f"{path}: no sample columns beside the gene column {gene_col!r}; expected a gene x sample "
                              f"matrix (cBioPortal `Hugo_Symbol`, `Entrez_Gene_Id`, one column per sample).")
    genes = df.iloc[:, gene_pos].astype("string").str.strip().str.split("|").str[0]
    if genes.dropna().str.match(r"^ENSG\d+").mean() > 0.5:
        raise OmicsInputError(f"{path}: gene ids look like Ensembl ids ({genes.iloc[0]}); the gene families use HGNC "
                              f"symbols — map the ids to symbols first (e.g. a Xena/GDC probe map).")
    no_symbol = genes.isna() | genes.isin(["", "?"])
    if no_symbol.any():
        log.info("%s: %d row(s) without a gene symbol dropped", path, int(no_symbol.sum()))
    values = df.iloc[:, sample_pos]
    samples = [header[i] for i in sample_pos]
    arr = _to_float(values, path)
    keep = ~no_symbol.to_numpy()
    arr = _report_nonfinite(arr[keep], path, what)
    genes = genes[keep].to_numpy().astype(str)
    frame = pd.DataFrame(arr.T, index=pd.Index(samples, name="sample"), columns=pd.Index(genes, name="gene"))
    if frame.columns.duplicated().any():
        n_dup = len(set(frame.columns[frame.columns.duplicated()]))
        log.warning("%s: %d gene symbol(s) appear on several rows; their %s values are averaged (e.g. %s)", path,
                    n_dup, what, frame.columns[frame.columns.duplicated()][0])
        frame = frame.T.groupby(level=0, sort=False).mean().T
    if frame.index.duplicated().any():
        n_dup = int(frame.index.duplicated().sum())
        log.warning("%s: %d duplicated sample column(s); their %s values are averaged", path, n_dup, what)
        frame = frame.groupby(level=0, sort=False).mean()
    return collapse_samples(frame, path, what)


def rna_transform(frame: pd.DataFrame, transform: RnaTransform, source: str | Path) -> tuple[pd.DataFrame, str]:
    """Apply the configured RNA transform; return the frame and the transform actually applied.

    ``log2p1`` = log2(x + 1) for RSEM/TPM/count scale values (all values must be >= 0). ``none`` passes
    values through (z-scores, already-logged data). ``auto`` picks ``log2p1`` when no value is negative
    and the largest exceeds 100 (a linear expression scale), ``none`` otherwise.
    """
    vals = frame.to_numpy(dtype=np.float64)
    finite = vals[np.isfinite(vals)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    chosen = transform
    if transform == "auto":
        chosen = "log2p1" if lo >= 0 and hi > 100 else "none"
        log.info("%s: RNA transform 'auto' -> %r (values in [%.4g, %.4g])", source, chosen, lo, hi)
    if chosen == "log2p1":
        if lo < 0:
            raise OmicsInputError(f"{source}: RNA values go down to {lo:.4g}, so log2(x+1) does not apply (z-scores or "
                                  f"logged data?); set `rna_transform: none` for this cohort.")
        return np.log2(frame + 1.0), chosen
    if chosen != "none":
        raise OmicsInputError(f"unknown rna_transform {transform!r}; use auto, log2p1 or none.")
    return frame, chosen


def read_rna(path: str | Path, transform: RnaTransform = "auto") -> tuple[pd.DataFrame, str]:
    """RNA gene x sample matrix -> (patient x gene frame after the transform, transform applied)."""
    frame = read_gene_matrix(path, "RNA")
    return rna_transform(frame, transform, path)


def read_cnv(path: str | Path) -> pd.DataFrame:
    """GISTIC thresholded CNV gene x sample matrix (values -2..2) -> patient x gene frame."""
    frame = read_gene_matrix(path, "CNV")
    vals = frame.to_numpy()
    bad = np.isfinite(vals) & ~np.isin(vals, [-2.0, -1.0, 0.0, 1.0, 2.0])
    if bad.any():
        raise OmicsInputError(f"{path}: {int(bad.sum())} CNV value(s) outside the GISTIC thresholded calls -2..2 (e.g. "
                              f"{vals[bad][0]:.4g}); use the thresholded table (`data_cna.txt`, "
                              f"`all_thresholded.by_genes.txt`), not log2 copy-number ratios.")
    return frame


def read_maf(paths: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """MAF file(s) -> binary patient x gene frame (1 = at least one non-silent call, see :data:`NON_SILENT`).

    Every patient with any call (silent ones included) in the MAF(s) is a row; a patient absent from all
    MAFs is not (its mutation status is unknown, not zero). Ignored classifications are counted in the log.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    parts = []
    for path in map(Path, paths):
        df = read_table(path)
        need = {"Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification"}
        missing = need - set(df.columns)
        if missing:
            raise OmicsInputError(f"{path}: MAF lacks column(s) {sorted(missing)}; a MAF needs Hugo_Symbol, "
                                  f"Tumor_Sample_Barcode and Variant_Classification.")
        df = df.loc[:, ~pd.Index(df.columns).duplicated()][sorted(need)].dropna(subset=["Tumor_Sample_Barcode"])
        if df.empty:
            raise OmicsInputError(f"{path}: the MAF has no calls with a Tumor_Sample_Barcode.")
        types = df["Tumor_Sample_Barcode"].map(sample_type)
        normal = types.notna() & (types >= 10) & (types < 30)
        if normal.any():
            log.warning("%s: %d call(s) on normal/control samples dropped", path, int(normal.sum()))
            df = df[~normal]
        cls = df["Variant_Classification"].fillna("")
        ignored = cls[~cls.isin(NON_SILENT)].value_counts()
        if len(ignored):
            log.info("%s: %d call(s) not counted as mutations: %s", path, int(ignored.sum()),
                     ", ".join(f"{k or '(empty)'}={v}" for k, v in ignored.items()))
        df = df.assign(patient=df["Tumor_Sample_Barcode"].map(patient_of), hit=cls.isin(NON_SILENT).astype(np.float64))
        parts.append(df)
    calls = pd.concat(parts, ignore_index=True)
    patients = sorted(calls["patient"].unique())
    hits = calls[(calls["hit"] > 0) & calls["Hugo_Symbol"].notna()]
    matrix = pd.crosstab(hits["patient"], hits["Hugo_Symbol"]).clip(upper=1).astype(np.float64)
    matrix = matrix.reindex(index=patients, fill_value=0.0)
    matrix.index.name, matrix.columns.name = "patient", "gene"
    log.info("MAF: %d patient(s), %d gene(s) with a non-silent call", len(patients), matrix.shape[1])
    return matrix


# --------------------------------------------------------------------------------------------------
# Survival


def _parse_status(values: pd.Series) -> pd.Series:
    """cBioPortal ``OS_STATUS`` (``1:DECEASED``, ``0:LIVING``, ``DECEASED``, ``Dead`` ...) -> 1/0/NaN."""
    s = values.astype("string").str.strip().str.upper()
    out = pd.Series(np.nan, index=values.index)
    out[s.str.startswith("1") | s.str.contains("DECEASED|DEAD", regex=True)] = 1.0
    out[s.str.startswith("0") | s.str.contains("LIVING|ALIVE", regex=True)] = 0.0
    return out


def _survival_frame(path: Path, patient: pd.Series, time: pd.Series, event: pd.Series) -> pd.DataFrame:
    """Validate and de-duplicate a per-patient survival table (NaN kept for missing time/event)."""
    df = pd.DataFrame({"patient": patient.map(lambda s: patient_of(str(s)) if pd.notna(s) else s),
                       "time": time, "event": event}).dropna(subset=["patient"])
    neg = df["time"] < 0
    if neg.any():
        raise OmicsInputError(f"{path}: negative survival time for {df.loc[neg, 'patient'].tolist()[:5]}; fix the table.")
    bad_event = df["event"].notna() & ~df["event"].isin([0.0, 1.0])
    if bad_event.any():
        raise OmicsInputError(f"{path}: event values must be 0/1, found {df.loc[bad_event, 'event'].unique()[:5]}.")
    exact = df.duplicated(keep="first")
    if exact.any():
        log.info("%s: %d repeated row(s) of the same patient with identical survival collapsed", path, int(exact.sum()))
        df = df[~exact]
    clash = df["patient"].duplicated(keep=False)
    if clash.any():
        raise OmicsInputError(f"{path}: patients with conflicting survival rows {sorted(set(df.loc[clash, 'patient']))[:5]}"
                              f"; keep one row per patient.")
    return df.reset_index(drop=True)


def read_clinical(path: str | Path) -> pd.DataFrame:
    """Per-patient survival: columns ``patient``, ``time`` (months, float), ``event`` (1 = death; float, NaN = unknown).

    The style is detected from the columns: TCGA-CDR (``OS``, ``OS.time`` days), cBioPortal
    (``OS_MONTHS``, ``OS_STATUS``) or MCAT (``survival_months``, ``censorship``; 1 = censored).
    Patients with a missing time or event are kept with NaN; the cohort table drops and counts them.
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


# --------------------------------------------------------------------------------------------------
# MCAT / PORPOISE all_clean CSV


@dataclass
class McatTable:
    """Content of an MCAT/PORPOISE "all_clean" table, one row per patient.

    ``survival``: columns patient, time (months), event. ``features``: patient x feature float frame
    (features suffixed ``_rnaseq``/``_cnv``/``_mut``, values as in the file). ``slides``: patient ->
    slide ids listed in the file.
    """

    survival: pd.DataFrame
    features: pd.DataFrame
    slides: dict[str, list[str]] = field(default_factory=dict)


def read_mcat_csv(path: str | Path) -> McatTable:
    """Read an MCAT/PORPOISE "all_clean" CSV (plain, zip or gzip — detected by content).

    Rows of the same patient (one per slide) must agree on survival; their omics values are averaged
    when they differ (counted in the log). Non-finite feature values become NaN (counted).
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
    arr = _report_nonfinite(_to_float(df[feats], path), path, "omics")
    frame = pd.DataFrame(arr, index=pd.Index(patients, name="patient"), columns=feats)
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
