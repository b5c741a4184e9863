"""mustsurv.study: the result layout, the study design from a config, MUST runs and analysis tables, and a
workflow parse step that never imports the ML stack."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from mustsurv.study import layout
from mustsurv.study.design import StudyDesign
from mustsurv.study.runs import MAIN, Run, ablation_tables, must_runs

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def design(extra: dict | None = None) -> StudyDesign:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update(extra or {})
    validate(config, str(SCHEMA))
    return StudyDesign(config)


def test_layout_gives_patterns_and_concrete_paths() -> None:
    assert layout.must_checkpoint("{cohort}", "{run}", "{fold}", 3) == \
        "results/cohorts/{cohort}/models/{run}/fold{fold}/stage3.pt"
    assert layout.predictions("C", "must", 2, ldm=False) == "results/cohorts/C/predictions/must/fold2_no_ldm.tsv"
    assert layout.demo_tables("C")["slide_sheet"] == "resources/demo/C/slides.tsv"
    assert layout.ablation_table("training_missingness") == "results/tables/ablation_training_missingness.csv"


def test_default_design_targets_every_table_and_figure() -> None:
    study = design()
    targets = study.all_targets()
    assert len(targets) == len(set(targets))
    for name in ("table1.csv", "table2.csv", "cindex_folds.tsv", "metrics_folds.tsv", "metrics_summary.csv"):
        assert layout.study_table(name) in targets
    assert layout.cohort_report("DEMO2", "metrics_folds.tsv") in targets
    assert layout.km_figure("DEMO1", "abmil", "missing_genomics") in targets
    assert layout.km_figure("DEMO1", "abmil", "complete") not in targets  # ABMIL predicts without genomics only
    assert layout.decomposition_figure("DEMO2", "ecdf") in targets
    assert sum(t.endswith(".svs") for t in targets) == len(study.slides("DEMO1")) + len(study.slides("DEMO2"))
    assert study.training_inputs("DEMO1") == {
        "cohort": "results/cohorts/DEMO1/cohort.tsv", "splits": layout.folds("DEMO1", range(5)),
        "tokens": "results/cohorts/DEMO1/omics/tokens.h5", "summary": "results/cohorts/DEMO1/slides/summary.tsv"}


def test_a_method_the_tables_do_not_know_fails_naming_the_fix() -> None:
    config = design().config
    with pytest.raises(KeyError, match="no entry in mustsurv.study.methods"):
        StudyDesign({**config, "methods": ["must", "deepsurv"]})


def test_runs_cover_the_paper_experiments_and_skip_the_main_rank() -> None:
    runs = must_runs({"ranks": [4, 8, 16, 32], "unpaired_fractions": [0.2, 0.5]}, {"dim": 64, "rank": 16})
    assert list(runs) == ["must", "must_no_warmup", "must_ldm_no_cls", "must_rank4", "must_rank8", "must_rank32",
                          "must_unpaired20", "must_unpaired50"]
    assert runs["must"] == MAIN and runs["must_no_warmup"].warmup is False
    assert runs["must_ldm_no_cls"].model_config({"rank": 16, "ldm_cls": True}) == {"rank": 16, "ldm_cls": False}
    assert runs["must_ldm_no_cls"].stages() == (3,) and runs["must_rank8"].stages() == (1, 2, 3)
    assert runs["must_unpaired50"].unpaired == 0.5
    assert dict(runs["must_unpaired50"].model) == {"ldm_condition": "surrogate"}


def test_default_ranks_scale_with_the_width() -> None:
    """Left out, the ranks are D/16 … D/2: the paper's 16-128 at D = 256, 4-32 at the demo's D = 64."""
    ranks = [a.key for a in ablation_tables({"unpaired_fractions": []}, {"dim": 256, "rank": 64})["rank"].arms]
    assert ranks == [16, 32, 64, 128]
    rank = ablation_tables({"unpaired_fractions": []}, {"dim": 64, "rank": 16})["rank"]
    assert [(a.key, a.run.name) for a in rank.arms] == [(4, "must_rank4"), (8, "must_rank8"), (16, "must"),
                                                        (32, "must_rank32")]


def test_bad_ablation_settings_are_config_errors() -> None:
    with pytest.raises(ValueError, match=r"ablations.ranks \[64, 128\].*dim = 64"):
        ablation_tables({"ranks": [16, 64, 128], "unpaired_fractions": []}, {"dim": 64, "rank": 16})
    with pytest.raises(ValueError, match="unpaired_fractions"):
        ablation_tables({"unpaired_fractions": [1.5]}, {"dim": 64, "rank": 16})


def test_training_missingness_compares_with_and_without_ldm_per_share() -> None:
    table = ablation_tables({"unpaired_fractions": [0.5]}, {"dim": 64, "rank": 16})["training_missingness"]
    assert [(a.key, a.run) for a in table.arms] == [
        (0.0, Run("must", ldm=False)), (0.0, Run("must")),
        (0.5, Run("must_unpaired50", ldm=False)), (0.5, Run("must_unpaired50"))]
    assert Run("must_unpaired50", ldm=False).label == "must_unpaired50_no_ldm"


def test_a_run_without_its_own_stage_2_reads_the_main_runs() -> None:
    study = design()
    assert study.must_checkpoints("DEMO1", "must_ldm_no_cls", 2) == [
        layout.must_checkpoint("DEMO1", "must", k, 2) for k in range(5)]
    assert study.must_stage_inputs("DEMO1", "must_ldm_no_cls", 3)["previous"] == \
        study.must_checkpoints("DEMO1", "must", 2)
    assert study.must_checkpoints("DEMO1", "must_ldm_no_cls", 3)[0] == \
        "results/cohorts/DEMO1/models/must_ldm_no_cls/fold0/stage3.pt"
    files = study.ablation_runs("ldm_conditioning")
    assert list(files) == ["must_ldm_no_cls", "must"] and list(files["must"]) == ["DEMO1", "DEMO2"]


def merged(extra: dict) -> StudyDesign:
    from mustsurv.config import merge_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    merge_config(config, extra)
    validate(config, str(SCHEMA))
    return StudyDesign(config)


def test_training_memory_follows_the_cache_the_token_budget_and_the_width() -> None:
    base = merged({})
    must = base.training_mem_mb("must")
    assert merged({"training": {"feature_cache_gb": 8}}).training_mem_mb("must") == must + 4 * 1024
    assert merged({"training": {"max_tokens_per_batch": 400_000}}).training_mem_mb("must") > must
    assert merged({"must": {"model": {"dim": 256}}}).training_mem_mb("must") > must
    wide = merged({"baselines": {"abmil": {"model": {"dim": 512}}}})
    assert wide.training_mem_mb("abmil") > wide.training_mem_mb("must") == must
    assert must > base.config["training"]["feature_cache_gb"] * 1024


def _blocker(tmp_path: Path, *modules: str) -> Path:
    """A folder of packages that fail on import, to put first on PYTHONPATH."""
    for name in modules:
        pkg = tmp_path / "blocked" / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"raise ImportError('{name} is blocked for this test')\n")
    return tmp_path / "blocked"


@pytest.mark.parametrize("args", [["-n", "all", "ablations"], ["--lint"]])
def test_workflow_parses_without_torch_or_matplotlib(tmp_path: Path, args: list[str]) -> None:
    """`snakemake -n` and `--lint` never import the ML or plotting stack (every cluster job's parse pays for it)."""
    blocked = _blocker(tmp_path, "torch", "matplotlib", "timm")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(REPO / "src")])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "blocked for this test" in probe.stderr
    work = tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(REPO / "config" / "config.yaml"), *args]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "blocked for this test" not in out


