"""Table 1 baselines: registry, shapes, loss, training through the shared trainer, behaviour."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from baseline_helpers import FAMILY_DIMS, PATHOLOGY_DIM, K, make_items

from mustsurv.models import available_models, build_model, collate
from mustsurv.models.baselines import CMTA, SNN, BaselineModel, SurvPath
from mustsurv.models.baselines.survpath import PathwayPatchAttention
from mustsurv.models.batch import PatientItem
from mustsurv.models.layers.transmil import TransMIL
from mustsurv.models.registry import model_class
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.train.must import predict
from mustsurv.train.trainer import OptimConfig, train_epochs

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# small widths so the whole file runs in seconds on two CPU cores
SMALL: dict[str, dict[str, Any]] = {
    "abmil": {"hidden_dim": 32, "attn_dim": 16, "head_dim": 16},
    "transmil": {"dim": 32, "heads": 4},
    "mlp": {"hidden_dim": 32},
    "snn": {"hidden_dims": [32, 32]},
    "survpath": {"dim": 32, "token_hidden": 32},
    "cmta": {"dim": 32, "heads": 4, "token_hidden": 32},
}
NAMES = list(SMALL)


def make_model(name: str, seed: int = 0, **overrides: Any) -> BaselineModel:
    torch.manual_seed(seed)
    cls = model_class(name)
    kwargs = {**cls.input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), **SMALL[name], "n_bins": K, **overrides}
    model = build_model(name, **kwargs)
    assert isinstance(model, BaselineModel)
    return model


def eval_loss(model: BaselineModel, items: list[PatientItem]) -> float:
    model.eval()
    with torch.no_grad():
        return float(model.loss(collate(items))[0])


def test_every_baseline_is_registered_with_its_scenarios_and_dagger() -> None:
    assert set(NAMES) <= set(available_models())
    expected = {"abmil": ("missing_genomics",), "transmil": ("missing_genomics",), "mlp": ("missing_pathology",),
                "snn": ("missing_pathology",), "survpath": ("complete",), "cmta": ("complete",)}
    for name, scenarios in expected.items():
        cls = model_class(name)
        assert cls.scenarios == scenarios
        assert cls.same_modalities is True
        assert set(cls.scenarios) <= set(SCENARIOS)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_finite_loss_and_risk(name: str) -> None:
    model = make_model(name)
    batch = collate(make_items(5))
    model.train()
    logits = model(batch)
    assert logits.shape == (5, K)
    loss, logs = model.loss(batch)
    assert loss.ndim == 0 and math.isfinite(float(loss.detach())) and "surv" in logs
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    risk = model.predict_risk(batch, model.scenarios[0])
    assert risk.shape == (5,) and torch.isfinite(risk).all()
    assert not model.training  # prediction switches to eval mode


@pytest.mark.parametrize("name", NAMES)
def test_shared_trainer_reduces_the_loss_and_predict_writes_only_own_scenarios(name: str) -> None:
    model = make_model(name)
    items = make_items(6)
    before = eval_loss(model, items)
    cfg = OptimConfig(epochs=8, lr=2e-3, weight_decay=0.0, accumulation_steps=3, seed=0)
    state = train_epochs(model, items, model.loss, model.parameters(), cfg, device=torch.device("cpu"))
    assert state.epochs_done == 8
    after = eval_loss(model, items)
    assert after < before, (before, after)
    pred = predict(model, items, model.scenarios)  # MUST's prediction loop serves the baselines unchanged
    assert set(pred["scenario"]) == set(model.scenarios) and len(pred) == len(items)
    assert pred["risk"].notna().all()


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_equals_its_patients_one_at_a_time(name: str) -> None:
    """No layer mixes patients (the trainer's grouped and per-patient forms agree), padding included."""
    model = make_model(name).eval()
    items = make_items(4, seed=3)
    with torch.no_grad():
        together = model(collate(items))
        alone = torch.cat([model(collate([it])) for it in items])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_unsupported_scenarios_and_missing_inputs_are_refused(name: str) -> None:
    model = make_model(name)
    cls = type(model)
    for scenario in SCENARIOS:
        if scenario not in cls.scenarios:
            with pytest.raises(ValueError, match="evaluated only in"):
                model.predict_risk(collate(make_items(2)), scenario)
    no_pathology, no_genomics = make_items(2, pathology=False)[0], make_items(2, genomics=False)[0]
    assert cls.accepts(no_pathology) == (not cls.uses_pathology)
    assert cls.accepts(no_genomics) == (not cls.uses_genomics)
    lacking = no_pathology if cls.uses_pathology else no_genomics
    with pytest.raises(ValueError, match="P0_00"):
        model(collate([lacking]))
    if cls.uses_pathology:
        wrong_dim = {**make_items(1)[0], "pathology": torch.randn(7, PATHOLOGY_DIM + 1)}
        with pytest.raises(ValueError, match="feature size"):
            model(collate([wrong_dim]))


@pytest.mark.parametrize("name", ["abmil", "transmil"])
def test_pathology_models_ignore_genomics_and_follow_the_bag(name: str) -> None:
    model = make_model(name).eval()
    items = make_items(3, seed=1)
    with torch.no_grad():
        base = model(collate(items))
        without_genomics = model(collate([{**it, "genomics": None} for it in items]))
        other_genomics = model(collate([{**it, "genomics": [v * -3 + 1 for v in it["genomics"]]} for it in items]))
        changed = model(collate([{**it, "pathology": it["pathology"] + 1.0} for it in items]))
    torch.testing.assert_close(base, without_genomics)
    torch.testing.assert_close(base, other_genomics)
    assert (changed - base).abs().max() > 1e-4


def test_abmil_is_invariant_to_patch_order() -> None:
    model = make_model("abmil").eval()
    item = make_items(1, seed=2)[0]
    perm = torch.randperm(item["pathology"].shape[0], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = model(collate([item]))
        b = model(collate([{**item, "pathology": item["pathology"][perm]}]))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_transmil_baseline_reuses_the_shared_layer() -> None:
    model = make_model("transmil")
    assert isinstance(model.aggregator, TransMIL)


@pytest.mark.parametrize("name", ["mlp", "snn"])
def test_genomics_models_ignore_pathology_and_follow_the_families(name: str) -> None:
    model = make_model(name).eval()
    items = make_items(3, seed=1)
    with torch.no_grad():
        base = model(collate(items))
        without_pathology = model(collate([{**it, "pathology": None} for it in items]))
        changed = model(collate([{**it, "genomics": [v + 1.0 for v in it["genomics"]]} for it in items]))
    torch.testing.assert_close(base, without_pathology)
    assert (changed - base).abs().max() > 1e-4
    with pytest.raises(ValueError, match="do not match"):
        model(collate([{**it, "genomics": [torch.zeros(d + 1) for d in FAMILY_DIMS]} for it in items]))


def test_snn_uses_lecun_normal_init_and_alpha_dropout() -> None:
    torch.manual_seed(0)
    model = SNN(family_dims=[400, 400], hidden_dims=[256, 256])
    first = model.encoder[0][0]
    assert abs(float(first.weight.detach().std()) - 1 / math.sqrt(800)) < 0.05 / math.sqrt(800)
    assert float(first.bias.detach().abs().max()) == 0.0
    assert any(isinstance(m, torch.nn.AlphaDropout) for m in model.modules())


def test_survpath_caps_patches_in_training_only() -> None:
    model = make_model("survpath", max_patches=8)
    seen: list[int] = []
    model.patch_proj.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0].shape[0]))
    item = {**make_items(1)[0], "pathology": torch.randn(30, PATHOLOGY_DIM)}
    model.train()
    model(collate([item]))
    model.eval()
    model(collate([item]))
    small = {**item, "pathology": torch.randn(5, PATHOLOGY_DIM)}
    model.train()
    model(collate([small]))
    assert seen == [8, 30, 5]
    # different epochs (seeds) draw different subsets
    model.train()
    torch.manual_seed(1)
    a = model.sample_patches(item["pathology"])
    torch.manual_seed(2)
    b = model.sample_patches(item["pathology"])
    assert a.shape == b.shape == (8, PATHOLOGY_DIM) and not torch.equal(a, b)
    assert SurvPath(PATHOLOGY_DIM, FAMILY_DIMS, dim=32, token_hidden=32, max_patches=None).max_patches is None


