"""Tables and the rank figure of the paper's analysis experiments (Table 3, Fig. 4, supplement Table 4).

Inputs are the per-fold C-indices (:func:`~mustsurv.evaluate.tables.fold_cindices`) of the runs an
:class:`~mustsurv.study.runs.AblationTable` compares, labelled in the ``method`` column with each run's
:attr:`~mustsurv.study.runs.Run.label`. Cells are ``mean ± SD`` over folds; the ``Overall`` row is the
mean of the cohort means. :func:`build_table` picks a table's builder by its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mustsurv.evaluate.tables import _cell  # noqa: E402
from mustsurv.io import atomic_path  # noqa: E402
from mustsurv.study.runs import AblationTable, Arm  # noqa: E402

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
    """(row label, cohort or None for Overall) of the table's rows."""
    return [(c, c) for c in cohorts] + [("Overall", None)]


def warmup_table(long: pd.DataFrame, cohorts: list[str], arms: tuple[Arm, ...], digits: int = 3) -> pd.DataFrame:
    """Build Table 3(a): per cohort and scenario, a column per arm (without and with the stage-1 warm-up).

    Args:
        long: the long C-index table of the arms' runs (:func:`~mustsurv.evaluate.tables.fold_cindices`).
        cohorts: the cohorts, in row order (an ``Overall`` row follows).
        arms: the table's arms, keyed by their column label.
        digits: decimals of the cells.

    Returns:
        The table, rows (cohort, scenario).

    Raises:
        ValueError: a run has no C-index in a scenario (its predictions are missing).
    """
    rows = []
    for name, cohort in _rows(cohorts):
        for scenario in SCENARIO_LABELS:
            row = {"cohort": name, "scenario": scenario}
            row.update({str(arm.key): _cell(_values(long, arm.run.label, scenario, cohort), digits) for arm in arms})
            rows.append(row)
    return pd.DataFrame(rows)


def ldm_conditioning_table(long: pd.DataFrame, cohorts: list[str], arms: tuple[Arm, ...],
                           digits: int = 3) -> pd.DataFrame:
    """Build Table 3(b): missing-modality C-index per LDM condition (an arm each: [ĉ] and [ĉ; CLS]).

    Args:
        long: the long C-index table of the arms' runs (:func:`~mustsurv.evaluate.tables.fold_cindices`).
        cohorts: the cohorts, in row order (an ``Overall`` row follows).
        arms: the table's arms, keyed by their condition label.
        digits: decimals of the cells.

    Returns:
        The table, a row per cohort, a column per arm and missing modality.

    Raises:
        ValueError: a run has no C-index in a scenario (its predictions are missing).
    """
    rows = []
    for name, cohort in _rows(cohorts):
        row = {"cohort": name}
        for arm in arms:
            for scenario in ("missing_genomics", "missing_pathology"):
                row[f"{arm.key} {SCENARIO_LABELS[scenario]}"] = _cell(
                    _values(long, arm.run.label, scenario, cohort), digits)
        rows.append(row)
    return pd.DataFrame(rows)


def rank_table(long: pd.DataFrame, cohorts: list[str], arms: tuple[Arm, ...], digits: int = 3) -> pd.DataFrame:
    """Build Fig. 4 as a table: rows (rank, scenario), a column per cohort and ``Overall``.

    Args:
        long: the long C-index table of the arms' runs (:func:`~mustsurv.evaluate.tables.fold_cindices`).
        cohorts: the cohorts, in row order (an ``Overall`` row follows).
        arms: the table's arms, keyed by rank.
        digits: decimals of the cells.

    Returns:
        The table, plus the numeric overall mean (``overall_mean``) the figure draws.

    Raises:
        ValueError: a run has no C-index in a scenario (its predictions are missing).
    """
    rows = []
    for arm in sorted(arms, key=lambda a: int(a.key)):
        for scenario in SCENARIO_LABELS:
            row: dict[str, object] = {"rank": int(arm.key), "scenario": scenario}
            for cohort in cohorts:
                row[cohort] = _cell(_values(long, arm.run.label, scenario, cohort), digits)
            overall = _values(long, arm.run.label, scenario, None)
            row["Overall"] = _cell(overall, digits)
            row["overall_mean"] = round(float(overall.mean()), 4)
            rows.append(row)
    return pd.DataFrame(rows)


def rank_figure(table: pd.DataFrame, out: str | Path, title: str = "MUST: rank r of the shared subspace") -> None:
    """Plot the overall C-index against the rank r, one line per scenario (log2 x axis).

    Args:
        table: the rank table (:func:`rank_table`).
        out: the PNG to write (atomically).
        title: the figure's title.
    """
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


def training_missingness_table(long: pd.DataFrame, cohorts: list[str], arms: tuple[Arm, ...],
                               digits: int = 3) -> pd.DataFrame:
    """Build supplement Table 4: rows (missing rate, cohort), cells ``without LDM → with LDM`` (fold means).

    Columns are missing genomics and missing pathology at inference.

    Args:
        long: the long C-index table of the arms' runs (:func:`~mustsurv.evaluate.tables.fold_cindices`).
        cohorts: the cohorts, in row order (an ``Overall`` row follows).
        arms: the table's arms, keyed by the share of unpaired training patients (0 = the main run), one
            without and one with LDM generation per share.
        digits: decimals of the cells.

    Returns:
        The table.

    Raises:
        ValueError: a run has no C-index in a scenario (its predictions are missing).
    """
    runs = {(float(arm.key), arm.run.ldm): arm.run.label for arm in arms}
    rows = []
    for fraction in sorted({share for share, _ in runs}):
        for name, cohort in _rows(cohorts):
            row = {"missing rate": f"{round(100 * fraction)}%", "cohort": name}
            for scenario, column in (("missing_genomics", "Missing G"), ("missing_pathology", "Missing P")):
                without = _values(long, runs[fraction, False], scenario, cohort).mean()
                with_ldm = _values(long, runs[fraction, True], scenario, cohort).mean()
                row[column] = f"{without:.{digits}f} → {with_ldm:.{digits}f}"
            rows.append(row)
    return pd.DataFrame(rows)


BUILDERS: dict[str, Callable[[pd.DataFrame, list[str], tuple[Arm, ...]], pd.DataFrame]] = {
    "warmup": warmup_table,
    "ldm_conditioning": ldm_conditioning_table,
    "rank": rank_table,
    "training_missingness": training_missingness_table,
}
FIGURES: dict[str, Callable[[pd.DataFrame, str | Path], None]] = {"rank": rank_figure}


def build_table(table: AblationTable, long: pd.DataFrame, cohorts: list[str]) -> pd.DataFrame:
    """Build an analysis table with the builder of its name.

    Args:
        table: the analysis table.
        long: the long C-index table of its runs.
        cohorts: the cohorts, in row order.

    Returns:
        The table.

    Raises:
        KeyError: no builder for the table's name; add one to :data:`BUILDERS`.
        ValueError: a run has no C-index in a scenario (its predictions are missing).
    """
    if table.name not in BUILDERS:
        raise KeyError(f"no table builder for analysis table {table.name!r}; add one to BUILDERS")
    return BUILDERS[table.name](long, cohorts, table.arms)


def draw_figure(name: str, table: pd.DataFrame, out: str | Path) -> None:
    """Draw the figure of an analysis table (from its written table).

    Args:
        name: the table's name.
        table: the table.
        out: the PNG to write.

    Raises:
        KeyError: the table has no figure; add one to :data:`FIGURES`.
    """
    if name not in FIGURES:
        raise KeyError(f"analysis table {name!r} has no figure; add one to FIGURES")
    FIGURES[name](table, out)
