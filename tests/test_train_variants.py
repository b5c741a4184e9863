"""MUST variants of the analysis experiments: naming, unpairing, and one variant trained end to end."""

from __future__ import annotations

import pytest
import torch

from mustsurv.train.variants import must_variants, unpair

from test_models_must import tiny_items

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_variants_cover_the_paper_experiments_and_skip_the_main_rank() -> None:
    variants = must_variants({"ranks": [4, 8, 16, 32], "unpaired_fractions": [0.2, 0.5]}, {"dim": 64, "rank": 16})
    assert list(variants) == ["no_warmup", "ldm_no_cls", "rank4", "rank8", "rank32", "unpaired20", "unpaired50"]
    assert variants["no_warmup"] == {"warmup": False}
    assert variants["ldm_no_cls"]["model"] == {"ldm_cls": False} and variants["ldm_no_cls"]["from_stage2"]
    assert variants["rank8"] == {"model": {"rank": 8}}
    assert variants["unpaired50"] == {"unpaired": 0.5, "model": {"ldm_condition": "surrogate"}}


def test_default_ranks_scale_with_the_width() -> None:
    """Left out, the ranks are D/16 … D/2: the paper's 16-128 at D = 256, 4-32 at the demo's D = 64."""
    assert list(must_variants({}, {"dim": 256, "rank": 64})) == ["no_warmup", "ldm_no_cls", "rank16", "rank32",
                                                                 "rank128"]
    assert [v for v in must_variants({}, {"dim": 64, "rank": 16}) if v.startswith("rank")] == ["rank4", "rank8",
                                                                                               "rank32"]


def test_ranks_at_or_above_the_width_are_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"ablations.ranks \[64, 128\].*dim = 64"):
        must_variants({"ranks": [16, 64, 128]}, {"dim": 64, "rank": 16})


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

    from mustsurv.train.must import predict, train_stage1, train_stage2, train_stage3, training_patients
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
