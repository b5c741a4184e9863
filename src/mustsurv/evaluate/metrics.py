"""The survival metrics the field reports, per fold and scenario (all from scikit-survival).

For one method, fold and scenario, from the test patients' predictions and the fold's *training* patients
(the fold file's ``train`` ∪ ``validation``, i.e. the outer training fold, with times and events from the
cohort table):

* ``harrell_c``: Harrell's C-index of the risk (:func:`mustsurv.survival.metrics.c_index`, the value of the
  C-index tables);
* ``uno_c``: Uno's IPCW C-index of the risk (``concordance_index_ipcw``), the censoring distribution
  estimated on the training patients, truncated at ``tau`` = the training follow-up (the largest training
  time): only test patients whose time lies below ``tau`` count as the earlier member of a pair;
* ``auc_q25``, ``auc_q50``, ``auc_q75``: cumulative/dynamic time-dependent AUC of the risk
  (``cumulative_dynamic_auc``) at the 25/50/75 % quantiles of the training patients' event times, and
  ``mean_auc`` (scikit-survival's mean over those times, weighted by the test fold's Kaplan–Meier
  survival; the single AUC when one time remains);
* ``ibs``: integrated Brier score (``integrated_brier_score``) over the same times (at least two), with
  S(t) of each patient read from the step function of its predicted survival at the fold's bin edges
  (:func:`survival_at`). Not defined for predictions without survival curves (the demo's oracle).

Times are dropped (and the drop written in the ``note`` column) when they lie outside the test fold's
follow-up ``[min, max)`` (scikit-survival rejects them) or at/after the training follow-up (the censoring
distribution is not estimated there), or when no test patient has had an event by then or none is still
at risk. Test patients followed beyond the training follow-up are administratively censored there for the
IPCW estimators: every evaluation time lies below it, so their contribution (alive at each time) is
unchanged. A metric scikit-survival cannot compute is NaN with its error in ``note``; nothing raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mustsurv.evaluate.tables import _cell
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.survival.metrics import c_index

QUANTILES: tuple[int, ...] = (25, 50, 75)
"""Percentiles of the training event times at which AUC and the Brier score are evaluated."""
AUC_METRICS: tuple[str, ...] = tuple(f"auc_q{q}" for q in QUANTILES)
METRICS: tuple[str, ...] = ("harrell_c", "uno_c", "ibs", "mean_auc", *AUC_METRICS)
"""Every metric, in table order."""
SURVIVAL_METRICS: frozenset[str] = frozenset({"ibs"})
"""Metrics that need the predicted survival curves (skipped for risk-only predictions)."""
LONG_COLUMNS: tuple[str, ...] = ("method", "scenario", "cohort", "fold", "metric", "value", "time", "note")
"""Columns of ``metrics_folds.tsv``: ``time`` is the evaluation time (auc_q*) or ``tau`` (uno_c) in months."""


@dataclass(frozen=True)
class TrainingOutcomes:
    """The outcomes of a fold's training patients and the fold's time-bin edges.

    Attributes:
        time: (M,) follow-up times (months) of the training patients (train ∪ validation).
        event: (M,) 1 = death observed.
        bin_edges: (K+1,) the fold file's ``bin_edges`` ``[0, e_1, …, e_{K−1}, inf]``.
    """

    time: np.ndarray
    event: np.ndarray
    bin_edges: tuple[float, ...]

    @property
    def horizon(self) -> float:
        """The training follow-up: the largest training time."""
        return float(np.max(self.time))


def survival_at(surv: ArrayLike, bin_edges: ArrayLike, times: ArrayLike) -> np.ndarray:
    """S(t) from the step function of the survival at the bin edges.

    ``surv[:, k-1]`` is the survival after bin k, i.e. at edge ``e_k``; S(t) = 1 before ``e_1`` and
    S(t) = ``surv[:, j-1]`` for ``e_j <= t < e_{j+1}`` (right-continuous steps at the inner edges).

    Args:
        surv: (N, K) survival after each bin.
        bin_edges: (K+1,) ``[0, e_1, …, e_{K−1}, inf]``.
        times: (T,) times (months).

    Returns:
        (N, T) survival probabilities.
    """
    s = np.asarray(surv, dtype=float)
    edges = np.asarray(bin_edges, dtype=float)
    if s.ndim != 2 or s.shape[1] != len(edges) - 1:
        raise ValueError(f"{s.shape} survival values do not match {len(edges) - 1} bins of edges {edges.tolist()}")
    step = np.searchsorted(edges[1:-1], np.asarray(times, dtype=float), side="right")
    return np.hstack([np.ones((s.shape[0], 1)), s])[:, step]


def evaluation_times(train_time: ArrayLike, train_event: ArrayLike, test_time: ArrayLike, test_event: ArrayLike,
                     horizon: float) -> tuple[dict[str, float], list[str]]:
    """The quantiles of the training event times that can be evaluated on a test fold.

    Args:
        train_time: (M,) training times.
        train_event: (M,) training events.
        test_time: (N,) test times.
        test_event: (N,) test events.
        horizon: The training follow-up (times at or after it are dropped).

    Returns:
        ({``auc_q25``: t, …} of the kept times, notes on the dropped ones).
    """
    tt, te = np.asarray(train_time, dtype=float), np.asarray(train_event).astype(bool)
    t, e = np.asarray(test_time, dtype=float), np.asarray(test_event).astype(bool)
    if not te.any():
        return {}, ["no training event: no evaluation times"]
    kept, notes = {}, []
    for name, q in zip(AUC_METRICS, QUANTILES):
        x = float(np.percentile(tt[te], q))
        if not (t.min() <= x < t.max()):
            notes.append(f"q{q}={x:.4g} dropped: outside the test follow-up [{t.min():.4g}, {t.max():.4g})")
        elif x >= horizon:
            notes.append(f"q{q}={x:.4g} dropped: not below the training follow-up {horizon:.4g}")
        elif not (e & (t <= x)).any():
            notes.append(f"q{q}={x:.4g} dropped: no test event by then")
        elif not (t > x).any():
            notes.append(f"q{q}={x:.4g} dropped: no test patient at risk after it")
        else:
            kept[name] = x
    return kept, notes


def fold_metrics(risk: ArrayLike, time: ArrayLike, event: ArrayLike, train: TrainingOutcomes,
                 surv: ArrayLike | None = None) -> list[dict]:
    """Every metric of one method, fold and scenario.

    Args:
        risk: (N,) risk of the test patients (higher = earlier death).
        time: (N,) test times (months).
        event: (N,) test events.
        train: The fold's training outcomes and bin edges.
        surv: (N, K) survival after each bin; None skips the metrics that need it.

    Returns:
        One dict per metric (``metric``, ``value``, ``time``, ``note``), in :data:`METRICS` order.
    """
    from sksurv.metrics import (
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )
    from sksurv.util import Surv

    r = np.asarray(risk, dtype=float)
    t, e = np.asarray(time, dtype=float), np.asarray(event).astype(bool)
    y_train = Surv.from_arrays(np.asarray(train.event).astype(bool), np.asarray(train.time, dtype=float))
    y_test = Surv.from_arrays(e, t)
    horizon = train.horizon
    # censored administratively at the training follow-up: exact for every evaluation time below it
    y_admin = Surv.from_arrays(e & (t < horizon), np.minimum(t, horizon))
    out: dict[str, dict] = {}

    def put(metric: str, compute, at: float = float("nan"), note: str = "") -> None:
        try:
            value = float(compute())
        except ValueError as err:  # scikit-survival's rejections: report, do not crash
            value, note = float("nan"), "; ".join(x for x in (note, f"{type(err).__name__}: {err}") if x)
        out[metric] = {"metric": metric, "value": value, "time": at, "note": note}

    put("harrell_c", lambda: c_index(t, e, r))
    put("uno_c", lambda: concordance_index_ipcw(y_train, y_test, r, tau=horizon)[0], at=horizon)
    kept, notes = evaluation_times(train.time, train.event, t, e, horizon)
    dropped = "; ".join(notes)
    names, times = list(kept), np.array(list(kept.values()), dtype=float)
    if surv is not None:
        if len(times) < 2:
            put("ibs", lambda: _raise(f"{len(times)} evaluation time(s) left; the IBS needs two"), note=dropped)
        else:
            estimate = survival_at(surv, train.bin_edges, times)
            put("ibs", lambda: integrated_brier_score(y_train, y_admin, estimate, times), note=dropped)
    if len(times) == 0:
        put("mean_auc", lambda: _raise("no evaluation time left"), note=dropped)
        aucs = {}
    else:
        try:
            values, mean = cumulative_dynamic_auc(y_train, y_admin, r, times)
            aucs = dict(zip(names, np.atleast_1d(values).tolist()))
            put("mean_auc", lambda: mean, note=dropped)
        except ValueError as err:
            aucs, message = {}, str(err)
            put("mean_auc", lambda: _raise(message), note=dropped)
    for name, note in zip(AUC_METRICS, _per_time_notes(notes)):
        if name in aucs:
            put(name, lambda v=aucs[name]: v, at=kept[name])
        else:
            put(name, lambda: _raise("not computed"), at=kept.get(name, float("nan")), note=note)
    return [out[m] for m in METRICS if m in out]


def _raise(message: str) -> float:
    raise ValueError(message)


def _per_time_notes(notes: list[str]) -> list[str]:
    """The note of each quantile (empty when it was kept)."""
    return [next((n for n in notes if n.startswith(f"q{q}=")), "") for q in QUANTILES]


def summary_table(long: pd.DataFrame, cohorts: list[str], digits: int = 3) -> pd.DataFrame:
    """Mean ± SD over folds of every metric, per method × scenario × metric.

    Args:
        long: The long metrics table (:data:`LONG_COLUMNS`) of one or more cohorts.
        cohorts: The cohorts, in column order.
        digits: Decimals of the cells.

    Returns:
        Columns ``method, scenario, metric, <cohorts…>, Overall``. A cohort cell is ``mean ± SD`` over
        the folds with a value (``(n=…)`` appended when some folds have none, ``–`` when none has);
        ``Overall`` is the mean of the cohort means ± their SD across cohorts, as in the C-index tables
        (``–`` unless every cohort has a value). Methods in the order they appear, scenarios in the
        study's order.
    """
    rows = []
    methods = list(dict.fromkeys(long["method"]))
    for method in methods:
        for scenario in SCENARIOS:
            for metric in METRICS:
                part = long[(long["method"] == method) & (long["scenario"] == scenario) & (long["metric"] == metric)]
                if part.empty:
                    continue
                row = {"method": method, "scenario": scenario, "metric": metric}
                means = []
                for cohort in cohorts:
                    sel = part[part["cohort"] == cohort]
                    vals = sel["value"].to_numpy(dtype=float)
                    ok = vals[np.isfinite(vals)]
                    row[cohort] = _cell(ok, digits) + (f" (n={len(ok)})" if 0 < len(ok) < len(vals) else "")
                    if len(ok):
                        means.append(ok.mean())
                row["Overall"] = _cell(np.array(means), digits) if len(means) == len(cohorts) else "–"
                rows.append(row)
    return pd.DataFrame(rows, columns=["method", "scenario", "metric", *cohorts, "Overall"])
