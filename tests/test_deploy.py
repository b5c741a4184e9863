"""Final models, bundles and ``mustsurv predict``: a tiny MUST and a Cox baseline are trained by the real
pipeline on a synthetic file cohort, bundled, the training results deleted, and new patients with any
modality subset scored from the bundle alone."""

from __future__ import annotations

import logging
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from mustsurv.cli import main
from mustsurv.cohort.splits import build_folds, write_fold
from mustsurv.cohort.table import build_cohort_table, write_cohort_table
from mustsurv.config import load_config
from mustsurv.deploy.bundle import FORMAT_VERSION, BundleError, load_bundle
from mustsurv.deploy.cli import predict_cohort
from mustsurv.deploy.final import build_bundle, median_count
from mustsurv.deploy.inputs import PredictInputError, align_omics, read_new_cohort
from mustsurv.deploy.predict import cutoffs, score
from mustsurv.omics.tokens import build_tokens, write_tokens
from mustsurv.slides.summary import SUMMARY_COLUMNS, read_summary
from mustsurv.train.pipeline import run_baseline, run_must_stage
from mustsurv.train.selection import Selection

pytestmark = pytest.mark.usefixtures("torch_one_thread")

D = 8
FAMILIES = {"TSG": ["TP53", "RB1", "PTEN"], "Onc": ["KRAS", "MYC"]}
GENES = [g for gs in FAMILIES.values() for g in gs]


def _cohort(root, prefix: str, n: int, seed: int, pathology=None, genomics=None) -> dict:
    """A file cohort: risk r shifts patch features and RNA; earlier death for larger r. ``pathology`` /
    ``genomics``: which patient indices have the modality (default all)."""
    rng = np.random.default_rng(seed)
    pats = [f"TCGA-{prefix}-{i:04d}" for i in range(n)]
    r = rng.normal(size=n)
    has_p = set(range(n)) if pathology is None else set(pathology)
    has_g = set(range(n)) if genomics is None else set(genomics)
    rows = []
    (root / "features").mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(pats):
        if i in has_p:
            sid = f"{p}-01Z-00-DX1"
            bag = rng.normal(size=(6 + i % 5, D)).astype(np.float32)
            bag[:, :3] += 1.5 * r[i]
            path = root / "features" / f"{sid}.h5"
            with h5py.File(path, "w") as h5:
                h5["features"] = bag
                h5["coords"] = np.zeros((len(bag), 2), dtype=np.int64)
                h5.attrs["encoder"] = "demo_vit"
            rows.append((sid, p, "ok", len(bag), 0.5, 20, str(path)))
    summary = root / "summary.tsv"
    pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).to_csv(summary, sep="\t", index=False)
    g = [p for i, p in enumerate(pats) if i in has_g]
    gi = [i for i in range(n) if i in has_g]
    feats = {f"{gene}_rnaseq": rng.normal(5, 1, len(g)) + 1.2 * r[gi] for gene in GENES}
    feats.update({f"{gene}_cnv": rng.integers(-1, 2, len(g)).astype(float) for gene in GENES[:2]})
    frame = pd.DataFrame(feats, index=g)
    tokens = root / "tokens.h5"
    write_tokens(tokens, build_tokens(frame, FAMILIES))
    t = np.round(np.exp(3.5 - r + rng.normal(0, 0.3, n)), 2)
    survival = pd.DataFrame({"patient_id": pats, "time": t, "event": (rng.uniform(size=n) < 0.8).astype(int)})
    table = build_cohort_table(survival, genomics_patients=g, summary=read_summary(summary))
    write_cohort_table(table, root / "cohort.tsv")
    return {"cohort": str(root / "cohort.tsv"), "tokens": str(tokens), "summary": str(summary), "table": table,
            "features": root / "features", "frame": frame}


