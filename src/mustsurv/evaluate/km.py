"""Kaplan–Meier figures: patients split at the median predicted risk over the pooled test folds."""

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


def median_split(risk: np.ndarray) -> np.ndarray:
    """(N,) bool: True for the high-risk group (risk above the median)."""
    return np.asarray(risk, dtype=float) > np.median(risk)


def km_figure(pred: pd.DataFrame, title: str, path: str | Path) -> float:
    """Draw KM curves (95 % CI bands, censor ticks) of the median-risk groups; return the log-rank p.

    ``pred``: pooled test predictions of one method, cohort and scenario (``risk``, ``time``, ``event``).
    """
    high = median_split(pred["risk"].to_numpy())
    time, event = pred["time"].to_numpy(float), pred["event"].to_numpy(int)
    p = logrank(time, event, high.astype(int)) if 0 < high.sum() < len(high) else float("nan")
    fig, ax = plt.subplots(figsize=(5, 4))
    for flag, (label, colour) in zip((False, True), GROUPS):
        sel = high == flag
        if not sel.any():
            continue
        km = kaplan_meier(time[sel], event[sel])
        ax.step(km.timeline, km.survival, where="post", color=colour, label=f"{label} (n={sel.sum()})")
        ax.fill_between(km.timeline, km.lower, km.upper, step="post", color=colour, alpha=0.15, linewidth=0)
        ax.plot(km.censor_times, km.censor_survival, "|", color=colour, markersize=8)
    ax.set_xlabel("time (months)")
    ax.set_ylabel("overall survival")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{title}\nlog-rank p = {p:.3g}", fontsize=10)
    ax.legend(loc="lower left", frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return p
