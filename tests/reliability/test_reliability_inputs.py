"""Every bad input a user can make: an error naming the file (or config key) and the fix, or the skip the docs
promise; no finished output is lost (the step raises before its atomic writer, so an earlier output stays).

The inputs are the micro study's generated files (cBioPortal-style clinical table, RNA matrix, gene families,
Aperio slides), each spoiled in one way. The steps are those the workflow's rules call; the config rows and the
empty glob go through Snakemake itself (parse time). Unit tests of the same readers live beside each module
(tests/test_omics_*.py, tests/test_slides_*.py, tests/test_cohort_*.py); here the rows are checked together.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from micro import COHORT, MICRO_CONFIG, snakemake
from slides_helpers import write_slide, write_tiff_without_mpp

from mustsurv.cohort.slides import read_sheet
from mustsurv.cohort.splits import build_folds
from mustsurv.cohort.store import FeatureStore
from mustsurv.cohort.table import build_cohort_table
from mustsurv.config import load_config
from mustsurv.omics.survival import read_clinical
from mustsurv.omics.tokens import make_tokens
from mustsurv.slides.reader import MissingMPPError, SlideError, open_slide
from mustsurv.slides.steps import patch_batch, summary_step, tissue_step
from mustsurv.slides.summary import FeatureFileError
from mustsurv.study import layout
from mustsurv.study.design import magnifications

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
SLIDES = load_config(REPO / "config" / "config.yaml")["slides"]
TILING = {**{k: SLIDES[k] for k in ("mpp_tolerance", "patch_size", "min_tissue_fraction", "region_patches")},
          "target_mpp": magnifications(SLIDES)[0]}  # the main magnification (target_mpp may be a list)


@pytest.fixture
def demo(micro_inputs) -> Path:
    """The micro study's generated input folder (read-only)."""
    return micro_inputs / layout.demo_dir(COHORT)


def _clinical(demo: Path, tmp_path: Path, edit) -> Path:
    """A copy of the clinical table (cBioPortal: 4 comment lines, then PATIENT_ID, OS_MONTHS, OS_STATUS), edited."""
    lines = (demo / "clinical.tsv").read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    table = pd.read_csv(demo / "clinical.tsv", sep="\t", comment="#", dtype=str)
    table = edit(table)
    path = tmp_path / "clinical.tsv"
    path.write_text("\n".join(comments) + "\n" + table.to_csv(sep="\t", index=False))
    return path


# ---------------------------------------------------------------- slides


def test_a_truncated_svs_fails_its_slide_naming_it_and_the_others_finish(demo, tmp_path):
    sheet = pd.read_csv(demo / "slides.tsv", sep="\t")
    good_id, bad_id = sheet["slide_id"][:2]
    data = (demo / sheet["path"][1]).read_bytes()
    bad = tmp_path / f"{bad_id}.svs"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(SlideError, match=str(bad)):
        open_slide(bad, retries=0)
    slides = {good_id: demo / sheet["path"][0], bad_id: bad}
    outputs = {s: {k: tmp_path / "out" / f"{s}.{k}" for k in ("geojson", "qc", "coords")} for s in slides}
    failures = patch_batch(slides, None, outputs, SLIDES["segmentation"], TILING, retries=0)
    assert list(failures) == [bad_id]
    assert all(p.stat().st_size > 0 for o in outputs.values() for p in o.values())  # the good slide is done


def test_a_slide_without_mpp_and_no_sheet_value_names_the_file_and_the_sheet_column(tmp_path):
    slide = write_tiff_without_mpp(tmp_path / "TCGA-AA-0000-01Z-00-DX1.tif", np.full((512, 512, 3), 200, np.uint8))
    with pytest.raises(MissingMPPError, match=r"no microns-per-pixel") as err:
        open_slide(slide)
    assert str(slide) in str(err.value) and "mpp" in str(err.value)


def test_a_blank_slide_is_the_documented_empty_mask_skip(tmp_path):
    slide = write_slide(tmp_path / "TCGA-AA-0000-01Z-00-DX1.svs", np.full((1000, 1500, 3), 245, np.uint8))
    status = tissue_step(slide, slide.stem, None, tmp_path / "t.geojson", tmp_path / "qc.png", SLIDES["segmentation"])
    assert status == "empty_mask"


