import logging

import numpy as np
import pandas as pd
import pytest

from mustsurv.cohort.table import (
    COLUMNS,
    CohortInputError,
    build_cohort_table,
    read_cohort_table,
    read_survival,
    write_cohort_table,
)
from mustsurv.slides.summary import SUMMARY_COLUMNS, SummaryInputError, read_summary

P = [f"TCGA-AA-000{i}" for i in range(1, 7)]


def _summary(tmp_path, rows):
    df = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    path = tmp_path / "summary.tsv"
    df.to_csv(path, sep="\t", index=False)
    return path


def test_cohort_table_modalities_and_drops(tmp_path, caplog):
    survival = pd.DataFrame({"patient_id": P, "time": [5.0, 7.5, np.nan, 3.0, 9.0, 1.0],
                             "event": [1, 0, 1, 0, np.nan, 1]})
    summary = read_summary(_summary(tmp_path, [
        (f"{P[0]}-01Z-00-DX2", P[0], "ok", 50, 0.25, 40, "f/a2.h5"),
        (f"{P[0]}-01Z-00-DX1", P[0], "ok", 10, 0.25, 40, "f/a1.h5"),
        (f"{P[1]}-01Z-00-DX1", P[1], "empty_mask", 0, 0.5, 20, "f/b.h5"),  # unusable: status
        (f"{P[3]}-01Z-00-DX1", P[3], "ok", 0, 0.5, 20, "f/d.h5"),  # unusable: no patches
        (f"{P[2]}-01Z-00-DX1", P[2], "ok", 30, 0.5, 20, "f/c.h5"),  # no survival
        ("TCGA-ZZ-9999-01Z-00-DX1", "TCGA-ZZ-9999", "ok", 30, 0.5, 20, "f/z.h5"),  # not in survival table
    ]))
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        table = build_cohort_table(survival, genomics_patients=[P[1], P[2], P[4]], summary=summary, source="T")
    assert list(table.columns) == list(COLUMNS)
    # P3 (no survival), P5 (no event) and P4, P6 (no usable modality) are dropped
    assert table["patient_id"].tolist() == [P[0], P[1]]
    row = table.set_index("patient_id")
    assert row.loc[P[0], ["has_pathology", "has_genomics"]].tolist() == [1, 0]
    assert row.at[P[0], "slides"] == f"{P[0]}-01Z-00-DX1,{P[0]}-01Z-00-DX2"
    assert row.loc[P[1], ["has_pathology", "has_genomics", "slides"]].tolist() == [0, 1, ""]
    assert "2 patient(s) without survival time or event dropped" in caplog.text
    assert "2 patient(s) with survival but neither" in caplog.text
    assert "1 patient(s) with omics or slides but no survival row" in caplog.text
    assert "2 of 6 slide(s) are not usable" in caplog.text
    path = tmp_path / "cohort.tsv"
    write_cohort_table(table, path)
    back = read_cohort_table(path)
    assert back["slides"].tolist() == table["slides"].tolist() and back["event"].tolist() == [1, 0]


def test_cohort_table_without_slides_or_omics():
    survival = pd.DataFrame({"patient_id": P[:3], "time": [1.0, 2.0, 3.0], "event": [1, 0, 1]})
    table = build_cohort_table(survival, genomics_patients=P[:3], summary=None)
    assert table["has_pathology"].sum() == 0 and table["has_genomics"].sum() == 3
    with pytest.raises(CohortInputError, match="no patient has both survival and a modality"):
        build_cohort_table(survival, genomics_patients=["TCGA-XX-0000"], summary=None)


def test_read_survival_sources(tmp_path):
    mcat = tmp_path / "all_clean.csv.zip"
    mcat.write_text(f"case_id,slide_id,survival_months,censorship,TP53_rnaseq\n{P[0]},s1,3,0,0.1\n{P[0]},s2,3,0,0.1\n")
    surv = read_survival(mcat_csv=mcat)
    assert surv.to_dict("records") == [{"patient_id": P[0], "time": 3.0, "event": 1.0}]
    with pytest.raises(CohortInputError, match="no survival source"):
        read_survival()


def test_bad_summary_and_bad_cohort_table(tmp_path):
    path = tmp_path / "summary.tsv"
    pd.DataFrame({"slide_id": ["a"], "status": ["ok"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(SummaryInputError, match="slides_summary rule") as err:
        read_summary(path)
    assert str(path) in str(err.value)
    bad = tmp_path / "cohort.tsv"
    bad.write_text("patient_id\ttime\tevent\thas_pathology\thas_genomics\tslides\nTCGA-AA-0001\t3.0\t2\t0\t1\t\n")
    with pytest.raises(CohortInputError, match="non-0/1 event"):
        read_cohort_table(bad)
