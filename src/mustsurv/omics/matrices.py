"""Readers of gene x sample matrices and MAFs, as TCGA users download them, into patient x gene frames.

Every reader returns a float64 frame indexed by patient id (index name ``patient_id``: the sample id under
the cohort's ``patient_ids`` rule, :mod:`mustsurv.barcodes`), columns = HGNC gene symbols, NaN = not measured;
what it changed or dropped is counted in the ``mustsurv.omics`` log, and bad input raises
:class:`~mustsurv.omics.tables.OmicsInputError` with a message naming the file and the fix.

Formats:

- Gene x sample matrices (:func:`read_rna`, :func:`read_cnv`): cBioPortal ``data_mrna_seq_v2_rsem.txt`` /
  ``data_cna.txt`` (``Hugo_Symbol``, ``Entrez_Gene_Id``, one column per sample barcode), GISTIC
  ``all_thresholded.by_genes.txt`` (``Gene Symbol``, ``Locus ID``, ``Cytoband``) and UCSC Xena
  (first column = gene symbol, e.g. ``sample``; legacy ``SYMBOL|ENTREZ`` ids are split at ``|``).
  ``#`` lines are skipped, the separator (tab or comma) is detected from the header.
- MAF (:func:`read_maf`): one or several files; non-silent classifications (:data:`NON_SILENT`) become a
  binary patient x gene matrix over every patient that appears in the MAF(s).

Sample -> patient (:func:`collapse_samples`, rules in :mod:`mustsurv.barcodes`): normal/control samples
(TCGA sample type 10-29) are dropped; of several tumour samples of one patient the lowest type code wins
(01 primary before 06 metastasis) and remaining ties (e.g. ``-01A``/``-01B``) are averaged. Duplicated
genes are averaged, ``Inf`` becomes ``NaN`` (= not measured), and each of these is counted in the log.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import pandas as pd

from mustsurv.barcodes import (
    PatientIdError,
    check_collisions,
    is_normal,
    patient_ids,
    resolve_rule,
    sample_rank,
    sample_type,
)
from mustsurv.omics.tables import (
    OmicsInputError,
    read_table,
    report_nonfinite,
    to_float,
)
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)

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

RnaTransform = Literal["auto", "log2p1", "none"]

# Columns of gene x sample matrices that name the gene (first match wins) or annotate it (dropped).
_GENE_COLUMNS = ("Hugo_Symbol", "Gene Symbol", "gene_symbol", "GeneSymbol", "Gene", "gene", "gene_id", "sample")
_ANNOTATION_COLUMNS = frozenset({"Entrez_Gene_Id", "Locus ID", "Cytoband", "Gene ID", "Entrez_Id", "Description"})


def collapse_samples(matrix: pd.DataFrame, path: Path, what: str, rule: str = "auto") -> pd.DataFrame:
    """Collapse sample x feature rows to patient x feature rows.

    Under the TCGA rule: drops normal/control samples, keeps the lowest tumour type and averages ties.
    Under any other rule sample types mean nothing: two distinct samples of one patient are an error.

    Args:
        matrix: one row per sample id (index).
        path: the source file, for messages.
        what: name of the data in messages.
        rule: the cohort's ``patient_ids`` rule.

    Returns:
        A float frame indexed by patient id (``patient_id``).

    Raises:
        OmicsInputError: a sample id cannot be mapped to a patient, or distinct sample ids collide under
            a rule other than ``tcga``.
    """
    resolved = resolve_rule(matrix.index.astype(str), rule)
    try:
        patients = patient_ids(matrix.index, resolved, f"{path} ({what})")
        check_collisions(matrix.index, patients, resolved, f"{path} ({what})")
    except PatientIdError as err:
        raise OmicsInputError(str(err)) from err
    if resolved != "tcga":
        frame = matrix.copy()
        frame.index = pd.Index(patients, name=PATIENT_ID)
        return frame
    samples = pd.Series(matrix.index, index=matrix.index)
    types = samples.map(sample_type)
    normal = types.map(is_normal).astype(bool)
    if normal.any():
        log.info("%s: %d normal/control sample(s) dropped (TCGA sample type 10-29), e.g. %s", path, int(normal.sum()),
                 samples[normal].iloc[0])
    matrix = matrix.loc[~normal.to_numpy()]
    types = types[~normal.to_numpy()]
    patients = [p for p, n in zip(patients, normal) if not n]
    rank = types.map(sample_rank).to_numpy()
    frame = matrix.copy()
    frame.index = pd.Index(patients, name=PATIENT_ID)
    order = pd.DataFrame({PATIENT_ID: patients, "rank": rank})
    best = order.groupby(PATIENT_ID)["rank"].transform("min").to_numpy()
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


def read_gene_matrix(path: str | Path, what: str, rule: str = "auto") -> pd.DataFrame:
    """Read a gene x sample matrix (cBioPortal, GISTIC or Xena) into a patient x gene float frame.

    Rows without a gene symbol are dropped, duplicated gene symbols are averaged, duplicated sample columns
    are averaged; all counted in the log.

    Args:
        path: the matrix file.
        what: name of the data in messages (``"RNA"``, ``"CNV"``).
        rule: the cohort's ``patient_ids`` rule (:func:`collapse_samples`).

    Returns:
        float64 values with NaN for missing cells, index = patient id (``patient_id``), columns = gene symbols
        (``gene``).

    Raises:
        OmicsInputError: the gene column is duplicated, there are no sample columns, or the genes are
            Ensembl ids instead of HGNC symbols.
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
    arr = to_float(values, path)
    keep = ~no_symbol.to_numpy()
    arr = report_nonfinite(arr[keep], path, what)
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
    return collapse_samples(frame, path, what, rule)


