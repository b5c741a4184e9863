"""Survival metrics: Harrell's C-index (scikit-survival), Kaplan–Meier and log-rank (lifelines)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


def _as_arrays(time: ArrayLike, event: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``time``, ``event`` as float and int arrays (N,); ValueError on unequal lengths or non-finite times."""
    t = np.asarray(time, dtype=float).reshape(-1)
    e = np.asarray(event).reshape(-1)
    if t.shape != e.shape:
        raise ValueError(f"time and event lengths differ: {t.shape[0]} vs {e.shape[0]}")
    if not np.isfinite(t).all():
        raise ValueError("survival times contain NaN or inf")
    return t, e.astype(bool)


def c_index(time: ArrayLike, event: ArrayLike, risk: ArrayLike) -> float:
    """Compute Harrell's concordance index of ``risk`` (higher = earlier event).

    Delegates to :func:`sksurv.metrics.concordance_index_censored` (ties in risk count 1/2).

    Args:
        time: (N,) survival times.
        event: (N,) 1 = event observed, 0 = censored.
        risk: (N,) risk scores.

    Returns:
        The concordance index.

    Raises:
        ValueError: lengths differ or a time or risk is NaN/inf.
    """
    from sksurv.metrics import concordance_index_censored

    t, e = _as_arrays(time, event)
    r = np.asarray(risk, dtype=float).reshape(-1)
    if r.shape != t.shape:
        raise ValueError(f"risk has {r.shape[0]} values for {t.shape[0]} patients")
    if not np.isfinite(r).all():
        raise ValueError("risk scores contain NaN or inf")
    return float(concordance_index_censored(e, t, r)[0])


@dataclass(frozen=True)
class KaplanMeierCurve:
    """A Kaplan–Meier estimate.

    Attributes:
        timeline: (T,) times.
        survival: (T,) survival estimate.
        lower: (T,) lower bound of the 95 % CI.
        upper: (T,) upper bound of the 95 % CI.
        censor_times: the censoring times.
        censor_survival: the curve's value at the censoring times (for tick marks).
    """

    timeline: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    censor_times: np.ndarray
    censor_survival: np.ndarray


def kaplan_meier(time: ArrayLike, event: ArrayLike, alpha: float = 0.05) -> KaplanMeierCurve:
    """Estimate a Kaplan–Meier curve with a ``1 - alpha`` confidence band (lifelines' ``KaplanMeierFitter``).

    Args:
        time: (N,) survival times.
        event: (N,) 1 = event observed, 0 = censored.
        alpha: 1 - confidence level of the band.

    Returns:
        The curve.
    """
    from lifelines import KaplanMeierFitter

    t, e = _as_arrays(time, event)
    fitter = KaplanMeierFitter(alpha=alpha).fit(t, e)
    sf = fitter.survival_function_.iloc[:, 0]
    ci = fitter.confidence_interval_survival_function_
    censor_times = np.sort(t[~e])
    return KaplanMeierCurve(
        timeline=sf.index.to_numpy(dtype=float),
        survival=sf.to_numpy(dtype=float),
        lower=ci.iloc[:, 0].to_numpy(dtype=float),
        upper=ci.iloc[:, 1].to_numpy(dtype=float),
        censor_times=censor_times,
        censor_survival=np.asarray(fitter.predict(censor_times), dtype=float).reshape(-1),
    )


def logrank(time: ArrayLike, event: ArrayLike, group: ArrayLike) -> float:
    """Run the log-rank test between the groups in ``group`` (lifelines).

    Args:
        time: (N,) survival times.
        event: (N,) 1 = event observed, 0 = censored.
        group: (N,) group labels.

    Returns:
        The p-value.

    Raises:
        ValueError: lengths differ or there are fewer than two groups.
    """
    from lifelines.statistics import multivariate_logrank_test

    t, e = _as_arrays(time, event)
    g = np.asarray(group).reshape(-1)
    if g.shape != t.shape:
        raise ValueError(f"group has {g.shape[0]} labels for {t.shape[0]} patients")
    if np.unique(g).size < 2:
        raise ValueError("log-rank test needs at least two groups")
    return float(multivariate_logrank_test(t, g, e).p_value)
