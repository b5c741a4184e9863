"""M3Care baseline: scenarios, memory bank, kernel neighbours, missing draw, checkpoint, learning."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from baseline_helpers import FAMILY_DIMS, PATHOLOGY_DIM, K, make_items, synthetic

import mustsurv.models.baselines.m3care  # noqa: F401  (registers "m3care")
from mustsurv.models import available_models, build_model, collate
from mustsurv.models.baselines.m3care import DeepKernel, M3Care, patient_key
from mustsurv.models.baselines.missing import MissingModalityBaseline
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

SMALL: dict[str, Any] = {"dim": 16, "genomics_hidden": 16, "heads": 2, "kernel_dim": 8, "n_neighbors": 3,
                         "bank_size": 16}


def kwargs(**overrides: Any) -> dict[str, Any]:
    return {**M3Care.input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), **SMALL, "n_bins": K, **overrides}


def make_model(seed: int = 0, items: list[PatientItem] | None = None, **overrides: Any) -> M3Care:
    """A small M3Care whose bank is filled with ``items`` (8 default patients) by ``prepare``."""
    torch.manual_seed(seed)
    model = build_model("m3care", **kwargs(**overrides))
    assert isinstance(model, M3Care)
    model.prepare(items if items is not None else make_items(8))
    return model


def logits(model: M3Care, items: list[PatientItem], scenario: str) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.forward_scenario(collate(items), scenario)  # type: ignore[arg-type]


def test_registered_and_predicts_finite_logits_in_every_scenario() -> None:
    assert "m3care" in available_models()
    model = make_model()
    assert isinstance(model, MissingModalityBaseline)
    assert M3Care.scenarios == SCENARIOS and not M3Care.same_modalities
    batch = collate(make_items(5, seed=1))
    out = {}
    for scenario in SCENARIOS:
        out[scenario] = model.predict_logits(batch, scenario)
        assert out[scenario].shape == (5, K) and torch.isfinite(out[scenario]).all()
        assert torch.isfinite(model.predict_risk(batch, scenario)).all()
    assert not model.training
    assert (out["complete"] - out["missing_genomics"]).abs().max() > 1e-5
    assert (out["complete"] - out["missing_pathology"]).abs().max() > 1e-5
    for bad in ({"missing_rate": -0.5}, {"n_neighbors": 0}, {"bank_size": 0}):
        with pytest.raises(ValueError):
            build_model("m3care", **kwargs(**bad))


def test_empty_bank_is_a_clear_error_in_the_missing_scenarios() -> None:
    torch.manual_seed(0)
    model = build_model("m3care", **kwargs())
    batch = collate(make_items(2))
    assert torch.isfinite(model.predict_logits(batch, "complete")).all()  # the complete path needs no bank
    with pytest.raises(ValueError, match="memory bank"):
        model.predict_logits(batch, "missing_genomics")


def test_trainer_step_gives_finite_loss_changes_parameters_and_refreshes_the_bank() -> None:
    items = make_items(8)
    model = make_model(items=items)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    bank_before = model.bank_genomics.clone()
    state = train_epochs(model, items, model.loss, model.parameters(),
                         OptimConfig(epochs=1, accumulation_steps=4, grouped=True, optimizer="adam", lr=1e-3),
                         device=torch.device("cpu"))
    assert all(math.isfinite(v) for v in state.history[0].values()) and "missing" in state.history[0]
    params = dict(model.named_parameters())
    for name in ("head.0.weight", "fusion.0.qkv.weight", "pathology_encoder.embed.0.weight",
                 "genomics_encoder.encoder.tokenizer.mlps.0.0.weight"):
        assert (params[name] - before[name]).abs().max() > 0, name
    assert any((params[n] - before[n]).abs().max() > 0 for n in params if n.startswith("kernels."))
    # the training steps overwrote the 8 patients' entries (no new slots: they were already in the bank)
    assert int(model.bank_valid.sum()) == 8
    assert (model.bank_genomics[:8] - bank_before[:8]).abs().max() > 0


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
    base_c = logits(model, items, "complete")
    assert (logits(model, other_genomics, "complete") - base_c).abs().max() > 1e-4
    assert (logits(model, other_pathology, "complete") - base_c).abs().max() > 1e-4


def test_imputation_reads_the_bank_only_in_the_missing_scenarios() -> None:
    """A bank modality is the kernel's key in one missing scenario and the imputed value in the other."""
    model = make_model()
    items = make_items(4, seed=3)
    complete, miss_g, miss_p = (logits(model, items, s) for s in SCENARIOS)
    model.bank_genomics = model.bank_genomics + torch.randn_like(model.bank_genomics)
    torch.testing.assert_close(logits(model, items, "complete"), complete)
    assert (logits(model, items, "missing_genomics") - miss_g).abs().max() > 1e-4
    assert (logits(model, items, "missing_pathology") - miss_p).abs().max() > 1e-4
    miss_g, miss_p = logits(model, items, "missing_genomics"), logits(model, items, "missing_pathology")
    model.bank_pathology = model.bank_pathology * 0.5
    torch.testing.assert_close(logits(model, items, "complete"), complete)
    assert (logits(model, items, "missing_genomics") - miss_g).abs().max() > 1e-4
    assert (logits(model, items, "missing_pathology") - miss_p).abs().max() > 1e-4
    # emptying the bank's validity leaves the complete scenario untouched and the missing ones impossible
    model.bank_valid = torch.zeros_like(model.bank_valid)
    torch.testing.assert_close(logits(model, items, "complete"), complete)
    with pytest.raises(ValueError, match="memory bank"):
        logits(model, items, "missing_pathology")


