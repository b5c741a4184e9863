"""``mustsurv doctor`` reports every planted problem, one line each with its fix, and exits non-zero."""

import re

import pandas as pd
import pytest
import yaml
from slides_helpers import demo_image, write_slide, write_tiff_without_mpp

from mustsurv import cli
from mustsurv.doctor import diagnose


def _study(root, **overrides):
    (root / "clin.tsv").write_text("bcr_patient_barcode\tOS\tOS.time\nTCGA-AA-0001\t1\t300\n")
    image = demo_image(600, 400)
    (root / "slides").mkdir()
    write_slide(root / "slides" / "TCGA-AA-0001-01Z-00-DX1.svs", image)
    cfg = {"cohorts": {"GOOD": {"clinical": "clin.tsv", "slides": {"glob": "slides/**/*.svs"}}},
           "slides": {"encoder": "demo_vit"}, **overrides}
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _planted(root):
    cfg = yaml.safe_load(_study(root).read_text())
    image = demo_image(600, 400)
    (root / "bad").mkdir()
    write_tiff_without_mpp(root / "bad" / "TCGA-CC-0001-01Z-00-DX1.tif", image)
    (root / "bad" / "TCGA-CC-0002-01Z-00-DX1.svs").write_bytes(b"not a slide" * 100)
    write_slide(root / "bad" / "TCGA-CC-0003-01Z-00-DX1.svs", image, mpp=2.0, magnification=5)
    pd.DataFrame({"slide_id": ["TCGA-CC-0001-01Z-00-DX1", "TCGA-CC-0002-01Z-00-DX1", "TCGA-CC-0003-01Z-00-DX1",
                               "TCGA-CC-0004-01Z-00-DX1", "TCGA-AA-0001-01Z-00-DX1"],
                  "path": ["bad/TCGA-CC-0001-01Z-00-DX1.tif", "bad/TCGA-CC-0002-01Z-00-DX1.svs",
                           "bad/TCGA-CC-0003-01Z-00-DX1.svs", "bad/absent.svs",
                           "slides/TCGA-AA-0001-01Z-00-DX1.svs"]}).to_csv(root / "sheet.tsv", sep="\t", index=False)
    (root / "empty_features").mkdir()
    cfg["cohorts"].update({
        "MISSING": {"clinical": "no_such_clinical.tsv", "slides": {"glob": "slides/*.svs"}},
        "GDC": {"clinical": "clin.tsv", "slides": {"glob": "gdc/*.svs"}},
        "SHEET": {"clinical": "clin.tsv", "slides": {"sheet": "sheet.tsv"}},
        "PRE": {"clinical": "clin.tsv", "features_dir": "empty_features", "patient_ids": "(unclosed"},
    })
    cfg["slides"] = {"encoder": "uni2_h"}
    cfg["training"] = {"gpu": 1}
    (root / "study.yaml").write_text(yaml.safe_dump(cfg))
    return root / "study.yaml"


PLANTED = {
    "config": [r"cohorts\.MISSING\.clinical: file 'no_such_clinical\.tsv' does not exist; fix the path",
               r"cohorts\.PRE\.patient_ids: '\(unclosed' is neither .* nor a valid regular expression"],
    "slides": [r"cohorts\.GDC\.slides\.glob: 'gdc/\*\.svs' lists no slide file .*\*\*",
               r"cohorts\.PRE\.features_dir .*empty_features holds no <slide_id>\.h5",
               r"cohorts\.SHEET\.slides: 1 of 5 slide file\(s\) do not exist \(e\.g\. .*absent\.svs\)"],
    "slide": [r"cohorts\.SHEET: .*TCGA-CC-0001-01Z-00-DX1\.tif: no microns-per-pixel .*`mpp`",
              r"cohorts\.SHEET: .*TCGA-CC-0002-01Z-00-DX1\.svs: cannot be opened .*Re-download",
              r"cohorts\.SHEET: .*TCGA-CC-0003-01Z-00-DX1\.svs: finest resolution 2\.0000 um/px is coarser .*target_mpp"],
    "weights": [r"slides\.encoder_weights\.uni2_h: encoder 'uni2_h' needs its local weights file"],
    "gpu": [r"training\.gpu ask\(s\) for a GPU but none is visible.*training\.gpu: 0"],
    "disk": [r"the features need up to [\d.]+ [kMG]B but .* has 999 B free"],
}


def test_every_planted_problem_is_reported_once(tmp_path, monkeypatch):
    cfg = _planted(tmp_path)
    monkeypatch.chdir(tmp_path)
    report = diagnose(cfg, sample=10, gpu_visible=lambda: False, free_bytes=lambda p: 999)
    lines = [p.line() for p in report.problems]
    expected = [(check, pattern) for check, patterns in PLANTED.items() for pattern in patterns]
    for check, pattern in expected:
        hits = [line for line in lines if line.startswith(f"[{check}] ") and re.search(pattern, line)]
        assert len(hits) == 1, f"{check}: {pattern!r} matched {hits} in\n" + "\n".join(lines)
    assert len(lines) == len(expected), "\n".join(lines)  # nothing reported that was not planted
    assert any("1536-d float32" in n for n in report.notes)  # the estimate uses the encoder's dimension


def test_a_clean_study_passes_and_the_command_exits_by_its_findings(tmp_path, monkeypatch, capsys):
    clean = _study(tmp_path)
    monkeypatch.chdir(tmp_path)
    report = diagnose(clean, gpu_visible=lambda: False, free_bytes=lambda p: 10 ** 12)
    assert report.problems == [] and "192-d float32" in report.notes[0]
    assert cli.main(["doctor", "--configfile", str(clean), "--directory", str(tmp_path)]) == 0
    assert "no problems found" in capsys.readouterr().out
    (tmp_path / "planted").mkdir()
    planted = _planted(tmp_path / "planted")
    monkeypatch.setattr("mustsurv.doctor._gpu_visible", lambda: False)
    assert cli.main(["doctor", "--configfile", str(planted), "--directory", str(tmp_path / "planted"),
                     "--sample", "10"]) == 1
    out = capsys.readouterr().out.splitlines()
    problems = [line for line in out if line.startswith("[") and not line.startswith("[note]")]
    assert len(problems) == 10 and out[-1].startswith("10 problem(s) found")  # all but disk: this disk has room


def test_a_config_that_does_not_load_is_one_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cohorts: {X: {demo: {seed: 1, patients: -3}}}\n")
    report = diagnose(bad)
    assert len(report.problems) == 1 and report.problems[0].check == "config"
    assert "patients" in report.problems[0].message


def test_the_command_lists_doctor():
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    parser = cli.build_parser()
    assert parser.parse_args(["doctor", "--configfile", "x.yaml"]).command == "doctor"
