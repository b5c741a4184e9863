"""Fold-wise omics scaling and the in-memory feature store that keeps training off the disk.

:class:`FoldScaler` is fit on the training patients of one fold only: per feature mean and standard
deviation (NaN-aware). ``transform`` imputes a missing value (NaN) with the training mean and
standardises the RNA (``_rnaseq``) features; CNV calls and mutation flags keep their scale.

:class:`FeatureStore` loads a patient's pathology bag (the ``features`` datasets of its slides,
concatenated) on first request and keeps it in memory, so every later epoch reads no file. A bag of
``N`` patches is a ``(N, D)`` tensor; with ``dtype=torch.float16`` the store halves its memory (a
1,000-slide x 20,000-patch x 1536-d cohort is ~61 GB in float16) and items are returned as float32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass
class FoldScaler:
    """Per-family, per-feature statistics of the training fold.

    Attributes:
        mean: per family k, (d_k,) float64 training means.
        std: per family k, (d_k,) float64 training standard deviations.
        standardise: per family k, (d_k,) bool, True for ``_rnaseq`` features (those are centred and scaled;
            the others only get NaN imputed).
    """

    mean: list[np.ndarray]
    std: list[np.ndarray]
    standardise: list[np.ndarray]

    @classmethod
    def fit(cls, values: list[np.ndarray], features: list[list[str]]) -> "FoldScaler":
        """Fit on the training rows.

        Args:
            values: per family k, (n_train, d_k) with NaN for not measured.
            features: per family k, its d_k feature names (``_rnaseq`` ones are standardised).

        Returns:
            The fitted scaler.
        """
        means, stds, flags = [], [], []
        n_unseen = 0
        for vals, feats in zip(values, features):
            vals = np.asarray(vals, dtype=np.float64)
            seen = np.isfinite(vals).any(axis=0) if len(vals) else np.zeros(vals.shape[1], dtype=bool)
            n_unseen += int((~seen).sum())
            filled = np.where(seen[None, :], vals, 0.0)
            with np.errstate(invalid="ignore"):
                mean = np.where(seen, np.nanmean(filled, axis=0) if len(vals) else 0.0, 0.0)
                std = np.where(seen, np.nanstd(filled, axis=0) if len(vals) else 1.0, 1.0)
            std = np.where(std > 1e-8, std, 1.0)
            means.append(mean)
            stds.append(std)
            flags.append(np.array([f.endswith("_rnaseq") for f in feats], dtype=bool))
        if n_unseen:
            log.warning("%d omics feature(s) have no measured value in the training fold; imputed with 0", n_unseen)
        return cls(mean=means, std=stds, standardise=flags)

    def transform(self, values: list[np.ndarray]) -> list[np.ndarray]:
        """Impute NaN with the training mean and standardise RNA features.

        Args:
            values: per family k, (n, d_k) raw values.

        Returns:
            Per family k, (n, d_k) float32 arrays.
        """
        out = []
        for vals, mean, std, flag in zip(values, self.mean, self.std, self.standardise):
            vals = np.asarray(vals, dtype=np.float64)
            vals = np.where(np.isnan(vals), mean[None, :], vals)
            vals = np.where(flag[None, :], (vals - mean[None, :]) / std[None, :], vals)
            out.append(vals.astype(np.float32))
        return out

    def state_dict(self) -> dict[str, list[list]]:
        """Plain-list form (JSON/torch.save friendly)."""
        return {"mean": [m.tolist() for m in self.mean], "std": [s.tolist() for s in self.std],
                "standardise": [f.tolist() for f in self.standardise]}

    @classmethod
    def from_state_dict(cls, state: dict[str, list[list]]) -> "FoldScaler":
        """Rebuild a scaler from :meth:`state_dict`'s plain lists.

        Args:
            state: ``{"mean", "std", "standardise"}`` lists of per-family lists.

        Returns:
            The scaler.
        """
        return cls(mean=[np.asarray(m, dtype=np.float64) for m in state["mean"]],
                   std=[np.asarray(s, dtype=np.float64) for s in state["std"]],
                   standardise=[np.asarray(f, dtype=bool) for f in state["standardise"]])


def feature_dim(path: str | Path) -> int:
    """Read D of a features ``.h5`` without reading its data.

    Args:
        path: a TRIDENT/CLAM features file with a ``features`` (N, D) dataset.

    Returns:
        D.
    """
    with h5py.File(path, "r") as h5:
        return int(h5["features"].shape[1])


class FeatureStore:
    """In-memory cache of pathology bags, keyed by patient id.

    ``get(patient, paths)`` reads the ``features`` dataset (N_i, D) of every file in ``paths`` once,
    concatenates them to (sum N_i, D) and keeps the result; later calls return the cached tensor.

    Attributes:
        dtype: storage dtype of the cached bags.
        files_read: number of feature files read so far.
    """

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        """Create an empty store.

        Args:
            dtype: storage dtype; ``torch.float16`` halves the memory (items are still returned as float32).
        """
        self.dtype = dtype
        self._bags: dict[str, torch.Tensor] = {}
        self.files_read = 0

    def __len__(self) -> int:
        """Number of cached bags."""
        return len(self._bags)

    @property
    def nbytes(self) -> int:
        """Memory held by the cached bags."""
        return sum(t.numel() * t.element_size() for t in self._bags.values())

    def get(self, patient: str, paths: list[str]) -> torch.Tensor:
        """Return the patient's bag, loading it from ``paths`` on the first call only.

        Args:
            patient: patient id (the cache key).
            paths: the patient's feature ``.h5`` files.

        Returns:
            (N, D) float32 bag, the slides' patches concatenated.

        Raises:
            FileNotFoundError: a features file is missing.
            KeyError: a file has no ``features`` dataset.
            ValueError: a file is unreadable, holds NaN/Inf features, or the files' features have different or
                non-2-D shapes.
        """
        bag = self._bags.get(patient)
        if bag is None:
            bag = self._load(paths).to(self.dtype)
            self._bags[patient] = bag
        return bag.float()

    def _load(self, paths: list[str]) -> torch.Tensor:
        """Read and concatenate the ``features`` datasets of ``paths`` into one (sum N_i, D) tensor."""
        parts = []
        for path in paths:
            if not Path(path).is_file():
                raise FileNotFoundError(f"{path}: features file missing; rebuild the slide features (slides rules) "
                                        f"or the cohort table if the summary is stale.")
            try:
                with h5py.File(path, "r") as h5:
                    if "features" not in h5:
                        raise KeyError(f"{path}: no `features` dataset (expected TRIDENT/CLAM layout, (N, D)).")
                    part = np.asarray(h5["features"][()], dtype=np.float32)
            except OSError as err:
                raise ValueError(f"{path}: unreadable features file ({err}); delete it so the slide is embedded "
                                 f"again (or re-export it).") from err
            bad = ~np.isfinite(part).all(axis=1) if part.ndim == 2 else np.zeros(0, dtype=bool)
            if bad.any():
                raise ValueError(f"{path}: {int(bad.sum())} of {len(part)} patch feature row(s) hold NaN or Inf (e.g. "
                                 f"row {int(np.flatnonzero(bad)[0])}); delete the file so the slide is embedded again "
                                 f"(or re-export it).")
            parts.append(part)
            self.files_read += 1
        dims = {p.shape[1] for p in parts}
        if len(dims) != 1 or any(p.ndim != 2 for p in parts):
            raise ValueError(f"features of {paths} have different or non-2-D shapes {[p.shape for p in parts]}; all "
                             f"slides of a cohort must use the same encoder.")
        return torch.from_numpy(np.concatenate(parts, axis=0))
