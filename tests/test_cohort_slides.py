"""Slide lists of real cohorts (mustsurv.cohort.slides): GDC manifests and sample sheets, recursive globs,
diagnostic-slide filter, parse-time errors; and the slide rules run from a GDC manifest."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from slides_helpers import demo_image, gdc_tree

from mustsurv.cohort.slides import SlideListError, list_slides
from mustsurv.config import fill_defaults
from mustsurv.slides.summary import read_summary
from mustsurv.study import layout
from mustsurv.study.design import StudyDesign

REPO = Path(__file__).resolve().parents[1]
DX = ["TCGA-AA-0001-01Z-00-DX1", "TCGA-AA-0001-01Z-00-DX2", "TCGA-BB-0002-01Z-00-DX1"]
FROZEN = "TCGA-BB-0002-01A-01-TS1"  # a frozen-section (tissue) slide: not diagnostic


@pytest.fixture(scope="module")
def gdc(tmp_path_factory):
    root = tmp_path_factory.mktemp("gdc")
    image = demo_image(1200, 900)
    manifest = gdc_tree(root / "download", {s: image for s in [*DX, FROZEN]})
    return root, manifest


def test_manifest_lists_the_uuid_folders_and_keeps_diagnostic_slides(gdc):
    _, manifest = gdc
    df = list_slides({"gdc_manifest": str(manifest), "only_dx": True})
    assert [s.split(".")[0] for s in df["slide_id"]] == DX
    assert df["patient_id"].tolist() == ["TCGA-AA-0001", "TCGA-AA-0001", "TCGA-BB-0002"]
    ids = pd.read_csv(manifest, sep="\t").set_index("filename")["id"]
    for sid, path in zip(df["slide_id"], df["path"]):
        assert Path(path).is_file() and Path(path).parent.name == ids[f"{sid}.svs"]
    every = list_slides({"gdc_manifest": str(manifest), "only_dx": False})
    assert len(every) == 4 and FROZEN in {s.split(".")[0] for s in every["slide_id"]}


def test_sample_sheet_gives_case_ids(gdc, tmp_path):
    _, manifest = gdc
    m = pd.read_csv(manifest, sep="\t")
    sheet = tmp_path / "gdc_sample_sheet.tsv"
    pd.DataFrame({"File ID": m["id"], "File Name": m["filename"], "Data Category": "Biospecimen",
                  "Case ID": [f"CASE-{n[:12]}" for n in m["filename"]],
                  "Sample ID": [n[:16] for n in m["filename"]]}).to_csv(sheet, sep="\t", index=False)
    df = list_slides({"gdc_sample_sheet": str(sheet), "gdc_dir": str(manifest.parent), "only_dx": True})
    assert len(df) == 3 and df["patient_id"].tolist() == ["CASE-TCGA-AA-0001", "CASE-TCGA-AA-0001",
                                                          "CASE-TCGA-BB-0002"]
    with pytest.raises(SlideListError, match=r"GDC sample sheet .*are not under .*gdc_dir"):
        list_slides({"gdc_sample_sheet": str(sheet), "only_dx": True})  # sheet's own folder: not the download


def test_globs_recurse_and_an_empty_pattern_is_named(gdc):
    _, manifest = gdc
    flat = f"{manifest.parent}/*.svs"
    with pytest.raises(SlideListError, match=r"cohorts\.X\.slides\.glob: '.*/\*\.svs' lists no slide file .*\*\*"):
        list_slides({"glob": flat, "only_dx": True}, where="cohorts.X.slides")
    df = list_slides({"glob": f"{manifest.parent}/**/*.svs", "only_dx": True})
    assert len(df) == 3
    only_frozen = f"{manifest.parent}/**/{FROZEN}*.svs"
    with pytest.raises(SlideListError, match="no diagnostic .*only_dx: false"):
        list_slides({"glob": only_frozen, "only_dx": True})


def test_non_tcga_slides_ignore_only_dx_and_use_the_rule(tmp_path):
    image = demo_image(200, 160)
    from slides_helpers import write_slide

    for name in ["P-001_HE_1", "P-001_HE_2", "P-002_HE_1"]:
        (tmp_path / name[:5]).mkdir(exist_ok=True)
        write_slide(tmp_path / name[:5] / f"{name}.svs", image)
    df = list_slides({"glob": f"{tmp_path}/**/*.svs", "only_dx": True}, rule=r"^(P-\d+)")
    assert df["patient_id"].tolist() == ["P-001", "P-001", "P-002"]  # several slides per patient are no collision
    assert list_slides({"glob": f"{tmp_path}/**/*.svs", "only_dx": True})["patient_id"].tolist() == \
        ["P-001_HE_1", "P-001_HE_2", "P-002_HE_1"]
    (tmp_path / "copy").mkdir()
    write_slide(tmp_path / "copy" / "P-002_HE_1.svs", image)
    with pytest.raises(SlideListError, match="several files have the slide id 'P-002_HE_1'"):
        list_slides({"glob": f"{tmp_path}/**/*.svs", "only_dx": True})


def test_design_fails_at_parse_time_on_empty_inputs(tmp_path):
    (tmp_path / "clin.tsv").write_text("patient_id\tOS_MONTHS\tOS_STATUS\nP1\t1\t1\n")
    (tmp_path / "features").mkdir()
    cfg = fill_defaults({"cohorts": {"X": {"clinical": str(tmp_path / "clin.tsv"),
                                           "slides": {"glob": str(tmp_path / "nothing" / "*.svs")}},
                                     "Y": {"clinical": str(tmp_path / "clin.tsv"),
                                           "features_dir": str(tmp_path / "features")}}})
    design = StudyDesign(cfg)
    with pytest.raises(SlideListError, match=r"cohorts\.X\.slides\.glob: .*nothing/\*\.svs' lists no slide"):
        design.check_slide_inputs()
    with pytest.raises(SlideListError, match=r"cohorts\.X\.slides\.glob"):
        design.slides("X")
    with pytest.raises(FileNotFoundError, match=r"features_dir .*features holds no <slide_id>\.h5 .*\*\.h5"):
        design.slide_features("Y")


@pytest.mark.workflow
def test_slide_rules_run_from_a_gdc_manifest(gdc, tmp_path):
    _, manifest = gdc
    (tmp_path / "clin.tsv").write_text("bcr_patient_barcode\tOS\tOS.time\nTCGA-AA-0001\t1\t300\n")
    cfg = tmp_path / "study.yaml"
    cfg.write_text(f"cohorts:\n  GDC:\n    clinical: clin.tsv\n    slides:\n      gdc_manifest: {manifest}\n"
                   f"slides: {{encoder: demo_vit, batch_slides: 4, num_workers: 0, threads: 1, embed_resources: {{}}}}\n"
                   "methods: [abmil]\n")
    target = layout.slide_summary("GDC")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(cfg), "--replace-workflow-config", "--cores", "1", target]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = read_summary(tmp_path / target)
    assert sorted(s.split(".")[0] for s in summary["slide_id"]) == DX  # the TS slide is left out
    assert summary["patient_id"].tolist() == ["TCGA-AA-0001", "TCGA-AA-0001", "TCGA-BB-0002"]
    assert (summary["status"] == "ok").all() and (summary["n_patches"] > 0).all()
    assert (summary["level0_mpp"] == 0.5).all()
