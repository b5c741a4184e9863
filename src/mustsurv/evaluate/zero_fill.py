"""Zero-filling, the naive answer to a missing modality: the complete-data model with the missing
modality's inputs replaced by zeros (standardised genomics -> the training mean; pathology -> a bag of
zero patch features of the same size). MUST's missing-modality inference should degrade less."""

from __future__ import annotations

from typing import Literal, Sequence

import torch

from mustsurv.cohort.store import announce
from mustsurv.models.batch import PatientItem, collate, item_buckets
from mustsurv.models.must import MUST
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY
from mustsurv.survival.metrics import c_index

Modality = Literal["pathology", "genomics"]


def zero_filled(items: Sequence[PatientItem], modality: Modality) -> list[PatientItem]:
    """Copy the complete patients with one modality's tensors set to zeros of the same shapes.

    Args:
        items: the patients; those lacking a modality are skipped.
        modality: ``"pathology"`` or ``"genomics"``.

    Returns:
        The zero-filled copies.

    Raises:
        ValueError: unknown modality.
    """
    out = []
    for it in items:
        if it["pathology"] is None or it["genomics"] is None:
            continue
        new = dict(it)
        if modality == PATHOLOGY:
            bag = it["pathology"]  # a lazy bag is not read: its shape comes from the files' metadata
            new["pathology"] = torch.zeros_like(bag) if isinstance(bag, torch.Tensor) else torch.zeros(bag.shape)
        elif modality == GENOMICS:
            new["genomics"] = [torch.zeros_like(v) for v in it["genomics"]]
        else:
            raise ValueError(f"modality is 'pathology' or 'genomics', not {modality!r}")
        out.append(new)
    return out


@torch.no_grad()
def zero_fill_cindex(model: MUST, items: Sequence[PatientItem], modality: Modality, batch_size: int = 16) -> float:
    """C-index of the model's complete-data prediction with one modality zero-filled (complete patients only).

    Args:
        model: the trained MUST.
        items: the patients.
        modality: the modality to zero-fill.
        batch_size: patients per forward pass.

    Returns:
        The C-index.

    Raises:
        ValueError: unknown modality.
    """
    model.eval()
    filled = zero_filled(items, modality)
    device = next(model.parameters()).device
    risks = []
    announce(filled)
    for bucket in item_buckets(filled, batch_size):
        batch = collate(bucket).to(device)
        risks.append(model.predict_risk(batch, "complete").cpu())
    risk = torch.cat(risks).numpy()
    return c_index([float(it["time"]) for it in filled], [int(it["event"]) for it in filled], risk)
