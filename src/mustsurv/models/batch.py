"""The patient record the trainer iterates and its collation into a batch for the models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypedDict

import torch
from torch import Tensor


class PatientItem(TypedDict):
    """One patient as a dataset yields it.

    Attributes:
        patient_id: patient identifier.
        pathology: (N, D_path) patch features of all the patient's slides, or None when absent.
        genomics: the six family vectors, each (d_k,), or None when absent.
        time: observed time.
        event: 1 = death observed, 0 = censored.
        bin: the discrete time bin (0..K-1).
    """

    patient_id: str
    pathology: Tensor | None
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


def _floating(t: Tensor) -> Tensor:
    """``t`` unchanged if floating point (float32 or float64), else as float32."""
    return t if t.is_floating_point() else t.float()


def collate(items: Sequence[PatientItem]) -> SurvivalBatch:
    """Collate patient dicts into a :class:`SurvivalBatch` (bags stay a list: lengths differ).

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
        pathology=[None if it["pathology"] is None else _floating(it["pathology"]) for it in items],
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
