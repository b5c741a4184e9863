"""Clinical and MCAT all_clean survival readers (mustsurv.omics.survival)."""

import gzip
import logging
import zipfile

import numpy as np
import pandas as pd
import pytest

from mustsurv.omics.survival import DAYS_PER_MONTH, read_clinical, read_mcat_csv
from mustsurv.omics.tables import OmicsInputError

P1, P2, P3 = "TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003"


def _write(path, text):
    path.write_text(text)
    return path


# ---------------------------------------------------------------- clinical


def test_clinical_tcga_cdr_days_to_months(tmp_path):
    text = f"bcr_patient_barcode\ttype\tOS\tOS.time\n{P1}\tBLCA\t1\t365.25\n{P2}\tBLCA\t0\t#N/A\n"
    df = read_clinical(_write(tmp_path / "cdr.tsv", text)).set_index("patient_id")
    assert df.at[P1, "time"] == pytest.approx(12.0) and df.at[P1, "event"] == 1
    assert np.isnan(df.at[P2, "time"])
    assert DAYS_PER_MONTH == pytest.approx(30.4375)


def test_clinical_cbioportal_with_header_lines(tmp_path):
    text = (
        "#Patient Identifier\tOverall Survival (Months)\tOverall Survival Status\n#x\tx\tx\n#STRING\tNUMBER\tSTRING\n"
        "#1\t1\t1\nPATIENT_ID\tOS_MONTHS\tOS_STATUS\n"
        f"{P1}\t6.85\t1:DECEASED\n{P2}\t20.1\t0:LIVING\n{P3}\t[Not Available]\t0:LIVING\n"
    )
    df = read_clinical(_write(tmp_path / "data_clinical_patient.txt", text)).set_index("patient_id")
    assert df.loc[P1, ["time", "event"]].tolist() == [6.85, 1.0]
    assert df.loc[P2, ["time", "event"]].tolist() == [20.1, 0.0]
    assert np.isnan(df.at[P3, "time"])


def test_clinical_mcat_censorship(tmp_path):
    text = f"case_id,survival_months,censorship\n{P1},10.5,1\n{P2},3.0,0\n"
    df = read_clinical(_write(tmp_path / "clin.csv", text)).set_index("patient_id")
    assert df.at[P1, "event"] == 0 and df.at[P2, "event"] == 1  # censorship = 1 means censored


