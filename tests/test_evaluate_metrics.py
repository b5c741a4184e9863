"""Survival metrics: S(t) from the bin-edge survival, known answers (perfect risk), IBS against a hand
computation and against the Kaplan–Meier-like constant prediction, dropped times, the summary table and the
per-cohort long table from files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import integrated_brier_score
from sksurv.nonparametric import CensoringDistributionEstimator, kaplan_meier_estimator
from sksurv.util import Surv

from mustsurv.cohort.table import COLUMNS as COHORT_COLUMNS
from mustsurv.evaluate.metrics import (
    METRICS,
    TrainingOutcomes,
    fold_metrics,
    summary_table,
    survival_at,
)
from mustsurv.evaluate.predictions import survival_columns, write_predictions
from mustsurv.evaluate.report import cohort_metrics
from mustsurv.evaluate.tables import PredictionFile, fold_cindices


def cohort(n: int, seed: int, follow_up: float = 60.0):
    """Exponential times with rate exp(x)/20, uniform censoring on [0, follow_up]."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    death = rng.exponential(20 * np.exp(-x))
    censor = rng.uniform(0, follow_up, n)
    return x, np.minimum(death, censor), (death <= censor).astype(int)


def true_survival(x: np.ndarray, times) -> np.ndarray:
    """(N, T) S(t | x) of :func:`cohort`'s model."""
    return np.exp(-np.outer(np.exp(x), np.asarray(times, dtype=float)) / 20)


def outcomes(time, event, n_bins: int = 4) -> TrainingOutcomes:
    inner = np.quantile(time[event == 1], np.linspace(0, 1, n_bins + 1)[1:-1])
    return TrainingOutcomes(np.asarray(time, float), np.asarray(event), (0.0, *inner.tolist(), float("inf")))


def by_metric(rows: list[dict]) -> dict[str, dict]:
    return {r["metric"]: r for r in rows}


def test_survival_at_reads_the_step_function_of_the_bin_edges() -> None:
    surv = np.array([[0.9, 0.7, 0.2], [0.5, 0.4, 0.1]])
    got = survival_at(surv, [0.0, 10.0, 20.0, float("inf")], [0, 5, 10, 15, 20, 100])
    np.testing.assert_array_equal(got, [[1, 1, 0.9, 0.9, 0.7, 0.7], [1, 1, 0.5, 0.5, 0.4, 0.4]])
    with pytest.raises(ValueError, match="bins"):
        survival_at(surv, [0.0, 10.0, float("inf")], [1.0])


def test_perfect_risk_gives_uno_c_and_auc_of_one() -> None:
    _, t_train, e_train = cohort(300, 0)
    _, t, e = cohort(120, 1)
    train = outcomes(t_train, e_train)
    m = by_metric(fold_metrics(-t, t, e, train))  # risk = −time: a patient who dies earlier always ranks higher
    assert m["harrell_c"]["value"] == pytest.approx(1.0)
    assert m["uno_c"]["value"] == pytest.approx(1.0)
    assert m["uno_c"]["time"] == pytest.approx(t_train.max())  # tau = the training follow-up
    for name in ("mean_auc", "auc_q25", "auc_q50", "auc_q75"):
        assert m[name]["value"] == pytest.approx(1.0), name
    quartiles = np.percentile(t_train[e_train == 1], [25, 50, 75])
    np.testing.assert_allclose([m[f"auc_q{q}"]["time"] for q in (25, 50, 75)], quartiles)
    assert "ibs" not in m  # no survival curves given
    noise = by_metric(fold_metrics(np.random.default_rng(5).normal(size=len(t)), t, e, train))
    assert 0.3 < noise["uno_c"]["value"] < 0.7 and 0.3 < noise["mean_auc"]["value"] < 0.7


