"""The predictions file: survival at the bin edges, risk = −Σ S bit-identical to predict_risk, the training
patients' median risk per scenario, and the contract's checks on a written file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from baseline_helpers import FAMILY_DIMS, PATHOLOGY_DIM, K, make_items

from mustsurv.evaluate.predictions import (
    read_predictions,
    survival_columns,
    survival_of,
    write_predictions,
)
from mustsurv.models import build_model, collate
from mustsurv.models.registry import model_class
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.survival import survival_from_hazards
from mustsurv.train.must import predict, scenario_available

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SAMPLING = dict(n_samples=2, steps=3, seed=7)


def tiny_must():
    torch.manual_seed(0)
    return build_model("must", family_dims=FAMILY_DIMS, pathology_dim=PATHOLOGY_DIM, n_bins=K, dim=16, rank=4,
                       heads=2, num_landmarks=4, genomics_hidden=8, ldm_layers=1, ldm_heads=2,
                       ldm_timesteps=20).eval()


def test_must_survival_columns_follow_the_hazards_and_give_the_unchanged_risk(tmp_path) -> None:
    model = tiny_must()
    test = make_items(5, seed=1)
    train = make_items(7, seed=2) + make_items(3, seed=3, genomics=False)  # 3 training patients lack genomics
    pred = predict(model, test, batch_size=16, train=train, **SAMPLING)  # one batch, as below
    assert list(pred.columns) == ["patient_id", "scenario", "risk", "time", "event", "train_median_risk",
                                  *survival_columns(K)]
    for scenario in SCENARIOS:
        part = pred[pred.scenario == scenario]
        batch = collate(test)
        logits = model.predict_logits(batch, scenario, **SAMPLING)  # missing scenarios: mean of DDIM samples
        surv = survival_from_hazards(torch.sigmoid(logits))
        np.testing.assert_allclose(survival_of(part), surv.double().numpy(), rtol=1e-6, atol=1e-7)
        # the risk column is the value predict_risk returned before survival was added, bit for bit
        assert part["risk"].tolist() == model.predict_risk(batch, scenario, **SAMPLING).tolist()
        np.testing.assert_allclose(part["risk"], -survival_of(part).sum(axis=1), rtol=1e-6)
        assert (np.diff(survival_of(part), axis=1) <= 0).all()
        # the median of the training patients the scenario admits, sampled with the same per-patient seeds
        fitted = [it for it in train if scenario_available(it, scenario)]
        assert len(fitted) == (7 if scenario == "complete" else 10 if scenario == "missing_genomics" else 7)
        expected = np.median(model.predict_risk(collate(fitted), scenario, **SAMPLING).double().numpy())
        assert part["train_median_risk"].nunique() == 1
        assert part["train_median_risk"].iloc[0] == pytest.approx(expected, rel=1e-6)
    path = tmp_path / "fold0.tsv"
    write_predictions(pred, path)
    back = read_predictions(path)
    np.testing.assert_allclose(back["risk"], pred["risk"], rtol=1e-5)
    np.testing.assert_allclose(survival_of(back), survival_of(pred), rtol=1e-5, atol=1e-7)


def test_predictions_without_the_training_patients_are_not_a_valid_file(tmp_path) -> None:
    model = tiny_must()
    pred = predict(model, make_items(3, seed=1), ("complete",))
    assert pred["train_median_risk"].isna().all()
    with pytest.raises(ValueError, match="train_median_risk"):
        write_predictions(pred, tmp_path / "p.tsv")


@pytest.mark.parametrize("name", ["snn", "abmil"])
def test_baseline_survival_and_training_median(name: str) -> None:
    torch.manual_seed(0)
    cls = model_class(name)
    kwargs = {**cls.input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), "n_bins": K}
    model = build_model(name, **kwargs).eval()
    test, train = make_items(6, seed=4), make_items(9, seed=5)
    pred = predict(model, test, cls.scenarios, train=train)
    (scenario,) = cls.scenarios
    batch = collate(test)
    surv = survival_from_hazards(torch.sigmoid(model.predict_logits(batch, scenario)))
    np.testing.assert_allclose(survival_of(pred), surv.double().numpy(), rtol=1e-6, atol=1e-7)
    assert pred["risk"].tolist() == model.predict_risk(batch, scenario).tolist()
    expected = np.median(model.predict_risk(collate(train), scenario).double().numpy())
    assert pred["train_median_risk"].iloc[0] == pytest.approx(expected, rel=1e-6)
