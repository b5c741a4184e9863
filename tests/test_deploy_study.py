"""The study side of deployment: ``like:`` demo cohorts, external-only cohorts, ``external`` pairs and their checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mustsurv.config import ConfigError, check_config, fill_defaults
from mustsurv.demo.plan import DemoSettings, make_plan, plan_from_config
from mustsurv.demo.tables import write_rna_cnv
from mustsurv.study import layout
from mustsurv.study.design import StudyDesign


def _config(**extra) -> dict:
    cohorts = {"A": {"demo": {"seed": 1, "patients": 40, "cross_modal": 0.9, "effects": {"shared": 1.3}}},
               "AX": {"role": "external", "demo": {"seed": 5, "like": "A", "patients": 30,
                                                   "missing_genomics_fraction": 0.2}}}
    return fill_defaults({"cohorts": cohorts, "methods": ["must", "mlp"], "external": [{"train": "A", "test": "AX"}],
                          **extra})


def _gene_effects(plan, tmp_path) -> np.ndarray:
    """Per gene, the slope of log expression on the shared factor (the planted loading)."""
    write_rna_cnv(plan, tmp_path / f"{plan.name}_rna.tsv", tmp_path / f"{plan.name}_cnv.tsv")
    rna = pd.read_csv(tmp_path / f"{plan.name}_rna.tsv", sep="\t").drop(columns=["Entrez_Gene_Id"])
    x = np.log2(rna.drop(columns=["Hugo_Symbol"]).to_numpy(float) + 1)  # genes x patients
    pats = [p for p in plan.patients if p.has_genomics]
    z = np.array([[1.0, p.shared, p.genomics] for p in pats])
    return np.linalg.lstsq(z, x.T, rcond=None)[0][1]


def test_a_like_cohort_shares_the_generating_model_with_new_patients(tmp_path):
    study = StudyDesign(_config())
    block = study.demo_block("AX")
    assert block["effects"]["shared"] == 1.3 and block["cross_modal"] == 0.9 and block["seed"] == 5
    like, model = study.demo_plan("AX"), study.demo_plan("A")
    unrelated = make_plan("B", DemoSettings(seed=9, patients=40, cross_modal=0.9))
    assert not {p.patient_id for p in like.patients} & {p.patient_id for p in model.patients}
    assert len(like.patients) == 30 and sum(not p.has_genomics for p in like.patients) > 0
    same = np.corrcoef(_gene_effects(like, tmp_path), _gene_effects(model, tmp_path))[0, 1]
    other = np.corrcoef(_gene_effects(unrelated, tmp_path), _gene_effects(model, tmp_path))[0, 1]
    assert same > 0.8 and abs(other) < 0.3


def test_a_cohort_without_like_is_unchanged_by_the_model_replay(tmp_path):
    block = _config()["cohorts"]["A"]["demo"]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write_rna_cnv(plan_from_config("A", block), a / "rna.tsv", a / "cnv.tsv")
    write_rna_cnv(make_plan("A", DemoSettings.from_config(block)), b / "rna.tsv", b / "cnv.tsv")
    assert (a / "rna.tsv").read_bytes() == (b / "rna.tsv").read_bytes()


def test_an_external_cohort_is_built_only_by_the_external_target():
    study = StudyDesign(_config())
    assert study.cohorts == ["A"] and study.all_cohorts == ["A", "AX"]
    assert "AX" in study.demo_cohorts and "AX" in study.embedded_cohorts()
    assert not [t for t in study.all_targets() if "AX" in t]
    targets = study.external_targets()
    assert layout.study_table(layout.EXTERNAL_TABLE) in targets
    assert layout.external_km("A", "AX", "must", "missing_pathology") in targets
    assert layout.external_km("A", "AX", "mlp", "missing_pathology") in targets
    assert layout.external_km("A", "AX", "mlp", "complete") not in targets  # mlp predicts one scenario
    assert study.bundle_inputs("A", "must")["stage3"] == study.must_checkpoints("A", "must", 3)
    assert study.external_test_inputs("AX")["truth"] == layout.demo_tables("AX")["truth"]


def test_deploy_methods_default_to_every_method():
    assert StudyDesign(_config(deploy={"methods": []})).deploy_methods == ["must", "mlp"]
    assert StudyDesign(_config(deploy={"methods": ["mlp"]})).deploy_methods == ["mlp"]


@pytest.mark.parametrize("change, match", [
    (lambda c: c["cohorts"]["AX"]["demo"].update(like="AX"), "demo.like"),
    (lambda c: c["cohorts"]["AX"]["demo"].update(like="NOPE"), "demo.like"),
    (lambda c: c["cohorts"]["AX"]["demo"].update(seed=1), "draws new patients"),
    (lambda c: c.update(external=[{"train": "AX", "test": "A"}]), r"external\[0\].train"),
    (lambda c: c.update(external=[{"train": "A", "test": "A"}]), "another cohort"),
    (lambda c: c.update(external=[{"train": "A", "test": "Z"}]), r"external\[0\].test"),
    (lambda c: c["deploy"].update(methods=["snn"]), "deploy.methods"),
    (lambda c: c["cohorts"]["A"].update(role="external"), "at least one must be a study cohort"),
])
def test_bad_deploy_settings_name_the_key(change, match):
    cfg = _config()
    change(cfg)
    with pytest.raises(ConfigError, match=match):
        check_config(cfg, check_files=False)


def test_the_external_target_plans_its_jobs_and_the_default_run_ignores_it(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]

    def dry(*targets: str) -> str:
        res = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "-n",
                              *targets, "--directory", str(tmp_path), "--configfile",
                              str(repo / "config" / "config.yaml")], capture_output=True, text=True, timeout=600,
                             check=False)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout + res.stderr

    planned = dry("external")
    for rule in ("bundle", "external_predict", "external_report", "external_table", "demo_slides_DEMO1X_b000"):
        assert rule in planned
    assert "DEMO1X" not in dry()
