"""Unpaired training patients (supplement §8.2): unpairing, and all three stages trained on them."""

from __future__ import annotations

import pytest
import torch
from test_models_must import tiny_items

from mustsurv.train.must import unpair

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_unpair_drops_one_modality_from_the_requested_share_half_each() -> None:
    items = tiny_items(10)
    out = unpair(items, 0.4, seed=3)
    no_g = [it for it in out if it["genomics"] is None]
    no_p = [it for it in out if it["pathology"] is None]
    assert len(no_g) == 2 and len(no_p) == 2 and not set(map(id, no_g)) & set(map(id, no_p))
    assert all(it["pathology"] is not None and it["genomics"] is not None for it in items)  # the input is untouched
    assert [it["patient_id"] for it in out] == [it["patient_id"] for it in items]
    again = unpair(items, 0.4, seed=3)  # same seed, same patients unpaired the same way
    assert [(it["pathology"] is None, it["genomics"] is None) for it in again] == [
        (it["pathology"] is None, it["genomics"] is None) for it in out]
    other = unpair(items, 0.4, seed=4)
    assert [it["genomics"] is None for it in other] != [it["genomics"] is None for it in out]
    with pytest.raises(ValueError, match="two pairs"):
        unpair(items, 0.9, seed=0)


def test_unpaired_training_runs_all_three_stages() -> None:
    """A 50 %-unpaired training set goes through stage 1, stage 2 and the surrogate-conditioned LDMs."""
    from test_models_must import tiny_must

    from mustsurv.train.must import (
        predict,
        train_stage1,
        train_stage2,
        train_stage3,
        training_patients,
    )
    from mustsurv.train.trainer import OptimConfig

    torch.manual_seed(0)
    model = tiny_must(ldm_condition="surrogate")
    items = unpair(tiny_items(8), 0.5, seed=0)
    assert len(training_patients(items, unpaired=False)) == 4 and len(training_patients(items, unpaired=True)) == 8
    lonely = [dict(it, genomics=None) for it in items]
    with pytest.raises(ValueError, match="both pathology and genomics"):
        training_patients(lonely, unpaired=True)  # the decomposition needs at least one pair
    cfg = OptimConfig(epochs=1, lr=1e-3, accumulation_steps=4, grouped=True)
    s1 = train_stage1(model, items, cfg, unpaired=True)
    s2 = train_stage2(model, items, cfg, unpaired=True)
    assert s1.epochs_done == s2.epochs_done == 1 and all(torch.isfinite(torch.tensor(v)) for v in s2.history[0].values())
    history = train_stage3(model, items, steps=3, lr=1e-3, batch_size=4)
    assert list(history) == ["pathology", "genomics"]
    pred = predict(model, tiny_items(3, seed=5), n_samples=2, steps=3)
    assert len(pred) == 9 and pred["risk"].notna().all()
