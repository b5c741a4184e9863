"""SMIL baseline: scenarios, prior reconstruction, missing draw, bi-level step, priors, checkpoint, learning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from baseline_helpers import FAMILY_DIMS, PATHOLOGY_DIM, K, make_items, synthetic

import mustsurv.models.baselines.smil  # noqa: F401  (registers "smil")
from mustsurv.models import available_models, build_model, collate
from mustsurv.models.baselines.missing import MissingModalityBaseline
from mustsurv.models.baselines.smil import SMIL, kmeans, lloyd, patient_key
from mustsurv.models.batch import PatientItem
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.survival import c_index
from mustsurv.train.trainer import (
    OptimConfig,
    load_checkpoint,
    save_checkpoint,
    train_epochs,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SMALL: dict[str, Any] = {"dim": 16, "genomics_hidden": 16, "heads": 2, "n_priors": 4, "meta_size": 6}


def kwargs(**overrides: Any) -> dict[str, Any]:
    return {**SMIL.input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), **SMALL, "n_bins": K, **overrides}


def make_model(seed: int = 0, items: list[PatientItem] | None = None, **overrides: Any) -> SMIL:
    """A small SMIL whose priors are fitted on ``items`` (8 default patients) by ``prepare``."""
    torch.manual_seed(seed)
    model = build_model("smil", **kwargs(**overrides))
    assert isinstance(model, SMIL)
    model.prepare(items if items is not None else make_items(8))
    return model


def logits(model: SMIL, items: list[PatientItem], scenario: str) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.forward_scenario(collate(items), scenario)  # type: ignore[arg-type]


def test_registered_and_predicts_finite_logits_in_every_scenario() -> None:
    assert "smil" in available_models()
    model = make_model()
    assert isinstance(model, MissingModalityBaseline)
    assert SMIL.scenarios == SCENARIOS and not SMIL.same_modalities
    batch = collate(make_items(5, seed=1))
    out = {}
    for scenario in SCENARIOS:
        out[scenario] = model.predict_logits(batch, scenario)
        assert out[scenario].shape == (5, K) and torch.isfinite(out[scenario]).all()
        assert torch.isfinite(model.predict_risk(batch, scenario)).all()
    assert not model.training
    assert (out["complete"] - out["missing_genomics"]).abs().max() > 1e-5
    assert (out["complete"] - out["missing_pathology"]).abs().max() > 1e-5
    for bad in ({"missing_rate": 1.5}, {"genomics_share": -0.1}, {"n_priors": 0}):
        with pytest.raises(ValueError):
            build_model("smil", **kwargs(**bad))


def test_trainer_step_gives_finite_loss_and_changes_parameters() -> None:
    model = make_model()
    items = make_items(8)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    priors_before = model.priors_genomics.clone()
    state = train_epochs(model, items, model.loss, model.parameters(),
                         OptimConfig(epochs=1, accumulation_steps=4, grouped=True, optimizer="adam", lr=1e-3),
                         device=torch.device("cpu"))
    logs = state.history[0]
    assert all(math.isfinite(v) for v in logs.values()) and {"surv", "kl", "recon", "missing"} <= set(logs)
    for name in ("head.fc1.weight", "recon_genomics.0.weight", "recon_pathology.0.weight",
                 "regularizer.log_sigma.weight", "pathology_encoder.embed.0.weight"):
        assert (dict(model.named_parameters())[name] - before[name]).abs().max() > 0, name
    assert (model.priors_genomics - priors_before).abs().max() > 0  # online k-means moved the priors
    assert int(model.meta_valid.sum()) == 6  # the replay ring holds the last meta_size patients


def test_missing_scenarios_read_only_the_available_modality() -> None:
    model = make_model()
    items = make_items(4, seed=2)
    other_genomics = [{**it, "genomics": [3 * v + 1 for v in it["genomics"]]} for it in items]
    other_pathology = [{**it, "pathology": it["pathology"] * -2 + 0.5} for it in items]
    no_genomics = [{**it, "genomics": None} for it in items]
    no_pathology = [{**it, "pathology": None} for it in items]
    base_g = logits(model, items, "missing_genomics")
    torch.testing.assert_close(base_g, logits(model, other_genomics, "missing_genomics"), rtol=0, atol=0)
    torch.testing.assert_close(base_g, logits(model, no_genomics, "missing_genomics"), rtol=0, atol=0)
    assert (logits(model, other_pathology, "missing_genomics") - base_g).abs().max() > 1e-4
    base_p = logits(model, items, "missing_pathology")
    torch.testing.assert_close(base_p, logits(model, other_pathology, "missing_pathology"), rtol=0, atol=0)
    torch.testing.assert_close(base_p, logits(model, no_pathology, "missing_pathology"), rtol=0, atol=0)
    assert (logits(model, other_genomics, "missing_pathology") - base_p).abs().max() > 1e-4
    # the complete scenario reads both
    base_c = logits(model, items, "complete")
    assert (logits(model, other_genomics, "complete") - base_c).abs().max() > 1e-4
    assert (logits(model, other_pathology, "complete") - base_c).abs().max() > 1e-4
    with pytest.raises(ValueError, match="needs genomics"):
        logits(model, no_genomics, "complete")


def test_reconstruction_is_a_convex_combination_of_the_priors_and_drives_the_missing_output() -> None:
    model = make_model().eval()
    items = make_items(4, seed=3)
    batch = collate(items)
    with torch.no_grad():
        h_p = model.encode_pathology(batch)
        w = model.prior_weights(h_p, "genomics")
        assert w.shape == (4, SMALL["n_priors"]) and torch.allclose(w.sum(1), torch.ones(4))
        torch.testing.assert_close(model.reconstruct(h_p, "genomics"), w @ model.priors_genomics)
    complete, miss_g, miss_p = (logits(model, items, s) for s in SCENARIOS)
    model.priors_genomics = model.priors_genomics + torch.randn_like(model.priors_genomics)
    torch.testing.assert_close(logits(model, items, "complete"), complete)
    torch.testing.assert_close(logits(model, items, "missing_pathology"), miss_p)
    assert (logits(model, items, "missing_genomics") - miss_g).abs().max() > 1e-4
    model.priors_pathology = model.priors_pathology * 0.0
    assert (logits(model, items, "missing_pathology") - miss_p).abs().max() > 1e-4
    torch.testing.assert_close(logits(model, items, "complete"), complete)


def test_a_batch_equals_its_patients_one_at_a_time() -> None:
    model = make_model()
    items = make_items(4, seed=4)
    for scenario in SCENARIOS:
        together = logits(model, items, scenario)
        alone = torch.cat([logits(model, [it], scenario) for it in items])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_missing_rate_is_honoured(rate: float) -> None:
    model = make_model(missing_rate=rate, recon_weight=0.0, kl_weight=0.0)
    drop_g, drop_p = model.draw_missing(500)
    assert not bool((drop_g & drop_p).any())
    assert float((drop_g | drop_p).float().mean()) == rate
    model.train()
    loss, logs = model.loss(collate(make_items(6, seed=5)))
    assert logs["missing"] == rate
    loss.backward()
    # the reconstruction networks are trained by the survival loss only through the missing path
    grads = [p.grad for p in model.recon_genomics.parameters()] + [p.grad for p in model.recon_pathology.parameters()]
    has_grad = any(g is not None and g.abs().max() > 0 for g in grads)
    assert has_grad == (rate == 1.0)


def test_missing_draw_rate_and_share_are_frequencies() -> None:
    torch.manual_seed(0)
    model = build_model("smil", **kwargs(missing_rate=0.3, genomics_share=0.25))
    drop_g, drop_p = model.draw_missing(20000)
    assert abs(float((drop_g | drop_p).float().mean()) - 0.3) < 0.02
    assert abs(float(drop_g.float().mean()) - 0.3 * 0.25) < 0.015
    assert abs(float(drop_p.float().mean()) - 0.3 * 0.75) < 0.02


def test_meta_gradient_reaches_the_regularizer_only_through_the_inner_step() -> None:
    items = make_items(8, seed=6)
    grads = {}
    for inner_lr in (0.0, 0.1):
        model = make_model(items=items, inner_lr=inner_lr, kl_weight=0.0, missing_rate=0.0)
        model.train()
        with torch.no_grad():
            model.loss(collate(items[:4]))  # fills the replay memory with four patients
        assert int(model.meta_valid.sum()) == 4
        model.zero_grad()
        loss, logs = model.loss(collate(items[4:]))
        loss.backward()
        assert logs["meta_patients"] == (4 if inner_lr > 0 else 0)
        g = model.regularizer.log_sigma.weight.grad
        grads[inner_lr] = 0.0 if g is None else float(g.abs().max())
    assert grads[0.0] == 0.0 and grads[0.1] > 0.0
    # the ring keeps the last meta_size (6) patients: 6, 7 overwrote 0, 1; 2..5 remain
    stored = set(model.meta_key[model.meta_valid].tolist())
    assert stored == {patient_key(it["patient_id"]) for it in items[2:]}
    # the current batch's own patients are never in the meta-train set: 2 and 3 are left out
    _, logs = model.loss(collate(items[:4]))
    assert logs["meta_patients"] == 4


def test_kmeans_recovers_separated_clusters_and_lloyd_keeps_identities() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.1 * torch.randn(30, 2, generator=gen) for c in centres])
    found = kmeans(x, 3, seed=0)
    dist = torch.cdist(centres, found)
    assert float(dist.min(dim=1).values.max()) < 0.2
    shifted = found + 0.5
    refined = lloyd(x, shifted, 10)
    torch.testing.assert_close(refined, found, atol=1e-4, rtol=0)  # each centroid returns to its own cluster
    few = kmeans(x[:2], 4, seed=0)  # fewer points than priors: points reused
    assert few.shape == (4, 2) and torch.isfinite(few).all()


def test_prepare_fits_priors_to_embeddings_and_finish_refines_them() -> None:
    torch.manual_seed(0)
    model = build_model("smil", **kwargs())
    assert not bool(model.priors_ready)
    items = make_items(12, seed=7)
    model.prepare(items)
    assert bool(model.priors_ready) and model.training
    h_p, h_g = model.embeddings(items)
    # every prior is the mean of the embeddings assigned to it (a Lloyd fixed point)
    assign = torch.cdist(h_g, model.priors_genomics).argmin(1)
    for k in assign.unique().tolist():
        torch.testing.assert_close(model.priors_genomics[k], h_g[assign == k].mean(0), atol=1e-4, rtol=1e-4)
    model.train()
    old = model.priors_pathology.clone()
    nearest = torch.cdist(h_p[:1], old).argmin()
    model._update_priors(h_p[:1], h_g[:1])
    moved = (model.priors_pathology - old).norm(dim=1)
    assert float(moved[nearest]) > 0 and float(moved.sum() - moved[nearest]) == 0.0
    expected = old[nearest] + model.prior_momentum * (h_p[0] - old[nearest])
    torch.testing.assert_close(model.priors_pathology[nearest], expected)
    model.finish(items)
    assign = torch.cdist(h_p, model.priors_pathology).argmin(1)
    for k in assign.unique().tolist():
        torch.testing.assert_close(model.priors_pathology[k], h_p[assign == k].mean(0), atol=1e-4, rtol=1e-4)


def test_checkpoint_round_trip_predicts_identically(tmp_path: Path) -> None:
    items = make_items(8, seed=8)
    model = make_model(items=items)
    train_epochs(model, items, model.loss, model.parameters(),
                 OptimConfig(epochs=2, accumulation_steps=4, grouped=True, optimizer="adam", lr=1e-3),
                 device=torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        model.finish(items)
    path = tmp_path / "smil.pt"
    save_checkpoint(path, model, "smil", kwargs())
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["name"] == "smil" and isinstance(loaded, SMIL)
    torch.testing.assert_close(loaded.priors_genomics, model.priors_genomics)
    test = collate(make_items(5, seed=9))
    for scenario in SCENARIOS:
        torch.testing.assert_close(loaded.predict_logits(test, scenario), model.predict_logits(test, scenario),
                                   rtol=0, atol=0)


def test_learns_a_risk_signal_in_every_scenario() -> None:
    train = synthetic(32, 0)
    model = make_model(items=train, n_priors=6)
    train_epochs(model, train, model.loss, model.parameters(),
                 OptimConfig(epochs=12, accumulation_steps=4, grouped=True, optimizer="adam", lr=3e-3,
                             weight_decay=0.0), device=torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        model.finish(train)
    batch = collate(train)
    scores = {s: c_index(batch.time, batch.event, model.predict_risk(batch, s)) for s in SCENARIOS}
    assert scores["complete"] > 0.7 and scores["missing_genomics"] > 0.65 and scores["missing_pathology"] > 0.6, scores
