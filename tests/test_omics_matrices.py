"""Gene x sample matrix and MAF readers (mustsurv.omics.matrices) and the shared table reading."""

import logging

import numpy as np
import pandas as pd
import pytest

from mustsurv.omics.matrices import read_cnv, read_maf, read_rna
from mustsurv.omics.tables import OmicsInputError, read_table

P1, P2, P3 = "TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003"


def _write(path, text):
    path.write_text(text)
    return path


# ---------------------------------------------------------------- RNA / CNV matrices


def test_cbioportal_rna_samples_genes_and_log(tmp_path, caplog):
    text = (
        "#comment line\n"
        f"Hugo_Symbol\tEntrez_Gene_Id\t{P1}-01\t{P1}-11\t{P2}-01A\t{P2}-01B\t{P3}-06\t{P3}-01\n"
        "TP53\t7157\t1\t100\t3\t5\t1000\t7\n"
        "TP53\t7157\t3\t100\t3\t5\t1000\t7\n"  # duplicated gene -> averaged
        "?\t0\t9\t9\t9\t9\t9\t9\n"  # no symbol -> dropped
        "EGFR\t1956\t0\t0\tinf\t3\tNA\t255\n"
    )
    path = _write(tmp_path / "data_mrna_seq_v2_rsem.txt", text)
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        frame, applied = read_rna(path, "log2p1")
    assert applied == "log2p1"
    assert sorted(frame.index) == [P1, P2, P3]
    assert list(frame.columns) == ["TP53", "EGFR"]
    # P1: normal sample -11 dropped; TP53 = mean(1, 3) = 2 -> log2(3)
    assert frame.at[P1, "TP53"] == pytest.approx(np.log2(3))
    # P2: -01A/-01B averaged; EGFR inf -> NaN, the other sample gives 3 -> log2(4) = 2
    assert frame.at[P2, "TP53"] == pytest.approx(np.log2(5))
    assert frame.at[P2, "EGFR"] == pytest.approx(2.0)
    # P3: primary -01 wins over metastasis -06
    assert frame.at[P3, "EGFR"] == pytest.approx(8.0)
    text_log = caplog.text
    for expected in ("normal/control", "averaged", "without a gene symbol", "infinite"):
        assert expected in text_log


def test_xena_style_csv_and_auto_transform(tmp_path):
    text = f"sample,{P1}-01,{P2}-01\nTP53|7157,-1.5,0.5\nKRAS|3845,2.0,-0.1\n"
    path = _write(tmp_path / "HiSeqV2.csv", text)
    frame, applied = read_rna(path, "auto")
    assert applied == "none"  # negative values: z-scores pass through
    assert frame.at[P1, "TP53"] == -1.5 and frame.at[P2, "KRAS"] == -0.1
    counts = _write(tmp_path / "counts.tsv", f"gene\t{P1}-01\nTP53\t1023\n")
    frame, applied = read_rna(counts, "auto")
    assert applied == "log2p1" and frame.at[P1, "TP53"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "text, transform, message",
    [
        (f"Hugo_Symbol\t{P1}-01\nTP53\tabc\n", "none", "non-numeric value 'abc'"),
        (f"Hugo_Symbol\t{P1}-01\nTP53\t-2\n", "log2p1", "rna_transform: none"),
        (f"gene\t{P1}-01\nENSG00000141510\t1\n", "none", "Ensembl"),
        ("Hugo_Symbol\tEntrez_Gene_Id\nTP53\t7157\n", "none", "no sample columns"),
        ("#only comments\n", "none", "empty"),
    ],
)
def test_rna_bad_input(tmp_path, text, transform, message):
    path = _write(tmp_path / "rna.tsv", text)
    with pytest.raises(OmicsInputError, match=message) as err:
        read_rna(path, transform)
    assert str(path) in str(err.value)


def test_gistic_cnv(tmp_path):
    text = f"Gene Symbol\tLocus ID\tCytoband\t{P1}-01\t{P2}-01\nTP53\t7157\t17p13.1\t-2\t1\nMYC\t4609\t8q24\t2\t0\n"
    frame = read_cnv(_write(tmp_path / "all_thresholded.by_genes.txt", text))
    assert frame.loc[P1].tolist() == [-2.0, 2.0] and list(frame.columns) == ["TP53", "MYC"]


