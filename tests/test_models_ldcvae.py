"""LD-CVAE baseline: scenarios, ELBO terms, product of experts, missing-genomics path, determinism."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from baseline_helpers import FAMILY_DIMS, PATHOLOGY_DIM, K, make_items

import mustsurv.models.baselines.ldcvae  # noqa: F401  (registers "ldcvae")
from mustsurv.models import available_models, build_model, collate
from mustsurv.models.baselines.ldcvae import LDCVAE, gaussian_kl, product_of_experts
from mustsurv.models.baselines.missing import MissingModalityBaseline, strip_modality
from mustsurv.models.batch import PatientItem
from mustsurv.train.trainer import (
    OptimConfig,
    load_checkpoint,
    save_checkpoint,
    train_epochs,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SMALL: dict[str, Any] = {"dim": 16, "latent_dim": 8, "token_hidden": 16}


def kwargs(**overrides: Any) -> dict[str, Any]:
    return {**LDCVAE.input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), **SMALL, "n_bins": K, **overrides}


def make_model(seed: int = 0, **overrides: Any) -> LDCVAE:
    torch.manual_seed(seed)
    model = build_model("ldcvae", **kwargs(**overrides))
    assert isinstance(model, LDCVAE)
    return model


def other_genomics(items: list[PatientItem]) -> list[PatientItem]:
    return [{**it, "genomics": [v * -3 + 1 for v in it["genomics"]]} for it in items]


def test_registered_predicts_its_two_scenarios_and_refuses_missing_pathology() -> None:
    assert "ldcvae" in available_models()
    assert LDCVAE.scenarios == ("complete", "missing_genomics")
    model = make_model()
    assert isinstance(model, MissingModalityBaseline)
    batch = collate(make_items(5))
    for scenario in LDCVAE.scenarios:
        logits = model.predict_logits(batch, scenario)
        assert logits.shape == (5, K) and torch.isfinite(logits).all()
        risk = model.predict_risk(batch, scenario)
        assert risk.shape == (5,) and torch.isfinite(risk).all()
    with pytest.raises(ValueError, match="evaluated only in complete, missing_genomics"):
        model.predict_logits(batch, "missing_pathology")
    with pytest.raises(ValueError, match="cannot run without pathology"):
        model.forward_scenario(strip_modality(batch, "missing_pathology"), "missing_pathology")
    with pytest.raises(ValueError, match="missing_rate"):
        make_model(missing_rate=-0.1)


def test_loss_has_every_term_and_one_trainer_step_changes_every_part() -> None:
    model = make_model(recon_weight=0.5, kl_weight=2.0, vib_weight=0.1)
    items = make_items(8)
    model.eval()
    with torch.no_grad():
        loss, logs = model.loss(collate(items))
    assert set(logs) == {"surv", "recon", "kl", "vib", "missing"}
    assert all(math.isfinite(v) for v in logs.values()) and math.isfinite(float(loss))
    assert logs["recon"] > 0 and logs["kl"] > 0 and logs["vib"] > 0 and logs["missing"] == 0.0
    torch.testing.assert_close(float(loss), logs["surv"] + 0.5 * logs["recon"] + 2.0 * logs["kl"] + 0.1 * logs["vib"],
                               atol=1e-5, rtol=1e-5)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = OptimConfig(epochs=1, lr=2e-4, optimizer="adam", accumulation_steps=4, grouped=True, seed=0)
    state = train_epochs(model, items, model.loss, model.parameters(), cfg, device=torch.device("cpu"))
    assert state.epochs_done == 1
    assert {"loss", "surv", "recon", "kl", "vib", "missing"} <= set(state.history[0])
    after = model.state_dict()
    for part in ("pathology_encoder.embed.0.weight", "pathology_posterior.weight", "tokenizer.mlps.0.0.weight",
                 "family_posteriors.0.weight", "decoder_trunk.0.weight", "decoder_heads.5.weight",
                 "genomics_proj.0.weight", "head.3.weight"):
        assert not torch.equal(before[part], after[part]), part


def test_missing_genomics_reads_only_the_slide_and_decodes_from_the_prior_mean() -> None:
    model = make_model().eval()
    items = make_items(3, seed=1)
    with torch.no_grad():
        base = model.forward_scenario(collate(items), "missing_genomics")  # genomics still in the batch
        changed_genomics = model.forward_scenario(collate(other_genomics(items)), "missing_genomics")
        stripped = model.forward_scenario(strip_modality(collate(items), "missing_genomics"), "missing_genomics")
        changed_pathology = model.forward_scenario(
            collate([{**it, "pathology": it["pathology"] + 1.0} for it in items]), "missing_genomics")
        h, prior = model.encode_pathology(collate(items))
        by_hand = model.logits_from(h, prior.mu, model.decode(prior.mu))
    torch.testing.assert_close(base, changed_genomics, atol=0, rtol=0)
    torch.testing.assert_close(base, stripped, atol=0, rtol=0)
    torch.testing.assert_close(base, model.predict_logits(collate(other_genomics(items)), "missing_genomics"), atol=0,
                               rtol=0)
    torch.testing.assert_close(base, by_hand)
    assert (changed_pathology - base).abs().max() > 1e-4


def test_complete_scenario_uses_both_modalities_and_the_joint_posterior() -> None:
    model = make_model().eval()
    items = make_items(3, seed=2)
    batch = collate(items)
    with torch.no_grad():
        base = model.predict_logits(batch, "complete")
        changed_genomics = model.predict_logits(collate(other_genomics(items)), "complete")
        changed_pathology = model.predict_logits(collate([{**it, "pathology": it["pathology"] * 2} for it in items]),
                                                 "complete")
        h, prior = model.encode_pathology(batch)
        tokens, post = model.encode_genomics(batch, prior)
        by_hand = model.logits_from(h, post.mu, tokens)
        # the joint posterior is the product of the slide prior and the F family experts
        experts = [model.pathology_posterior(h)] + [lin(tokens[:, k])
                                                    for k, lin in enumerate(model.family_posteriors)]
        mu = torch.stack([e.chunk(2, -1)[0] for e in experts])
        logvar = torch.stack([e.chunk(2, -1)[1].clamp(-8, 8) for e in experts])
        precision = logvar.neg().exp()
    torch.testing.assert_close(base, by_hand)
    torch.testing.assert_close(post.mu, (precision * mu).sum(0) / precision.sum(0))
    torch.testing.assert_close(post.logvar, -precision.sum(0).log())
    assert (post.logvar < prior.logvar).all()  # genomics sharpens the slide prior
    assert (changed_genomics - base).abs().max() > 1e-4
    assert (changed_pathology - base).abs().max() > 1e-4


def test_product_of_experts_matches_the_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 5, 4, generator=gen)
    logvar = torch.randn(3, 5, 4, generator=gen)
    var = logvar.exp()
    out_mu, out_logvar = product_of_experts(mu, logvar)
    expected_var = 1.0 / (1 / var[0] + 1 / var[1] + 1 / var[2])
    expected_mu = expected_var * (mu[0] / var[0] + mu[1] / var[1] + mu[2] / var[2])
    torch.testing.assert_close(out_mu, expected_mu)
    torch.testing.assert_close(out_logvar.exp(), expected_var)
    # one expert is itself; E equal experts keep the mean and divide the variance by E
    m1, l1 = product_of_experts(mu[:1], logvar[:1])
    torch.testing.assert_close(m1, mu[0])
    torch.testing.assert_close(l1, logvar[0])
    m4, l4 = product_of_experts(mu[:1].expand(4, -1, -1), logvar[:1].expand(4, -1, -1))
    torch.testing.assert_close(m4, mu[0])
    torch.testing.assert_close(l4, logvar[0] - math.log(4))
    # scalar example: N(0, 1) x N(2, 1/3) = N(1.5, 1/4)
    m, lv = product_of_experts(torch.tensor([[0.0], [2.0]]), torch.tensor([[0.0], [math.log(1 / 3)]]))
    torch.testing.assert_close(m, torch.tensor([1.5]))
    torch.testing.assert_close(lv.exp(), torch.tensor([0.25]))


def test_gaussian_kl_is_zero_for_equal_distributions_and_matches_the_closed_form() -> None:
    gen = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    torch.testing.assert_close(gaussian_kl(mu, logvar, mu, logvar), torch.zeros(4))
    assert (gaussian_kl(mu, logvar, mu + 0.1, logvar) > 0).all()
    # KL(N(1, 1) || N(0, 1)) = 0.5; KL(N(0, 1) || N(0, 4)) = log 2 + 1/8 - 1/2
    torch.testing.assert_close(gaussian_kl(torch.ones(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1)),
                               torch.tensor([0.5]))
    torch.testing.assert_close(gaussian_kl(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1),
                                           torch.full((1, 1), math.log(4.0))),
                               torch.tensor([math.log(2.0) + 0.125 - 0.5]))
    # the model's KL term vanishes when the family experts carry no information (posterior = prior)
    model = make_model().eval()
    batch = collate(make_items(3, seed=3))
    with torch.no_grad():
        for lin in model.family_posteriors:
            lin.weight.zero_()
            lin.bias.copy_(torch.cat([torch.zeros(8), torch.full((8,), 30.0)]))  # clamped to variance e^8
        h, prior = model.encode_pathology(batch)
        _, post = model.encode_genomics(batch, prior)
        kl = gaussian_kl(post.mu, post.logvar, prior.mu, prior.logvar)
    assert float(kl.max()) < 1e-2


def test_missing_rate_one_always_takes_the_missing_path_and_zero_never() -> None:
    always, never = make_model(missing_rate=1.0, dropout=0.0), make_model(missing_rate=0.0, dropout=0.0)
    torch.manual_seed(0)
    assert bool(always.draw_missing(10_000).all())  # no draw escapes (randn < 1 would miss ~16 %)
    assert not bool(never.draw_missing(10_000).any())
    half = make_model(missing_rate=0.5).draw_missing(10_000).float().mean()
    assert 0.47 < float(half) < 0.53
    # in training, rate 1 makes the survival term blind to the genomics (the head sees the slide only)
    items = make_items(5, seed=4)
    for model, blind in ((always, True), (never, False)):
        model.train()
        with torch.no_grad():
            torch.manual_seed(5)
            _, logs_a = model.loss(collate(items))
            torch.manual_seed(5)
            _, logs_b = model.loss(collate(other_genomics(items)))
        assert logs_a["missing"] == (1.0 if blind else 0.0)
        assert logs_a["recon"] != logs_b["recon"]  # the ELBO always reads the genomics
        assert (logs_a["surv"] == logs_b["surv"]) == blind
    cfg = OptimConfig(epochs=2, lr=2e-4, optimizer="adam", accumulation_steps=4, grouped=True, seed=0)
    hist = train_epochs(always, make_items(8), always.loss, always.parameters(), cfg,
                        device=torch.device("cpu")).history
    assert [h["missing"] for h in hist] == [1.0, 1.0]


def test_inference_is_deterministic_and_training_samples() -> None:
    model = make_model(dropout=0.0)
    batch = collate(make_items(4, seed=6))
    torch.manual_seed(1)
    a = {s: model.predict_logits(batch, s) for s in LDCVAE.scenarios}
    torch.manual_seed(2)
    b = {s: model.predict_logits(batch, s) for s in LDCVAE.scenarios}
    for s in LDCVAE.scenarios:
        torch.testing.assert_close(a[s], b[s], atol=0, rtol=0)
    model.train()
    with torch.no_grad():
        torch.manual_seed(1)
        t1 = model.forward_scenario(batch, "missing_genomics")
        torch.manual_seed(2)
        t2 = model.forward_scenario(batch, "missing_genomics")
    assert (t1 - t2).abs().max() > 1e-6  # reparameterised draws in training


def test_a_batch_equals_its_patients_one_at_a_time() -> None:
    model = make_model().eval()
    items = make_items(4, seed=7)
    for scenario in LDCVAE.scenarios:
        together = model.predict_logits(collate(items), scenario)
        alone = torch.cat([model.predict_logits(collate([it]), scenario) for it in items])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = make_model(seed=3)
    items = make_items(6, seed=8)
    cfg = OptimConfig(epochs=1, lr=2e-4, optimizer="adam", accumulation_steps=4, grouped=True, seed=0)
    train_epochs(model, items, model.loss, model.parameters(), cfg, device=torch.device("cpu"))
    kw = kwargs()
    save_checkpoint(tmp_path / "ldcvae.pt", model, "ldcvae", kw)
    loaded, ckpt = load_checkpoint(tmp_path / "ldcvae.pt")
    assert isinstance(loaded, LDCVAE) and ckpt["kwargs"] == kw
    batch = collate(items)
    for scenario in LDCVAE.scenarios:
        torch.testing.assert_close(loaded.predict_logits(batch, scenario), model.predict_logits(batch, scenario),
                                   atol=0, rtol=0)
