"""DMML's training stages (mustsurv.train.dmml) on a small two-magnification cohort: three checkpoints per fold,
predictions, selection on validation patients only, and a killed stage resuming to the same weights."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from mustsurv.cohort.splits import build_folds, write_fold
from mustsurv.cohort.table import (
    build_cohort_table,
    read_cohort_table,
    write_cohort_table,
)
from mustsurv.evaluate.dmml import distillation_table
from mustsurv.evaluate.predictions import read_predictions
from mustsurv.omics.tokens import build_tokens, write_tokens
from mustsurv.slides.summary import SUMMARY_COLUMNS, read_summary
from mustsurv.survival.metrics import c_index
from mustsurv.train import trainer
from mustsurv.train.dmml import predict_dmml, run_dmml_stage
from mustsurv.train.selection import Selection

pytestmark = pytest.mark.usefixtures("torch_one_thread")

D = 8
FAMILIES = {"Tumor Suppressor Genes": ["TP53", "RB1"], "Oncogenes": ["KRAS", "TP53"],
            "Cytokines and Growth Factors": ["IL6", "TNF"]}
OPT = {"epochs": 2, "optimizer": "adam", "lr": 1e-3, "accumulation_steps": 8, "grouped": True}
CFG = {"n_tokens": 9, "subspaces": {"tumour": ["Tumor Suppressor Genes", "Oncogenes"],
                                    "microenvironment": ["Cytokines and Growth Factors"]},
       "model": {"dim": 8, "gene_hidden": [8], "gene_dropout": 0.0, "heads": 2, "head_dim": 4, "points": 2,
                 "dropout": 0.0, "consistency": "variance", "consistency_weight": 1.0, "coordination": True,
                 "double_projection": False, "alpha": 0.0},
       "student": {"n_clusters": 2, "knn": 3}, "teacher": OPT, "student_train": OPT, "distillation": OPT,
       "distill_loss": {"temperature": 2.0, "kl_weight": 0.1, "feature_weight": 0.1}}


@pytest.fixture
def cohort(tmp_path):
    """32 paired patients with slides at two magnifications whose features carry their risk."""
    rng = np.random.default_rng(3)
    pats = [f"TCGA-AA-{i:04d}" for i in range(32)]
    risk = rng.normal(size=32)
    summaries = []
    for mag, n in (("m0", 12), ("m1", 5)):
        rows = []
        for i, p in enumerate(pats):
            sid = f"{p}-01Z-00-DX1"
            path = tmp_path / mag / f"{sid}.h5"
            path.parent.mkdir(exist_ok=True)
            with h5py.File(path, "w") as h5:
                h5["features"] = (rng.normal(size=(n, D)) + risk[i]).astype(np.float32)
                h5["coords"] = rng.integers(0, 1000, size=(n, 2))
            rows.append((sid, p, "ok", n, 0.5, 20, str(path)))
        summaries.append(tmp_path / f"summary_{mag}.tsv")
        pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).to_csv(summaries[-1], sep="\t", index=False)
    feats = pd.DataFrame({g: risk + rng.normal(0, 1, 32) for g in ("TP53_rnaseq", "RB1_rnaseq", "KRAS_rnaseq",
                                                                      "IL6_rnaseq", "TNF_rnaseq")}, index=pats)
    feats["KRAS_mut"] = rng.integers(0, 2, 32).astype(float)
    tokens = tmp_path / "tokens.h5"
    write_tokens(tokens, build_tokens(feats, FAMILIES))
    time = np.exp(-risk + rng.normal(0, 0.3, 32)) * 20
    survival = pd.DataFrame({"patient_id": pats, "time": time.round(2), "event": rng.integers(0, 2, 32) | (risk > 0)})
    table = build_cohort_table(survival, genomics_patients=pats, summary=read_summary(summaries[0]))
    write_cohort_table(table, tmp_path / "cohort.tsv")
    record = build_folds(table, folds=4, seed=0, n_bins=2, validation_fraction=0.25)[0]
    write_fold(tmp_path / "fold0.json", record)
    return {"cohort": str(tmp_path / "cohort.tsv"), "split": str(tmp_path / "fold0.json"), "tokens": str(tokens),
            "summaries": [str(s) for s in summaries], "record": record}


def _train_all(data, out, mode="validation") -> dict[str, dict[str, torch.Tensor]]:
    out.mkdir(exist_ok=True)
    sel = Selection(mode=mode, patience=100)
    run_dmml_stage("teacher", data, out / "teacher.pt", CFG, 0, sel)
    run_dmml_stage("student", data, out / "student.pt", CFG, 0, sel)
    run_dmml_stage("distilled", data, out / "distilled.pt", CFG, 0, sel, teacher=out / "teacher.pt",
                   student=out / "student.pt")
    return {s: torch.load(out / f"{s}.pt", weights_only=False)["state_dict"]
            for s in ("teacher", "student", "distilled")}


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_three_checkpoints_predictions_and_no_look_at_the_test_fold(cohort, tmp_path):
    weights = _train_all(cohort, tmp_path / "a")
    assert not _same(weights["student"], weights["distilled"])  # distillation trained the student further
    predict_dmml(tmp_path / "a" / "teacher.pt", cohort, tmp_path / "t.tsv", CFG, 0, Selection())
    predict_dmml(tmp_path / "a" / "distilled.pt", cohort, tmp_path / "s.tsv", CFG, 0, Selection())
    teacher, student = read_predictions(tmp_path / "t.tsv"), read_predictions(tmp_path / "s.tsv")
    assert set(teacher["scenario"]) == {"complete"}
    assert set(student["scenario"]) == {"complete", "missing_genomics"}
    assert set(teacher["patient_id"]) == set(cohort["record"]["test"])
    predict_dmml(tmp_path / "a" / "student.pt", cohort, tmp_path / "n.tsv", CFG, 0, Selection())
    table = distillation_table({"dmml_student": {"C": [str(tmp_path / "s.tsv")]},
                                "dmml_student_no_kd": {"C": [str(tmp_path / "n.tsv")]}}, ["C"])
    assert table["student"].tolist() == ["w/o distillation", "w/ distillation"]
    with_kd = c_index(student.query("scenario == 'missing_genomics'")["time"],
                      student.query("scenario == 'missing_genomics'")["event"],
                      student.query("scenario == 'missing_genomics'")["risk"])
    assert table.loc[1, "C"] == f"{with_kd:.3f}"
    by = student.pivot(index="patient_id", columns="scenario", values="risk")
    assert np.allclose(by["complete"], by["missing_genomics"])  # the student never reads the genomics
    table = read_cohort_table(cohort["cohort"])
    test = table["patient_id"].isin(cohort["record"]["test"])
    table.loc[test, "event"] = 1 - table.loc[test, "event"]
    table.loc[test, "time"] = table.loc[test, "time"].max() + 1 - table.loc[test, "time"]
    write_cohort_table(table, tmp_path / "changed.tsv")
    changed = _train_all({**cohort, "cohort": str(tmp_path / "changed.tsv")}, tmp_path / "b")
    assert all(_same(weights[s], changed[s]) for s in weights)


def test_a_killed_stage_resumes_to_the_same_weights(cohort, tmp_path, monkeypatch):
    sel = Selection(patience=100)
    run_dmml_stage("teacher", cohort, tmp_path / "whole.pt", CFG, 0, sel)
    real_save, calls = torch.save, []

    def dies_at_the_second_progress_file(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(trainer.torch, "save", dies_at_the_second_progress_file)
    with pytest.raises(KeyboardInterrupt):
        run_dmml_stage("teacher", cohort, tmp_path / "killed.pt", CFG, 0, sel)
    assert (tmp_path / "killed.pt.progress").exists() and not (tmp_path / "killed.pt").exists()
    saved = []
    monkeypatch.setattr(trainer.torch, "save", lambda obj, f, *a, **k: (saved.append(obj), real_save(obj, f, *a, **k)))
    run_dmml_stage("teacher", cohort, tmp_path / "killed.pt", CFG, 0, sel)
    assert [o["state"]["epochs_done"] for o in saved if "state" in o] == [2]  # only the unfinished epoch ran again
    assert not (tmp_path / "killed.pt.progress").exists()
    load = lambda p: torch.load(p, weights_only=False)  # noqa: E731
    assert _same(load(tmp_path / "whole.pt")["state_dict"], load(tmp_path / "killed.pt")["state_dict"])
    assert load(tmp_path / "killed.pt")["meta"]["history"] == load(tmp_path / "whole.pt")["meta"]["history"]


def test_bag_cache_stays_within_its_budget_and_rereads_evicted_bags(cohort, tmp_path, monkeypatch):
    """A budget of three bags keeps at most three (least recently used out), an evicted bag read again is the
    same tensor, and a training stage with the bounded cache ends with the unbounded cache's weights."""
    import mustsurv.train.dmml_data as dmml_data

    reads = []
    read = dmml_data.read_sorted_features
    monkeypatch.setattr(dmml_data, "read_sorted_features", lambda f: reads.append(f) or read(f))
    pats = list(read_cohort_table(cohort["cohort"])["patient_id"])
    unbounded = dmml_data.MagnificationBags(cohort["cohort"], cohort["summaries"], CFG["n_tokens"])
    one = unbounded.get(pats[0]).nbytes
    bounded = dmml_data.MagnificationBags(cohort["cohort"], cohort["summaries"], CFG["n_tokens"],
                                          budget_gb=3.5 * one / 2**30)
    first = {p: bounded.get(p).clone() for p in pats[:5]}
    assert bounded.cached_bytes == 3 * one
    reads.clear()
    bounded.get(pats[4])  # still cached: no read
    assert reads == []
    again = bounded.get(pats[0])  # evicted: read again (both magnifications), same values
    assert len(reads) == 2
    assert torch.equal(again, first[pats[0]]) and torch.equal(again, unbounded.get(pats[0]))
    assert bounded.cached_bytes <= 3.5 * one

    data = {k: cohort[k] for k in ("cohort", "split", "tokens", "summaries")}
    weights = []
    for name, bags in (("unbounded", unbounded), ("bounded", bounded)):
        run_dmml_stage("teacher", data, tmp_path / f"{name}.pt", CFG, 0, Selection(mode="validation", patience=100),
                       bags=bags)
        weights.append(torch.load(tmp_path / f"{name}.pt", weights_only=False)["state_dict"])
    assert bounded.cached_bytes <= 3.5 * one
    assert _same(*weights)
