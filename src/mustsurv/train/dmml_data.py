"""DMML's patients: each patient's slides at every magnification, patches sorted by (y, x), resampled to N
tokens and stacked into one (M·N, D) bag (:mod:`mustsurv.models.dmml.bags`), with the fold's survival and
scaled genomics.

Magnification m's features come from its own slide summary (main magnification first). A slide's patches
are sorted by their ``coords`` (y, then x; files without coords keep their order) and a patient's slides
are concatenated in the cohort table's order. A patient with no usable slide at an extra magnification
(too little tissue at that scale) takes its main-magnification bag there, with a warning.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch

from mustsurv.cohort.dataset import CohortFoldDataset
from mustsurv.cohort.table import CohortInputError, read_cohort_table
from mustsurv.models.batch import PatientItem
from mustsurv.models.dmml.bags import stack_magnifications
from mustsurv.slides.summary import read_summary
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger(__name__)


def read_sorted_features(path: str | Path) -> np.ndarray:
    """Read a slide's features with its patches sorted by (y, x).

    Args:
        path: a TRIDENT/CLAM features ``.h5``.

    Returns:
        (N, D) float32 features.

    Raises:
        FileNotFoundError: the file is missing; the message says which rule rebuilds it.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: features file missing; rebuild the slide features (slides rules)")
    with h5py.File(path, "r") as h5:
        feats = np.asarray(h5["features"][()], dtype=np.float32)
        if "coords" not in h5:
            return feats
        coords = np.asarray(h5["coords"][()])
    return feats[np.lexsort((coords[:, 0], coords[:, 1]))]


class MagnificationBags:
    """Every patient's stacked bag (M·N, D), read when first asked for and cached within a byte budget.

    The cache keeps the most recently used bags whose bytes fit ``budget_gb`` (``training.feature_cache_gb``,
    as the MUST jobs' :class:`~mustsurv.cohort.store.FeatureStore`); an evicted bag is read again when asked
    for (the resampling is deterministic, so it is the same bag).

    Attributes:
        n_tokens: N, tokens per magnification.
        n_mags: M, magnifications.
    """

    def __init__(self, cohort_tsv: str | Path, summaries: Sequence[str | Path], n_tokens: int,
                 budget_gb: float | None = None) -> None:
        """Index each magnification's usable feature files by patient.

        Args:
            cohort_tsv: the cohort table (each patient's slides).
            summaries: the slide summary of each magnification, main first.
            n_tokens: N.
            budget_gb: the most GiB of bags kept (None: no bound).

        Raises:
            CohortInputError: a patient's slide is missing or unusable at the main magnification.
        """
        self.n_tokens, self.n_mags = int(n_tokens), len(summaries)
        table = read_cohort_table(cohort_tsv)
        slides = {p: [s for s in str(v).split(",") if s] for p, v in zip(table[PATIENT_ID], table["slides"])}
        self._files: list[dict[str, list[str]]] = []
        for m, summary_tsv in enumerate(summaries):
            summary = read_summary(summary_tsv, report=False).set_index("slide_id")
            files = {}
            for p, ids in slides.items():
                usable = [str(summary.at[s, "features"]) for s in ids if s in summary.index and summary.at[s, "usable"]]
                if m == 0 and len(usable) < len(ids):
                    raise CohortInputError(f"{summary_tsv}: slides of patient {p} are missing or unusable; the cohort "
                                           f"table is stale - rebuild it.")
                if usable:
                    files[p] = usable
            self._files.append(files)
        self._budget = None if budget_gb is None else int(budget_gb * 2**30)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cached_bytes = 0

    def get(self, patient: str) -> torch.Tensor | None:
        """The patient's stacked bag.

        Args:
            patient: the patient id.

        Returns:
            (M·N, D) float32 features, or None for a patient without slides.
        """
        if patient not in self._files[0]:
            return None
        if patient in self._cache:
            self._cache.move_to_end(patient)
            return self._cache[patient]
        bags = []
        for m, files in enumerate(self._files):
            if patient not in files:
                log.warning("patient %s has no usable slide at magnification %d; using the main one", patient, m)
            paths = files.get(patient, self._files[0][patient])
            bags.append(torch.from_numpy(np.concatenate([read_sorted_features(f) for f in paths])))
        bag = stack_magnifications(bags, self.n_tokens)
        self._cache[patient] = bag
        self._cached_bytes += bag.nbytes
        while self._budget is not None and self._cache and self._cached_bytes > self._budget:
            self._cached_bytes -= self._cache.popitem(last=False)[1].nbytes
        return bag

    @property
    def cached_bytes(self) -> int:
        """Bytes of the bags held now (at most the budget)."""
        return self._cached_bytes


def dmml_items(dataset: CohortFoldDataset, bags: MagnificationBags) -> list[PatientItem]:
    """The dataset's patients with their stacked multi-magnification bags.

    Args:
        dataset: one part of a fold (survival, bins and scaled genomics).
        bags: the job's bags.

    Returns:
        One item per patient, ``pathology`` (M·N, D) or None.
    """
    return [{"patient_id": p, "pathology": bags.get(p), "genomics": dataset.genomics_of(p),
             "time": float(dataset.time[i]), "event": int(dataset.event[i]), "bin": int(dataset.bins[i])}
            for i, p in enumerate(dataset.patients)]
