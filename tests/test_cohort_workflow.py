"""The omics and cohort rules end to end on a tiny MCAT-style cohort without slides (external splits)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mustsurv.omics.tokens import read_tokens
from mustsurv.study import layout

REPO = Path(__file__).resolve().parents[1]
GENES = ["TP53", "RB1", "KRAS", "EGFR", "CD4", "MYC", "IL6", "AKT1"]
FAMILIES = {"TSG": ["TP53", "RB1"], "Onc": ["KRAS", "MYC"], "Kin": ["EGFR", "AKT1"], "CD": ["CD4"],
            "TF": ["MYC"], "Cyt": ["IL6"]}


def _study(root: Path, n: int = 30) -> Path:
    rng = np.random.default_rng(0)
    pats = [f"TCGA-AB-{i:04d}" for i in range(n)]
    rows = []
    for i, p in enumerate(pats):
        surv = (round(float(rng.uniform(1, 80)), 2), int(rng.uniform() < 0.5))
        feats = {f"{g}_rnaseq": rng.normal() for g in GENES} | {f"{g}_cnv": int(rng.integers(-2, 3)) for g in GENES[:4]}
        feats |= {"TP53_mut": int(rng.integers(0, 2)), "ZZZ3_mut": 1}
        for k in range(1 + (i % 4 == 0)):  # every 4th patient has two slides (two identical rows)
            rows.append({"case_id": p, "slide_id": f"{p}-01Z-00-DX{k + 1}.svs", "survival_months": surv[0],
                         "censorship": 1 - surv[1], **feats})
    (root / "data").mkdir()
    pd.DataFrame(rows).to_csv(root / "data" / "all_clean.csv.zip")  # plain CSV despite the name, index column
    pd.DataFrame({k: pd.Series(v) for k, v in FAMILIES.items()}).to_csv(root / "data" / "sig.csv", index=False)
    (root / "data" / "splits").mkdir()
    for k in range(5):
        test = pats[k::5]
        train = [p for p in pats if p not in test]
        pd.DataFrame({"train": train, "val": test + [None] * (len(train) - len(test))}).to_csv(
            root / "data" / "splits" / f"splits_{k}.csv")
    cfg = root / "study.yaml"
    cfg.write_text(
        "cohorts:\n  TINY:\n    mcat_csv: data/all_clean.csv.zip\n    gene_families: data/sig.csv\n"
        "    splits_dir: data/splits\n"
    )
    return cfg


@pytest.mark.workflow
def test_tokens_table_and_external_splits(tmp_path):
    cfg = _study(tmp_path)
    targets = [layout.tokens("TINY"), layout.cohort_table("TINY"), *layout.folds("TINY", range(5))]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--cores", "1", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tokens = read_tokens(tmp_path / targets[0])
    assert len(tokens.patients) == 30 and tokens.family_names == list(FAMILIES)
    assert tokens.family_sizes == [2 + 2 + 1, 2 + 1, 2 + 1, 1, 1, 1]  # rnaseq + cnv + mut present per family
    table = pd.read_csv(tmp_path / targets[1], sep="\t")
    assert len(table) == 30 and table["has_genomics"].all() and not table["has_pathology"].any()
    folds = [json.loads((tmp_path / t).read_text()) for t in targets[2:]]
    pats = sorted(table["patient_id"])
    for k, f in enumerate(folds):
        assert f["test"] == sorted(pats[k::5]) and f["source"].endswith(f"splits_{k}.csv")
    log = (tmp_path / "logs" / "omics" / "TINY" / "tokens.log").read_text()
    assert "1 of 2 mut feature(s) belong to no family" in log and "repeated row(s)" in log


def test_example_mcat_config_is_valid():
    import yaml
    from snakemake.utils import validate

    from mustsurv.config import check_config

    cfg = yaml.safe_load((REPO / "config" / "examples" / "tcga_mcat_omics.yaml").read_text())
    validate(cfg, str(REPO / "config" / "schema" / "config.schema.yaml"))
    check_config(cfg, check_files=False)
    assert {c: sorted(b) for c, b in cfg["cohorts"].items()} == {
        c: ["endpoint", "gene_families", "mcat_csv", "patient_ids", "rna_transform", "role", "splits_dir"]
        for c in ("BLCA", "LUAD")}


@pytest.mark.workflow
def test_in_house_ids_and_an_endpoint_reach_the_cohort_table(tmp_path):
    """Non-TCGA ids sharing their first 12 characters stay distinct patients; the DSS columns are read."""
    rng = np.random.default_rng(1)
    pats = [f"HOSPITAL-2020-{i:04d}" for i in range(24)]
    (tmp_path / "data").mkdir()
    dss = np.round(rng.uniform(1, 60, len(pats)), 2)
    pd.DataFrame({"PATIENT_ID": pats, "OS_MONTHS": dss + 5, "OS_STATUS": "1:DECEASED", "DSS_MONTHS": dss,
                  "DSS_STATUS": ["1:DEAD WITH TUMOR" if i % 2 else "0:ALIVE OR DEAD TUMOR FREE"
                                 for i in range(len(pats))]}).to_csv(tmp_path / "data" / "clin.tsv", sep="\t",
                                                                     index=False)
    rna = pd.DataFrame(rng.normal(size=(len(GENES), len(pats))), columns=[f"{p}-T1" for p in pats])
    rna.insert(0, "Hugo_Symbol", GENES)
    rna.to_csv(tmp_path / "data" / "rna.tsv", sep="\t", index=False)
    pd.DataFrame({k: pd.Series(v) for k, v in FAMILIES.items()}).to_csv(tmp_path / "data" / "sig.csv", index=False)
    cfg = tmp_path / "study.yaml"
    cfg.write_text("cohorts:\n  HOSP:\n    clinical: data/clin.tsv\n    rna: data/rna.tsv\n"
                   "    gene_families: data/sig.csv\n    rna_transform: none\n"
                   "    patient_ids: '^(HOSPITAL-\\d{4}-\\d{4})'\n    endpoint: DSS\n"
                   "cv: {folds: 3}\nmethods: [mlp]\n")
    targets = [layout.cohort_table("HOSP"), *layout.folds("HOSP", range(3))]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--replace-workflow-config", "--cores", "1", *targets]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = pd.read_csv(tmp_path / targets[0], sep="\t").set_index("patient_id")
    assert sorted(table.index) == pats and table["has_genomics"].all()
    assert np.allclose(table.loc[pats, "time"], dss, atol=1e-4)  # DSS, not OS (= DSS + 5)
    assert table.loc[pats, "event"].tolist() == [i % 2 for i in range(len(pats))]
