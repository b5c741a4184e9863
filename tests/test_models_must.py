"""MUST: registry, exact projector, algebraic recovery c̃ = ĉ, finite gradients, learning, prediction."""

from __future__ import annotations

import pytest
import torch

from mustsurv.models import MUST, available_models, build_model, collate
from mustsurv.models.batch import PatientItem

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAMILIES = [3, 4, 5, 6, 7, 8]


def tiny_must(**kw: object) -> MUST:
    args = dict(family_dims=FAMILIES, pathology_dim=12, dim=32, rank=8, heads=4, num_landmarks=4,
                genomics_hidden=16, ldm_layers=1, ldm_heads=2, ldm_timesteps=50)
    args.update(kw)
    return build_model("must", **args)  # type: ignore[return-value]


def tiny_items(n: int = 6, seed: int = 0) -> list[PatientItem]:
    g = torch.Generator().manual_seed(seed)
    return [
        PatientItem(patient_id=f"P{i:02d}", pathology=torch.randn(5 + 3 * i, 12, generator=g),
                    genomics=[torch.randn(d, generator=g) for d in FAMILIES],
                    time=float(10 + i), event=i % 2, bin=i % 4)
        for i in range(n)
    ]


def test_registry_builds_must_and_names_unknown_models() -> None:
    assert "must" in available_models()
    assert isinstance(tiny_must(), MUST)
    with pytest.raises(KeyError, match="registered models"):
        build_model("nope")


def test_shared_projector_is_an_orthogonal_projector_of_rank_r_even_after_training() -> None:
    torch.manual_seed(0)
    model = tiny_must()
    opt = torch.optim.SGD([model.basis_raw], lr=5.0)
    for _ in range(3):
        p = model.projector()
        torch.testing.assert_close(p @ p, p, atol=1e-5, rtol=0)
        torch.testing.assert_close(p, p.T, atol=1e-6, rtol=0)
        assert torch.linalg.matrix_rank(p).item() == 8
        assert torch.trace(p).item() == pytest.approx(8.0, abs=1e-4)
        opt.zero_grad()
        (p[:5, :5].sum() ** 2).backward()  # move B∩ arbitrarily
        opt.step()
    x = torch.randn(4, 32)
    shared, specific = model.project_shared(x), model.project_specific(x)
    torch.testing.assert_close(shared + specific, x)
    assert (shared * specific).sum(1).abs().max() < 1e-5  # complementary orthogonal parts


class _ExactPathology(MUST):
    """MUST whose g_P is replaced by û_P + ĉ_{G<-P} of a given decomposition (an exact decomposition)."""

    exact_g_p: torch.Tensor
    recorded_cond: torch.Tensor

    def encode_pathology(self, bags):  # type: ignore[no-untyped-def]
        g_p, u_p, h_p, mask = super().encode_pathology(bags)
        return self.exact_g_p, u_p, h_p, mask

    def sample_specific(self, modality, cond, patient_ids, n_samples=5, steps=50, seed=0):  # type: ignore[no-untyped-def]
        self.recorded_cond = cond.clone()
        return super().sample_specific(modality, cond, patient_ids, n_samples, steps, seed)


def test_recovered_shared_component_equals_c_hat_when_the_decomposition_is_exact() -> None:
    torch.manual_seed(0)
    kwargs = dict(family_dims=FAMILIES, pathology_dim=12, dim=32, rank=8, heads=4, num_landmarks=4,
                  genomics_hidden=16, ldm_layers=1, ldm_heads=2, ldm_timesteps=50)
    model = _ExactPathology(**kwargs).eval()
    batch = collate(tiny_items(4))
    model.exact_g_p = torch.zeros(4, 32)
    with torch.no_grad():
        d = model.decompose(batch)
        model.exact_g_p = d.u_p_hat + d.c_gp_hat  # Eq. 10 holds exactly
        # Eq. 13 is a squared L2 norm: only the genomic term is left
        expected = (d.g_g - d.u_g_hat - d.c_pg_hat).pow(2).sum(dim=1).mean().item()
        assert model.main_loss(batch)[1]["decomp"] == pytest.approx(expected, rel=1e-5)
    model.predict_logits(batch, "missing_genomics", n_samples=2, steps=3)
    torch.testing.assert_close(model.recorded_cond, d.c_gp_hat, atol=1e-5, rtol=1e-5)
    # and c̃ lies in the shared subspace
    torch.testing.assert_close(model.project_shared(model.recorded_cond), model.recorded_cond, atol=1e-5, rtol=1e-5)