def test_survpath_attention_has_no_patch_to_patch_block() -> None:
    """A patch token's output depends on the pathways, never on another patch; pathways see patches."""
    torch.manual_seed(0)
    attn = PathwayPatchAttention(16, heads=2, dim_head=8).eval()
    pathways, patches = torch.randn(1, 6, 16), torch.randn(1, 10, 16)
    mask = torch.ones(1, 10, dtype=torch.bool)
    out = attn(pathways, patches, mask)
    assert out.shape == (1, 16, 16)
    moved = patches.clone()
    moved[0, 3] += 3.0 * torch.randn(16)
    out2 = attn(pathways, moved, mask)
    others = [6 + j for j in range(10) if j != 3]
    torch.testing.assert_close(out[:, others], out2[:, others])
    assert (out2[:, :6] - out[:, :6]).abs().max() > 1e-4  # pathway-to-patch attention
    assert (out2[:, 6 + 3] - out[:, 6 + 3]).abs().max() > 1e-4  # its own query changed
    # padded patches are invisible to the pathway queries
    padded = torch.cat([patches, torch.randn(1, 4, 16) * 100], dim=1)
    pad_mask = torch.cat([mask, torch.zeros(1, 4, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(attn(pathways, padded, pad_mask)[:, :16], out, atol=1e-6, rtol=1e-5)


def test_cmta_alignment_term_is_weighted_l1_with_stop_gradient_on_the_encoders() -> None:
    batch = collate(make_items(3, seed=4))
    model = make_model("cmta", alignment_weight=0.0).eval()
    with torch.no_grad():
        loss0, logs0 = model.loss(batch)
        model.alignment_weight = 2.5
        loss1, logs1 = model.loss(batch)
    assert logs0["align"] > 0
    torch.testing.assert_close(loss0, torch.tensor(logs0["surv"]))
    torch.testing.assert_close(loss1 - loss0, torch.tensor(2.5 * logs1["align"]), atol=1e-5, rtol=1e-5)
    # the alignment adds gradient to the decoders' class tokens, none to the encoders' (stop-gradient)
    captured: list[tuple[torch.Tensor, ...]] = []
    encode = model.encode
    model.encode = lambda b: captured.append(encode(b)) or captured[-1]  # type: ignore[method-assign]
    loss, _ = model.loss(batch)
    logits, *tokens = captured[-1]
    surv = model.survival_loss(logits, batch)
    g_loss = torch.autograd.grad(loss, tokens, retain_graph=True)
    g_surv = torch.autograd.grad(surv, tokens)
    for name, a, b in zip(("p_enc", "p_dec", "g_enc", "g_dec"), g_loss, g_surv):
        if name.endswith("enc"):
            torch.testing.assert_close(a, b)
        else:
            assert (a - b).abs().max() > 1e-6, name


def test_cmta_uses_both_modalities() -> None:
    model = make_model("cmta").eval()
    items = make_items(2, seed=5)
    with torch.no_grad():
        base = model(collate(items))
        other_pathology = model(collate([{**it, "pathology": it["pathology"] * 2} for it in items]))
        other_genomics = model(collate([{**it, "genomics": [v + 1 for v in it["genomics"]]} for it in items]))
    assert (other_pathology - base).abs().max() > 1e-4
    assert (other_genomics - base).abs().max() > 1e-4
    assert isinstance(model, CMTA)


def test_input_kwargs_refuse_a_cohort_without_the_needed_modality() -> None:
    with pytest.raises(ValueError, match="no patch features"):
        model_class("abmil").input_kwargs(None, FAMILY_DIMS)
    with pytest.raises(ValueError, match="no gene family tokens"):
        model_class("snn").input_kwargs(PATHOLOGY_DIM, None)
    assert model_class("mlp").input_kwargs(None, FAMILY_DIMS) == {"family_dims": FAMILY_DIMS}
    assert model_class("survpath").input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS) == {"pathology_dim": PATHOLOGY_DIM,
                                                                         "family_dims": FAMILY_DIMS}
