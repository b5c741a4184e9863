import hashlib

import numpy as np
import pandas as pd
import pytest

from mustsurv.demo.genes import FAMILIES
from mustsurv.demo.plan import DemoSettings, make_plan
from mustsurv.demo.tables import write_tables
from mustsurv.study.layout import DEMO_TABLES as TABLES


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    plan = make_plan("D", DemoSettings(seed=11, patients=150, missing_genomics_fraction=0.1))
    write_tables(plan, out)
    return plan, out


def test_clinical_is_cbioportal_style(tables):
    plan, out = tables
    lines = (out / TABLES["clinical"]).read_text().splitlines()
    assert all(line.startswith("#") for line in lines[:4])
    df = pd.read_csv(out / TABLES["clinical"], sep="\t", comment="#")
    assert list(df.columns) == ["PATIENT_ID", "OS_MONTHS", "OS_STATUS"]
    assert set(df["OS_STATUS"]) == {"1:DECEASED", "0:LIVING"}
    assert len(df) == len(plan.patients) and (df["OS_MONTHS"] > 0).all()


def test_omics_matrices_over_real_symbols_and_sample_barcodes(tables):
    plan, out = tables
    rna = pd.read_csv(out / TABLES["rna"], sep="\t")
    cnv = pd.read_csv(out / TABLES["cnv"], sep="\t")
    assert list(rna.columns[:2]) == ["Hugo_Symbol", "Entrez_Gene_Id"]
    samples = rna.columns[2:]
    assert all(len(s) == 15 and s.endswith("-01") for s in samples)
    assert len(samples) == sum(p.has_genomics for p in plan.patients) < len(plan.patients)
    assert {"TP53", "EGFR", "MYC", "GAPDH"} <= set(rna["Hugo_Symbol"])
    assert (rna[samples].to_numpy() >= 0).all()
    values = cnv[cnv.columns[2:]].to_numpy()
    assert set(np.unique(values)) <= {-2, -1, 0, 1, 2} and (values != 0).mean() > 0.05


def test_maf_has_silent_and_non_silent_calls(tables):
    _, out = tables
    maf = pd.read_csv(out / TABLES["maf"], sep="\t", comment="#")
    assert {"Hugo_Symbol", "Tumor_Sample_Barcode", "Variant_Classification"} <= set(maf.columns)
    kinds = set(maf["Variant_Classification"])
    assert "Silent" in kinds and "Missense_Mutation" in kinds


def test_gene_family_csv_layout(tables):
    _, out = tables
    fam = pd.read_csv(out / TABLES["gene_families"])
    assert list(fam.columns) == list(FAMILIES)
    assert fam.notna().sum().tolist() == [len(v) for v in FAMILIES.values()]


def test_omics_carry_shared_and_genomic_factors_not_pathology(tables):
    plan, out = tables
    rna = pd.read_csv(out / TABLES["rna"], sep="\t").set_index("Hugo_Symbol").drop(columns="Entrez_Gene_Id")
    expr = np.log2(rna.T.to_numpy() + 1)  # (patients, genes)
    pats = {p.patient_id: p for p in plan.patients}
    z = np.array([[pats[s[:12]].shared, pats[s[:12]].pathology, pats[s[:12]].genomics] for s in rna.columns])
    expr = (expr - expr.mean(0)) / (expr.std(0) + 1e-9)
    corr = np.abs(expr.T @ ((z - z.mean(0)) / z.std(0))) / len(z)  # (genes, 3)
    best = corr.max(axis=0)
    assert best[0] > 0.5 and best[2] > 0.5 and best[1] < 0.35


def test_omics_carry_the_pathology_trace_when_cross_modal(tmp_path):
    plan = make_plan("D", DemoSettings(seed=12, patients=200, cross_modal=0.9))
    write_tables(plan, tmp_path)
    rna = pd.read_csv(tmp_path / TABLES["rna"], sep="\t").set_index("Hugo_Symbol").drop(columns="Entrez_Gene_Id")
    expr = np.log2(rna.T.to_numpy() + 1)
    expr = (expr - expr.mean(0)) / (expr.std(0) + 1e-9)
    pats = {p.patient_id: p for p in plan.patients}
    path = np.array([pats[s[:12]].pathology for s in rna.columns])
    assert (np.abs(expr.T @ ((path - path.mean()) / path.std())) / len(path)).max() > 0.5


def test_truth_scenario_risks_are_the_best_predictors_from_one_modality(tmp_path):
    """risk_missing_genomics = E[eta | shared, pathology, genomics_in_tissue] (and symmetric): a least-squares
    fit of eta on what one modality shows recovers the truth file's coefficients."""
    plan = make_plan("D", DemoSettings(seed=13, patients=3000, cross_modal=0.6))
    write_tables(plan, tmp_path)
    truth = pd.read_csv(tmp_path / TABLES["truth"], sep="\t")
    for scenario, shown in (("missing_genomics", ["shared", "pathology", "genomics_in_tissue"]),
                            ("missing_pathology", ["shared", "genomics", "pathology_in_omics"])):
        x = truth[shown].to_numpy()
        fit = np.linalg.lstsq(x, truth["risk_complete"].to_numpy(), rcond=None)[0]
        coef = np.linalg.lstsq(x, truth[f"risk_{scenario}"].to_numpy(), rcond=None)[0]
        np.testing.assert_allclose(coef, fit, atol=0.05)
        assert coef[2] == pytest.approx(0.7 * 0.6, abs=1e-3)


def test_sheet_truth_and_byte_identical_rewrite(tables, tmp_path):
    plan, out = tables
    sheet = pd.read_csv(out / TABLES["slide_sheet"], sep="\t")
    assert list(sheet.columns) == ["slide_id", "patient_id", "path", "mpp"]
    assert (sheet["path"] == "slides/" + sheet["slide_id"] + ".svs").all()
    truth = pd.read_csv(out / TABLES["truth"], sep="\t")
    assert len(truth) == len(plan.patients)
    write_tables(plan, tmp_path)
    for name in TABLES.values():
        a, b = (out / name).read_bytes(), (tmp_path / name).read_bytes()
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name