def test_decomposition_norm_is_the_squared_l2_norm_or_its_mean_over_d() -> None:
    torch.manual_seed(0)
    paper, mse = tiny_must(dropout=0.0, genomics_dropout=0.0).eval(), tiny_must(decomposition_norm="mse").eval()
    mse.load_state_dict(paper.state_dict())
    batch = collate(tiny_items(3))
    with torch.no_grad():
        logs_paper, logs_mse = paper.main_loss(batch)[1], mse.main_loss(batch)[1]
    for key in ("decomp", "shared"):
        assert logs_paper[key] == pytest.approx(32 * logs_mse[key], rel=1e-5)  # D = 32
    with pytest.raises(ValueError, match="decomposition_norm"):
        tiny_must(decomposition_norm="l1")


def test_forward_backward_is_finite_in_both_stages() -> None:
    torch.manual_seed(0)
    model = tiny_must()
    batch = collate(tiny_items(5))
    for loss_fn in (model.warmup_loss, model.main_loss):
        model.zero_grad()
        loss, logs = loss_fn(batch)
        loss.backward()
        assert torch.isfinite(loss) and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
        grads = {n: p.grad for n, p in model.named_parameters() if not n.startswith("ldm_")}
        assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)
    assert all(g is not None for g in grads.values())  # stage 2 trains every non-diffusion parameter
    assert set(logs) == {"surv", "decomp", "shared", "orth"}


