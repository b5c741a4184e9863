import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from mustsurv.config import ConfigError, check_config, fill_defaults

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "config" / "schema" / "config.schema.yaml")


def _default():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = _default()
    validate(cfg, SCHEMA)
    check_config(cfg)
    assert cfg["cv"] == {"folds": 5, "seed": 0, "n_bins": 4, "validation_fraction": 0.2, "group_by": "none"}
    assert cfg["cohorts"]["DEMO2"]["demo"]["two_slide_fraction"] == 0.2


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["cv"].__setitem__("folds", "five"), "folds"),
        (lambda c: c["cohorts"]["DEMO1"]["demo"].__setitem__("patiens", 10), "patiens"),
        (lambda c: c["cohorts"]["DEMO1"]["demo"].__setitem__("fraction_40x", 1.5), "fraction_40x"),
        (lambda c: c["cohorts"].__setitem__("bad name", {"demo": {"seed": 1}}), "bad name"),
        (lambda c: c["cohorts"]["DEMO1"]["demo"].pop("seed"), "seed"),
    ],
)
def test_schema_errors_name_the_key(mutate, key):
    cfg = _default()
    mutate(cfg)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    assert key in str(err.value)


def _real(tmp_path, **extra):
    clinical = tmp_path / "clin.tsv"
    clinical.write_text("PATIENT_ID\tOS_MONTHS\tOS_STATUS\n")
    block = {"clinical": str(clinical), **extra}
    return fill_defaults({"cohorts": {"BLCA": block}})


def test_semantic_checks_name_the_key_and_the_fix(tmp_path):
    cfg = _real(tmp_path)
    with pytest.raises(ConfigError, match=r"cohorts\.BLCA: no modality"):
        check_config(cfg)
    cfg = _real(tmp_path, rna=str(tmp_path / "missing.tsv"))
    with pytest.raises(ConfigError, match=r"cohorts\.BLCA\.gene_families"):
        check_config(cfg)
    cfg = _real(tmp_path, rna=str(tmp_path / "missing.tsv"), gene_families=str(tmp_path / "clin.tsv"))
    with pytest.raises(ConfigError, match=r"cohorts\.BLCA\.rna: file .*missing\.tsv.* does not exist"):
        check_config(cfg)
    cfg = _real(tmp_path, slides={"sheet": "a.tsv", "glob": "*.svs"})
    with pytest.raises(ConfigError, match=r"exactly one of `sheet`, `glob`, `gdc_manifest`, `gdc_sample_sheet`"):
        check_config(cfg)
    demo = fill_defaults(copy.deepcopy(_default()))
    demo["cohorts"]["DEMO1"]["clinical"] = "x.tsv"
    with pytest.raises(ConfigError, match=r"cohorts\.DEMO1: a demo cohort"):
        check_config(demo)
    with pytest.raises(ConfigError, match="no survival table"):
        check_config(fill_defaults({"cohorts": {"X": {"rna": "r.tsv"}}}), check_files=False)


def test_malformed_config_fails_at_parse_time_naming_the_key(tmp_path):
    cfg = _default()
    cfg["cohorts"]["DEMO1"]["demo"]["patients"] = -3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(bad), "--directory", str(tmp_path),
         "--snakefile", str(REPO / "Snakefile")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert res.returncode != 0
    assert "patients" in res.stdout + res.stderr


def test_paper_config_carries_the_paper_values():
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    validate(paper, SCHEMA)
    check_config(paper, check_files=False)
    must = paper["must"]
    assert (must["model"]["dim"], must["model"]["rank"]) == (256, 64)
    assert (must["model"]["lambda_dec"], must["model"]["lambda_sh"], must["model"]["lambda_orth"]) == (1.0, 1.0, 0.5)
    assert (must["stage1"]["epochs"], must["stage1"]["lr"]) == (30, 1e-3)
    assert (must["stage2"]["epochs"], must["stage2"]["lr"]) == (30, 2e-4)
    assert must["stage1"]["accumulation_steps"] == must["stage2"]["accumulation_steps"] == 32
    assert (must["stage3"]["steps"], must["stage3"]["lr"], must["stage3"]["batch_size"]) == (1_000_000, 1e-4, 32)
    assert (must["inference"]["ddim_steps"], must["inference"]["n_samples"]) == (50, 5)
    assert set(paper["cohorts"]) == {"BLCA", "BRCA", "GBMLGG", "LUAD", "UCEC"}
    # supplement §7.3 (SurvPath, CMTA, SMIL, M3Care, ShaSpec, LD-CVAE); every baseline builds
    from mustsurv.models.registry import build_model, model_class

    train = {m: b["train"] for m, b in paper["baselines"].items() if "train" in b}  # not the classical Cox ones
    recipe = {m: (t["epochs"], t["optimizer"], t["lr"]) for m, t in train.items()}
    assert recipe["survpath"] == (30, "adam", 1e-3) and recipe["cmta"] == (30, "sgd", 1e-3)
    assert recipe["smil"] == (50, "adam", 1e-3) and recipe["ldcvae"] == (30, "adam", 2e-4)
    assert recipe["m3care"] == recipe["shaspec"] == (30, "adam", 1e-3)
    assert set(paper["methods"]) == {"must", *paper["baselines"]}
    for method in paper["methods"]:
        if method != "must":
            kwargs = model_class(method).input_kwargs(1536, [82, 328, 513, 452, 183, 277])
            build_model(method, **kwargs, n_bins=4, **paper["baselines"][method]["model"])


def test_endpoints_and_patient_id_rules_are_checked_against_their_sources(tmp_path):
    csv = tmp_path / "all_clean.csv"
    csv.write_text("case_id,survival_months,censorship,TP53_rnaseq\n")
    cfg = fill_defaults({"cohorts": {"M": {"mcat_csv": str(csv), "gene_families": str(csv), "endpoint": "DSS"}}})
    with pytest.raises(ConfigError, match=r"cohorts\.M\.endpoint: DSS needs a `clinical` table"):
        check_config(cfg)
    cfg["cohorts"]["M"]["endpoint"] = "OS"
    check_config(cfg)
    cfg["cohorts"]["M"]["patient_ids"] = "^(P-[0-9]+"
    with pytest.raises(ConfigError, match=r"cohorts\.M\.patient_ids: .* nor a valid regular expression"):
        check_config(cfg)
    demo = fill_defaults({"cohorts": {"D": {"demo": {"seed": 1}, "endpoint": "PFI"}}})
    with pytest.raises(ConfigError, match=r"cohorts\.D\.endpoint: a demo cohort has overall survival only"):
        check_config(demo)
