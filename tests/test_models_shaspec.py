"""ShaSpec baseline: scenarios, losses, shared/specific encoders, missing-modality substitution, dropout."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from baseline_helpers import FAMILY_DIMS, PATHOLOGY_DIM, K, make_items

import mustsurv.models.baselines.shaspec  # noqa: F401  (registers "shaspec")
from mustsurv.models import available_models, build_model, collate
from mustsurv.models.baselines.missing import MissingModalityBaseline, strip_modality
from mustsurv.models.baselines.shaspec import ShaSpec, symmetric_kl
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.train.trainer import (
    OptimConfig,
    load_checkpoint,
    save_checkpoint,
    train_epochs,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SMALL: dict[str, Any] = {"dim": 16, "genomics_hidden": 16, "heads": 2}


def kwargs(**overrides: Any) -> dict[str, Any]:
    return {**ShaSpec.input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), **SMALL, "n_bins": K, **overrides}


def make_model(seed: int = 0, **overrides: Any) -> ShaSpec:
    torch.manual_seed(seed)
    model = build_model("shaspec", **kwargs(**overrides))
    assert isinstance(model, ShaSpec)
    return model


def test_registered_and_predicts_finite_logits_in_every_scenario() -> None:
    assert "shaspec" in available_models()
    model = make_model()
    assert isinstance(model, MissingModalityBaseline)
    assert ShaSpec.scenarios == SCENARIOS and not ShaSpec.same_modalities
    batch = collate(make_items(5))
    outputs = {}
    for scenario in SCENARIOS:
        logits = model.predict_logits(batch, scenario)
        assert logits.shape == (5, K) and torch.isfinite(logits).all()
        risk = model.predict_risk(batch, scenario)
        assert risk.shape == (5,) and torch.isfinite(risk).all()
        outputs[scenario] = logits
    assert not model.training
    # the three scenarios give different predictions (the substitute is not the real feature)
    assert (outputs["complete"] - outputs["missing_genomics"]).abs().max() > 1e-5
    assert (outputs["complete"] - outputs["missing_pathology"]).abs().max() > 1e-5
    with pytest.raises(ValueError, match="modality_dropout"):
        make_model(modality_dropout=1.5)


def test_loss_has_every_term_and_one_trainer_step_changes_every_part() -> None:
    model = make_model(align_weight=0.3, domain_weight=0.7)
    items = make_items(8)
    model.eval()
    with torch.no_grad():
        loss, logs = model.loss(collate(items))
    assert set(logs) == {"surv", "align", "domain", "dropped"}
    assert all(math.isfinite(v) for v in logs.values()) and math.isfinite(float(loss))
    assert logs["align"] > 0 and logs["domain"] > 0 and logs["dropped"] == 0.0  # no dropout in eval mode
    torch.testing.assert_close(float(loss), logs["surv"] + 0.3 * logs["align"] + 0.7 * logs["domain"],
                               atol=1e-5, rtol=1e-5)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = OptimConfig(epochs=1, lr=1e-3, optimizer="adam", accumulation_steps=4, grouped=True, seed=0)
    state = train_epochs(model, items, model.loss, model.parameters(), cfg, device=torch.device("cpu"))
    assert state.epochs_done == 1
    assert {"loss", "surv", "align", "domain", "dropped"} <= set(state.history[0])
    after = model.state_dict()
    for part in ("pathology_embed.embed.0.weight", "genomics_embed.encoder.tokenizer.mlps.0.0.weight",
                 "shared.0.weight", "specific.pathology.0.weight", "specific.genomics.0.weight",
                 "domain_classifier.weight", "fusion.weight", "head.3.weight"):
        assert not torch.equal(before[part], after[part]), part


@pytest.mark.parametrize("scenario", ["missing_genomics", "missing_pathology"])
def test_missing_scenario_reads_only_the_kept_modality(scenario: str) -> None:
    model = make_model().eval()
    items = make_items(3, seed=1)
    if scenario == "missing_genomics":
        other_removed = [{**it, "genomics": [v * -3 + 1 for v in it["genomics"]]} for it in items]
        other_kept = [{**it, "pathology": it["pathology"] + 1.0} for it in items]
    else:
        other_removed = [{**it, "pathology": it["pathology"] * 5 - 2} for it in items]
        other_kept = [{**it, "genomics": [v + 1.0 for v in it["genomics"]]} for it in items]
    with torch.no_grad():
        base = model.forward_scenario(collate(items), scenario)  # the batch still holds both modalities
        removed_changed = model.forward_scenario(collate(other_removed), scenario)
        stripped = model.forward_scenario(strip_modality(collate(items), scenario), scenario)
        kept_changed = model.forward_scenario(collate(other_kept), scenario)
    torch.testing.assert_close(base, removed_changed, atol=0, rtol=0)
    torch.testing.assert_close(base, stripped, atol=0, rtol=0)
    torch.testing.assert_close(base, model.predict_logits(collate(other_removed), scenario), atol=0, rtol=0)
    assert (kept_changed - base).abs().max() > 1e-4


def test_complete_scenario_uses_both_modalities() -> None:
    model = make_model().eval()
    items = make_items(3, seed=2)
    with torch.no_grad():
        base = model.predict_logits(collate(items), "complete")
        other_pathology = model.predict_logits(collate([{**it, "pathology": it["pathology"] * 2} for it in items]),
                                               "complete")
        other_genomics = model.predict_logits(
            collate([{**it, "genomics": [v + 1 for v in it["genomics"]]} for it in items]), "complete")
    assert (other_pathology - base).abs().max() > 1e-4
    assert (other_genomics - base).abs().max() > 1e-4


def test_a_missing_modality_is_replaced_by_the_shared_feature_of_the_available_one() -> None:
    model = make_model().eval()
    batch = collate(make_items(4, seed=3))
    with torch.no_grad():
        full = model.features(batch, *model.scenario_masks(4, "complete"))
        no_g = model.features(strip_modality(batch, "missing_genomics"), *model.scenario_masks(4, "missing_genomics"))
        no_p = model.features(strip_modality(batch, "missing_pathology"),
                              *model.scenario_masks(4, "missing_pathology"))
        # the shared feature is the shared encoder on the modality's input embedding
        torch.testing.assert_close(full.shared_pathology, model.shared(model.pathology_embed(model.bags(batch))))
        torch.testing.assert_close(full.shared_genomics, model.shared(model.genomics_embed(model.families(batch))))
        # complete: residual fusion of each modality's own shared and specific feature
        torch.testing.assert_close(full.fused_pathology, full.shared_pathology + model.fusion(
            torch.cat([full.shared_pathology, full.specific_pathology], dim=-1)))
    # missing genomics: the genomic slot holds the pathology shared feature, the pathology slot is unchanged
    torch.testing.assert_close(no_g.fused_genomics, full.shared_pathology, atol=0, rtol=0)
    torch.testing.assert_close(no_g.fused_pathology, full.fused_pathology)
    assert not no_g.keep_genomics.any() and float(no_g.specific_genomics.abs().max()) == 0.0
    # missing pathology: the pathology slot holds the genomic shared feature
    torch.testing.assert_close(no_p.fused_pathology, full.shared_genomics, atol=0, rtol=0)
    torch.testing.assert_close(no_p.fused_genomics, full.fused_genomics)
    # and the head reads exactly these features
    torch.testing.assert_close(model.logits_from(no_g), model.predict_logits(batch, "missing_genomics"))
    torch.testing.assert_close(model.logits_from(no_p), model.predict_logits(batch, "missing_pathology"))


def test_one_shared_encoder_for_both_modalities_and_separate_specific_ones() -> None:
    model = make_model().eval()
    batch = collate(make_items(3, seed=4))
    calls: list[torch.Tensor] = []
    handle = model.shared.register_forward_hook(lambda _m, inp, _out: calls.append(inp[0]))
    with torch.no_grad():
        feats = model.features(batch, *model.scenario_masks(3, "complete"))
        pathology_in = model.pathology_embed(model.bags(batch))
        genomics_in = model.genomics_embed(model.families(batch))
    handle.remove()
    assert len(calls) == 2  # the same module encodes both modalities
    torch.testing.assert_close(calls[0], pathology_in)
    torch.testing.assert_close(calls[1], genomics_in)
    spec_p, spec_g = model.specific["pathology"], model.specific["genomics"]
    assert spec_p is not spec_g
    assert {id(p) for p in spec_p.parameters()}.isdisjoint(id(p) for p in spec_g.parameters())
    assert {id(p) for p in model.shared.parameters()}.isdisjoint(id(p) for p in model.specific.parameters())
    with torch.no_grad():
        model.shared[0].weight.add_(0.5 * torch.randn_like(model.shared[0].weight))
        moved = model.features(batch, *model.scenario_masks(3, "complete"))
    assert (moved.shared_pathology - feats.shared_pathology).abs().max() > 1e-4
    assert (moved.shared_genomics - feats.shared_genomics).abs().max() > 1e-4
    torch.testing.assert_close(moved.specific_pathology, feats.specific_pathology)
    with torch.no_grad():
        spec_p[0].weight.add_(0.5 * torch.randn_like(spec_p[0].weight))
        moved2 = model.features(batch, *model.scenario_masks(3, "complete"))
    assert (moved2.specific_pathology - moved.specific_pathology).abs().max() > 1e-4
    torch.testing.assert_close(moved2.specific_genomics, moved.specific_genomics)
    torch.testing.assert_close(moved2.shared_pathology, moved.shared_pathology)


def test_domain_classifier_targets_are_the_modality_labels_and_it_learns() -> None:
    model = make_model(dropout=0.0).eval()
    batch = collate(make_items(6, seed=5))
    with torch.no_grad():
        model.domain_classifier.weight.zero_()
        model.domain_classifier.bias.copy_(torch.tensor([4.0, -4.0]))  # always predicts "pathology"
        feats = model.features(batch, *model.scenario_masks(6, "complete"))
        per_patient = model.domain_loss(feats)
        # pathology (label 0) costs softplus(-8), genomics (label 1) softplus(8); averaged over both
        expected = 0.5 * (math.log1p(math.exp(-8.0)) + math.log1p(math.exp(8.0)))
        torch.testing.assert_close(per_patient, torch.full((6,), expected))
        only_pathology = model.features(batch, *model.scenario_masks(6, "missing_genomics"))
        torch.testing.assert_close(model.domain_loss(only_pathology), torch.full((6,), math.log1p(math.exp(-8.0))))
    # a toy problem: training on the domain loss alone separates the two modalities' specific features
    torch.manual_seed(0)
    model = make_model(seed=1, dropout=0.0).eval()
    opt = torch.optim.Adam(list(model.specific.parameters()) + list(model.domain_classifier.parameters()), lr=1e-2)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = model.domain_loss(model.features(batch, *model.scenario_masks(6, "complete"))).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])


def test_alignment_loss_is_symmetric_kl_and_zero_without_a_pair() -> None:
    a, b = torch.randn(3, 7), torch.randn(3, 7)
    pa, pb = a.softmax(-1), b.softmax(-1)
    expected = 0.5 * ((pa * (pa / pb).log()).sum(-1) + (pb * (pb / pa).log()).sum(-1))
    torch.testing.assert_close(symmetric_kl(a, b), expected)
    torch.testing.assert_close(symmetric_kl(a, a), torch.zeros(3))
    model = make_model().eval()
    batch = collate(make_items(4, seed=6))
    keep_pathology = torch.tensor([True, True, False, True])
    keep_genomics = torch.tensor([True, False, True, True])
    with torch.no_grad():
        feats = model.features(batch, keep_pathology, keep_genomics)
        align = model.alignment_loss(feats)
    assert float(align[1]) == 0.0 and float(align[2]) == 0.0
    assert float(align[0]) > 0 and float(align[3]) > 0


def test_modality_dropout_rate_is_honoured() -> None:
    torch.manual_seed(0)
    always, never, some = make_model(modality_dropout=1.0), make_model(modality_dropout=0.0), \
        make_model(modality_dropout=0.3)
    kp, kg = always.draw_dropout(4000)
    assert bool((kp ^ kg).all())  # every patient keeps exactly one modality
    assert 0.45 < float((~kp).float().mean()) < 0.55  # pathology and genomics dropped alike
    kp, kg = never.draw_dropout(4000)
    assert bool(kp.all() and kg.all())
    kp, kg = some.draw_dropout(4000)
    assert 0.27 < float((~(kp & kg)).float().mean()) < 0.33
    # through the trainer: rate 1 drops a modality of every training patient, rate 0 of none
    items = make_items(8)
    cfg = OptimConfig(epochs=2, lr=1e-3, optimizer="adam", accumulation_steps=4, grouped=True, seed=0)
    hist = train_epochs(always, items, always.loss, always.parameters(), cfg, device=torch.device("cpu")).history
    assert [h["dropped"] for h in hist] == [1.0, 1.0]
    assert all(h["align"] == 0.0 for h in hist)  # no patient had both shared features
    hist = train_epochs(never, items, never.loss, never.parameters(), cfg, device=torch.device("cpu")).history
    assert [h["dropped"] for h in hist] == [0.0, 0.0]


def test_a_dropped_modality_is_not_read_in_training() -> None:
    model = make_model(dropout=0.0, modality_dropout=1.0).train()
    items = make_items(6, seed=7)
    torch.manual_seed(11)
    keep_pathology, keep_genomics = model.draw_dropout(6)
    poisoned = [{**it, "pathology": it["pathology"] if kp else torch.full_like(it["pathology"], float("nan")),
                 "genomics": it["genomics"] if kg else [torch.full_like(v, float("nan")) for v in it["genomics"]]}
                for it, kp, kg in zip(items, keep_pathology.tolist(), keep_genomics.tolist())]
    batch = collate(poisoned)
    with torch.no_grad():
        feats = model.features(batch, keep_pathology, keep_genomics)
        expected = model.survival_loss(model.logits_from(feats), batch)
        torch.manual_seed(11)  # the loss draws the same dropout
        loss, logs = model.loss(batch)
    assert math.isfinite(float(loss)) and logs["dropped"] == 1.0
    torch.testing.assert_close(torch.tensor(logs["surv"]), expected)


def test_a_batch_equals_its_patients_one_at_a_time() -> None:
    model = make_model().eval()
    items = make_items(4, seed=8)
    for scenario in SCENARIOS:
        together = model.predict_logits(collate(items), scenario)
        alone = torch.cat([model.predict_logits(collate([it]), scenario) for it in items])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = make_model(seed=3)
    items = make_items(6, seed=9)
    cfg = OptimConfig(epochs=1, lr=1e-3, optimizer="adam", accumulation_steps=4, grouped=True, seed=0)
    train_epochs(model, items, model.loss, model.parameters(), cfg, device=torch.device("cpu"))
    kw = kwargs()
    save_checkpoint(tmp_path / "shaspec.pt", model, "shaspec", kw)
    loaded, ckpt = load_checkpoint(tmp_path / "shaspec.pt")
    assert isinstance(loaded, ShaSpec) and ckpt["kwargs"] == kw
    batch = collate(items)
    for scenario in SCENARIOS:
        torch.testing.assert_close(loaded.predict_logits(batch, scenario), model.predict_logits(batch, scenario),
                                   atol=0, rtol=0)
