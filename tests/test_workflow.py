"""The Snakemake workflow itself: lint, dry run of the full target list, and the tiny study end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import openslide
import pandas as pd
import pytest

from mustsurv.study import layout

REPO = Path(__file__).resolve().parents[1]


def _snakemake(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_lint_is_clean():
    res = _snakemake("--lint")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations, your workflow is in a good condition!" in res.stdout + res.stderr


def test_dry_run_of_the_full_target_list(tmp_path):
    res = _snakemake("-n", "--directory", str(tmp_path), "--configfile", str(REPO / "config" / "config.yaml"))
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "demo_slide" in out and "demo_tables" in out


def test_must_only_study_with_default_ablations_builds_its_dag(tmp_path):
    """A study listing MUST alone (no baseline to match) at D = 32 with the default ablation ranks (D/16 … D/2)."""
    config = tmp_path / "study.yaml"
    config.write_text("cohorts:\n  D1:\n    demo: {seed: 3, patients: 20}\nmust:\n  model: {dim: 32, rank: 8}\n")
    res = _snakemake("-n", "all", "ablations", "--directory", str(tmp_path), "--configfile", str(config),
                     "--replace-workflow-config")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert "must_rank2" in out and "must_rank4" in out and "must_rank16" in out and "baseline" not in out


def test_dmml_targets_add_the_10x_features_and_dmml_jobs_only_when_asked_for(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text("cohorts:\n  D1:\n    demo: {seed: 3, patients: 20}\nslides: {target_mpp: [0.5, 1.0]}\n"
                      "methods: [must]\ndmml: {n_tokens: 16}\n")
    args = ("--directory", str(tmp_path), "--configfile", str(config), "--replace-workflow-config")
    plain = _snakemake("-n", *args)
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr[-3000:]
    assert "mpp1" not in plain.stdout and "dmml_teacher" not in plain.stdout and "dmml_predict" not in plain.stdout
    asked = _snakemake("-n", "dmml", "dmml_distillation", *args)
    assert asked.returncode == 0, asked.stdout[-3000:] + asked.stderr[-3000:]
    for job in ("slides_tile_D1_b000_mpp1", "slides_embed_D1_b000_mpp1", "slides_summary_magnification",
                "dmml_teacher", "dmml_student", "dmml_distilled", "dmml_predict", "dmml_distillation_table"):
        assert job in asked.stdout, job
    assert layout.km_figure("D1", "dmml_student", "missing_genomics") in asked.stdout


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """The tiny test study (.test/config) run through Snakemake in a temporary working directory: the default
    target and the analysis experiments (`ablations`)."""
    work = tmp_path_factory.mktemp("tiny")
    shutil.copytree(REPO / ".test" / "config", work / "config")
    res = _snakemake("--cores", "2", "--directory", str(work), "all", "ablations")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


@pytest.mark.workflow
def test_tiny_study_runs_end_to_end(tiny_study):
    demo = tiny_study / layout.demo_dir("TINY")
    sheet = pd.read_csv(demo / "slides.tsv", sep="\t")
    assert len(sheet) >= 24
    for path, mpp in zip(sheet["path"], sheet["mpp"]):
        slide = openslide.OpenSlide(str(demo / path))
        assert slide.properties["openslide.vendor"] == "aperio"
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(mpp, rel=1e-3)
        assert slide.level_count >= 3
    assert (tiny_study / "logs" / "demo" / "TINY" / "tables.log").stat().st_size > 0


@pytest.mark.workflow
def test_tiny_study_tables_and_figures(tiny_study):
    long = pd.read_csv(tiny_study / layout.study_table("cindex_folds.tsv"), sep="\t")
    methods = {"must", "abmil", "transmil", "mlp", "snn", "survpath", "cmta", "smil", "m3care", "shaspec", "ldcvae",
               "coxph_genomics", "coxph_pathology", "coxph_concat", "must_zero_fill", "must_ridge", "oracle"}
    assert set(long["method"]) == methods
    assert set(long["selection"]) == {"validation"} and long["must_config"].str.startswith("project-").all()
    assert long.groupby(["method", "scenario"])["fold"].nunique().eq(2).all()
    assert long["cindex"].between(0, 1).all()
    must = long[long.method == "must"]
    assert set(must["scenario"]) == {"complete", "missing_genomics", "missing_pathology"}
    assert set(long[long.method == "abmil"]["scenario"]) == {"missing_genomics"}
    assert set(long[long.method == "snn"]["scenario"]) == {"missing_pathology"}
    assert set(long[long.method == "ldcvae"]["scenario"]) == {"complete", "missing_genomics"}
    assert long.loc[long.method != "oracle", "rank"].notna().all()
    table2 = pd.read_csv(tiny_study / layout.study_table("table2.csv"), keep_default_na=False)
    assert list(table2.columns) == ["method", "P", "G", "TINY", "Overall", "endpoint"]
    assert (table2["endpoint"] == "OS").all()
    rows = [m for m in ("smil", "m3care", "shaspec", "ldcvae", "must") for _ in range(3)]
    rows += ["must_zero_fill", "must_zero_fill", "must_ridge", "must_ridge", "oracle", "oracle", "oracle"]
    assert table2["method"].tolist() == rows  # the references only without a modality
    assert table2.loc[11, "TINY"] == "–" and "±" in table2.loc[10, "TINY"]  # LD-CVAE cannot drop pathology
    table1 = pd.read_csv(tiny_study / layout.study_table("table1.csv"))
    assert list(table1["method"].unique()) == ["abmil", "transmil", "mlp", "snn", "survpath", "cmta", "coxph_pathology",
                                               "coxph_genomics", "coxph_concat", "must", "oracle"]
    provenance = json.loads((tiny_study / layout.study_table("provenance.json")).read_text())
    assert provenance["selection"]["mode"] == "validation" and provenance["must_config"].startswith("project-")
    assert (pd.read_csv(tiny_study / layout.cohort_report("TINY", "table2.csv")) == table2).all().all()
    for method in ("must", "smil", "m3care", "shaspec"):
        for scenario in ("complete", "missing_genomics", "missing_pathology"):
            assert (tiny_study / layout.km_figure("TINY", method, scenario)).stat().st_size > 1000
    for kind in ("ecdf", "cosine_map"):
        assert (tiny_study / layout.decomposition_figure("TINY", kind)).stat().st_size > 1000
    pred = pd.read_csv(tiny_study / layout.predictions("TINY", "must", 0), sep="\t")
    split = json.loads((tiny_study / layout.fold("TINY", 0)).read_text())
    assert set(pred["patient_id"]) == set(split["test"])
    n_bins = len(split["bin_edges"]) - 1
    assert list(pred.columns[5:]) == ["train_median_risk", *[f"survival_{k}" for k in range(1, n_bins + 1)]]
    metrics = pd.read_csv(tiny_study / layout.study_table("metrics_folds.tsv"), sep="\t")
    assert list(metrics.columns) == ["method", "scenario", "cohort", "fold", "metric", "value", "time", "note",
                                     "selection", "must_config"]
    assert set(metrics["method"]) == methods
    assert set(metrics.loc[metrics.method == "oracle", "metric"]) == {"harrell_c", "uno_c", "mean_auc", "auc_q25",
                                                                      "auc_q50", "auc_q75"}
    harrell = metrics[metrics.metric == "harrell_c"].merge(long, on=["method", "scenario", "cohort", "fold"])
    assert len(harrell) == len(long) and (harrell["value"] - harrell["cindex"]).abs().max() < 1e-9
    summary = pd.read_csv(tiny_study / layout.study_table("metrics_summary.csv"), keep_default_na=False)
    assert list(summary.columns) == ["method", "scenario", "metric", "TINY", "Overall"]
    logrank = pd.read_csv(tiny_study / layout.cohort_report("TINY", "logrank.tsv"), sep="\t")
    assert (logrank["n_high_risk"] + logrank["n_low_risk"] == logrank["n_patients"]).all()


@pytest.mark.workflow
def test_tiny_study_ablation_tables(tiny_study):
    warmup = pd.read_csv(tiny_study / layout.ablation_table("warmup"))
    assert list(warmup.columns) == ["cohort", "scenario", "w/o warm-up", "w/ warm-up"] and len(warmup) == 6
    cond = pd.read_csv(tiny_study / layout.ablation_table("ldm_conditioning"))
    assert cond["cohort"].tolist() == ["TINY", "Overall"] and "[ĉ] ○G" in cond.columns
    rank = pd.read_csv(tiny_study / layout.ablation_table("rank"))
    assert rank["rank"].tolist() == [4, 4, 4, 8, 8, 8] and rank["overall_mean"].between(0, 1).all()
    assert (tiny_study / layout.ablation_figure("rank")).stat().st_size > 1000
    table4 = pd.read_csv(tiny_study / layout.ablation_table("training_missingness"))
    assert table4["missing rate"].tolist() == ["0%", "0%", "50%", "50%"]
    assert table4["Missing G"].str.fullmatch(r"0\.\d{3} → 0\.\d{3}").all()
    no_ldm = tiny_study / layout.predictions("TINY", "must_unpaired50", 0, ldm=False)
    assert set(pd.read_csv(no_ldm, sep="\t")["scenario"]) == {"missing_genomics", "missing_pathology"}
    assert (tiny_study / layout.must_checkpoint("TINY", "must_no_warmup", 1, 1)).exists()
    # the [ĉ] variant trains stage 3 only, from the main run's stage-2 models
    assert (tiny_study / layout.must_checkpoint("TINY", "must_ldm_no_cls", 0, 3)).exists()
    assert not (tiny_study / layout.must_checkpoint("TINY", "must_ldm_no_cls", 0, 2)).exists()


@pytest.mark.workflow
def test_rerun_is_a_no_op(tiny_study):
    res = _snakemake("-n", "--directory", str(tiny_study))
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


@pytest.mark.workflow
def test_html_report_has_the_tables_and_figures(tiny_study):
    """`snakemake --report` builds a self-contained HTML report with Tables 1/2, KM and decomposition figures."""
    out = tiny_study / "report.html"
    res = _snakemake("--directory", str(tiny_study), "--report", str(out))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    html = out.read_text(errors="replace")
    assert len(html) > 50_000
    for name in ("table1.csv", "table2.csv", "cindex_folds.tsv", "metrics_summary.csv",
                 "must_complete.png", "must_missing_genomics.png",
                 "TINY_ecdf.png", "TINY_cosine_map.png", "Kaplan-Meier", "Decomposition"):
        assert name in html, f"{name} is not in the report"
    assert "log-rank p-value" in html  # a caption made it in
    assert "Slide QC" in html  # the tissue QC images


@pytest.mark.workflow
def test_heatmaps_target_draws_every_test_patient_and_reaches_the_report(tiny_study):
    """`snakemake heatmaps` (not in the default run) draws each test patient's slides for must, abmil and
    transmil, and `--report ... all heatmaps` shows a sample of them."""
    import json

    import pandas as pd

    res = _snakemake("--cores", "2", "--directory", str(tiny_study), "heatmaps")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    cohort = pd.read_csv(tiny_study / "results/cohorts/TINY/cohort.tsv", sep="\t", dtype=str, keep_default_na=False)
    with_slides = set(cohort.loc[cohort["slides"] != "", "patient_id"])
    test = [p for k in range(2) for p in json.loads((tiny_study / f"results/cohorts/TINY/splits/fold{k}.json")
                                                    .read_text())["test"] if p in with_slides]
    for method in ("must", "abmil", "transmil"):
        folder = tiny_study / "results/figures/heatmaps/TINY" / method
        index = pd.read_csv(folder / "index.tsv", sep="\t")
        assert sorted(set(index["patient_id"])) == sorted(test)
        for row in index.itertuples():
            assert (folder / row.heatmap).is_file() and (folder / row.gallery).is_file()
        assert list((folder / "sample").glob("*_heatmap.png"))
    out = tiny_study / "report_heatmaps.html"
    res = _snakemake("--directory", str(tiny_study), "--report", str(out), "all", "heatmaps")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    html = out.read_text(errors="replace")
    assert "Attention heatmaps" in html and "_heatmap.png" in html and "_gallery.png" in html
