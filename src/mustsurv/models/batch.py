"""The patient record the trainer iterates, its collation into a batch for the models, and the token budget.

A patient's pathology is a (N, D) tensor or a lazy bag (anything with ``shape`` and ``load()``, e.g.
:class:`mustsurv.cohort.store.Bag`), which :func:`collate` loads. Whatever runs the pathology encoder on many
patients cuts them with :func:`item_buckets`: consecutive patients, at most ``max_items`` of them, whose bags
padded to the longest hold at most the process's token budget (``training.max_tokens_per_batch``, set by
the workflow's scripts with :func:`set_max_tokens`); a bag above the budget goes alone. Only the models'
D-dimensional outputs are then concatenated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, Sequence, TypedDict, TypeVar

import torch
from torch import Tensor


class LazyBag(Protocol):
    """A bag that is read when loaded (:class:`mustsurv.cohort.store.Bag`)."""

    @property
    def shape(self) -> tuple[int, int]:
        """(N, D) without reading the features."""

    def load(self) -> Tensor:
        """The (N, D) float32 bag."""


class PatientItem(TypedDict):
    """One patient as a dataset yields it.

    Attributes:
        patient_id: patient identifier.
        pathology: (N, D_path) patch features of all the patient's slides (a tensor or a :class:`LazyBag`), or
            None when absent.
        genomics: the six family vectors, each (d_k,), or None when absent.
        time: observed time.
        event: 1 = death observed, 0 = censored.
        bin: the discrete time bin (0..K-1).
    """

    patient_id: str
    pathology: Tensor | LazyBag | None
    genomics: list[Tensor] | None
    time: float
    event: int
    bin: int


@dataclass
class SurvivalBatch:
    """A collated batch of B patients.

    Attributes:
        patient_ids: B identifiers.
        pathology: B bags, each (N_i, D_path) or None.
        genomics: one (B, d_k) tensor per family (zeros where ``has_genomics`` is False), or None if no
            patient of the batch has genomics.
        has_pathology: (B,) bool availability mask of the pathology bags.
        has_genomics: (B,) bool availability mask of the genomic families.
        time: (B,) float observed times.
        event: (B,) long, 1 = death observed.
        bins: (B,) long discrete time bins.
    """

    patient_ids: list[str]
    pathology: list[Tensor | None]
    genomics: list[Tensor] | None
    has_pathology: Tensor
    has_genomics: Tensor
    time: Tensor
    event: Tensor
    bins: Tensor

    def __len__(self) -> int:
        """Number of patients B."""
        return len(self.patient_ids)

    def to(self, device: torch.device | str) -> "SurvivalBatch":
        """Copy the batch with every tensor on ``device``.

        Args:
            device: target device.

        Returns:
            The moved batch.
        """
        return SurvivalBatch(
            patient_ids=self.patient_ids,
            pathology=[None if p is None else p.to(device) for p in self.pathology],
            genomics=None if self.genomics is None else [o.to(device) for o in self.genomics],
            has_pathology=self.has_pathology.to(device),
            has_genomics=self.has_genomics.to(device),
            time=self.time.to(device),
            event=self.event.to(device),
            bins=self.bins.to(device),
        )


def load_bag(bag: Tensor | LazyBag) -> Tensor:
    """The bag as a tensor (a lazy bag is loaded).

    Args:
        bag: (N, D) tensor or lazy bag.

    Returns:
        (N, D) tensor.
    """
    return bag if isinstance(bag, Tensor) else bag.load()


def bag_length(bag: Tensor | LazyBag | None) -> int:
    """N of a bag (0 for None), without loading a lazy one.

    Args:
        bag: (N, D) tensor, lazy bag or None.

    Returns:
        N.
    """
    return 0 if bag is None else int(bag.shape[0])


_MAX_TOKENS: list[int | None] = [None]


def set_max_tokens(max_tokens: int | None) -> None:
    """Set this process's token budget (``training.max_tokens_per_batch``; None: no limit).

    Args:
        max_tokens: the most bag tokens (patients x longest bag) one forward pass may hold.

    Raises:
        ValueError: a budget below 1.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"training.max_tokens_per_batch must be >= 1, got {max_tokens}")
    _MAX_TOKENS[0] = max_tokens


def max_tokens() -> int | None:
    """This process's token budget (None: no limit)."""
    return _MAX_TOKENS[0]


@contextlib.contextmanager
def token_budget(value: int | None) -> Iterator[None]:
    """Set the token budget inside a ``with`` block (restored after it).

    Args:
        value: the budget (None: no limit).
    """
    before = max_tokens()
    set_max_tokens(value)
    try:
        yield
    finally:
        set_max_tokens(before)


