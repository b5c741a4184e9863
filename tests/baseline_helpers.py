"""Synthetic patients shared by the baseline model tests."""

from __future__ import annotations

import torch

from mustsurv.models.batch import PatientItem

PATH_DIM = 12
FAMILY_DIMS = [3, 5, 4, 2, 6, 3]
K = 4


def make_items(n: int = 8, seed: int = 0, path: bool = True, omics: bool = True) -> list[PatientItem]:
    """``n`` patients (ids ``P<seed>_<i>``, unique across seeds) with bags of 5..24 patches and six family
    vectors (either left out with ``path``/``omics`` False); bins and events vary."""
    gen = torch.Generator().manual_seed(seed)
    items: list[PatientItem] = []
    for i in range(n):
        n_patches = int(torch.randint(5, 25, (1,), generator=gen))
        items.append({
            "patient_id": f"P{seed}_{i:02d}",
            "path": torch.randn(n_patches, PATH_DIM, generator=gen) if path else None,
            "omics": [torch.randn(d, generator=gen) for d in FAMILY_DIMS] if omics else None,
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
        path = torch.randn(int(torch.randint(5, 12, (1,), generator=gen)), PATH_DIM, generator=gen)
        path[:, :3] += 1.5 * r[i]
        omics = [torch.randn(d, generator=gen) for d in FAMILY_DIMS]
        for v in omics:
            v[:2] += 1.5 * r[i]
        b = 3 - int((r[i] > cuts).sum())
        items.append({"patient_id": f"S{seed}_{i}", "path": path, "omics": omics,
                      "time": float(10 * b + 5 + i / n), "event": 1, "bin": b})
    return items
