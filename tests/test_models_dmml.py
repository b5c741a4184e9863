"""DMML (mustsurv.models.dmml, mustsurv.train.dmml): gradient coordination, the WSI-only student, token
aggregation, distillation, bag resampling, subspaces, consistency."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch

from mustsurv.models.batch import collate
from mustsurv.models.dmml.aggregation import (
    TokenAggregation,
    aggregate_clusters,
    dpc_knn,
)
from mustsurv.models.dmml.bags import (
    resample_indices,
    split_magnifications,
    stack_magnifications,
)
from mustsurv.models.dmml.common import most_confident
from mustsurv.models.dmml.consistency import consistency_loss
from mustsurv.models.dmml.coordination import coordinate_classifier, project_conflicts
from mustsurv.models.dmml.distillation import distillation_loss
from mustsurv.models.dmml.genes import subspace_columns
from mustsurv.models.registry import build_model
from mustsurv.train.dmml import distill_loss_fn
from mustsurv.train.dmml_data import read_sorted_features
from mustsurv.train.trainer import OptimConfig, train_epochs

N_TOKENS, D_PATH, DIM = 16, 12, 8
SUBSPACES = [[[0, 0], [0, 1], [1, 0]], [[2, 0], [2, 1]]]


def items(n: int = 6, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    return [{"patient_id": f"p{i}", "pathology": torch.randn(2 * N_TOKENS, D_PATH, generator=gen),
             "genomics": [torch.randn(3, generator=gen) for _ in range(3)], "time": float(i + 1), "event": i % 2,
             "bin": i % 4} for i in range(n)]


def teacher(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("dmml", pathology_dim=D_PATH, subspaces=SUBSPACES, n_tokens=N_TOKENS, dim=DIM,
                       gene_hidden=[8], heads=2, head_dim=4, points=2, dropout=0.0, gene_dropout=0.0)


def student(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("dmml_student", pathology_dim=D_PATH, n_tokens=N_TOKENS, dim=DIM, heads=2, head_dim=4,
                       points=2, dropout=0.0)


# --- confidence-guided gradient coordination ---------------------------------------------------------

def test_coordination_leaves_agreeing_gradients_alone() -> None:
    a, b = torch.tensor([[1.0, 2.0], [0.5, -1.0]]), torch.tensor([[2.0, 1.0], [1.0, 0.0]])
    out_a, out_b = project_conflicts(a, b, a_less_confident=True)
    assert torch.equal(out_a, a) and torch.equal(out_b, b)


def test_coordination_removes_the_conflicting_component_of_the_less_confident_half() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])   # row 0 conflicts with b's row 0, row 1 agrees
    b = torch.tensor([[-1.0, 1.0], [1.0, 0.0]])
    out_a, out_b = project_conflicts(a, b, a_less_confident=True)
    assert torch.equal(out_b, b)  # the more confident half is never changed
    assert torch.dot(out_a[0], b[0]).abs() < 1e-6  # no component along the other half's gradient left
    assert torch.allclose(out_a[0].norm(), a[0].norm())  # rescaled to the original norm
    assert torch.equal(out_a[1], a[1])
    # the other way round: b is projected, a kept
    out_a2, out_b2 = project_conflicts(a, b, a_less_confident=False)
    assert torch.equal(out_a2, a) and torch.dot(out_b2[0], a[0]).abs() < 1e-6
    # the original code's double subtraction flips the component instead of removing it
    dbl, _ = project_conflicts(a, b, a_less_confident=True, double=True)
    assert torch.dot(dbl[0], b[0]) > 1e-3


def test_teacher_coordinates_its_classifier_with_the_recorded_confidences() -> None:
    model = teacher()
    w = model.branches[0].classifier.weight
    grad = torch.zeros_like(w)
    grad[:, :DIM], grad[:, DIM:] = 1.0, -1.0  # every row conflicts
    w.grad = grad.clone()
    model._confidence[0] = torch.tensor([0.2, 0.9])  # tumour half less confident -> it is projected
    model.branches[1].classifier.weight.grad = None
    model.coordinate_gradients()
    assert torch.equal(w.grad[:, DIM:], grad[:, DIM:])
    assert not torch.equal(w.grad[:, :DIM], grad[:, :DIM])
    assert (model._confidence == 0).all()
    coordinate_classifier(w, DIM, 1.0, 0.0)  # now the microenvironment half is less confident
    assert torch.allclose((w.grad[:, :DIM] * w.grad[:, DIM:]).sum(1), torch.zeros(w.shape[0]), atol=1e-5)


def test_teacher_loss_records_confidences_and_reads_the_genes() -> None:
    model = teacher().train()
    batch = collate(items())
    loss, logs = model.loss(batch)
    assert set(logs) == {"surv", "consistency"} and (model._confidence > 0).all()
    model.eval()
    other = collate([{**it, "genomics": [g + 3.0 for g in it["genomics"]]} for it in items()])
    assert not torch.allclose(model(batch), model(other))


# --- the WSI-only student and distillation ------------------------------------------------------------

def test_student_output_does_not_depend_on_genomics() -> None:
    model = student().eval()
    base = items()
    changed = [{**it, "genomics": [torch.randn(3) * 10 for _ in range(3)]} for it in base]
    absent = [{**it, "genomics": None} for it in base]
    out = model.predict_risk(collate(base), "complete")
    assert torch.equal(out, model.predict_risk(collate(changed), "complete"))
    assert torch.equal(out, model.predict_risk(collate(absent), "missing_genomics"))


def _distilled(teacher_model, seed: int = 0) -> torch.Tensor:
    model = student(seed)
    frozen = teacher_model.eval().requires_grad_(False)
    cfg = {"temperature": 2.0, "kl_weight": 1.0, "feature_weight": 1.0}
    train_epochs(model, items(), distill_loss_fn(model, frozen, cfg), model.parameters(),
                 OptimConfig(epochs=3, lr=1e-2, accumulation_steps=6, grouped=True, optimizer="adam"))
    return model.eval().predict_risk(collate(items(4, seed=1)), "missing_genomics")


def test_distillation_changes_the_student() -> None:
    plain = student()
    train_epochs(plain, items(), plain.loss, plain.parameters(),
                 OptimConfig(epochs=3, lr=1e-2, accumulation_steps=6, grouped=True, optimizer="adam"))
    without = plain.eval().predict_risk(collate(items(4, seed=1)), "missing_genomics")
    with_a, with_b = _distilled(teacher(0)), _distilled(teacher(1))
    assert not torch.allclose(with_a, without)  # the teacher's knowledge reaches the student
    assert not torch.allclose(with_a, with_b)  # and which teacher matters


def test_distillation_loss_is_zero_when_student_equals_teacher() -> None:
    z, f = torch.randn(5, 4), torch.randn(5, 16)
    assert float(distillation_loss(z, z.clone(), f, f.clone())) == pytest.approx(0.0, abs=1e-7)
    assert float(distillation_loss(z + torch.randn(5, 4), z, f, f)) > 0
    assert float(distillation_loss(z, z, f + 1.0, f)) > 0


# --- informative token aggregation ---------------------------------------------------------------------

def test_aggregation_returns_one_token_per_cluster() -> None:
    torch.manual_seed(0)
    agg = TokenAggregation(DIM, n_clusters=3, k=4)
    assert agg(torch.randn(25, DIM)).shape == (3 * DIM,)
    labels = dpc_knn(torch.randn(25, DIM), 3, 4)
    assert labels.shape == (25,) and set(labels.tolist()) <= {0, 1, 2}


def test_aggregation_is_invariant_to_the_order_inside_a_cluster() -> None:
    torch.manual_seed(0)
    tokens = torch.cat([torch.randn(10, DIM) - 4, torch.randn(10, DIM) + 4])  # two well separated groups
    agg = TokenAggregation(DIM, n_clusters=2, k=3)
    labels = dpc_knn(tokens, 2, 3)
    assert len(set(labels[:10].tolist())) == 1 and len(set(labels[10:].tolist())) == 1
    scores = agg.score(tokens).squeeze(-1)
    ref = aggregate_clusters(tokens, scores, labels, 2)
    members = torch.nonzero(labels == labels[0]).squeeze(1)
    perm = torch.arange(20)
    perm[members] = members[torch.randperm(len(members))]
    assert torch.allclose(aggregate_clusters(tokens[perm], scores[perm], labels[perm], 2), ref, atol=1e-6)
    assert torch.allclose(agg(tokens[torch.randperm(20)]), agg(tokens), atol=1e-5)  # the whole module too
    assert not torch.allclose(ref[0], ref[1])


# --- bags, subspaces, consistency, combination ------------------------------------------------------------

@pytest.mark.parametrize("n_patches", [1, 5, 16, 37, 300])
def test_resampling_keeps_patch_order(n_patches: int) -> None:
    idx = resample_indices(n_patches, 16)
    assert len(idx) == 16 and idx[0] == 0 and (idx[1:] >= idx[:-1]).all() and idx[-1] < n_patches
    if n_patches <= 16:
        assert set(idx.tolist()) == set(range(n_patches))  # every patch kept, repeated in place
    else:
        assert (idx[1:] > idx[:-1]).all()  # stride subsampling, no repeats
    bag = torch.arange(n_patches, dtype=torch.float32)[:, None].repeat(1, 3)
    hi, lo = split_magnifications(stack_magnifications([bag, bag[: max(1, n_patches // 2)]], 16), 2, 16)
    assert torch.equal(hi[:, 0], idx.float())
    assert (lo[1:, 0] >= lo[:-1, 0]).all()


def test_bags_are_read_sorted_by_y_then_x(tmp_path) -> None:
    path = tmp_path / "s.h5"
    coords = np.array([[10, 5], [0, 5], [3, 0], [7, 0]])
    with h5py.File(path, "w") as h5:
        h5["features"] = np.arange(4, dtype=np.float32)[:, None]
        h5["coords"] = coords
    assert read_sorted_features(path)[:, 0].tolist() == [2, 3, 1, 0]


def test_bag_of_the_wrong_length_is_rejected() -> None:
    bad = [{**items(1)[0], "pathology": torch.randn(2 * N_TOKENS + 1, D_PATH)}]
    with pytest.raises(ValueError, match="magnifications"):
        student()(collate(bad))


def test_subspaces_take_rna_of_their_families_each_gene_once() -> None:
    names = ["Tumor Suppressor Genes", "Oncogenes", "Cytokines and Growth Factors"]
    feats = [["TP53_cnv", "TP53_rnaseq", "PTEN_rnaseq"], ["MYC_rnaseq", "TP53_rnaseq"], ["IL6_rnaseq", "IL6_mut"]]
    assert subspace_columns(names, feats, names[:2]) == [[0, 1], [0, 2], [1, 0]]
    assert subspace_columns(names, feats, names[2:]) == [[2, 0]]
    with pytest.raises(ValueError, match="dmml.subspaces"):
        subspace_columns(names, feats, ["Kinases"])


def test_consistency_losses() -> None:
    a = torch.rand(4, 10)
    assert float(consistency_loss(a, a, "alignment")) == pytest.approx(0.0, abs=1e-7)
    assert float(consistency_loss(a, torch.rand(4, 10), "alignment")) > 0
    assert float(consistency_loss(a, torch.rand(4, 10), "variance")) > 0
    assert float(consistency_loss(a[:1], a[:1], "variance")) == 0.0
    with pytest.raises(ValueError, match="consistency"):
        consistency_loss(a, a, "other")


def test_magnifications_are_combined_by_confidence() -> None:
    logits = torch.tensor([[[5.0, 0, 0, 0], [0.1, 0, 0, 0]], [[0.2, 0, 0, 0], [0, 0, 4.0, 0]]])
    out = most_confident(logits)
    assert torch.equal(out[0], logits[0, 0]) and torch.equal(out[1], logits[1, 1])


def test_deformable_attention_needs_a_square_bag() -> None:
    model = copy.deepcopy(student())
    model.n_tokens = 15
    with pytest.raises(ValueError, match="perfect square"):
        model.branches[0].attention(torch.randn(1, 15, DIM), torch.randn(1, 15, DIM))
