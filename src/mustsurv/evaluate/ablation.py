"""Tables and the rank figure of the paper's analysis experiments (Table 3, Fig. 4, supplement Table 4).

Inputs are the per-fold C-indices (:func:`~mustsurv.evaluate.tables.fold_cindices`) of runs labelled in
the ``method`` column: ``must`` (the main run), a variant name from
:func:`~mustsurv.train.variants.must_variants` (``no_warmup``, ``ldm_no_cls``, ``rank<r>``,
``unpaired<pct>``), and ``<label>|zero`` for a run's "without LDM" predictions (zero tensor in place of
the missing û). Cells are ``mean ± SD`` over folds; the ``Overall`` row is the mean of the cohort means.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mustsurv.evaluate.tables import _cell  # noqa: E402
from mustsurv.io import atomic_path  # noqa: E402

MAIN = "must"
ZERO = "|zero"
SCENARIO_LABELS = {"complete": "complete", "missing_genomics": "○G", "missing_pathology": "○P"}


def _values(long: pd.DataFrame, label: str, scenario: str, cohort: str | None) -> np.ndarray:
    """Per-fold C-indices of run ``label`` in ``scenario`` for ``cohort`` (None: the cohort means)."""
    part = long[(long["method"] == label) & (long["scenario"] == scenario)]
    if part.empty:
        raise ValueError(f"no C-index for run {label!r} in scenario {scenario!r}; its predictions are missing")
    if cohort is None:
        return part.groupby("cohort")["cindex"].mean().to_numpy()
    return part.loc[part["cohort"] == cohort, "cindex"].to_numpy()


def _rows(cohorts: list[str]) -> list[tuple[str, str | None]]:
    """(row label, cohort or None for Overall)."""
    return [(c, c) for c in cohorts] + [("Overall", None)]


def warmup_table(long: pd.DataFrame, cohorts: list[str], digits: int = 3) -> pd.DataFrame:
    """Table 3(a): per cohort and scenario, C-index without and with the stage-1 warm-up."""
    rows = []
    for name, cohort in _rows(cohorts):
        for scenario in SCENARIO_LABELS:
            rows.append({"cohort": name, "scenario": scenario,
                         "w/o warm-up": _cell(_values(long, "no_warmup", scenario, cohort), digits),
                         "w/ warm-up": _cell(_values(long, MAIN, scenario, cohort), digits)})
    return pd.DataFrame(rows)


def ldm_conditioning_table(long: pd.DataFrame, cohorts: list[str], digits: int = 3) -> pd.DataFrame:
    """Table 3(b): missing-modality C-index with the LDMs conditioned on [ĉ] and on [ĉ; CLS]."""
    rows = []
    for name, cohort in _rows(cohorts):
        row = {"cohort": name}
        for cond, label in (("[ĉ]", "ldm_no_cls"), ("[ĉ; CLS]", MAIN)):
            for scenario in ("missing_genomics", "missing_pathology"):
                row[f"{cond} {SCENARIO_LABELS[scenario]}"] = _cell(_values(long, label, scenario, cohort), digits)
        rows.append(row)
    return pd.DataFrame(rows)


def rank_label(rank: int, main_rank: int) -> str:
    """Run label of the rank-``rank`` model (the main run for the main rank)."""
    return MAIN if int(rank) == int(main_rank) else f"rank{int(rank)}"


def rank_table(long: pd.DataFrame, cohorts: list[str], ranks: list[int], main_rank: int,
               digits: int = 3) -> pd.DataFrame:
    """Fig. 4 as a table: rows (rank, scenario), a column per cohort and ``Overall``, plus the numeric
    overall mean (``overall_mean``) the figure draws."""
    rows = []
    for rank in sorted(int(r) for r in ranks):
        label = rank_label(rank, main_rank)
        for scenario in SCENARIO_LABELS:
            row: dict[str, object] = {"rank": rank, "scenario": scenario}
            for cohort in cohorts:
                row[cohort] = _cell(_values(long, label, scenario, cohort), digits)
            overall = _values(long, label, scenario, None)
            row["Overall"] = _cell(overall, digits)
            row["overall_mean"] = round(float(overall.mean()), 4)
            rows.append(row)
    return pd.DataFrame(rows)


def rank_figure(table: pd.DataFrame, out: str | Path, title: str = "MUST: rank r of the shared subspace") -> None:
    """Line plot of the overall C-index against r, one line per scenario (log2 x axis)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.4), dpi=150)
    for scenario, part in table.groupby("scenario", sort=False):
        ax.plot(part["rank"], part["overall_mean"], marker="o", label=scenario.replace("_", " "))
    ax.set_xscale("log", base=2)
    ranks = sorted(table["rank"].unique())
    ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.set_xlabel("rank r of P∩")
    ax.set_ylabel("C-index (mean over cohorts)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def training_missingness_table(long: pd.DataFrame, cohorts: list[str], fractions: list[float],
                               digits: int = 3) -> pd.DataFrame:
    """Supplement Table 4: rows (missing rate, cohort), cells ``without LDM → with LDM`` (fold means) for
    missing genomics and missing pathology at inference; rate 0 is the main run."""
    rows = []
    for fraction in [0.0, *sorted(float(f) for f in fractions)]:
        label = MAIN if fraction == 0 else f"unpaired{round(100 * fraction)}"
        for name, cohort in _rows(cohorts):
            row = {"missing rate": f"{round(100 * fraction)}%", "cohort": name}
            for scenario, column in (("missing_genomics", "Missing G"), ("missing_pathology", "Missing P")):
                without = _values(long, label + ZERO, scenario, cohort).mean()
                with_ldm = _values(long, label, scenario, cohort).mean()
                row[column] = f"{without:.{digits}f} → {with_ldm:.{digits}f}"
            rows.append(row)
    return pd.DataFrame(rows)
