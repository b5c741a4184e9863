import logging

import h5py
import numpy as np
import pandas as pd
import pytest

from mustsurv.omics.families import expand_families, read_families
from mustsurv.omics.tables import OmicsInputError
from mustsurv.omics.tokens import (
    assemble_features,
    build_tokens,
    make_tokens,
    read_tokens,
    write_tokens,
)

P1, P2, P3 = "TCGA-AA-0001", "TCGA-AA-0002", "TCGA-AA-0003"
FAMILIES = {"Tumor Suppressor Genes": ["TP53", "RB1"], "Oncogenes": ["KRAS", "TP53"]}


def test_ragged_family_csv_with_repeats(tmp_path, caplog):
    path = tmp_path / "signatures.csv"
    path.write_text("Tumor Suppressor Genes,Oncogenes,Cytokines\nTP53,KRAS,IL6\nRB1,ABL1,\nTP53,,\n")
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        fams = read_families(path)
    assert fams == {"Tumor Suppressor Genes": ["TP53", "RB1"], "Oncogenes": ["KRAS", "ABL1"], "Cytokines": ["IL6"]}
    assert "more than once" in caplog.text


@pytest.mark.parametrize(
    "text, message",
    [("A,A\nTP53,KRAS\n", "duplicated family"), (",B\nTP53,KRAS\n", "family name"), ("A,B\nTP53,\n", "no genes")],
)
def test_family_csv_bad_input(tmp_path, text, message):
    path = tmp_path / "fam.csv"
    path.write_text(text)
    with pytest.raises(OmicsInputError, match=message) as err:
        read_families(path)
    assert str(path) in str(err.value)


def test_expand_families_per_data_type_overlaps_and_outside_genes(caplog):
    available = ["TP53_rnaseq", "TP53_cnv", "KRAS_mut", "RB1_rnaseq", "GAPDH_rnaseq"]
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        layout = expand_families(FAMILIES, available)
    assert layout.features == [["RB1_rnaseq", "TP53_cnv", "TP53_rnaseq"], ["KRAS_mut", "TP53_cnv", "TP53_rnaseq"]]
    assert layout.sizes == [3, 3]
    assert layout.sizes_by_type == [{"rnaseq": 2, "cnv": 1, "mut": 0}, {"rnaseq": 1, "cnv": 1, "mut": 1}]
    assert "1 of 3 rnaseq feature(s) belong to no family" in caplog.text
    with pytest.raises(OmicsInputError, match="Oncogenes"):
        expand_families(FAMILIES, ["TP53_x", "RB1_rnaseq"])


def test_build_tokens_nan_handling(caplog):
    rna = pd.DataFrame({"TP53": [1.0, 2.0, np.nan], "RB1": [np.nan, np.nan, np.nan]}, index=[P1, P2, P3])
    mut = pd.DataFrame({"KRAS": [1.0, 0.0]}, index=[P1, P2])
    with caplog.at_level(logging.INFO, logger="mustsurv"):
        feats = assemble_features(rna=rna, mut=mut)
        tokens = build_tokens(feats, FAMILIES, rna_transform="none")
    # RB1 is NaN everywhere -> dropped; P3 has no measured family feature -> no genomics
    assert tokens.patients == [P1, P2]
    assert tokens.features == [["TP53_rnaseq"], ["KRAS_mut", "TP53_rnaseq"]]
    np.testing.assert_array_equal(tokens.values[1], np.array([[1, 1], [0, 2]], dtype=np.float32))
    assert "NaN for every patient" in caplog.text and "no measured family feature" in caplog.text
    assert "have no mut data" in caplog.text


def test_tokens_h5_roundtrip_layout_and_atomic(tmp_path):
    feats = pd.DataFrame({"TP53_rnaseq": [1.0, np.nan], "KRAS_cnv": [-1.0, 2.0]}, index=[P2, P1])
    tokens = build_tokens(feats, FAMILIES, rna_transform="log2p1", sources=("a.tsv",))
    path = tmp_path / "omics" / "tokens.h5"
    write_tokens(path, tokens)
    with h5py.File(path) as h5:
        assert [s.decode() for s in h5["patients"][()]] == [P1, P2]  # sorted rows
        assert list(h5["family_sizes"][()]) == [1, 2]
        assert h5["families/1/values"].shape == (2, 2) and h5["families/1/values"].dtype == np.float32
        assert h5["families/0"].attrs["name"] == "Tumor Suppressor Genes"
        assert h5.attrs["rna_transform"] == "log2p1"
    back = read_tokens(path)
    assert back.patients == [P1, P2] and back.features == tokens.features and back.sources == ("a.tsv",)
    np.testing.assert_array_equal(back.values[0], np.array([[np.nan], [1.0]], dtype=np.float32))
    assert [p.name for p in path.parent.iterdir()] == ["tokens.h5"]  # no temporary left behind
    before = path.read_bytes()
    broken = build_tokens(feats, FAMILIES)
    broken.values = [broken.values[0], broken.values[1][:, :1]]  # fails mid-write, after family 0
    with pytest.raises(ValueError, match="expected"):
        write_tokens(path, broken)
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == ["tokens.h5"]


def test_make_tokens_from_tables_and_from_mcat(tmp_path):
    fam = tmp_path / "fam.csv"
    fam.write_text("TSG,Onc\nTP53,KRAS\n")
    rna = tmp_path / "rna.tsv"
    rna.write_text(f"Hugo_Symbol\tEntrez_Gene_Id\t{P1}-01\t{P2}-01\nTP53\t1\t255\t1023\nKRAS\t2\t0\t3\n")
    cnv = tmp_path / "cnv.tsv"
    cnv.write_text(f"Hugo_Symbol\t{P1}-01\nKRAS\t-1\n")
    tokens = make_tokens(fam, rna=rna, cnv=cnv, transform="auto")
    assert tokens.rna_transform == "log2p1"
    assert tokens.features == [["TP53_rnaseq"], ["KRAS_cnv", "KRAS_rnaseq"]]
    np.testing.assert_allclose(tokens.values[0][:, 0], [8.0, 10.0])
    assert np.isnan(tokens.values[1][1, 0])  # P2 has no CNV: NaN, imputed fold-wise later
    mcat = tmp_path / "all_clean.csv.zip"
    mcat.write_text(f"case_id,slide_id,survival_months,censorship,TP53_rnaseq,KRAS_mut\n{P1},s1,3,0,-0.5,1\n")
    tokens = make_tokens(fam, mcat_csv=mcat, transform="auto")
    assert tokens.rna_transform == "none" and tokens.values[0][0, 0] == -0.5


def test_real_blca_family_sizes_match_mcat(shared_data):
    """MCAT groups the BLCA table into families of [102, 336, 518, 434, 199, 444] features."""
    tokens = make_tokens(shared_data / "gene_families" / "signatures.csv",
                         mcat_csv=shared_data / "tcga_omics" / "tcga_blca_all_clean.csv.zip")
    assert tokens.family_sizes == [102, 336, 518, 434, 199, 444]
    assert len(tokens.patients) == 373 and tokens.rna_transform == "none"
