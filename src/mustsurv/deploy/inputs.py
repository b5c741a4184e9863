"""A new cohort given like any cohort, read for scoring with a bundle: precomputed patch features and/or omics.

Each patient's feature files (``.h5`` with ``features`` (N, D)) are checked against the bundle's encoder and
dimension; its raw omics are aligned by feature name to the bundle's gene families (a gene the new tables lack
is NaN and takes the training mean; a family with none of its features is an error).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from mustsurv.deploy.bundle import Bundle
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, PATIENT_ID

log = logging.getLogger(__name__)


class PredictInputError(ValueError):
    """New patients that cannot be scored as given; the message names the file or the patients and the fix."""


@dataclass
class NewPatients:
    """Patients to score.

    Attributes:
        ids: every patient, sorted.
        bags: patient -> its feature files (patients with pathology).
        omics: patient -> per family its raw (d_k,) values in the bundle's feature order, NaN where not measured
            (patients with genomics).
        time: patient -> time (months), when outcomes are known (evaluation only).
        event: patient -> event, when outcomes are known.
    """

    ids: list[str]
    bags: dict[str, list[str]] = field(default_factory=dict)
    omics: dict[str, list[np.ndarray]] = field(default_factory=dict)
    time: dict[str, float] = field(default_factory=dict)
    event: dict[str, int] = field(default_factory=dict)

    def modalities(self, patient: str) -> tuple[str, ...]:
        """The modalities a patient has.

        Args:
            patient: the id.

        Returns:
            A subset of (``pathology``, ``genomics``), in that order.
        """
        return tuple(m for m, has in ((PATHOLOGY, patient in self.bags), (GENOMICS, patient in self.omics)) if has)


# --- reading a new cohort --------------------------------------------------------------------------

def align_omics(frame: pd.DataFrame, bundle: Bundle, source: str) -> dict[str, list[np.ndarray]]:
    """Align a patient x feature frame to the bundle's gene families by feature name.

    Args:
        frame: patient x ``{GENE}_{type}`` raw values (RNA already transformed as in training).
        bundle: the bundle.
        source: the input's name, for messages.

    Returns:
        patient -> per family its (d_k,) float64 values, NaN for a feature the frame lacks; patients without a
        single measured bundle feature are left out.

    Raises:
        PredictInputError: the bundle has no genomics, or the frame lacks every feature of a family.
    """
    genomics = bundle.data["genomics"]
    if genomics is None:
        raise PredictInputError(f"{source}: the bundle {bundle.path} was trained without genomics; leave the omics "
                                f"out")
    parts, absent_total, total = [], 0, 0
    for name, feats in zip(genomics["family_names"], genomics["features"]):
        present = [f for f in feats if f in frame.columns]
        if not present:
            raise PredictInputError(f"{source}: none of the {len(feats)} features of gene family {name!r} (e.g. "
                                    f"{feats[0]}) is in the new omics; give the data types the bundle was trained on "
                                    f"(rna, cnv, maf) with the same gene symbols")
        absent_total += len(feats) - len(present)
        total += len(feats)
        parts.append(frame.reindex(columns=feats).to_numpy(dtype=np.float64))
    if absent_total:
        log.warning("%s: %d of the bundle's %d omics features are missing; filled with the training mean",
                    source, absent_total, total)
    measured = np.any([np.isfinite(p).any(axis=1) for p in parts], axis=0)
    if not measured.all():
        log.warning("%s: %d patient(s) have no measured bundle feature and get no genomics", source,
                    int((~measured).sum()))
    return {str(p): [v[i] for v in parts] for i, p in enumerate(frame.index) if measured[i]}


def tokens_frame(tokens_h5: str | Path) -> pd.DataFrame:
    """A ``tokens.h5`` as one patient x feature frame.

    Args:
        tokens_h5: the tokens file.

    Returns:
        Patient x feature raw values.
    """
    from mustsurv.omics.tokens import read_tokens

    tokens = read_tokens(tokens_h5)
    frames = [pd.DataFrame(v, index=tokens.patients, columns=f) for v, f in zip(tokens.values, tokens.features)]
    out = pd.concat(frames, axis=1)
    return out.loc[:, ~out.columns.duplicated()]


def tables_frame(bundle: Bundle, rna: str | Path | None = None, cnv: str | Path | None = None,
                 maf: Sequence[str | Path] | None = None, mcat_csv: str | Path | None = None) -> pd.DataFrame:
    """Read omics tables as in training (the bundle's RNA transform) into one patient x feature frame.

    Args:
        bundle: the bundle.
        rna: RNA gene x sample matrix.
        cnv: GISTIC CNV matrix.
        maf: MAF files.
        mcat_csv: an MCAT all_clean CSV instead of the tables.

    Returns:
        Patient x ``{GENE}_{type}`` values.
    """
    from mustsurv.omics.matrices import read_cnv, read_maf, read_rna, rna_transform
    from mustsurv.omics.survival import read_mcat_csv
    from mustsurv.omics.tokens import assemble_features

    transform = bundle.data["genomics"]["rna_transform"] if bundle.data["genomics"] else "none"
    if mcat_csv is not None:
        features = read_mcat_csv(mcat_csv).features
        rna_cols = [c for c in features.columns if c.endswith("_rnaseq")]
        if rna_cols:
            features[rna_cols], _ = rna_transform(features[rna_cols], transform, mcat_csv)
        return features
    rna_frame = read_rna(rna, transform)[0] if rna is not None else None
    return assemble_features(rna=rna_frame, cnv=read_cnv(cnv) if cnv is not None else None,
                             mut=read_maf(list(maf)) if maf else None)


def check_features(paths: Sequence[str], bundle: Bundle) -> None:
    """Check feature files against the bundle's encoder (name when recorded, dimension always).

    Args:
        paths: ``.h5`` files with a ``features`` (N, D) dataset.
        bundle: the bundle.

    Raises:
        PredictInputError: the bundle has no pathology, a file is unreadable, or its encoder or D differs.
    """
    encoder = bundle.data["encoder"]
    if encoder is None:
        raise PredictInputError(f"{paths[0]}: the bundle {bundle.path} was trained without pathology; leave the "
                                f"slide features out")
    for path in paths:
        try:
            with h5py.File(path, "r") as h5:
                shape = h5["features"].shape
                name = h5.attrs.get("encoder", h5["features"].attrs.get("encoder"))
        except (OSError, KeyError) as exc:
            raise PredictInputError(f"{path}: not a readable features file with a `features` (N, D) dataset "
                                    f"({exc})") from exc
        if name is not None and str(name) != encoder["name"]:
            raise PredictInputError(f"{path}: features of encoder {name!r}, but the bundle {bundle.path} was trained on "
                                    f"{encoder['name']!r}; embed the slides with {encoder['name']} "
                                    f"(target_mpp {encoder['target_mpp']}, patch_size {encoder['patch_size']})")
        if len(shape) != 2 or shape[1] != encoder["dim"]:
            raise PredictInputError(f"{path}: features of shape {tuple(shape)}, but the bundle {bundle.path} expects "
                                    f"(N, {encoder['dim']}) from {encoder['name']}; embed the slides with that encoder")


def summary_bags(summary: pd.DataFrame) -> dict[str, list[str]]:
    """Patient -> usable feature files, from a slide summary (:func:`mustsurv.slides.summary.read_summary`).

    Args:
        summary: the summary with ``usable``.

    Returns:
        The mapping (patients with at least one usable slide).
    """
    out: dict[str, list[str]] = {}
    for _, row in summary.loc[summary["usable"]].sort_values("slide_id").iterrows():
        out.setdefault(str(row[PATIENT_ID]), []).append(str(row["features"]))
    return out


def read_new_cohort(bundle: Bundle, features_dir: str | Path | None = None, slide_sheet: str | Path | None = None,
                    rna: str | Path | None = None, cnv: str | Path | None = None,
                    maf: Sequence[str | Path] | None = None, mcat_csv: str | Path | None = None,
                    tokens: str | Path | None = None) -> NewPatients:
    """Read a new cohort given like any cohort: precomputed features and/or omics.

    Args:
        bundle: the bundle.
        features_dir: folder of ``<slide_id>.h5`` features.
        slide_sheet: slide sheet mapping slide ids to patients (else the slide ids under the ``auto`` patient-id rule).
        rna: RNA matrix.
        cnv: CNV matrix.
        maf: MAF files.
        mcat_csv: MCAT all_clean CSV.
        tokens: a workflow ``tokens.h5`` instead of the tables.

    Returns:
        The patients.

    Raises:
        PredictInputError: no input given, no patient found, or an input does not fit the bundle.
    """
    from mustsurv.slides.summary import build_summary, read_summary

    bags: dict[str, list[str]] = {}
    if features_dir is not None:
        from mustsurv.study.design import precomputed_features

        try:
            files = precomputed_features(features_dir)
        except FileNotFoundError as err:  # a missing folder, or one without any .h5 file
            raise PredictInputError(f"--features-dir {features_dir}: no .h5 features file ({err}); point "
                                    f"--features-dir at the folder of <slide_id>.h5 files") from err
        patients = None
        if slide_sheet is not None:
            from mustsurv.cohort.slides import read_sheet

            sheet = read_sheet(slide_sheet)
            patients = dict(zip(sheet["slide_id"], sheet[PATIENT_ID]))
        from tempfile import TemporaryDirectory

        with TemporaryDirectory() as tmp:  # read_summary marks the usable slides
            path = Path(tmp) / "summary.tsv"
            build_summary(files, patients).to_csv(path, sep="\t", index=False)
            bags = summary_bags(read_summary(path))
        check_features([p for ps in bags.values() for p in ps], bundle)
    omics: dict[str, list[np.ndarray]] = {}
    given = [x for x in (rna, cnv, *(maf or []), mcat_csv, tokens) if x is not None]
    if tokens is not None:
        omics = align_omics(tokens_frame(tokens), bundle, str(tokens))
    elif given:
        omics = align_omics(tables_frame(bundle, rna, cnv, maf, mcat_csv), bundle, ", ".join(map(str, given)))
    if features_dir is None and not given:
        raise PredictInputError("no input: give --features-dir and/or omics (--rna, --cnv, --maf, --mcat-csv, "
                                "--tokens)")
    ids = sorted(set(bags) | set(omics))
    if not ids:
        raise PredictInputError(f"empty cohort: no patient has a usable slide or measured omics in "
                                f"{', '.join(map(str, [features_dir, *given]))}")
    return NewPatients(ids=ids, bags=bags, omics=omics)


def cohort_patients(bundle: Bundle, cohort_tsv: str | Path, tokens_h5: str | Path | None,
                    summary_tsv: str | Path | None) -> NewPatients:
    """A workflow cohort's patients with outcomes (cohort table, tokens, slide summary).

    Patients of the table with neither modality are left out (logged).

    Args:
        bundle: the bundle.
        cohort_tsv: the cohort table.
        tokens_h5: its tokens, or None.
        summary_tsv: its slide summary, or None.

    Returns:
        The patients, with ``time`` and ``event``.
    """
    from mustsurv.cohort.table import HAS_GENOMICS, HAS_PATHOLOGY, read_cohort_table
    from mustsurv.slides.summary import read_summary

    table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
    bags, omics = {}, {}
    if summary_tsv is not None and bundle.data["encoder"] is not None:
        bags = {p: v for p, v in summary_bags(read_summary(summary_tsv, report=False)).items()
                if p in table.index and table.at[p, HAS_PATHOLOGY]}
        check_features([p for ps in bags.values() for p in ps], bundle)
    if tokens_h5 is not None and bundle.data["genomics"] is not None:
        omics = {p: v for p, v in align_omics(tokens_frame(tokens_h5), bundle, str(tokens_h5)).items()
                 if p in table.index and table.at[p, HAS_GENOMICS]}
    ids = sorted(set(bags) | set(omics))
    if len(ids) < len(table):
        log.warning("%s: %d of %d patient(s) have no modality the bundle reads and are not scored", cohort_tsv,
                    len(table) - len(ids), len(table))
    return NewPatients(ids=ids, bags=bags, omics=omics, time={p: float(table.at[p, "time"]) for p in ids},
                       event={p: int(table.at[p, "event"]) for p in ids})