def token_buckets(lengths: Sequence[int], budget: int | None, max_items: int) -> list[list[int]]:
    """Cut positions ``0..n-1`` into consecutive buckets whose padded size stays within ``budget``.

    A bucket holds at most ``max_items`` positions and ``len(bucket) * max(lengths[bucket]) <= budget``;
    a length above the budget forms a bucket of its own. A length of 0 (no bag) counts as 1.

    Args:
        lengths: N of each patient's bag, in order.
        budget: the token budget (None: only ``max_items`` limits a bucket).
        max_items: the most positions per bucket (>= 1).

    Returns:
        The buckets, in order, together covering every position once.

    Raises:
        ValueError: ``max_items`` < 1.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    buckets: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, n in enumerate(lengths):
        grown = max(longest, int(n), 1)
        if current and (len(current) >= max_items or (budget is not None and (len(current) + 1) * grown > budget)):
            buckets.append(current)
            current, grown = [], max(int(n), 1)
        current.append(i)
        longest = grown
    if current:
        buckets.append(current)
    return buckets


Item = TypeVar("Item")


def item_buckets(items: Sequence[Item], max_items: int) -> list[list[Item]]:
    """Cut patient items into :func:`token_buckets` under this process's token budget.

    Args:
        items: patient items (with a ``pathology`` entry).
        max_items: the most patients per bucket (the caller's batch size).

    Returns:
        The buckets of items, in order.
    """
    lengths = [bag_length(it["pathology"]) for it in items]  # type: ignore[index]
    return [[items[i] for i in bucket] for bucket in token_buckets(lengths, max_tokens(), max_items)]


def _floating(t: Tensor) -> Tensor:
    """``t`` unchanged if floating point (float32 or float64), else as float32."""
    return t if t.is_floating_point() else t.float()


def collate(items: Sequence[PatientItem]) -> SurvivalBatch:
    """Collate patient dicts into a :class:`SurvivalBatch` (bags stay a list: lengths differ; lazy bags are loaded).

    Args:
        items: B patient items.

    Returns:
        The batch.

    Raises:
        ValueError: ``items`` is empty, or a patient's genomic families differ in number or shape.
    """
    if not items:
        raise ValueError("cannot collate an empty list of patients")
    has_genomics = [it["genomics"] is not None for it in items]
    genomics: list[Tensor] | None = None
    if any(has_genomics):
        template = next(it["genomics"] for it in items if it["genomics"] is not None)
        genomics = []
        for k, ref in enumerate(template):
            rows = []
            for it in items:
                vecs = it["genomics"]
                if vecs is None:
                    rows.append(torch.zeros_like(_floating(ref)))
                    continue
                if len(vecs) != len(template) or vecs[k].shape != ref.shape:
                    raise ValueError(
                        f"patient {it['patient_id']}: genomic families have shapes "
                        f"{[tuple(v.shape) for v in vecs]}, expected {[tuple(v.shape) for v in template]}"
                    )
                rows.append(_floating(vecs[k]))
            genomics.append(torch.stack(rows))
    return SurvivalBatch(
        patient_ids=[str(it["patient_id"]) for it in items],
        pathology=[None if it["pathology"] is None else _floating(load_bag(it["pathology"])) for it in items],
        genomics=genomics,
        has_pathology=torch.tensor([it["pathology"] is not None for it in items]),
        has_genomics=torch.tensor(has_genomics),
        time=torch.tensor([float(it["time"]) for it in items]),
        event=torch.tensor([int(it["event"]) for it in items]),
        bins=torch.tensor([int(it["bin"]) for it in items]),
    )


def subset(batch: SurvivalBatch, rows: Sequence[int]) -> SurvivalBatch:
    """Take the patients ``rows`` of ``batch`` (in that order) as a batch of their own.

    Args:
        batch: the batch.
        rows: row indices into ``batch``.

    Returns:
        The sub-batch.
    """
    idx = torch.as_tensor(list(rows), dtype=torch.long, device=batch.bins.device)
    return SurvivalBatch(
        patient_ids=[batch.patient_ids[i] for i in rows],
        pathology=[batch.pathology[i] for i in rows],
        genomics=None if batch.genomics is None else [o[idx] for o in batch.genomics],
        has_pathology=batch.has_pathology[idx],
        has_genomics=batch.has_genomics[idx],
        time=batch.time[idx],
        event=batch.event[idx],
        bins=batch.bins[idx],
    )