def rna_transform(frame: pd.DataFrame, transform: RnaTransform, source: str | Path) -> tuple[pd.DataFrame, str]:
    """Apply the configured RNA transform.

    Args:
        frame: patient x gene RNA values.
        transform: ``log2p1`` = log2(x + 1) for RSEM/TPM/count scale values (all values must be >= 0);
            ``none`` passes values through (z-scores, already-logged data); ``auto`` picks ``log2p1`` when no
            value is negative and the largest exceeds 100 (a linear expression scale), ``none`` otherwise.
        source: the source file, for messages.

    Returns:
        The transformed frame and the transform actually applied.

    Raises:
        OmicsInputError: ``log2p1`` on negative values, or an unknown transform.
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


def read_rna(path: str | Path, transform: RnaTransform = "auto", rule: str = "auto") -> tuple[pd.DataFrame, str]:
    """Read an RNA gene x sample matrix and transform it.

    Args:
        path: the matrix file.
        transform: ``auto``, ``log2p1`` or ``none`` (see :func:`rna_transform`).
        rule: the cohort's ``patient_ids`` rule.

    Returns:
        The patient x gene frame after the transform, and the transform applied.
    """
    frame = read_gene_matrix(path, "RNA", rule)
    return rna_transform(frame, transform, path)


def read_cnv(path: str | Path, rule: str = "auto") -> pd.DataFrame:
    """Read a GISTIC thresholded CNV gene x sample matrix (values -2..2).

    Args:
        path: the matrix file.
        rule: the cohort's ``patient_ids`` rule.

    Returns:
        A patient x gene frame.

    Raises:
        OmicsInputError: a value lies outside -2..2.
    """
    frame = read_gene_matrix(path, "CNV", rule)
    vals = frame.to_numpy()
    bad = np.isfinite(vals) & ~np.isin(vals, [-2.0, -1.0, 0.0, 1.0, 2.0])
    if bad.any():
        raise OmicsInputError(f"{path}: {int(bad.sum())} CNV value(s) outside the GISTIC thresholded calls -2..2 (e.g. "
                              f"{vals[bad][0]:.4g}); use the thresholded table (`data_cna.txt`, "
                              f"`all_thresholded.by_genes.txt`), not log2 copy-number ratios.")
    return frame


def read_maf(paths: str | Path | Iterable[str | Path], rule: str = "auto") -> pd.DataFrame:
    """Read MAF file(s) into a binary patient x gene frame (1 = at least one non-silent call, see :data:`NON_SILENT`).

    Every patient with any call (silent ones included) in the MAF(s) is a row; a patient absent from all
    MAFs is not (its mutation status is unknown, not zero). Ignored classifications are counted in the log.

    Args:
        paths: one MAF or several.
        rule: the cohort's ``patient_ids`` rule; under the TCGA rule calls on normal samples are dropped and a
            patient's tumour samples pooled, under any other rule distinct samples of one patient are an error.

    Returns:
        The patient x gene 0/1 frame.

    Raises:
        OmicsInputError: a MAF lacks a required column, has no calls with a Tumor_Sample_Barcode, or its
            sample ids cannot be mapped to patients or collide.
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
        barcodes = df["Tumor_Sample_Barcode"].astype(str)
        resolved = resolve_rule(barcodes.unique(), rule)
        try:
            mapped = patient_ids(barcodes, resolved, f"{path} (Tumor_Sample_Barcode)")
            check_collisions(barcodes, mapped, resolved, f"{path} (Tumor_Sample_Barcode)")
        except PatientIdError as err:
            raise OmicsInputError(str(err)) from err
        df = df.assign(**{PATIENT_ID: mapped})
        normal = barcodes.map(sample_type).map(is_normal).astype(bool) & (resolved == "tcga")
        if normal.any():
            log.warning("%s: %d call(s) on normal/control samples dropped", path, int(normal.sum()))
            df = df[~normal]
        cls = df["Variant_Classification"].fillna("")
        ignored = cls[~cls.isin(NON_SILENT)].value_counts()
        if len(ignored):
            log.info("%s: %d call(s) not counted as mutations: %s", path, int(ignored.sum()),
                     ", ".join(f"{k or '(empty)'}={v}" for k, v in ignored.items()))
        df = df.assign(hit=cls.isin(NON_SILENT).astype(np.float64))
        parts.append(df)
    calls = pd.concat(parts, ignore_index=True)
    patients = sorted(calls[PATIENT_ID].unique())
    hits = calls[(calls["hit"] > 0) & calls["Hugo_Symbol"].notna()]
    matrix = pd.crosstab(hits[PATIENT_ID], hits["Hugo_Symbol"]).clip(upper=1).astype(np.float64)
    matrix = matrix.reindex(index=patients, fill_value=0.0)
    matrix.index.name, matrix.columns.name = PATIENT_ID, "gene"
    log.info("MAF: %d patient(s), %d gene(s) with a non-silent call", len(patients), matrix.shape[1])
    return matrix
