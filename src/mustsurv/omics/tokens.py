"""Per-patient family tokens: assembling omics features, grouping them by family, the ``tokens.h5`` file.

``results/cohorts/{cohort}/omics/tokens.h5`` layout (P patients, F families, d_k features in family k)::

    /patients              (P,)   str      patient ids, one per row of every values dataset
    /family_names          (F,)   str      family names in file order
    /family_sizes          (F,)   int64    d_k
    /families/{k}/values   (P, d_k) float32  raw values (RNA after the configured transform; CNV -2..2;
                                             mutation 0/1); NaN = not measured for that patient
    /families/{k}/features (d_k,) str      feature names ``{GENE}_{type}``, type in rnaseq/cnv/mut, sorted
    attributes: ``rna_transform`` (applied), ``data_types``, ``sources`` (input files)

``k`` runs 0..F-1 as a string (``/families/0/values``); each group also carries an attribute ``name``.
Only patients with at least one measured family feature are rows. Values are not scaled: standardisation
is fit per fold on the training patients (:mod:`mustsurv.cohort.store`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from mustsurv.io import atomic_path
from mustsurv.omics.families import FamilyLayout, expand_families, read_families
from mustsurv.omics.matrices import read_cnv, read_maf, read_rna, rna_transform
from mustsurv.omics.survival import read_mcat_csv
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)


@dataclass
class Tokens:
    """Family tokens of a cohort.

    Attributes:
        patients: P patient ids.
        family_names: the F family names.
        features: per family k, its d_k feature names.
        values: per family k, a (P, d_k) float32 array, rows in ``patients`` order.
        rna_transform: the RNA transform applied.
        sources: the input files.
    """

    patients: list[str]
    family_names: list[str]
    features: list[list[str]]
    values: list[np.ndarray]
    rna_transform: str = "none"
    sources: tuple[str, ...] = ()

    @property
    def family_sizes(self) -> list[int]:
        """Token sizes d_k, one per family."""
        return [len(f) for f in self.features]

    def row_of(self) -> dict[str, int]:
        """Patient id -> row index."""
        return {p: i for i, p in enumerate(self.patients)}


def assemble_features(rna: pd.DataFrame | None = None, cnv: pd.DataFrame | None = None,
                      mut: pd.DataFrame | None = None) -> pd.DataFrame:
    """Join the patient x gene frames of each data type into one patient x ``{GENE}_{type}`` frame.

    Outer join on patients, index ``patient_id``, sorted. A patient missing from one data type gets NaN for
    its features (not measured); counted in the log.

    Args:
        rna: patient x gene RNA values, or None.
        cnv: patient x gene CNV calls, or None.
        mut: patient x gene mutation flags, or None.

    Returns:
        The joined frame.

    Raises:
        ValueError: no data type is given.
    """
    parts = []
    for t, frame in (("rnaseq", rna), ("cnv", cnv), ("mut", mut)):
        if frame is None:
            continue
        parts.append(frame.add_suffix(f"_{t}"))
    if not parts:
        raise ValueError("no omics data type given (rna, cnv or maf)")
    joined = pd.concat(parts, axis=1, join="outer").sort_index()
    for t, frame in (("rnaseq", rna), ("cnv", cnv), ("mut", mut)):
        if frame is not None and len(frame.index) < len(joined.index):
            log.warning("%d of %d omics patient(s) have no %s data; those features are NaN (imputed fold-wise)",
                        len(joined.index) - len(frame.index), len(joined.index), t)
    joined.index.name = PATIENT_ID
    return joined


def build_tokens(features: pd.DataFrame, families: dict[str, list[str]], rna_transform: str = "none",
                 sources: tuple[str, ...] = (), source: str = "omics") -> Tokens:
    """Group a patient x feature frame into family tokens.

    Features that are NaN for every patient are dropped before grouping; patients with no measured value
    in any family feature are dropped (they have no genomics). Both are counted in the log.

    Args:
        features: patient x ``{GENE}_{type}`` frame.
        families: {family name: gene symbols}.
        rna_transform: the RNA transform applied, recorded in the tokens.
        sources: the input files, recorded in the tokens.
        source: name of the data in messages.

    Returns:
        The tokens.
    """
    feats = features.astype(np.float64).replace([np.inf, -np.inf], np.nan)
    all_nan = feats.columns[feats.isna().all(axis=0)]
    if len(all_nan):
        log.warning("%s: %d feature(s) are NaN for every patient and are dropped (e.g. %s)", source, len(all_nan),
                    all_nan[0])
        feats = feats.drop(columns=all_nan)
    layout: FamilyLayout = expand_families(families, list(feats.columns), source)
    used = sorted({f for fs in layout.features for f in fs})
    empty = feats[used].isna().all(axis=1)
    if empty.any():
        log.warning("%s: %d patient(s) have no measured family feature and get no genomics (e.g. %s)", source,
                    int(empty.sum()), empty[empty].index[0])
        feats = feats[~empty]
    n_nan = int(feats[used].isna().to_numpy().sum())
    if n_nan:
        log.warning("%s: %d NaN value(s) among the family features of the kept patients; imputed fold-wise with the "
                    "training mean", source, n_nan)
    feats = feats.sort_index()
    values = [feats[f].to_numpy(dtype=np.float32) for f in layout.features]
    log.info("%s: tokens of %d patient(s), family sizes %s", source, len(feats), layout.sizes)
    return Tokens(patients=[str(p) for p in feats.index], family_names=layout.names, features=layout.features,
                  values=values, rna_transform=rna_transform, sources=tuple(sources))


def make_tokens(gene_families: str | Path, rna: str | Path | None = None, cnv: str | Path | None = None,
                maf: list[str | Path] | None = None, mcat_csv: str | Path | None = None,
                transform: str = "auto", rule: str = "auto") -> Tokens:
    """Read a cohort's omics inputs (separate tables or an MCAT all_clean CSV) and build its tokens.

    Args:
        gene_families: the gene-family CSV.
        rna: RNA gene x sample matrix.
        cnv: GISTIC CNV gene x sample matrix.
        maf: MAF files.
        mcat_csv: an MCAT all_clean CSV, instead of ``rna``/``cnv``/``maf``.
        transform: the RNA transform (``auto``, ``log2p1``, ``none``; see
            :func:`mustsurv.omics.matrices.rna_transform`), applied to the RNA matrix or to the ``_rnaseq``
            columns of the MCAT table.
        rule: the cohort's ``patient_ids`` rule (:mod:`mustsurv.barcodes`), applied to every table's ids.

    Returns:
        The tokens.

    Raises:
        ValueError: both ``mcat_csv`` and separate tables are given, or no data type is given.
    """
    families = read_families(gene_families)
    if mcat_csv is not None:
        if rna is not None or cnv is not None or maf:
            raise ValueError("give either mcat_csv or separate rna/cnv/maf tables, not both")
        features = read_mcat_csv(mcat_csv, rule).features
        rna_cols = [c for c in features.columns if c.endswith("_rnaseq")]
        applied = "none"
        if rna_cols:
            features[rna_cols], applied = rna_transform(features[rna_cols], transform, mcat_csv)
        sources = (str(mcat_csv),)
        label = str(mcat_csv)
    else:
        rna_frame, applied = read_rna(rna, transform, rule) if rna is not None else (None, "none")
        features = assemble_features(rna=rna_frame, cnv=read_cnv(cnv, rule) if cnv is not None else None,
                                     mut=read_maf(maf, rule) if maf else None)
        sources = tuple(str(p) for p in [rna, cnv, *(maf or [])] if p is not None)
        label = f"omics tables ({', '.join(sources)})"
    return build_tokens(features, families, rna_transform=applied, sources=sources,
                        source=f"{label} with gene families {gene_families}")


def write_tokens(path: str | Path, tokens: Tokens) -> None:
    """Write ``tokens`` to ``path`` atomically in the layout of the module docstring.

    Args:
        path: the ``tokens.h5`` file.
        tokens: the tokens.

    Raises:
        ValueError: a family's values do not have shape (P, d_k).
    """
    str_dt = h5py.string_dtype("utf-8")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("patients", data=np.array(tokens.patients, dtype=object), dtype=str_dt)
            h5.create_dataset("family_names", data=np.array(tokens.family_names, dtype=object), dtype=str_dt)
            h5.create_dataset("family_sizes", data=np.array(tokens.family_sizes, dtype=np.int64))
            grp = h5.create_group("families")
            for k, (name, feats, vals) in enumerate(zip(tokens.family_names, tokens.features, tokens.values)):
                g = grp.create_group(str(k))
                g.attrs["name"] = name
                vals = np.asarray(vals, dtype=np.float32)
                if vals.shape != (len(tokens.patients), len(feats)):
                    raise ValueError(f"family {name!r}: values of shape {vals.shape}, expected "
                                     f"({len(tokens.patients)}, {len(feats)}) (patients x features)")
                g.create_dataset("values", data=vals)
                g.create_dataset("features", data=np.array(feats, dtype=object), dtype=str_dt)
            h5.attrs["rna_transform"] = tokens.rna_transform
            h5.attrs["data_types"] = json.dumps(["rnaseq", "cnv", "mut"])
            h5.attrs["sources"] = json.dumps(list(tokens.sources))


def read_tokens(path: str | Path) -> Tokens:
    """Read a ``tokens.h5`` written by :func:`write_tokens`.

    Args:
        path: the file.

    Returns:
        The tokens.
    """
    with h5py.File(path, "r") as h5:
        names = [s.decode() if isinstance(s, bytes) else s for s in h5["family_names"][()]]
        patients = [s.decode() if isinstance(s, bytes) else s for s in h5["patients"][()]]
        features, values = [], []
        for k in range(len(names)):
            g = h5["families"][str(k)]
            features.append([s.decode() if isinstance(s, bytes) else s for s in g["features"][()]])
            values.append(g["values"][()])
        return Tokens(patients=patients, family_names=names, features=features, values=values,
                      rna_transform=str(h5.attrs.get("rna_transform", "none")),
                      sources=tuple(json.loads(h5.attrs.get("sources", "[]"))))