@pytest.mark.parametrize("stage", ["warmup", "main"])
def test_a_few_optimiser_steps_reduce_the_loss(stage: str) -> None:
    torch.manual_seed(0)
    model = tiny_must(dropout=0.0, genomics_dropout=0.0, warmup_sigma=0.0)
    batch = collate(tiny_items(6))
    loss_fn = model.warmup_loss if stage == "warmup" else model.main_loss
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(25):
        loss, _ = loss_fn(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_fn(batch)[0].item() < 0.8 * first


def test_warmup_places_g_in_its_modality_slot() -> None:
    torch.manual_seed(0)
    model = tiny_must(dropout=0.0, genomics_dropout=0.0, warmup_sigma=0.0).eval()
    batch = collate(tiny_items(3))
    loss, logs = model.warmup_loss(batch)
    g_g = model.encode_genomics(batch.genomics)[0]
    logits = model.head_logits(torch.zeros_like(g_g), torch.zeros_like(g_g), g_g)
    from mustsurv.survival import nll_loss

    assert logs["surv_g"] == pytest.approx(nll_loss(logits, batch.bins, batch.event).item(), abs=1e-6)


def test_prediction_is_seeded_and_independent_of_batch_composition() -> None:
    torch.manual_seed(0)
    model = tiny_must().eval()
    items = tiny_items(5)
    full = collate(items)
    for scenario in ("complete", "missing_genomics", "missing_pathology"):
        risk = model.predict_risk(full, scenario, n_samples=3, steps=5, seed=1)
        assert risk.shape == (5,) and torch.isfinite(risk).all()
        again = model.predict_risk(collate(items[::-1]), scenario, n_samples=3, steps=5, seed=1).flip(0)
        torch.testing.assert_close(risk, again, atol=1e-5, rtol=1e-5)
    other_seed = model.predict_risk(full, "missing_genomics", n_samples=3, steps=5, seed=2)
    assert not torch.allclose(other_seed, model.predict_risk(full, "missing_genomics", n_samples=3, steps=5, seed=1))


def test_missing_modality_is_reported_by_patient() -> None:
    model = tiny_must().eval()
    items = tiny_items(2)
    items[1]["genomics"] = None
    with pytest.raises(ValueError, match="P01"):
        model.predict_risk(collate(items), "complete")
    assert model.predict_risk(collate(items), "missing_genomics", n_samples=1, steps=2).shape == (2,)


def test_surrogate_ldm_condition_is_the_inference_time_condition() -> None:
    """ldm_condition='surrogate' trains each LDM on c̃ = g_avail − û_avail, what it is given at inference."""
    torch.manual_seed(0)
    items = tiny_items(4)
    shared, surrogate = tiny_must(), tiny_must(ldm_condition="surrogate")
    surrogate.load_state_dict(shared.state_dict())
    shared.eval(), surrogate.eval()
    batch = collate(items)
    with torch.no_grad():
        d = shared.decompose(batch)
    a, b = shared.ldm_targets(batch), surrogate.ldm_targets(batch)
    torch.testing.assert_close(a["genomics"][1], d.c_gp_hat)
    torch.testing.assert_close(b["genomics"][1], d.g_p - d.u_p_hat)
    torch.testing.assert_close(b["pathology"][1], d.g_g - d.u_g_hat)
    torch.testing.assert_close(a["pathology"][0], b["pathology"][0])  # same targets û
    with pytest.raises(ValueError, match="ldm_condition"):
        tiny_must(ldm_condition="both")


def test_unpaired_patients_take_the_survival_loss_with_a_zero_specific_component() -> None:
    """Supplement §8.2: a patient without genomics contributes NLL(φ([û_P; g_P − û_P; 0])) only, weighted as
    one patient of the batch, so the grouped loss equals the mean of the per-patient losses."""
    torch.manual_seed(0)
    model = tiny_must(dropout=0.0, genomics_dropout=0.0).eval()
    items = tiny_items(4)
    items[1]["genomics"] = None
    items[3]["pathology"] = None
    from mustsurv.survival import nll_loss

    loss, logs = model.main_loss(collate(items))
    per_patient = [model.main_loss(collate([it]))[0] for it in items]
    assert loss.item() == pytest.approx(torch.stack(per_patient).mean().item(), rel=1e-5)
    single = collate([items[1]])
    g, u = model.encode_pathology(single.pathology)[:2]
    u_hat = model.project_specific(u)
    expected = nll_loss(model.head_logits(u_hat, g - u_hat, torch.zeros_like(u_hat)), single.bins, single.event)
    assert per_patient[1].item() == pytest.approx(expected.item(), rel=1e-6)
    assert per_patient[1].item() == pytest.approx(model.main_loss(single)[1]["surv"], rel=1e-6)
    loss.backward()  # the unpaired patients' modalities get gradients too
    assert model.genomics.tokenizer.mlps[0][0].weight.grad.abs().sum() > 0


def test_zero_specific_inference_replaces_the_sample_by_zeros() -> None:
    torch.manual_seed(0)
    model = tiny_must().eval()
    batch = collate(tiny_items(3))
    g, u = model.encode_pathology(batch.pathology)[:2]
    u_hat = model.project_specific(u)
    expected = model.head_logits(u_hat, g - u_hat, torch.zeros_like(u_hat))
    torch.testing.assert_close(model.predict_logits(batch, "missing_genomics", specific="zero"), expected)
    sampled = model.predict_logits(batch, "missing_genomics", n_samples=2, steps=3)
    assert not torch.allclose(sampled, expected)
    with pytest.raises(ValueError, match="specific"):
        model.predict_logits(batch, "missing_genomics", specific="mean")


def test_ldm_without_class_token_ignores_the_class_token() -> None:
    """ldm_cls=False (Table 3(b)): the ε-predictor reads [x_t; ĉ; t] only."""
    torch.manual_seed(0)
    with_cls, without = tiny_must().ldm_genomics.denoiser, tiny_must(ldm_cls=False).ldm_genomics.denoiser
    torch.nn.init.normal_(with_cls.out.weight), torch.nn.init.normal_(without.out.weight)
    z, c = torch.randn(3, 32), torch.randn(3, 32)
    t = torch.tensor([1, 10, 40])
    a, b = torch.randn(3, 32), torch.randn(3, 32)
    torch.testing.assert_close(without(z, t, c, a), without(z, t, c, b))
    assert not torch.allclose(with_cls(z, t, c, a), with_cls(z, t, c, b))
    assert without.token_type.shape[0] == 1 and without.embed_cls is None


def test_checkpointing_large_bags_gives_the_same_loss_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bags above ``checkpoint_patches`` recompute TransMIL's two segments, the pathology-specific layer and the
    cross-attention in backward: the stage-2 loss and every gradient equal the plain model's (dropout
    included), for a batch that mixes a large and a small bag; evaluation never checkpoints."""
    import mustsurv.models.must as must_module

    torch.manual_seed(0)
    plain = tiny_must(dropout=0.2, checkpoint_patches=None)
    ckpt = tiny_must(dropout=0.2, checkpoint_patches=20)
    ckpt.load_state_dict(plain.state_dict())
    calls: list[str] = []
    real = must_module.checkpoint
    monkeypatch.setattr(must_module, "checkpoint", lambda fn, *a, **k: calls.append(getattr(fn, "__name__", type(fn).__name__)) or real(fn, *a, **k))
    items = tiny_items(2)
    items[1]["pathology"] = torch.randn(45, 12)  # above 20 patches: the batch's padded length checkpoints too
    batch = collate(items)
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(1)
        loss, _ = model.main_loss(batch)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    assert calls.count("_specific_pathology") == 1 and len(calls) == 3  # the large bag, then both cross-attentions
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=1e-6)
    assert results[0][1].keys() == results[1][1].keys() and len(results[0][1]) > 20
    for name, grad in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], grad, rtol=1e-4, atol=1e-5, msg=name)
    ckpt.eval()
    with torch.no_grad():
        ckpt.main_loss(batch)
    assert len(calls) == 3