def test_dmml_is_built_only_when_asked_for() -> None:
    plain = design()
    assert plain.magnifications == [0.5, 1.0] and plain.extra_magnifications == []
    assert "dmml" not in plain.reported and "dmml" not in plain.prediction_files("DEMO1")
    assert not any("mpp1" in t for t in plain.all_targets())
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(SCHEMA))
    target = StudyDesign(config, targets=["dmml"])
    assert target.extra_magnifications == [1.0]
    assert target.prediction_files("DEMO1")["dmml_student"][0] == layout.predictions("DEMO1", "dmml_student", 0)
    assert ("dmml", "complete", layout.km_figure("DEMO1", "dmml", "complete")) in target.km_figures("DEMO1")
    assert target.magnification_summaries("DEMO1") == [layout.slide_summary("DEMO1"),
                                                       "results/cohorts/DEMO1/slides/summary_mpp1.tsv"]
    assert layout.features("C", "S", "enc", 1.0) == "results/cohorts/C/slides/features/enc/mpp1/S.h5"
    assert layout.features("C", "S", "enc") == "results/cohorts/C/slides/features/enc/S.h5"
    listed = design({"methods": ["abmil", "dmml", "dmml_student"]})
    assert listed.baselines == ["abmil"] and listed.extra_magnifications == [1.0]
    assert listed.dmml_inputs("DEMO1", "distilled")["teacher"] == [
        layout.dmml_checkpoint("DEMO1", k, "teacher") for k in listed.folds]


def test_precomputed_features_hold_extra_magnifications_in_subfolders(tmp_path) -> None:
    from mustsurv.study.design import precomputed_features

    (tmp_path / "mpp1").mkdir()
    (tmp_path / "A.h5").touch()
    (tmp_path / "mpp1" / "A.h5").touch()
    assert precomputed_features(tmp_path) == {"A": str(tmp_path / "A.h5")}
    assert precomputed_features(tmp_path, 1.0) == {"A": str(tmp_path / "mpp1" / "A.h5")}
    with pytest.raises(FileNotFoundError, match="slides.target_mpp"):
        precomputed_features(tmp_path, 2.0)
