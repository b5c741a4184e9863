import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import logrank_test

from mustsurv.evaluate.km import km_figure, training_median_split
from mustsurv.evaluate.predictions import survival_columns, write_predictions
from mustsurv.evaluate.report import km_figures


def test_km_figure_reports_lifelines_logrank(tmp_path):
    rng = np.random.default_rng(3)
    risk = rng.normal(size=120)
    time = rng.exponential(30 * np.exp(-risk))
    event = rng.uniform(size=120) < 0.7
    pred = pd.DataFrame({"risk": risk, "time": time, "event": event.astype(int), "train_median_risk": 0.3})
    p = km_figure(pred, "demo", tmp_path / "km.png")
    high = training_median_split(pred)
    assert (high == (risk > 0.3)).all()
    expected = logrank_test(time[high], time[~high], event[high], event[~high]).p_value
    assert p == pytest.approx(expected)
    assert p < 0.01  # the risk carries signal, the split separates
    assert (tmp_path / "km.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_groups_split_fold_by_fold_at_the_training_median_not_at_the_pooled_median(tmp_path):
    """Fold 1's model outputs risks shifted by +5 (uncalibrated across folds): a pooled median would put all of
    fold 1 in the high-risk group; each fold's own training median splits each fold."""
    rng = np.random.default_rng(0)
    paths = []
    sizes = (40, 30)
    expected_high = 0
    for k, (n, shift) in enumerate(zip(sizes, (0.0, 5.0))):
        x = rng.normal(size=n)
        train_risk = rng.normal(0.5, 1.0, 3 * n) + shift  # the fold's training patients, through the same model
        median = float(np.median(train_risk))
        expected_high += int((x + shift > median).sum())
        time = rng.exponential(30 * np.exp(-x))
        pred = pd.DataFrame({"patient_id": [f"F{k}_{i}" for i in range(n)], "scenario": "complete",
                             "risk": x + shift, "time": time, "event": 1, "train_median_risk": median})
        pred[survival_columns(2)] = np.column_stack([np.full(n, 0.8), np.full(n, 0.5)])
        paths.append(tmp_path / f"fold{k}.tsv")
        write_predictions(pred, paths[-1])
    out = {("mlp", "complete"): str(tmp_path / "km.png")}
    table = km_figures("A", {"mlp": [str(p) for p in paths]}, out, "validation")
    row = table.iloc[0]
    assert 10 < expected_high < 35  # both folds contribute to both groups
    assert row["n_high_risk"] == expected_high
    assert row["n_low_risk"] == sum(sizes) - expected_high
    pooled = pd.concat([pd.read_csv(p, sep="\t") for p in paths])
    pooled_high = pooled["risk"] > pooled["risk"].median()  # what the pooled median would have given:
    assert pooled_high.sum() == 35 and pooled_high.iloc[40:].all()  # all of fold 1 high-risk
    high = (pooled["risk"] > pooled["train_median_risk"]).to_numpy()
    t, e = pooled["time"].to_numpy(), pooled["event"].to_numpy()
    assert row["logrank_p"] == pytest.approx(logrank_test(t[high], t[~high], e[high], e[~high]).p_value)
    assert (tmp_path / "km.png").stat().st_size > 1000