def test_ibs_of_true_curves_beats_the_kaplan_meier_like_constant_and_matches_a_hand_computation() -> None:
    x_train, t_train, e_train = cohort(400, 2)
    x, t, e = cohort(200, 3)
    train = outcomes(t_train, e_train, n_bins=8)
    edges = np.array(train.bin_edges)
    km_t, km_s = kaplan_meier_estimator(e_train.astype(bool), t_train)
    km_at_edges = km_s[np.searchsorted(km_t, edges[1:], side="right") - 1]  # (K,): the training KM at the edges
    constant = np.tile(km_at_edges, (len(t), 1))  # the same curve for every patient
    informed = true_survival(x, np.r_[edges[1:-1], 1e3])
    ibs_constant = by_metric(fold_metrics(np.zeros(len(t)), t, e, train, constant))["ibs"]["value"]
    ibs_informed = by_metric(fold_metrics(x, t, e, train, informed))["ibs"]["value"]
    assert ibs_informed < ibs_constant - 0.01
    assert 0.05 < ibs_constant < 0.3
    # by hand: Brier(t) with the training censoring distribution G, trapezoid over the three quartiles
    times = np.percentile(t_train[e_train == 1], [25, 50, 75])
    cens = CensoringDistributionEstimator().fit(Surv.from_arrays(e_train.astype(bool), t_train))
    s = survival_at(informed, edges, times)
    briers = []
    for j, tj in enumerate(times):
        case = (t <= tj) & (e == 1)
        control = t > tj
        g_case = np.where(case, cens.predict_proba(np.where(case, t, 0.0)), 1.0)
        briers.append(np.mean(s[:, j] ** 2 * case / g_case + (1 - s[:, j]) ** 2 * control / cens.predict_proba([tj])))
    by_hand = np.trapezoid(briers, times) / (times[-1] - times[0])
    assert ibs_informed == pytest.approx(by_hand, rel=1e-9)
    # equal to scikit-survival on the raw test outcomes when every test time lies inside the training follow-up
    inside = t < t_train.max()
    direct = integrated_brier_score(Surv.from_arrays(e_train.astype(bool), t_train),
                                    Surv.from_arrays(e[inside].astype(bool), t[inside]), s[inside], times)
    mine = by_metric(fold_metrics(x[inside], t[inside], e[inside], train, informed[inside]))["ibs"]["value"]
    assert mine == pytest.approx(direct, rel=1e-12)


def test_times_beyond_the_test_follow_up_are_dropped_and_said_so() -> None:
    x_train, t_train, e_train = cohort(300, 4)
    x, t, e = cohort(100, 5, follow_up=60.0)
    train = outcomes(t_train, e_train)
    q50, q75 = np.percentile(t_train[e_train == 1], [50, 75])
    short = t < (q50 + q75) / 2  # a test fold followed up only to between the median and the third quartile
    x, t, e = x[short], t[short], e[short]
    surv = true_survival(x, np.r_[np.array(train.bin_edges[1:-1]), 1e3])
    m = by_metric(fold_metrics(x, t, e, train, surv))
    assert np.isnan(m["auc_q75"]["value"]) and "outside the test follow-up" in m["auc_q75"]["note"]
    assert np.isfinite(m["auc_q25"]["value"]) and np.isfinite(m["auc_q50"]["value"])
    assert np.isfinite(m["ibs"]["value"]) and "q75=" in m["ibs"]["note"]  # two times left: IBS over them
    assert np.isfinite(m["mean_auc"]["value"])
    # a fold that ends before the first quartile: nothing to evaluate, NaN with the reason, no exception
    q25 = np.percentile(t_train[e_train == 1], 25)
    early = t < q25 * 0.9
    m = by_metric(fold_metrics(x[early], t[early], e[early], train, surv[early]))
    assert [m[k]["metric"] for k in m] == list(METRICS)
    for name in ("ibs", "mean_auc", "auc_q25", "auc_q50", "auc_q75"):
        assert np.isnan(m[name]["value"]) and m[name]["note"], name
    assert np.isfinite(m["harrell_c"]["value"])


def test_test_patients_beyond_the_training_follow_up_do_not_break_the_ipcw_metrics() -> None:
    x_train, t_train, e_train = cohort(200, 6, follow_up=30.0)
    x, t, e = cohort(100, 7, follow_up=90.0)
    assert t.max() > t_train.max() and e[t > t_train.max()].any()
    train = outcomes(t_train, e_train)
    surv = true_survival(x, np.r_[np.array(train.bin_edges[1:-1]), 1e3])
    m = by_metric(fold_metrics(x, t, e, train, surv))
    for name in METRICS:
        assert np.isfinite(m[name]["value"]), (name, m[name]["note"])


