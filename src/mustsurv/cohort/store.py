"""Fold-wise omics scaling and the bounded feature store that serves pathology bags to training.

:class:`FoldScaler` is fit on the training patients of one fold only: per feature mean and standard
deviation (NaN-aware). ``transform`` imputes a missing value (NaN) with the training mean and
standardises the RNA (``_rnaseq``) features; CNV calls and mutation flags keep their scale.

:class:`FeatureStore` serves a patient's pathology bag (the ``features`` datasets of its slides,
concatenated, (N, D)) and keeps the bags it read in memory, stored in float16 (returned as float32), within
a byte budget (``training.feature_cache_gb``): when a new bag would exceed it, the least recently used
bags are evicted. A background thread reads ahead: a caller announces the order in which it will ask
for the bags (:func:`announce`, e.g. the trainer at the start of every epoch) and the thread reads the
next few into the cache while the model works on the current one. A dataset item holds a :class:`Bag`
handle, which reads nothing until ``load()`` (``mustsurv.models.batch.collate`` loads it), so a list of
items costs no bag memory. :meth:`FeatureStore.preflight` checks a cohort's files before any training:
one feature dimension, and every bag small enough for the budget (a larger bag fails there, naming the
files and the setting; :meth:`FeatureStore.get` itself would serve it uncached).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


GIB = 1024**3
"""Bytes per GiB (``training.feature_cache_gb`` counts GiB)."""


class Bag:
    """A patient's pathology bag as a dataset item holds it: reads nothing until :meth:`load`.

    Attributes:
        store: the :class:`FeatureStore` that serves it.
        patient: the patient id (the store's key).
        paths: the patient's feature ``.h5`` files.
    """

    __slots__ = ("paths", "patient", "store")

    def __init__(self, store: FeatureStore, patient: str, paths: list[str]) -> None:
        """Refer to ``patient``'s bag.

        Args:
            store: the store that serves it.
            patient: the patient id.
            paths: its feature files.
        """
        self.store, self.patient, self.paths = store, patient, list(paths)

    def load(self) -> torch.Tensor:
        """Read the bag (from the store's cache when it holds it).

        Returns:
            (N, D) float32 bag.
        """
        return self.store.get(self.patient, self.paths)

    @property
    def shape(self) -> tuple[int, int]:
        """(N, D) of the bag, from the files' metadata (no feature is read)."""
        return self.store.shape(self.patient, self.paths)

    def __repr__(self) -> str:
        """``Bag(patient, k file(s))``."""
        return f"Bag({self.patient}, {len(self.paths)} file(s))"


class FeatureStore:
    """Pathology bags served from an LRU cache of at most ``budget_gb`` GiB, read ahead by a background thread.

    ``get(patient, paths)`` returns the patient's (N, D) float32 bag: from the cache (a hit) or read from
    ``paths`` (a miss) and cached, evicting the least recently used bags until the cache holds at most the
    budget. A bag larger than the whole budget is served without being cached (``uncached``);
    :meth:`preflight` rejects such a cohort before training. :meth:`plan` announces the order of the
    coming requests; one reader thread then reads the next ``read_ahead`` bags of that order into the
    cache (at most half the budget of bags not yet asked for), so that their ``get`` is a hit. Every file
    read (the caller's or the thread's) holds one lock, so h5py is only ever used by one thread at a time.

    Attributes:
        budget: the cache's budget in bytes (``math.inf``: unbounded).
        dtype: storage dtype of the cached bags (float16 halves the memory; items are returned as float32).
        read_ahead: bags the thread reads ahead of the caller.
        files_read: feature files read so far (caller and thread).
        hits: ``get`` calls served from the cache (or from a read the thread had in flight).
        misses: ``get`` calls that read the files themselves.
        prefetched: bags the reader thread read ahead.
        evicted: bags evicted to stay within the budget.
        uncached: bags larger than the budget, served without being cached.
    """

    def __init__(self, budget_gb: float = math.inf, dtype: torch.dtype = torch.float16, read_ahead: int = 4) -> None:
        """Create an empty store.

        Args:
            budget_gb: cache budget in GiB (``training.feature_cache_gb``); ``math.inf`` keeps every bag.
            dtype: storage dtype (``torch.float16`` or ``torch.float32``).
            read_ahead: bags the thread may read ahead of the caller (0: no thread).

        Raises:
            ValueError: a budget that is not positive, or a negative ``read_ahead``.
        """
        if not budget_gb > 0:
            raise ValueError(f"training.feature_cache_gb must be positive, got {budget_gb}")
        if read_ahead < 0:
            raise ValueError(f"read_ahead must be >= 0, got {read_ahead}")
        self.budget = budget_gb * GIB
        self.dtype = dtype
        self.read_ahead = read_ahead
        self.files_read = self.hits = self.misses = self.prefetched = self.evicted = self.uncached = 0
        self._bags: OrderedDict[str, torch.Tensor] = OrderedDict()  # least recently used first
        self._held = 0
        self._shapes: dict[str, tuple[int, int]] = {}  # patient -> (N, D)
        self._dims: dict[int, str] = {}  # D -> first file seen with it (preflight)
        self._fresh: dict[str, int] = {}  # read ahead, not yet asked for: patient -> bytes
        self._loading: set[str] = set()  # bags being read (by the caller or the thread)
        self._failed: set[str] = set()  # the thread could not read them; the caller's read reports why
        self._plan: list[tuple[str, list[str]]] = []
        self._cursor = 0  # index in the plan of the next bag the caller will ask for
        self._cond = threading.Condition()
        self._io = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __len__(self) -> int:
        """Number of cached bags."""
        return len(self._bags)

    @property
    def nbytes(self) -> int:
        """Memory held by the cached bags (never above :attr:`budget`)."""
        return self._held

    def counters(self) -> dict[str, float]:
        """The counters and the hit rate, for the training logs.

        Returns:
            ``files_read``, ``hits``, ``misses``, ``prefetched``, ``evicted``, ``uncached``, ``hit_rate``,
            ``cached_gb``.
        """
        asked = self.hits + self.misses
        return {"files_read": self.files_read, "hits": self.hits, "misses": self.misses,
                "prefetched": self.prefetched, "evicted": self.evicted, "uncached": self.uncached,
                "hit_rate": self.hits / asked if asked else float("nan"), "cached_gb": self._held / GIB}

    def log_counters(self, what: str) -> None:
        """Log :meth:`counters` at INFO.

        Args:
            what: what the counts cover (e.g. ``"stage 2, fold 0"``).
        """
        c = self.counters()
        log.info("feature store after %s: files_read %d, hits %d, misses %d (hit rate %.3f), prefetched %d, "
                 "evicted %d, uncached %d, %.1f MiB cached", what, c["files_read"], c["hits"], c["misses"],
                 c["hit_rate"], c["prefetched"], c["evicted"], c["uncached"], c["cached_gb"] * 1024)

    # ------------------------------------------------------------------ serving
    def get(self, patient: str, paths: list[str]) -> torch.Tensor:
        """Return the patient's bag, from the cache or read from ``paths``.

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
        with self._cond:
            self._advance(patient)
            while patient in self._loading:  # the reader thread is reading it: wait for it
                self._cond.wait()
            bag = self._bags.get(patient)
            if bag is not None:
                self._bags.move_to_end(patient)
                self._fresh.pop(patient, None)
                self.hits += 1
            else:
                self.misses += 1
                self._loading.add(patient)
        if bag is None:
            try:
                bag = self._read(paths)
            finally:
                with self._cond:
                    self._loading.discard(patient)
                    self._cond.notify_all()
            with self._cond:
                self._insert(patient, bag)
                self._cond.notify_all()
        return bag.float()

    def shape(self, patient: str, paths: list[str]) -> tuple[int, int]:
        """(N, D) of a patient's bag from its files' metadata (remembered; no feature is read).

        Args:
            patient: patient id.
            paths: its feature files.

        Returns:
            (N, D).

        Raises:
            FileNotFoundError: a features file is missing.
            KeyError: a file has no ``features`` dataset.
            ValueError: the files' features have different or non-2-D shapes.
        """
        known = self._shapes.get(patient)
        if known is None:
            shapes = [self._file_shape(path) for path in paths]
            if len({s[1] for s in shapes}) != 1:
                raise ValueError(f"features of {paths} have different shapes {shapes}; all slides of a cohort must "
                                 f"use the same encoder.")
            known = self._shapes[patient] = (sum(s[0] for s in shapes), shapes[0][1])
        return known

    def bag_bytes(self, patient: str, paths: list[str]) -> int:
        """Bytes the bag takes in the cache (N x D x the storage dtype's size).

        Args:
            patient: patient id.
            paths: its feature files.

        Returns:
            The bytes.
        """
        n, d = self.shape(patient, paths)
        return n * d * torch.empty((), dtype=self.dtype).element_size()

    # ------------------------------------------------------------------ read-ahead
    def plan(self, order: Sequence[tuple[str, list[str]]]) -> None:
        """Announce the coming requests, in order; the reader thread reads the next ones ahead.

        Args:
            order: (patient, paths) in the order ``get`` will be called (an epoch's permutation).
        """
        for patient, paths in order:
            self.shape(patient, paths)  # metadata read here, so the thread only reads features
        with self._cond:
            self._plan, self._cursor = [(p, list(paths)) for p, paths in order], 0
            self._failed.clear()
            self._fresh.clear()  # bags read ahead for an earlier plan stay cached but no longer hold the thread
            if self.read_ahead and self._thread is None and self._plan:
                self._thread = threading.Thread(target=self._reader, name="feature-store-read-ahead", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def close(self) -> None:
        """Stop the reader thread and forget the plan (the cache stays usable)."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join()
        with self._cond:
            self._closed, self._plan, self._cursor = False, [], 0

    def _advance(self, patient: str) -> None:
        """Move the plan's cursor past ``patient`` when it is one of the next planned bags (lock held)."""
        for j in range(self._cursor, min(len(self._plan), self._cursor + 4 * self.read_ahead + 1)):
            if self._plan[j][0] == patient:
                self._cursor = j + 1
                self._cond.notify_all()
                return

    def _next_job(self) -> tuple[str, list[str]] | None:
        """The next planned bag to read ahead, or None (lock held)."""
        pending = sum(self._fresh.values())
        for patient, paths in self._plan[self._cursor:self._cursor + self.read_ahead]:
            if patient in self._bags or patient in self._loading or patient in self._failed:
                continue
            size = self.bag_bytes(patient, paths)
            if size > self.budget:
                continue  # served uncached when asked for
            if pending + size > self.budget / 2:
                return None
            return patient, paths
        return None

    def _reader(self) -> None:
        """The reader thread: read planned bags ahead of the caller; ends with the plan or at :meth:`close`."""
        while True:
            with self._cond:
                while (job := self._next_job()) is None or self._closed:
                    if self._closed or self._cursor >= len(self._plan):
                        self._thread = None
                        self._cond.notify_all()
                        return
                    self._cond.wait()
                patient, paths = job
                self._loading.add(patient)
            bag = None
            try:
                bag = self._read(paths)
            except Exception as exc:  # any failure: the caller's own read raises it, with the file's name
                log.warning("read-ahead of %s failed (%s); the caller reads it itself", patient, exc)
            finally:  # never leave the caller waiting for a bag that is not coming
                with self._cond:
                    self._loading.discard(patient)
                    if bag is None:
                        self._failed.add(patient)
                    elif self._insert(patient, bag):
                        self._fresh[patient] = bag.numel() * bag.element_size()
                        self.prefetched += 1
                    self._cond.notify_all()

    # ------------------------------------------------------------------ cache and files
    def _insert(self, patient: str, bag: torch.Tensor) -> bool:
        """Cache ``bag``, evicting least recently used bags to stay within the budget (lock held).

        Returns False (and caches nothing) for a bag larger than the whole budget.
        """
        size = bag.numel() * bag.element_size()
        if size > self.budget:
            self.uncached += 1
            return False
        old = self._bags.pop(patient, None)
        if old is not None:
            self._held -= old.numel() * old.element_size()
        while self._held + size > self.budget:
            victim, evicted = self._bags.popitem(last=False)
            self._held -= evicted.numel() * evicted.element_size()
            self._fresh.pop(victim, None)
            self.evicted += 1
        self._bags[patient] = bag
        self._held += size
        return True

    def _file_shape(self, path: str) -> tuple[int, int]:
        """(N, D) of one features file; errors name the file and the fix."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: features file missing; rebuild the slide features (slides rules) "
                                    f"or the cohort table if the summary is stale.")
        try:
            with self._io, h5py.File(path, "r") as h5:
                if "features" not in h5:
                    raise KeyError(f"{path}: no `features` dataset (expected TRIDENT/CLAM layout, (N, D)).")
                shape = tuple(h5["features"].shape)
        except OSError as err:
            raise ValueError(f"{path}: unreadable features file ({err}); delete it so the slide is embedded "
                             f"again (or re-export it).") from err
        if len(shape) != 2:
            raise ValueError(f"{path}: `features` has shape {shape}, expected (N, D).")
        return int(shape[0]), int(shape[1])

    def _read(self, paths: list[str]) -> torch.Tensor:
        """Read and concatenate the ``features`` datasets of ``paths`` into one (sum N_i, D) tensor of ``dtype``."""
        parts = []
        for path in paths:
            self._file_shape(path)
            try:
                with self._io, h5py.File(path, "r") as h5:
                    part = np.asarray(h5["features"][()], dtype=np.float32)
            except OSError as err:
                raise ValueError(f"{path}: unreadable features file ({err}); delete it so the slide is embedded "
                                 f"again (or re-export it).") from err
            bad = ~np.isfinite(part).all(axis=1)
            if bad.any():
                raise ValueError(f"{path}: {int(bad.sum())} of {len(part)} patch feature row(s) hold NaN or Inf (e.g. "
                                 f"row {int(np.flatnonzero(bad)[0])}); delete the file so the slide is embedded again "
                                 f"(or re-export it).")
            parts.append(torch.from_numpy(part).to(self.dtype))
            self.files_read += 1
        dims = {p.shape[1] for p in parts}
        if len(dims) != 1:
            raise ValueError(f"features of {paths} have different shapes {[tuple(p.shape) for p in parts]}; all "
                             f"slides of a cohort must use the same encoder.")
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    # ------------------------------------------------------------------ preflight
    def preflight(self, bags: dict[str, list[str]]) -> int | None:
        """Check a cohort's feature files before training, from their metadata only.

        Args:
            bags: patient -> its feature files.

        Returns:
            D of the features (None when ``bags`` is empty).

        Raises:
            ValueError: the files mix feature dimensions (also with files this store checked before), or a
                patient's bag needs more than the cache budget; the message names the files and the setting.
            FileNotFoundError: a features file is missing.
            KeyError: a file has no ``features`` dataset.
        """
        largest: tuple[int, str] | None = None
        for patient, paths in bags.items():
            for path in paths:
                d = self._file_shape(path)[1]
                self._dims.setdefault(d, path)
            if len(self._dims) > 1:
                examples = "; ".join(f"D = {d}: {path}" for d, path in sorted(self._dims.items()))
                raise ValueError(f"the cohort's feature files mix dimensions ({examples}); every slide of a cohort "
                                 f"must be encoded with the same encoder: re-extract the odd files (slides.encoder) "
                                 f"or point features_dir at one encoder's output.")
            size = self.bag_bytes(patient, paths)
            if largest is None or size > largest[0]:
                largest = (size, patient)
        if largest is not None and largest[0] > self.budget:
            size, patient = largest
            raise ValueError(f"patient {patient}'s bag ({', '.join(bags[patient])}: {self.shape(patient, bags[patient])[0]}"
                             f" patches) needs {size / GIB:.2f} GiB in the feature cache, more than "
                             f"training.feature_cache_gb = {self.budget / GIB:g}; raise training.feature_cache_gb to "
                             f"at least {math.ceil(size / GIB * 100) / 100:g}.")
        return next(iter(self._dims)) if self._dims else None


def announce(items: Sequence[Any]) -> FeatureStore | None:
    """Tell the stores of the items' bags the order in which they will be asked for (read-ahead).

    Args:
        items: patient items in the order they will be loaded; those whose ``pathology`` is a :class:`Bag`
            are announced to its store.

    Returns:
        The store of the first bag (None when no item holds a :class:`Bag`).
    """
    orders: dict[int, tuple[FeatureStore, list[tuple[str, list[str]]]]] = {}
    for item in items:
        bag = item["pathology"]
        if isinstance(bag, Bag):
            orders.setdefault(id(bag.store), (bag.store, []))[1].append((bag.patient, bag.paths))
    for store, order in orders.values():
        store.plan(order)
    return next(iter(orders.values()))[0] if orders else None