def test_duplicate_slide_ids_in_the_sheet_name_the_sheet_and_the_id(demo, tmp_path):
    sheet = pd.read_csv(demo / "slides.tsv", sep="\t")
    path = tmp_path / "slides.tsv"
    pd.concat([sheet, sheet.iloc[[3]]]).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError, match="duplicated slide_id") as err:
        read_sheet(path)
    assert str(path) in str(err.value) and sheet["slide_id"][3] in str(err.value)


# ---------------------------------------------------------------- clinical and cohort table


def test_a_slide_whose_patient_has_no_clinical_row_is_dropped_and_counted(demo, tmp_path, caplog):
    clinical = read_clinical(_clinical(demo, tmp_path, lambda t: t.iloc[1:]))
    sheet = pd.read_csv(demo / "slides.tsv", sep="\t")
    lost = sorted(set(sheet["patient_id"]) - set(clinical["patient_id"]))
    with caplog.at_level(logging.WARNING, logger="mustsurv"):
        table = build_cohort_table(clinical, genomics_patients=list(sheet["patient_id"]), source="MICRO")
    assert len(lost) == 1 and lost[0] not in set(table["patient_id"])
    assert f"1 patient(s) with omics or slides but no survival row dropped (e.g. {lost[0]})" in caplog.text


def test_a_patient_with_neither_slide_nor_omics_is_dropped_and_counted(demo, tmp_path, caplog):
    clinical = read_clinical(_clinical(demo, tmp_path, lambda t: t))
    first = clinical["patient_id"][0]
    with caplog.at_level(logging.WARNING, logger="mustsurv"):
        table = build_cohort_table(clinical, genomics_patients=list(clinical["patient_id"][1:]), source="MICRO")
    assert first not in set(table["patient_id"]) and len(table) == len(clinical) - 1
    assert "with survival but neither usable slides nor omics dropped" in caplog.text


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: pd.concat([t, t.iloc[[0]].assign(OS_MONTHS="99.0")]), "conflicting survival rows .*keep one row"),
    (lambda t: t.assign(OS_MONTHS=["-3.0", *t["OS_MONTHS"][1:]]), r"time <= 0 .*correct these rows or remove them"),
    (lambda t: t.assign(OS_MONTHS=["0", *t["OS_MONTHS"][1:]]), r"time <= 0 .*correct these rows or remove them"),
], ids=["duplicate-conflicting", "negative-time", "zero-time"])
def test_bad_survival_rows_name_the_file_the_patient_and_the_fix(demo, tmp_path, edit, message):
    path = _clinical(demo, tmp_path, edit)
    first = pd.read_csv(path, sep="\t", comment="#")["PATIENT_ID"][0]
    with pytest.raises(ValueError, match=message) as err:
        read_clinical(path)
    assert str(path) in str(err.value) and first in str(err.value)


def test_a_fold_without_events_names_the_fold_and_the_fix(demo, tmp_path):
    clinical = read_clinical(_clinical(demo, tmp_path, lambda t: t))
    table = build_cohort_table(clinical, genomics_patients=list(clinical["patient_id"]), source="MICRO")
    table["event"] = 0
    table.loc[table.index[:2], "event"] = 1  # two events: at most two of four test folds hold one
    with pytest.raises(ValueError, match=r"fold \d \(stratified\): none of its \d+ test patients has an event.*cv\.folds"):
        build_folds(table, folds=4, seed=0, n_bins=1, validation_fraction=0.0)


# ---------------------------------------------------------------- omics


def test_nan_and_inf_omics_values_are_counted_and_left_to_the_fold_wise_imputation(demo, tmp_path, caplog):
    rna = pd.read_csv(demo / "rna.tsv", sep="\t")
    samples = [c for c in rna.columns if c.startswith("TCGA-")]
    rna.loc[0, samples[0]], rna.loc[1, samples[1]] = np.inf, np.nan
    path = tmp_path / "rna.tsv"
    rna.to_csv(path, sep="\t", index=False)
    with caplog.at_level(logging.WARNING, logger="mustsurv"):
        tokens = make_tokens(demo / "gene_families.csv", rna=path, transform="log2p1")
    n_nan = sum(int(np.isnan(v).sum()) for v in tokens.values)
    assert n_nan >= 2 and not any(np.isinf(v).any() for v in tokens.values)
    assert "NaN value(s) among the family features" in caplog.text and "imputed fold-wise" in caplog.text


