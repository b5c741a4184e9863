"""Kaplan–Meier figures: each fold's test patients split at that fold's training median risk, then pooled.

A fold's risks come from a model fit on that fold only and are not calibrated across folds, so no
threshold is computed over the pooled folds: a test patient is high-risk when its risk exceeds the median
risk of its own fold's training patients in the same scenario (the predictions file's
``train_median_risk``). The groups of the folds are then pooled into one figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mustsurv.io import atomic_path  # noqa: E402
from mustsurv.survival.metrics import kaplan_meier, logrank  # noqa: E402

GROUPS = (("low risk", "#1f77b4"), ("high risk", "#d62728"))


def training_median_split(pred: pd.DataFrame) -> np.ndarray:
    """The high-risk group: risk above the training median of the patient's own fold and scenario.

    Args:
        pred: Test predictions (N rows) with ``risk`` and ``train_median_risk`` (one fold's or pooled
            folds', each row carrying its fold's median).

    Returns:
        (N,) bool, True for the high-risk group.
    """
    return pred["risk"].to_numpy(dtype=float) > pred["train_median_risk"].to_numpy(dtype=float)


def km_figure(pred: pd.DataFrame, title: str, path: str | Path, split: str = "each fold's training median") -> float:
    """Draw KM curves (95 % CI bands, censor ticks, at-risk table) of the risk groups; return the log-rank p.

    Args:
        pred: Pooled test predictions of one method, cohort and scenario (``risk``, ``train_median_risk``,
            ``time``, ``event``; N rows); groups from :func:`training_median_split`.
        title: First line of the figure title (the log-rank p is added).
        path: The PNG to write.
        split: What ``train_median_risk`` is, for the title.

    Returns:
        The log-rank p-value between the groups (NaN when one group is empty).
    """
    from lifelines import KaplanMeierFitter
    from lifelines.plotting import add_at_risk_counts

    high = training_median_split(pred)
    time, event = pred["time"].to_numpy(float), pred["event"].to_numpy(int)
    p = logrank(time, event, high.astype(int)) if 0 < high.sum() < len(high) else float("nan")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    fitters = []
    for flag, (label, colour) in zip((False, True), GROUPS):
        sel = high == flag
        if not sel.any():
            continue
        km = kaplan_meier(time[sel], event[sel])
        ax.step(km.timeline, km.survival, where="post", color=colour, label=f"{label} (n={sel.sum()})")
        ax.fill_between(km.timeline, km.lower, km.upper, step="post", color=colour, alpha=0.15, linewidth=0)
        ax.plot(km.censor_times, km.censor_survival, "|", color=colour, markersize=8)
        fitters.append(KaplanMeierFitter(label=label).fit(time[sel], event[sel].astype(bool)))
    ax.set_xlabel("time (months)")
    ax.set_ylabel("overall survival")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}\nsplit at {split} · log-rank p = {p:.3g}", fontsize=10)
    ax.legend(loc="lower left", frameon=False)
    if fitters:
        add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"], fig=fig)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return p
