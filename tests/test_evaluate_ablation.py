"""Ablation tables (Table 3, Fig. 4, supplement Table 4) from per-fold C-indices of the runs their
AblationTable compares."""

from __future__ import annotations

import pandas as pd
import pytest

from mustsurv.evaluate.ablation import build_table, draw_figure
from mustsurv.study.runs import ablation_tables
from mustsurv.study.vocabulary import SCENARIOS

TABLES = ablation_tables({"ranks": [4, 8, 16, 32], "unpaired_fractions": [0.2]}, {"dim": 64, "rank": 16})


def long_table(values: dict[str, float], cohorts=("A", "B"), folds=2) -> pd.DataFrame:
    """C-index ``value + 0.01·fold + 0.1·cohort index`` for every run, scenario, cohort and fold."""
    rows = []
    for label, value in values.items():
        for ci, cohort in enumerate(cohorts):
            for scenario in SCENARIOS:
                for fold in range(folds):
                    rows.append(dict(method=label, scenario=scenario, cohort=cohort, fold=fold,
                                     cindex=value + 0.01 * fold + 0.1 * ci))
    return pd.DataFrame(rows)


def test_warmup_table_puts_the_variant_without_and_the_main_run_with() -> None:
    table = build_table(TABLES["warmup"], long_table({"must": 0.6, "must_no_warmup": 0.5}), ["A", "B"])
    row = table[(table["cohort"] == "B") & (table["scenario"] == "complete")].iloc[0]
    assert row["w/o warm-up"] == "0.605 ± 0.007" and row["w/ warm-up"] == "0.705 ± 0.007"
    overall = table[(table["cohort"] == "Overall") & (table["scenario"] == "complete")].iloc[0]
    assert overall["w/ warm-up"] == "0.655 ± 0.071"  # mean ± SD of the two cohort means 0.605, 0.705
    assert list(table["cohort"].unique()) == ["A", "B", "Overall"]


def test_ldm_conditioning_table_has_the_paper_columns() -> None:
    table = build_table(TABLES["ldm_conditioning"], long_table({"must": 0.6, "must_ldm_no_cls": 0.55}), ["A", "B"])
    assert list(table.columns) == ["cohort", "[ĉ] ○G", "[ĉ] ○P", "[ĉ; CLS] ○G", "[ĉ; CLS] ○P"]
    assert table.iloc[0]["[ĉ] ○G"] == "0.555 ± 0.007" and table.iloc[0]["[ĉ; CLS] ○P"] == "0.605 ± 0.007"


def test_rank_table_uses_the_main_run_for_the_main_rank_and_draws(tmp_path) -> None:
    long = long_table({"must_rank4": 0.5, "must_rank8": 0.55, "must": 0.6, "must_rank32": 0.52})
    table = build_table(TABLES["rank"], long, ["A", "B"])
    assert table["rank"].tolist() == [4] * 3 + [8] * 3 + [16] * 3 + [32] * 3
    assert table.loc[table["rank"] == 16, "overall_mean"].tolist() == [pytest.approx(0.655)] * 3
    assert table.loc[table["rank"] == 4, "overall_mean"].tolist() == [pytest.approx(0.555)] * 3
    out = tmp_path / "rank.png"
    draw_figure("rank", table, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="no figure"):
        draw_figure("warmup", table, out)


def test_training_missingness_cells_read_without_then_with_ldm() -> None:
    long = long_table({"must": 0.6, "must_no_ldm": 0.5, "must_unpaired20": 0.58, "must_unpaired20_no_ldm": 0.52})
    table = build_table(TABLES["training_missingness"], long, ["A", "B"])
    assert table["missing rate"].tolist() == ["0%"] * 3 + ["20%"] * 3
    row = table[(table["missing rate"] == "20%") & (table["cohort"] == "A")].iloc[0]
    assert row["Missing G"] == "0.525 → 0.585" and row["Missing P"] == "0.525 → 0.585"
    main = table[(table["missing rate"] == "0%") & (table["cohort"] == "A")].iloc[0]
    assert main["Missing P"] == "0.505 → 0.605"


def test_a_missing_run_is_named() -> None:
    with pytest.raises(ValueError, match="must_no_warmup"):
        build_table(TABLES["warmup"], long_table({"must": 0.6}), ["A"])