def test_summary_table_mean_sd_with_missing_folds_and_overall() -> None:
    rows = []
    for cohort_name, values in (("A", [0.6, 0.7, np.nan]), ("B", [0.8, 0.8, 0.8])):
        for fold, v in enumerate(values):
            rows.append(dict(method="m", scenario="complete", cohort=cohort_name, fold=fold, metric="uno_c",
                             value=v, time=1.0, note=""))
            rows.append(dict(method="oracle", scenario="complete", cohort=cohort_name, fold=fold,
                             metric="harrell_c", value=0.9, time=np.nan, note=""))
    table = summary_table(pd.DataFrame(rows), ["A", "B"])
    assert list(table.columns) == ["method", "scenario", "metric", "A", "B", "Overall"]
    m = table[table.method == "m"].iloc[0]
    assert m["A"] == f"0.650 ± {np.std([0.6, 0.7], ddof=1):.3f} (n=2)"
    assert m["B"] == "0.800 ± 0.000"
    assert m["Overall"] == f"{np.mean([0.65, 0.8]):.3f} ± {np.std([0.65, 0.8], ddof=1):.3f}"
    assert table["method"].tolist() == ["m", "oracle"]


def test_cohort_metrics_from_files_match_the_cindex_table_and_skip_ibs_for_the_oracle(tmp_path) -> None:
    x, t, e = cohort(90, 8)
    ids = [f"P{i:03d}" for i in range(90)]
    table = pd.DataFrame({"patient_id": ids, "time": t, "event": e, "has_pathology": 1, "has_genomics": 1,
                          "slides": ""})[list(COHORT_COLUMNS)]
    table.to_csv(tmp_path / "cohort.tsv", sep="\t", index=False)
    pd.DataFrame({"patient_id": ids, **{f"risk_{s}": x for s in ("complete", "missing_genomics",
                                                                     "missing_pathology")}}).to_csv(
        tmp_path / "truth.tsv", sep="\t", index=False)
    splits, files = [], []
    for k in range(3):
        test = ids[k::3]
        rest = [i for i in ids if i not in test]
        fit = outcomes(t[[ids.index(i) for i in rest]], e[[ids.index(i) for i in rest]])
        split = tmp_path / f"fold{k}.json"
        split.write_text(json.dumps({"train": rest[:48], "validation": rest[48:], "test": test,
                                     "bin_edges": list(fit.bin_edges)}))
        splits.append(str(split))
        idx = [ids.index(i) for i in test]
        pred = pd.DataFrame({"patient_id": test, "scenario": "complete", "risk": x[idx], "time": t[idx],
                             "event": e[idx], "train_median_risk": 0.0})
        pred[survival_columns(4)] = true_survival(x[idx], np.r_[np.array(fit.bin_edges[1:-1]), 1e3])
        path = tmp_path / f"pred{k}.tsv"
        write_predictions(pred, path)
        files.append(str(path))
    long = cohort_metrics("A", {"mlp": files}, str(tmp_path / "cohort.tsv"), splits, str(tmp_path / "truth.tsv"))
    assert list(long.columns) == ["method", "scenario", "cohort", "fold", "metric", "value", "time", "note"]
    mine = long[(long.method == "mlp") & (long.metric == "harrell_c")]["value"].to_numpy()
    cindex = fold_cindices([PredictionFile("A", "mlp", k, p) for k, p in enumerate(files)])["cindex"].to_numpy()
    np.testing.assert_allclose(mine, cindex, rtol=0, atol=0)
    assert set(long[long.method == "mlp"]["metric"]) == set(METRICS)
    oracle = long[long.method == "oracle"]
    assert "ibs" not in set(oracle["metric"]) and set(oracle["scenario"]) == {"complete", "missing_genomics",
                                                                               "missing_pathology"}
    assert oracle.groupby("fold").size().tolist() == [3 * (len(METRICS) - 1)] * 3
    # the oracle's risk equals the method's here: the same Uno C
    np.testing.assert_allclose(oracle[(oracle.scenario == "complete") & (oracle.metric == "uno_c")]["value"],
                               long[(long.method == "mlp") & (long.metric == "uno_c")]["value"], rtol=1e-5)
