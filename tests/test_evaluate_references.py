"""Table 2's references: MUST with the missing input zero-filled, and with a ridge ũ from c̃."""

from __future__ import annotations

import pytest
import torch
from test_models_must import tiny_items, tiny_must

from mustsurv.evaluate.imputation import components, imputed_risk, reference_imputations
from mustsurv.evaluate.references import reference_predictions
from mustsurv.models.batch import collate

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_references_score_the_complete_test_patients_without_each_modality() -> None:
    torch.manual_seed(0)
    model = tiny_must().eval()
    train, test = tiny_items(10, seed=1), tiny_items(6, seed=2)
    test[0] = dict(test[0], genomics=None)  # not complete: left out of the references
    refs = reference_predictions(model, train, test, ridge_alpha=1.0)
    assert set(refs) == {"must_zero_fill", "must_ridge"}
    for pred in refs.values():
        assert set(pred["scenario"]) == {"missing_genomics", "missing_pathology"}
        assert sorted(pred["patient_id"].unique()) == [it["patient_id"] for it in test[1:]]
    zero_g = refs["must_zero_fill"].query("scenario == 'missing_genomics'")["risk"].to_numpy()
    filled = [dict(it, genomics=[torch.zeros_like(v) for v in it["genomics"]]) for it in test[1:]]
    with torch.no_grad():
        expected = model.predict_risk(collate(filled), "complete").numpy()
    assert zero_g == pytest.approx(expected, rel=1e-5)
    ridge_p = refs["must_ridge"].query("scenario == 'missing_pathology'")
    tr, te = components(model, train), components(model, test[1:])
    u = reference_imputations(tr, te, "pathology", 1.0)["ridge"]
    assert ridge_p["risk"].to_numpy() == pytest.approx(imputed_risk(model, te, "pathology", u).numpy(), rel=1e-5)
    surv = ridge_p[[c for c in ridge_p.columns if c.startswith("survival_")]].to_numpy()
    assert (surv >= 0).all() and (surv <= 1).all() and (surv[:, 1:] <= surv[:, :-1] + 1e-9).all()
    assert ridge_p["train_median_risk"].nunique() == 1
    # the ridge imputation is not the training mean: it reads c̃
    mean = reference_imputations(tr, te, "pathology", 1.0)["training_mean"]
    assert not torch.allclose(u, mean)