def test_omics_without_any_family_gene_name_both_files_and_the_fix(demo, tmp_path):
    families = tmp_path / "families.csv"
    families.write_text("Made up,Also made up\nNOTAGENE1,NOTAGENE3\nNOTAGENE2,NOTAGENE4\n")
    with pytest.raises(ValueError, match="same .*gene symbols") as err:
        make_tokens(families, rna=demo / "rna.tsv", transform="log2p1")
    assert str(families) in str(err.value) and str(demo / "rna.tsv") in str(err.value)


# ---------------------------------------------------------------- patch features


def _features(path: Path, rows: np.ndarray) -> Path:
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=rows.astype(np.float32))
        h5.create_dataset("coords", data=np.zeros((len(rows), 2), np.int64))
    return path


def test_a_truncated_features_file_names_the_file_and_keeps_the_finished_summary(tmp_path):
    good = _features(tmp_path / "TCGA-AA-0001-01Z-00-DX1.h5", np.ones((5, 8)))
    data = _features(tmp_path / "full.h5", np.ones((500, 8))).read_bytes()
    bad = tmp_path / "TCGA-AA-0002-01Z-00-DX1.h5"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "summary.tsv"
    out.write_text("an earlier, finished summary\n")
    with pytest.raises(FeatureFileError, match="unreadable HDF5 file") as err:
        summary_step({good.stem: str(good), bad.stem: str(bad)}, None, out)
    assert str(bad) in str(err.value) and "re-export it" in str(err.value)
    assert out.read_text() == "an earlier, finished summary\n"
    with pytest.raises(ValueError, match="unreadable features file.*delete it so the slide is embedded again"):
        FeatureStore().get("TCGA-AA-0002", [str(bad)])


def test_features_with_nan_rows_name_the_file_and_the_row(tmp_path):
    rows = np.ones((6, 8))
    rows[4, 2] = np.nan
    path = _features(tmp_path / "TCGA-AA-0001-01Z-00-DX1.h5", rows)
    with pytest.raises(ValueError, match=r"1 of 6 patch feature row\(s\) hold NaN or Inf \(e\.g\. row 4\)") as err:
        FeatureStore().get("TCGA-AA-0001", [str(path)])
    assert str(path) in str(err.value) and "embedded again" in str(err.value)


def test_features_of_another_dimension_name_the_file_and_keep_the_finished_summary(tmp_path):
    files = {f"TCGA-AA-000{i}-01Z-00-DX1": _features(tmp_path / f"{i}.h5", np.ones((4, 8))) for i in range(1, 4)}
    odd = _features(tmp_path / "odd.h5", np.ones((4, 16)))
    files["TCGA-AA-0009-01Z-00-DX1"] = odd
    out = tmp_path / "summary.tsv"
    out.write_text("finished\n")
    with pytest.raises(FeatureFileError, match=r"not 8-d like the cohort's others \(e\.g\. .*odd\.h5: 16-d\)"):
        summary_step({s: str(p) for s, p in files.items()}, None, out)
    assert out.read_text() == "finished\n"


# ---------------------------------------------------------------- config and globs (Snakemake parse time)


def _parse(tmp_path: Path, config: str):
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.yaml").write_text(config)
    res = snakemake(tmp_path, "-n", targets=(), timeout=300)
    return res.returncode, res.stdout + res.stderr


def test_an_unknown_config_key_names_it_and_suggests_the_nearest_valid_one(tmp_path):
    rc, out = _parse(tmp_path, MICRO_CONFIG.replace("stage1: {epochs:", "stage1: {epoch:"))
    assert rc != 0 and "must.stage1" in out and "`epoch`: did you mean `epochs`?" in out, out[-2000:]


def test_a_config_value_of_the_wrong_type_names_the_key_and_the_type(tmp_path):
    rc, out = _parse(tmp_path, MICRO_CONFIG.replace("folds: 2", "folds: two"))
    assert rc != 0 and "cv.folds: 'two' is not of type 'integer'" in out, out[-2000:]


def test_an_empty_slide_glob_names_the_pattern(demo, tmp_path):
    pattern = str(tmp_path / "nowhere" / "*.svs")
    shutil.copy(demo / "clinical.tsv", tmp_path / "clinical.tsv")
    real = f"  REAL:\n    clinical: {tmp_path / 'clinical.tsv'}\n    slides: {{glob: '{pattern}'}}\n"
    micro = MICRO_CONFIG.split("\n")
    config = "\n".join([micro[0], real.rstrip("\n"), *micro[3:]])  # the micro config with a real cohort instead
    rc, out = _parse(tmp_path, config)
    assert rc != 0 and pattern in out, out[-2000:]  # at parse time (-n): no job ran