def test_neighbours_are_the_top_k_by_the_available_kernel_and_exclude_the_patient() -> None:
    train = make_items(8)
    model = make_model(items=train).eval()
    query = train[:1]  # a bank patient: its own entry must never be its neighbour
    batch = collate(query)
    with torch.no_grad():
        h_p = model.encode_pathology(batch)
        logk = model.similarity(h_p, "pathology", batch.patient_ids)
        idx, w = model.neighbours(h_p, "pathology", batch.patient_ids)
    own = int(torch.nonzero(model.bank_key == patient_key(query[0]["patient_id"])).flatten())
    assert not torch.isfinite(logk[0, own]) and own not in idx[0].tolist()
    assert int(torch.isfinite(logk).sum()) == 7  # 8 bank patients minus itself; empty slots excluded
    assert idx.shape == (1, 3) and torch.allclose(w.sum(1), torch.ones(1))
    assert set(idx[0].tolist()) == set(logk[0].topk(3).indices.tolist())
    base = logits(model, query, "missing_genomics")
    # the patient's own genomic entry and a non-neighbour's do not matter; a neighbour's does
    far = [j for j in range(8) if j != own and j not in idx[0].tolist()][0]
    bank = model.bank_genomics.clone()
    bank[own] += 5.0
    bank[far] += 5.0
    model.bank_genomics = bank
    torch.testing.assert_close(logits(model, query, "missing_genomics"), base)
    bank = bank.clone()
    bank[int(idx[0, 0])] += 5.0
    model.bank_genomics = bank
    assert (logits(model, query, "missing_genomics") - base).abs().max() > 1e-4


def test_deep_kernel_is_a_similarity() -> None:
    torch.manual_seed(0)
    kernel = DeepKernel(16, 8)
    x = torch.randn(5, 16)
    logk = kernel(x, x)
    assert logk.shape == (5, 5) and bool((logk <= 1e-5).all())  # κ <= 1
    torch.testing.assert_close(torch.diagonal(logk), torch.zeros(5), atol=1e-5, rtol=0)  # κ(x, x) = 1
    torch.testing.assert_close(logk, logk.T, atol=1e-5, rtol=1e-5)
    near, far = kernel(x[:1], torch.stack([x[0] + 0.01, x[0] + 3.0]))[0]
    assert near > far