@pytest.mark.parametrize(
    "text, message",
    [
        (f"PATIENT_ID\tAGE\n{P1}\t60\n", "no OS columns"),
        (f"PATIENT_ID\tOS_MONTHS\tOS_STATUS\n{P1}\t5\t1:DECEASED\n{P1}\t9\t0:LIVING\n", "conflicting"),
        (f"PATIENT_ID\tOS_MONTHS\tOS_STATUS\n{P1}\t-5\t1:DECEASED\n", "time <= 0 .*correct these rows"),
        (f"PATIENT_ID\tOS_MONTHS\tOS_STATUS\n{P1}\t0\t0:LIVING\n", "time <= 0"),
        ("AGE\tOS_MONTHS\tOS_STATUS\n60\t5\t1:DECEASED\n", "no patient id column"),
    ],
)
def test_clinical_bad_input(tmp_path, text, message):
    path = _write(tmp_path / "clinical.tsv", text)
    with pytest.raises(OmicsInputError, match=message) as err:
        read_clinical(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- MCAT all_clean


def _mcat_frame():
    return pd.DataFrame(
        {
            "": [0, 1, 2],
            "case_id": [P1, P1, P2],
            "slide_id": [f"{P1}-01Z-00-DX1.A.svs", f"{P1}-01Z-00-DX2.B.svs", f"{P2}-01Z-00-DX1.C.svs"],
            "age": [60, 60, 70],
            "survival_months": [10.0, 10.0, 4.0],
            "censorship": [1, 1, 0],
            "train": [1.0, 1.0, 1.0],
            "TP53_rnaseq": [0.5, 0.5, -1.0],
            "TP53_cnv": [-1, -1, 0],
            "TP53_mut": [1, 1, 0],
        }
    )


@pytest.mark.parametrize("packing", ["plain_named_zip", "zip", "gzip"])
def test_mcat_csv_detects_content(tmp_path, packing):
    csv_text = _mcat_frame().to_csv(index=False)
    path = tmp_path / "tcga_x_all_clean.csv.zip"
    if packing == "plain_named_zip":
        path.write_text(csv_text)
    elif packing == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("tcga_x_all_clean.csv", csv_text)
    else:
        path = tmp_path / "tcga_x_all_clean.csv.gz"
        path.write_bytes(gzip.compress(csv_text.encode()))
    table = read_mcat_csv(path)
    surv = table.survival.set_index("patient_id")
    assert list(surv.index) == [P1, P2]  # one row per patient, not per slide
    assert surv.at[P1, "event"] == 0 and surv.at[P2, "event"] == 1
    assert table.features.shape == (2, 3) and table.features.at[P2, "TP53_rnaseq"] == -1.0
    assert table.slides[P1] == [f"{P1}-01Z-00-DX1.A.svs", f"{P1}-01Z-00-DX2.B.svs"]


@pytest.mark.parametrize("value, expected", [(1.5, 1.0), (np.nan, 0.5)])
def test_mcat_csv_differing_slide_rows_are_averaged_and_reported(tmp_path, caplog, value, expected):
    df = _mcat_frame()
    df.loc[1, "TP53_rnaseq"] = value
    path = _write(tmp_path / "t.csv", df.to_csv(index=False))
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        table = read_mcat_csv(path)
    assert table.features.at[P1, "TP53_rnaseq"] == pytest.approx(expected)
    assert "1 patient(s) have different omics values" in caplog.text


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.drop(columns=["censorship"]), "censorship"),
        (lambda d: d.assign(survival_months=[10.0, 12.0, 4.0]), "conflicting survival"),
        (lambda d: d.assign(TP53_cnv=["-1", "x", "0"]), "non-numeric value 'x'"),
        (lambda d: d.drop(columns=["TP53_rnaseq", "TP53_cnv", "TP53_mut"]), "no feature columns"),
    ],
)
def test_mcat_csv_bad_input(tmp_path, edit, message):
    path = _write(tmp_path / "t.csv", edit(_mcat_frame()).to_csv(index=False))
    with pytest.raises(OmicsInputError, match=message) as err:
        read_mcat_csv(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("cohort, n_patients, n_events", [("blca", 373, 169), ("luad", 453, 158)])
def test_real_porpoise_tables(shared_data, cohort, n_patients, n_events):
    table = read_mcat_csv(shared_data / "tcga_omics" / f"tcga_{cohort}_all_clean.csv.zip")
    assert len(table.survival) == n_patients == len(table.features)
    assert int(table.survival["event"].sum()) == n_events
    assert table.survival["time"].notna().all()


# ---------------------------------------------------------------- endpoints


CDR = (f"bcr_patient_barcode\tOS\tOS.time\tDSS\tDSS.time\tPFI\tPFI.time\tDFI\tDFI.time\n"
       f"{P1}\t1\t730.5\t0\t730.5\t1\t365.25\t1\t304.375\n"
       f"{P2}\t0\t3652.5\t0\t3652.5\t0\t3652.5\t#N/A\t#N/A\n")
CBIO = ("PATIENT_ID\tOS_MONTHS\tOS_STATUS\tDSS_MONTHS\tDSS_STATUS\tPFS_MONTHS\tPFS_STATUS\tDFS_MONTHS\tDFS_STATUS\n"
        f"{P1}\t24\t1:DECEASED\t24\t0:ALIVE OR DEAD TUMOR FREE\t12\t1:PROGRESSION\t10\t1:Recurred/Progressed\n"
        f"{P2}\t120\t0:LIVING\t120\t0:ALIVE OR DEAD TUMOR FREE\t120\t0:CENSORED\t\t\n")
# P1: died at 24 months of another cause (OS event, DSS censored), progressed at 12, recurred at 10
EXPECTED = {"OS": (24.0, 1.0), "DSS": (24.0, 0.0), "PFI": (12.0, 1.0), "DFI": (10.0, 1.0)}


@pytest.mark.parametrize("endpoint", ["OS", "DSS", "PFI", "DFI"])
@pytest.mark.parametrize("text", [CDR, CBIO], ids=["tcga_cdr", "cbioportal"])
def test_each_endpoint_reads_its_own_columns(tmp_path, text, endpoint):
    df = read_clinical(_write(tmp_path / "clinical.tsv", text), endpoint=endpoint).set_index("patient_id")
    time, event = EXPECTED[endpoint]
    assert df.at[P1, "time"] == pytest.approx(time) and df.at[P1, "event"] == event
    if endpoint == "DFI":  # P2 has no disease-free interval: unknown, not censored at 0
        assert np.isnan(df.at[P2, "time"])
    else:
        assert df.at[P2, "event"] == 0 and df.at[P2, "time"] == pytest.approx(120.0)


def test_an_endpoint_the_table_lacks_names_what_it_has(tmp_path):
    path = _write(tmp_path / "clinical.tsv", f"bcr_patient_barcode\tOS\tOS.time\tPFI\tPFI.time\n{P1}\t1\t10\t1\t5\n")
    with pytest.raises(OmicsInputError, match=r"no DSS columns.*DSS_MONTHS.*The table has \['OS', 'PFI'\]"):
        read_clinical(path, endpoint="DSS")
    mcat = _write(tmp_path / "mcat.csv", f"case_id,survival_months,censorship\n{P1},10.5,1\n")
    with pytest.raises(OmicsInputError, match=r"no PFI columns.*The table has \['OS'\]"):
        read_clinical(mcat, endpoint="PFI")


# ---------------------------------------------------------------- patient ids


def test_non_tcga_ids_are_kept_whole(tmp_path):
    # the old 12-character cut made these one patient ("HOSPITAL-202")
    text = "patient_id\tOS_MONTHS\tOS_STATUS\nHOSPITAL-2020-0001\t5\t1:DECEASED\nHOSPITAL-2020-0002\t9\t0:LIVING\n"
    df = read_clinical(_write(tmp_path / "clin.tsv", text))
    assert df["patient_id"].tolist() == ["HOSPITAL-2020-0001", "HOSPITAL-2020-0002"]
    assert df["event"].tolist() == [1.0, 0.0]


def test_ids_colliding_under_a_regex_are_named(tmp_path):
    text = "patient_id\tOS_MONTHS\tOS_STATUS\nP-001-A\t5\t1:DECEASED\nP-001-B\t5\t1:DECEASED\nP-002-A\t9\t0:LIVING\n"
    path = _write(tmp_path / "clin.tsv", text)
    with pytest.raises(OmicsInputError, match=r"clin.tsv: 1 patient id\(s\) collide.*P-001 <- P-001-A, P-001-B"):
        read_clinical(path, rule=r"^(P-\d+)")
    assert read_clinical(path, rule="as_given")["patient_id"].tolist() == ["P-001-A", "P-001-B", "P-002-A"]
    with pytest.raises(OmicsInputError, match="not a TCGA barcode"):
        read_clinical(path, rule="tcga")


def test_mcat_csv_under_a_rule(tmp_path):
    text = ("case_id,slide_id,survival_months,censorship,A_rnaseq\n"
            "CASE-1,s1,5,0,1.0\nCASE-1,s2,5,0,3.0\nCASE-2,s3,8,1,2.0\n")
    table = read_mcat_csv(_write(tmp_path / "all_clean.csv", text))
    assert table.features.index.tolist() == ["CASE-1", "CASE-2"]  # rows of one case: one patient, not a collision
    assert table.slides == {"CASE-1": ["s1", "s2"], "CASE-2": ["s3"]}