def _config(tmp_path) -> dict:
    cfg = load_config("config/config.yaml", [{
        "methods": ["must", "coxph_genomics"], "cv": {"folds": 2, "n_bins": 2, "validation_fraction": 0.25},
        "must": {"model": {"dim": 16, "rank": 4, "heads": 2, "ldm_layers": 1},
                 "stage1": {"epochs": 2, "accumulation_steps": 8}, "stage2": {"epochs": 3, "accumulation_steps": 8},
                 "stage3": {"steps": 20, "batch_size": 8}, "inference": {"n_samples": 4, "ddim_steps": 5}},
        "selection": {"patience": 2, "stage3_evaluations": 4}}])
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two folds of MUST and coxph_genomics, then the bundles; every training file is deleted afterwards."""
    tmp = tmp_path_factory.mktemp("deploy")
    study = _cohort(tmp / "study", "AA", 32, 0)
    cfg = _config(tmp)
    folds = build_folds(study["table"], folds=2, seed=0, n_bins=2, validation_fraction=0.25)
    splits = []
    for k, rec in enumerate(folds):
        splits.append(str(tmp / "study" / f"fold{k}.json"))
        write_fold(splits[-1], rec)
    selection = Selection.from_config(cfg["selection"])
    ckpts = {s: [str(tmp / "study" / f"must{k}_s{s}.pt") for k in range(2)] for s in (1, 2, 3)}
    cox = [str(tmp / "study" / f"cox{k}.pt") for k in range(2)]
    for k, split in enumerate(splits):
        data = {"cohort": study["cohort"], "split": split, "tokens": study["tokens"], "summary": study["summary"]}
        for s in (1, 2, 3):
            run_must_stage(s, data, ckpts[s][k], cfg["must"], 0, selection,
                           previous=ckpts[s - 1][k] if s > 1 else None, fold=k)
        run_baseline("coxph_genomics", data, cox[k], str(tmp / "study" / f"cox{k}.tsv"),
                     cfg["baselines"]["coxph_genomics"], 0, selection)
    inputs = {"cohort": study["cohort"], "splits": splits, "tokens": study["tokens"], "summary": study["summary"]}
    bundles = {"must": tmp / "must.mustsurv", "coxph_genomics": tmp / "coxph_genomics.mustsurv"}
    build_bundle("must", "AA", inputs, ckpts, cfg, bundles["must"])
    build_bundle("coxph_genomics", "AA", inputs, cox, cfg, bundles["coxph_genomics"])
    bundles["ensemble"] = tmp / "must_ensemble.mustsurv"
    build_bundle("must", "AA", inputs, ckpts, {**cfg, "deploy": {**cfg["deploy"], "ensemble": True}},
                 bundles["ensemble"])
    meta_epochs = [torch.load(p, weights_only=False)["meta"]["selected_epoch"] for p in ckpts[2]]
    study_ids = list(study["table"]["patient_id"])
    shutil.rmtree(tmp / "study")  # the bundle must be enough
    return {"tmp": tmp, "bundles": bundles, "cfg": cfg, "stage2_epochs": meta_epochs, "study_ids": study_ids}


@pytest.fixture(scope="module")
def new_cohort(trained):
    """40 new patients: 0-13 both modalities, 14-26 slides only, 27-39 omics only."""
    return _cohort(trained["tmp"] / "new", "BB", 40, 5, pathology=range(27),
                   genomics=list(range(14)) + list(range(27, 40)))


def test_median_count_rounds_half_up():
    assert median_count([3, 16, 5, 3, 3]) == 3
    assert median_count([2, 3]) == 3
    with pytest.raises(ValueError):
        median_count([])


def test_bundle_records_what_scoring_needs(trained):
    b = load_bundle(trained["bundles"]["must"])
    d = b.data
    assert d["format_version"] == FORMAT_VERSION and d["kind"] == "final" and len(b.members) == 1
    assert d["training"]["epochs"]["stage2"] == median_count(trained["stage2_epochs"])
    encoder = {k: v for k, v in d["encoder"].items() if k != "provenance"}
    assert encoder == {"name": "demo_vit", "dim": D, "target_mpp": 0.5, "patch_size": 224}
    assert "provenance" in d["encoder"]  # the cohort's slides/provenance.json (None where it was not written)
    assert d["genomics"]["family_names"] == list(FAMILIES)
    assert set(d["cutoffs"]) == {"complete", "missing_genomics", "missing_pathology"}
    assert d["training"]["n_patients"] == 32 and len(d["training"]["patient_hashes"]) == 32
    assert all(b.is_training_patient(p) for p in trained["study_ids"])
    assert not b.is_training_patient("TCGA-BB-0000")
    assert not any(p in str(d["training"]) for p in trained["study_ids"])  # hashes only, no ids
    lo, hi = d["cutoffs"]["complete"]["tertiles"]
    assert lo < d["cutoffs"]["complete"]["median"] < hi


def test_a_mixed_cohort_is_scored_from_the_bundle_alone(trained, new_cohort, tmp_path):
    out = tmp_path / "pred.tsv"
    code = main(["predict", str(trained["bundles"]["must"]), "--out", str(out), "--features-dir",
                 str(new_cohort["features"]), "--tokens", str(new_cohort["tokens"]), "--threads", "1"])
    assert code == 0
    pred = pd.read_csv(out, sep="\t").set_index("patient_id")
    assert len(pred) == 40
    ids = [f"TCGA-BB-{i:04d}" for i in range(40)]
    assert (pred.loc[ids[:14], "scenario"] == "complete").all()
    assert (pred.loc[ids[14:27], "modalities"] == "pathology").all()
    assert (pred.loc[ids[27:], "scenario"] == "missing_pathology").all()
    # the spread over the diffusion samples exists exactly where a modality was generated
    assert pred.loc[ids[:14], "risk_sd"].isna().all()
    assert (pred.loc[ids[14:], "risk_sd"] > 0).all()
    surv = pred[[c for c in pred.columns if c.startswith("survival_at_")]].to_numpy()
    assert surv.shape[1] == 1 and ((surv > 0) & (surv < 1)).all()
    med = load_bundle(trained["bundles"]["must"]).data["cutoffs"]
    for s, rows in pred.groupby("scenario"):
        assert ((rows["risk"] > med[s]["median"]) == (rows["risk_group"] == "high")).all()


def test_a_genomics_baseline_scores_only_patients_with_omics(trained, new_cohort):
    b = load_bundle(trained["bundles"]["coxph_genomics"])
    patients = read_new_cohort(b, tokens=new_cohort["tokens"])
    pred = score(b, patients)
    assert (pred["scenario"] == "missing_pathology").all() and len(pred) == 27
    # the planted signal transfers through the stored scaler and feature alignment
    from mustsurv.survival.metrics import c_index

    table = new_cohort["table"].set_index("patient_id").loc[pred["patient_id"]]
    assert c_index(table["time"].to_numpy(), table["event"].to_numpy(), pred["risk"].to_numpy()) > 0.65
    with pytest.raises(PredictInputError, match="without pathology"):
        read_new_cohort(b, features_dir=new_cohort["features"])


def test_training_patients_are_refused_unless_allowed(trained, tmp_path):
    again = _cohort(tmp_path / "again", "AA", 32, 0)  # the same ids as the training cohort
    b = load_bundle(trained["bundles"]["must"])
    patients = read_new_cohort(b, features_dir=again["features"], tokens=again["tokens"])
    with pytest.raises(PredictInputError, match="training patients"):
        score(b, patients)
    pred = score(b, patients, allow_training_patients=True)
    assert pred["training_patient"].all()
    # the cut-offs are these very patients' median and tertiles
    assert cutoffs(pred)["complete"]["median"] == pytest.approx(b.data["cutoffs"]["complete"]["median"], rel=1e-5)


def test_missing_genes_are_filled_and_a_missing_family_is_an_error(trained, new_cohort, caplog):
    b = load_bundle(trained["bundles"]["must"])
    frame = new_cohort["frame"].drop(columns=["PTEN_rnaseq"])
    with caplog.at_level(logging.WARNING):
        aligned = align_omics(frame, b, "new.tsv")
    assert "1 of the bundle's 7 omics features are missing" in caplog.text
    tsg = b.data["genomics"]["features"][0]
    assert np.isnan(next(iter(aligned.values()))[0][tsg.index("PTEN_rnaseq")])
    scaler = b.members[0].scaler  # NaN -> the training mean
    filled = scaler.transform([np.stack([v[0] for v in aligned.values()]), np.stack([v[1] for v in aligned.values()])])
    assert np.isfinite(filled[0]).all()
    with pytest.raises(PredictInputError, match="gene family 'Onc'"):
        align_omics(new_cohort["frame"].drop(columns=["KRAS_rnaseq", "MYC_rnaseq"]), b, "new.tsv")


def test_features_of_another_encoder_or_dimension_fail_naming_the_file(trained, tmp_path):
    b = load_bundle(trained["bundles"]["must"])
    for name, dim, match in (("uni2_h", D, "encoder 'uni2_h'"), ("demo_vit", D + 1, r"expects \(N, 8\)")):
        folder = tmp_path / name / str(dim)
        folder.mkdir(parents=True)
        with h5py.File(folder / "TCGA-CC-0001-01Z-00-DX1.h5", "w") as h5:
            h5["features"] = np.zeros((4, dim), np.float32)
            h5["coords"] = np.zeros((4, 2), np.int64)
            h5.attrs["encoder"] = name
        with pytest.raises(PredictInputError, match=match) as err:
            read_new_cohort(b, features_dir=folder)
        assert "TCGA-CC-0001-01Z-00-DX1.h5" in str(err.value)


def test_unreadable_newer_and_missing_bundles_fail_naming_the_file(trained, tmp_path):
    bad = tmp_path / "bad.mustsurv"
    bad.write_bytes(b"not a bundle")
    with pytest.raises(BundleError, match="bad.mustsurv is not a readable"):
        load_bundle(bad)
    data = torch.load(trained["bundles"]["must"], weights_only=True)
    data["format_version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.mustsurv"
    torch.save(data, newer)
    with pytest.raises(BundleError, match="upgrade mustsurv"):
        load_bundle(newer)
    with pytest.raises(BundleError, match="does not exist"):
        load_bundle(tmp_path / "absent.mustsurv")
    assert main(["predict", str(bad), "--out", str(tmp_path / "x.tsv"), "--tokens", "x.h5"]) == 2


def test_an_empty_cohort_is_an_error(trained, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PredictInputError, match="no .h5 features file"):
        predict_cohort(trained["bundles"]["must"], tmp_path / "p.tsv", features_dir=tmp_path / "empty")
    with pytest.raises(PredictInputError, match="no input"):
        predict_cohort(trained["bundles"]["must"], tmp_path / "p.tsv")


def test_the_reported_risk_is_musts_own_prediction(trained, new_cohort):
    from mustsurv.deploy.predict import _items
    from mustsurv.models.batch import collate

    b = load_bundle(trained["bundles"]["must"])
    patients = read_new_cohort(b, features_dir=new_cohort["features"], tokens=new_cohort["tokens"])
    inf = b.data["inference"]
    for scenario in ("complete", "missing_genomics", "missing_pathology"):
        pred = score(b, patients, scenario)
        items = _items(patients, list(pred["patient_id"]), scenario, b.members[0],
                       {p: torch.from_numpy(np.asarray(h5py.File(patients.bags[p][0])["features"][()]))
                        for p in pred["patient_id"] if p in patients.bags})
        risk = b.members[0].model.predict_risk(collate(items), scenario, n_samples=inf["n_samples"],
                                               steps=inf["ddim_steps"], seed=inf["seed"])
        assert np.allclose(pred["risk"], risk.numpy(), atol=1e-5), scenario


def test_an_ensemble_bundle_averages_the_fold_models(trained, new_cohort):
    b = load_bundle(trained["bundles"]["ensemble"])
    assert b.data["kind"] == "ensemble" and len(b.members) == 2
    assert b.members[0].bin_edges != b.data["bin_edges"]  # each fold's own edges
    patients = read_new_cohort(b, features_dir=new_cohort["features"], tokens=new_cohort["tokens"])
    pred = score(b, patients)
    singles = []
    for m in b.members:
        one = load_bundle(trained["bundles"]["ensemble"])
        one.members = [m]
        singles.append(score(one, patients)["risk"].to_numpy())
    assert np.allclose(pred["risk"], np.mean(singles, axis=0))
    surv = pred[[c for c in pred.columns if c.startswith("survival_at_")]].to_numpy()
    assert ((surv >= 0) & (surv <= 1)).all()


def test_an_external_pair_is_scored_in_every_scenario_and_refused_when_it_shares_patients(trained, new_cohort,
                                                                                          tmp_path):
    from mustsurv.deploy.external import (
        SharedPatientsError,
        external_predictions,
        external_report,
    )

    files = {k: new_cohort[k] for k in ("cohort", "tokens", "summary")}
    pred = external_predictions(trained["bundles"]["must"], files["cohort"], files["tokens"], files["summary"],
                                tmp_path / "must.tsv", "AA -> BB")
    counts = pred["scenario"].value_counts().to_dict()
    assert counts == {"missing_genomics": 27, "missing_pathology": 27, "complete": 14}
    km = {("must", s): tmp_path / f"km_{s}.png" for s in counts}
    rows = external_report("AA", "BB", {"must": tmp_path / "must.tsv"}, {"must": trained["bundles"]["must"]},
                           tmp_path / "metrics.tsv", km)
    assert set(rows["scenario"]) == set(counts) and rows["harrell_c"].between(0, 1).all()
    assert all(p.stat().st_size > 0 for p in km.values())
    again = _cohort(tmp_path / "again", "AA", 32, 0)
    with pytest.raises(SharedPatientsError, match="AA -> BB: 32 patient"):
        external_predictions(trained["bundles"]["must"], again["cohort"], again["tokens"], again["summary"],
                             tmp_path / "x.tsv", "AA -> BB")