def test_a_batch_equals_its_patients_one_at_a_time() -> None:
    model = make_model()
    items = make_items(4, seed=4)
    for scenario in SCENARIOS:
        together = logits(model, items, scenario)
        alone = torch.cat([logits(model, [it], scenario) for it in items])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_missing_rate_is_honoured(rate: float) -> None:
    model = make_model(missing_rate=rate)
    drop_g, drop_p = model.draw_missing(500)
    assert not bool((drop_g & drop_p).any())
    assert float((drop_g | drop_p).float().mean()) == rate
    model.train()
    loss, logs = model.loss(collate(make_items(6, seed=5)))
    assert logs["missing"] == rate
    loss.backward()
    # the kernels and the graph layer are trained only through the missing path
    grads = [p.grad for p in model.kernels.parameters()] + [p.grad for p in model.graph.parameters()]
    has_grad = any(g is not None and g.abs().max() > 0 for g in grads)
    assert has_grad == (rate == 1.0)


def test_missing_draw_rate_and_share_are_frequencies() -> None:
    torch.manual_seed(0)
    model = build_model("m3care", **kwargs(missing_rate=0.6, genomics_share=0.75))
    drop_g, drop_p = model.draw_missing(20000)
    assert abs(float((drop_g | drop_p).float().mean()) - 0.6) < 0.02
    assert abs(float(drop_g.float().mean()) - 0.6 * 0.75) < 0.02
    assert abs(float(drop_p.float().mean()) - 0.6 * 0.25) < 0.02


def test_bank_holds_eval_embeddings_and_respects_its_capacity() -> None:
    items = make_items(20, seed=6)
    model = make_model(items=items[:8], bank_size=10)
    model.finish(items)  # more patients than slots: 10 evenly spaced ones
    assert int(model.bank_valid.sum()) == 10 and model.training
    keys = set(model.bank_key.tolist())
    assert patient_key(items[0]["patient_id"]) in keys and patient_key(items[-1]["patient_id"]) in keys
    slot = int(torch.nonzero(model.bank_key == patient_key(items[0]["patient_id"])).flatten())
    model.eval()
    with torch.no_grad():
        batch = collate(items[:1])
        torch.testing.assert_close(model.bank_pathology[slot], model.encode_pathology(batch)[0])
        torch.testing.assert_close(model.bank_genomics[slot], model.encode_genomics(batch)[0])
    # a training step refreshes a stored patient's entry but inserts no patient into a full bank
    model.train()
    outsider = next(it for it in items if patient_key(it["patient_id"]) not in keys)
    stored = next(it for it in items if patient_key(it["patient_id"]) in keys)
    old = model.bank_pathology[model.bank_key == patient_key(stored["patient_id"])].clone()
    model.loss(collate([outsider, stored]))
    assert set(model.bank_key.tolist()) == keys
    assert (model.bank_pathology[model.bank_key == patient_key(stored["patient_id"])] - old).abs().max() > 0


def test_checkpoint_round_trip_predicts_identically(tmp_path: Path) -> None:
    items = make_items(8, seed=8)
    model = make_model(items=items)
    train_epochs(model, items, model.loss, model.parameters(),
                 OptimConfig(epochs=2, accumulation_steps=4, grouped=True, optimizer="adam", lr=1e-3),
                 device=torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        model.finish(items)
    path = tmp_path / "m3care.pt"
    save_checkpoint(path, model, "m3care", kwargs())
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["name"] == "m3care" and isinstance(loaded, M3Care)
    torch.testing.assert_close(loaded.bank_pathology, model.bank_pathology)
    test = collate(make_items(5, seed=9))
    for scenario in SCENARIOS:
        torch.testing.assert_close(loaded.predict_logits(test, scenario), model.predict_logits(test, scenario),
                                   rtol=0, atol=0)


def test_learns_a_risk_signal_in_every_scenario() -> None:
    train = synthetic(32, 0)
    model = make_model(items=train, bank_size=32, n_neighbors=5)
    train_epochs(model, train, model.loss, model.parameters(),
                 OptimConfig(epochs=12, accumulation_steps=4, grouped=True, optimizer="adam", lr=3e-3,
                             weight_decay=0.0), device=torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        model.finish(train)
    batch = collate(train)  # training patients: each imputes from the others, never from itself
    scores = {s: c_index(batch.time, batch.event, model.predict_risk(batch, s)) for s in SCENARIOS}
    assert scores["complete"] > 0.7 and scores["missing_genomics"] > 0.65 and scores["missing_pathology"] > 0.6, scores
