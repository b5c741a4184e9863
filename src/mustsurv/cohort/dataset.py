"""Training/evaluation data of one cohort and fold: pathology bag, six family tokens, survival, time bin.

Usage::

    train = CohortFoldDataset(cohort_tsv, tokens_h5, "splits/fold0.json", summary_tsv, part="train")
    test = CohortFoldDataset(cohort_tsv, tokens_h5, "splits/fold0.json", summary_tsv, part="test",
                             scaler=train.scaler)

``tokens_h5`` is None for a cohort without genomics, ``summary_tsv`` None for one without slides.
A dataset that holds the ``train`` part (alone or with ``validation``) fits the omics
:class:`~mustsurv.cohort.store.FoldScaler` on its own patients; the validation and test parts must be given
that scaler (nothing is ever fit on test patients). Relative ``features`` paths of the
slide summary are resolved against the current working directory (the workflow's directory).

Item ``ds[i]`` (one patient, in sorted patient order)::

    {"patient_id": str,
     "pathology": Bag | None,    # all usable slides' features concatenated: bag.load() -> (N, D) float32
     "genomics": list of F torch.FloatTensor (d_k,) | None,   # fold-wise scaled family tokens
     "time": float (months), "event": int (1 = death observed), "bin": int (0..K-1)}

Attributes: ``family_sizes`` (list of d_k), ``family_names``, ``pathology_dim`` (D, or None when no patient
of the cohort has slides), ``bin_edges`` (K+1 floats, last inf), ``n_bins``, ``patients``, ``scaler``,
``store``. Omics tokens are scaled once at construction. An item's pathology is a
:class:`~mustsurv.cohort.store.Bag` handle: nothing is read until ``load()`` (which
:func:`~mustsurv.models.batch.collate` calls), so lists of items hold no bag memory; the bag then comes from
the bounded :class:`~mustsurv.cohort.store.FeatureStore` (pass one ``store`` to several datasets to share
it; use ``num_workers=0`` in a DataLoader so the cache stays in this process). The store's preflight checks
the part's feature files at construction (one dimension; every bag fits ``training.feature_cache_gb``).
Bags have different N, so batch with batch size 1 or a custom collate.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from mustsurv.cohort.splits import assign_bins, read_fold
from mustsurv.cohort.store import Bag, FeatureStore, FoldScaler, feature_dim
from mustsurv.cohort.table import (
    HAS_GENOMICS,
    HAS_PATHOLOGY,
    CohortInputError,
    read_cohort_table,
)
from mustsurv.omics.tokens import read_tokens
from mustsurv.slides.summary import read_summary
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)


Part = Literal["train", "validation", "test"]
PARTS: tuple[Part, ...] = ("train", "validation", "test")


class CohortFoldDataset(Dataset):
    """Patients of one or more parts (``train``, ``validation``, ``test``) of one fold; see the module
    docstring for the item layout.

    Attributes:
        part: the parts joined by ``+`` (e.g. ``"train+validation"``).
        patients: patient ids of these parts, sorted.
        time: (n,) survival times in months.
        event: (n,) 1 = death observed, 0 = censored.
        bins: (n,) time bin 0..K-1 of each patient.
        bin_edges: K+1 floats, last inf.
        n_bins: number of time bins K.
        has_pathology: (n,) bool, the patient has usable slides.
        has_genomics: (n,) bool, the patient is a row of tokens.h5.
        family_names: names of the F genomic families (empty without genomics).
        family_sizes: d_k of each family token.
        scaler: the omics :class:`~mustsurv.cohort.store.FoldScaler` (fit on the patients a model is fit on).
        store: the :class:`~mustsurv.cohort.store.FeatureStore` that caches the bags.
        pathology_dim: D of the patch features, or None when no patient of the cohort has slides.
    """

    def __init__(self, cohort_tsv: str | Path, tokens_h5: str | Path | None, split_json: str | Path,
                 summary_tsv: str | Path | None = None, part: Part | tuple[Part, ...] = "train",
                 scaler: FoldScaler | None = None, store: FeatureStore | None = None) -> None:
        """Read the cohort table, the fold, the omics tokens and the slide index.

        Args:
            cohort_tsv: the cohort table ``cohort.tsv``.
            tokens_h5: the family tokens ``tokens.h5``, or None for a cohort without genomics.
            split_json: the fold record ``fold{k}.json``.
            summary_tsv: the slide summary, or None for a cohort without slides.
            part: ``"train"``, ``"validation"``, ``"test"``, or a tuple of them (e.g. train + validation).
            scaler: the scaler of the patients a model is fit on; required for the validation and test
                parts (never fit on them), fit on this dataset's patients when None.
            store: feature store to share between datasets; a new one when None.

        Raises:
            ValueError: ``part`` names an unknown part, or a held-out part is given no scaler.
            CohortInputError: the split or the cohort table is stale, or a modality's file is missing; the message
                names the file and the fix.
            ValueError: the feature files mix dimensions or a bag exceeds the store's budget
                (:meth:`~mustsurv.cohort.store.FeatureStore.preflight`).
        """
        parts = (part,) if isinstance(part, str) else tuple(part)
        if not parts or any(p not in PARTS for p in parts):
            raise ValueError(f"part must be one or more of {', '.join(PARTS)}, not {part!r}")
        table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
        fold = read_fold(split_json)
        self.part = "+".join(parts)
        self.bin_edges: list[float] = [float(e) for e in fold["bin_edges"]]
        self.n_bins = len(self.bin_edges) - 1
        patients = sorted(p for name in parts for p in fold[name])
        unknown = [p for p in patients if p not in table.index]
        if unknown:
            raise CohortInputError(f"{split_json}: {len(unknown)} {self.part} patient(s) are not in {cohort_tsv} (e.g. "
                                   f"{unknown[0]}); the split is stale — rebuild it from the cohort table.")
        self.patients: list[str] = patients
        rows = table.loc[patients]
        self.time = rows["time"].to_numpy(dtype=float)
        self.event = rows["event"].to_numpy(dtype=int)
        self.bins = assign_bins(self.time, self.bin_edges)
        self.has_pathology = rows[HAS_PATHOLOGY].to_numpy(dtype=bool)
        self.has_genomics = rows[HAS_GENOMICS].to_numpy(dtype=bool)

        self._omics: dict[str, list[torch.Tensor]] = {}
        self.family_names: list[str] = []
        self.family_sizes: list[int] = []
        self.scaler = scaler
        if tokens_h5 is not None:
            self._load_omics(tokens_h5, cohort_tsv, parts)
        elif self.has_genomics.any():
            raise CohortInputError(f"{cohort_tsv}: patients have genomics (has_genomics = 1) but no tokens.h5 was "
                                   f"given.")

        self.store = store if store is not None else FeatureStore()
        self._paths: dict[str, list[str]] = {}
        self.pathology_dim: int | None = None
        if summary_tsv is not None:
            self._index_slides(summary_tsv, rows)
        elif self.has_pathology.any():
            raise CohortInputError(f"{cohort_tsv}: patients have slides (has_pathology = 1) but no slide summary was "
                                   f"given.")
        log.info("fold %s %s: %d patient(s), %d with pathology, %d with genomics, bins %s", fold.get("fold"), self.part,
                 len(patients), int(self.has_pathology.sum()), int(self.has_genomics.sum()), np.bincount(self.bins,
                                                                                       minlength=self.n_bins).tolist())

    def _load_omics(self, tokens_h5: str | Path, cohort_tsv: str | Path, parts: tuple[str, ...]) -> None:
        """Read, (fit and) scale the family tokens of the patients with genomics."""
        tokens = read_tokens(tokens_h5)
        self.family_names, self.family_sizes = tokens.family_names, tokens.family_sizes
        row_of = tokens.row_of()
        g_patients = [p for p, g in zip(self.patients, self.has_genomics) if g]
        missing = [p for p in g_patients if p not in row_of]
        if missing:
            raise CohortInputError(f"{cohort_tsv}: {len(missing)} patient(s) with has_genomics = 1 are not in "
                                   f"{tokens_h5} "
                                   f"(e.g. {missing[0]}); rebuild the cohort table.")
        idx = np.array([row_of[p] for p in g_patients], dtype=np.int64)
        raw = [v[idx] if len(idx) else np.zeros((0, v.shape[1]), np.float32) for v in tokens.values]
        if self.scaler is None:
            if "train" not in parts or "test" in parts:
                raise ValueError("the validation and test parts need the train part's scaler (scaler=train.scaler); "
                                 "scalers are fit on the patients a model is fit on, never on test patients")
            self.scaler = FoldScaler.fit(raw, tokens.features)
        scaled = self.scaler.transform(raw)
        for i, p in enumerate(g_patients):
            self._omics[p] = [torch.from_numpy(s[i].copy()) for s in scaled]

    def _index_slides(self, summary_tsv: str | Path, rows: pd.DataFrame) -> None:
        """Map each patient with pathology to its usable feature files; set ``pathology_dim``."""
        summary = read_summary(summary_tsv, report=False).set_index("slide_id")
        for p, has_p, slides in zip(self.patients, self.has_pathology, rows["slides"]):
            if not has_p:
                continue
            ids = [s for s in str(slides).split(",") if s]
            absent = [s for s in ids if s not in summary.index or not summary.at[s, "usable"]]
            if absent:
                raise CohortInputError(f"{summary_tsv}: slide(s) {absent[:3]} of patient {p} are missing or unusable; "
                                       f"the cohort table is stale — rebuild it.")
            self._paths[p] = [str(summary.at[s, "features"]) for s in ids]
        self.pathology_dim = self.store.preflight(self._paths)
        if self.pathology_dim is None:  # no patient of this part has slides: D from the cohort's first usable file
            probe = next((str(f) for f in summary.loc[summary["usable"], "features"] if Path(f).is_file()), None)
            self.pathology_dim = feature_dim(probe) if probe is not None else None

    def genomics_of(self, patient: str) -> list[torch.Tensor] | None:
        """A patient's scaled family tokens, without reading its bag.

        Args:
            patient: the patient id.

        Returns:
            F tensors (d_k,), or None for a patient without genomics.
        """
        return self._omics.get(patient)

    def __len__(self) -> int:
        """Number of patients in this part."""
        return len(self.patients)

    def __getitem__(self, i: int) -> dict:
        """The item of the ``i``-th patient (sorted order); layout in the module docstring."""
        p = self.patients[i]
        return {
            "patient_id": p,
            "pathology": Bag(self.store, p, self._paths[p]) if p in self._paths else None,
            "genomics": self._omics.get(p),
            "time": float(self.time[i]),
            "event": int(self.event[i]),
            "bin": int(self.bins[i]),
        }