def test_cnv_bad_input(tmp_path):
    path = _write(tmp_path / "cnv.tsv", f"Hugo_Symbol\t{P1}-01\nTP53\t0.37\n")
    with pytest.raises(OmicsInputError, match="GISTIC thresholded") as err:
        read_cnv(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- MAF


def test_maf_non_silent_binary(tmp_path, caplog):
    rows = [
        ("TP53", f"{P1}-01A-11D-A00X-08", "Missense_Mutation"),
        ("TP53", f"{P1}-01A-11D-A00X-08", "Nonsense_Mutation"),  # two calls -> still 1
        ("KRAS", f"{P1}-01A-11D-A00X-08", "Silent"),
        ("KRAS", f"{P2}-01A-11D-A00X-08", "Intron"),  # P2: only silent calls -> row of zeros
        ("EGFR", f"{P3}-01A-11D-A00X-08", "In_Frame_Del"),
    ]
    df = pd.DataFrame(rows, columns=["Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification"])
    a = tmp_path / "a.maf"
    a.write_text("#version 2.4\n" + df.iloc[:4].to_csv(sep="\t", index=False))
    b = tmp_path / "b.maf"
    b.write_text(df.iloc[4:].to_csv(sep="\t", index=False))
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        m = read_maf([a, b])
    assert sorted(m.index) == [P1, P2, P3]
    assert m.at[P1, "TP53"] == 1 and m.at[P3, "EGFR"] == 1
    assert m.loc[P2].sum() == 0 and "KRAS" not in m.columns
    assert "Silent=1" in caplog.text


def test_maf_bad_input(tmp_path):
    path = _write(tmp_path / "bad.maf", "Hugo_Symbol\tVariant_Classification\nTP53\tMissense_Mutation\n")
    with pytest.raises(OmicsInputError, match="Tumor_Sample_Barcode") as err:
        read_maf(path)
    assert str(path) in str(err.value)


# ---------------------------------------------------------------- shared table reading


def test_read_table_missing_file(tmp_path):
    with pytest.raises(OmicsInputError, match="file not found"):
        read_table(tmp_path / "nope.tsv")


def test_frames_are_indexed_by_patient_id(tmp_path):
    rna = _write(tmp_path / "rna.tsv", f"Hugo_Symbol\t{P1}-01\t{P2}-01\nTP53\t1\t2\n")
    maf = _write(tmp_path / "m.maf", f"Hugo_Symbol\tTumor_Sample_Barcode\tVariant_Classification\nTP53\t{P1}-01A\t"
                                     "Missense_Mutation\n")
    assert read_rna(rna, "none")[0].index.name == read_maf(maf).index.name == "patient_id"


def test_non_tcga_samples_and_collisions(tmp_path):
    text = "Hugo_Symbol\tP-001-T\tP-002-T\nTP53\t1.0\t2.0\n"
    frame = read_cnv(_write(tmp_path / "cna.tsv", text.replace("1.0", "1").replace("2.0", "-1")), rule=r"^(P-\d+)")
    assert frame.index.tolist() == ["P-001", "P-002"] and frame["TP53"].tolist() == [1.0, -1.0]
    # two samples of one patient under a regex: nothing says which stands for the patient
    clash = _write(tmp_path / "rna.tsv", "Hugo_Symbol\tP-001-T\tP-001-M\nTP53\t1.0\t2.0\n")
    with pytest.raises(OmicsInputError, match=r"rna.tsv \(RNA\).*P-001 <- P-001-M, P-001-T"):
        read_rna(clash, "none", rule=r"^(P-\d+)")
    # the same sample ids as given are two patients; a sample type ('-11') means nothing outside TCGA
    frame, _ = read_rna(clash, "none", rule="auto")
    assert frame.index.tolist() == ["P-001-T", "P-001-M"]
    maf = _write(tmp_path / "m.maf", "Hugo_Symbol\tTumor_Sample_Barcode\tVariant_Classification\n"
                                     "TP53\tP-001-T\tMissense_Mutation\nKRAS\tP-001-M\tMissense_Mutation\n")
    with pytest.raises(OmicsInputError, match=r"Tumor_Sample_Barcode.*P-001 <- P-001-M, P-001-T"):
        read_maf(maf, rule=r"^(P-\d+)")
    assert read_maf(maf).index.tolist() == ["P-001-M", "P-001-T"]
