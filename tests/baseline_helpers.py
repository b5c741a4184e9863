"""Synthetic patients shared by the baseline model tests."""

from __future__ import annotations

import torch

from mustsurv.models.batch import PatientItem

PATHOLOGY_DIM = 12
FAMILY_DIMS = [3, 5, 4, 2, 6, 3]
K = 4


def make_items(n: int = 8, seed: int = 0, pathology: bool = True, genomics: bool = True) -> list[PatientItem]:
    """``n`` patients (ids ``P<seed>_<i>``, unique across seeds) with bags of 5..24 patches and six family
    vectors (either left out with ``pathology``/``genomics`` False); bins and events vary."""
    gen = torch.Generator().manual_seed(seed)
    items: list[PatientItem] = []
    for i in range(n):
        n_patches = int(torch.randint(5, 25, (1,), generator=gen))
        items.append({
            "patient_id": f"P{seed}_{i:02d}",
            "pathology": torch.randn(n_patches, PATHOLOGY_DIM, generator=gen) if pathology else None,
            "genomics": [torch.randn(d, generator=gen) for d in FAMILY_DIMS] if genomics else None,
            "time": float(10 + 5 * i),
            "event": i % 2,
            "bin": i % K,
        })
    return items


def synthetic(n: int, seed: int) -> list[PatientItem]:
    """Risk r_i shifts three patch features and two features of every gene family; earlier bins for
    larger r; every death observed."""
    gen = torch.Generator().manual_seed(seed)
    r = torch.randn(n, generator=gen)
    cuts = torch.quantile(r, torch.tensor([0.25, 0.5, 0.75]))
    items: list[PatientItem] = []
    for i in range(n):
        bag = torch.randn(int(torch.randint(5, 12, (1,), generator=gen)), PATHOLOGY_DIM, generator=gen)
        bag[:, :3] += 1.5 * r[i]
        families = [torch.randn(d, generator=gen) for d in FAMILY_DIMS]
        for v in families:
            v[:2] += 1.5 * r[i]
        b = 3 - int((r[i] > cuts).sum())
        items.append({"patient_id": f"S{seed}_{i}", "pathology": bag, "genomics": families,
                      "time": float(10 * b + 5 + i / n), "event": 1, "bin": b})
    return items
