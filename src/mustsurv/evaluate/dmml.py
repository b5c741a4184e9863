"""DMML's distillation ablation: the WSI-only student with vs without distillation from the teacher."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mustsurv.evaluate.tables import PredictionFile, _cell, fold_cindices

ARMS: dict[str, str] = {"dmml_student_no_kd": "w/o distillation", "dmml_student": "w/ distillation"}
SCENARIO = "missing_genomics"


def distillation_table(runs: dict[str, dict[str, list[str]]], cohorts: list[str], digits: int = 3) -> pd.DataFrame:
    """C-index of the student without and with distillation (slides only: the ``missing_genomics`` scenario).

    Args:
        runs: ``{run: {cohort: fold prediction files}}`` for ``dmml_student_no_kd`` and ``dmml_student``.
        cohorts: the cohorts, in order.
        digits: decimals of the cells.

    Returns:
        One row per arm; a column per cohort (mean ± SD over folds) and ``Overall`` (mean ± SD of the cohort
        means).
    """
    files = [PredictionFile(c, run, k, p) for run, by_cohort in runs.items() for c, paths in by_cohort.items()
             for k, p in enumerate(paths)]
    long = fold_cindices(files)
    long = long[long["scenario"] == SCENARIO]
    rows = []
    for run, label in ARMS.items():
        row: dict[str, str] = {"student": label}
        means = []
        for c in cohorts:
            vals = long.loc[(long["method"] == run) & (long["cohort"] == c), "cindex"].to_numpy(dtype=float)
            row[c] = _cell(vals, digits)
            if len(vals):
                means.append(vals.mean())
        row["Overall"] = _cell(np.asarray(means), digits)
        rows.append(row)
    return pd.DataFrame(rows)
