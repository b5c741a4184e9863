"""Model selection: epochs and early stops chosen on validation patients only; test outcomes change nothing."""

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
from mustsurv.omics.tokens import build_tokens, write_tokens
from mustsurv.slides.summary import SUMMARY_COLUMNS, read_summary
from mustsurv.train.pipeline import run_baseline, run_must_stage
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import OptimConfig, train_epochs

pytestmark = pytest.mark.usefixtures("torch_one_thread")

D = 8
FAMILIES = {"TSG": ["TP53", "RB1"], "Onc": ["KRAS"]}
MUST_CFG = {
    "model": {"dim": 16, "rank": 4, "heads": 2, "ldm_layers": 1, "ldm_timesteps": 100},
    "stage1": {"epochs": 3, "lr": 1e-3, "accumulation_steps": 8, "grouped": True},
    "stage2": {"epochs": 3, "lr": 2e-4, "accumulation_steps": 8, "grouped": True},
    "stage3": {"steps": 30, "lr": 1e-3, "batch_size": 8},
}
MLP_CFG = {"model": {"hidden_dim": 16, "dropout": 0.1},
           "train": {"epochs": 8, "optimizer": "adam", "lr": 5e-3, "accumulation_steps": 4, "grouped": True}}


@pytest.fixture
def cohort(tmp_path):
    """40 paired patients whose features carry their risk; fold 0 of 4 with a 25 % validation share."""
    rng = np.random.default_rng(1)
    pats = [f"TCGA-AA-{i:04d}" for i in range(40)]
    risk = rng.normal(size=40)
    rows = []
    for i, p in enumerate(pats):
        sid = f"{p}-01Z-00-DX1"
        path = tmp_path / "features" / f"{sid}.h5"
        path.parent.mkdir(exist_ok=True)
        with h5py.File(path, "w") as h5:
            h5["features"] = (rng.normal(size=(6, D)) + risk[i]).astype(np.float32)
            h5["coords"] = np.zeros((6, 2), dtype=np.int64)
        rows.append((sid, p, "ok", 6, 0.5, 20, str(path)))
    summary = tmp_path / "summary.tsv"
    pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).to_csv(summary, sep="\t", index=False)
    feats = pd.DataFrame({"TP53_rnaseq": risk + rng.normal(0, 0.5, 40), "RB1_cnv": rng.normal(size=40),
                          "KRAS_mut": rng.integers(0, 2, 40).astype(float)}, index=pats)
    tokens = tmp_path / "tokens.h5"
    write_tokens(tokens, build_tokens(feats, FAMILIES))
    time = np.exp(-risk + rng.normal(0, 0.3, 40)) * 20
    survival = pd.DataFrame({"patient_id": pats, "time": time.round(2), "event": rng.integers(0, 2, 40) | (risk > 0)})
    table = build_cohort_table(survival, genomics_patients=pats, summary=read_summary(summary))
    table_path = tmp_path / "cohort.tsv"
    write_cohort_table(table, table_path)
    record = build_folds(table, folds=4, seed=0, n_bins=2, validation_fraction=0.25)[0]
    split = tmp_path / "fold0.json"
    write_fold(split, record)
    return {"cohort": str(table_path), "split": str(split), "tokens": str(tokens), "summary": str(summary),
            "record": record}


def _with_test_outcomes_changed(cohort: dict, tmp_path) -> dict:
    """A copy of the cohort table in which every test patient's time is reversed and event flipped."""
    table = read_cohort_table(cohort["cohort"])
    test = table["patient_id"].isin(cohort["record"]["test"])
    table.loc[test, "time"] = table.loc[test, "time"].max() + 1 - table.loc[test, "time"]
    table.loc[test, "event"] = 1 - table.loc[test, "event"]
    path = tmp_path / "cohort_changed.tsv"
    write_cohort_table(table, path)
    return {**cohort, "cohort": str(path)}


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_baseline(data, out_dir, mode):
    out_dir.mkdir(exist_ok=True)
    run_baseline("mlp", data, out_dir / "model.pt", out_dir / "pred.tsv", MLP_CFG, seed=0,
                 selection=Selection(mode=mode, patience=100))
    return _weights(out_dir / "model.pt")


def test_changing_test_outcomes_changes_no_checkpoint(cohort, tmp_path):
    """With the fold file fixed, the honest protocol's checkpoints (a baseline and MUST's three stages) do not
    depend on the test patients' outcomes."""
    changed = _with_test_outcomes_changed(cohort, tmp_path)
    assert _same(_train_baseline(cohort, tmp_path / "a", "validation"),
                 _train_baseline(changed, tmp_path / "b", "validation"))
    selection = Selection(patience=2, stage3_evaluations=5)
    for name, data in (("a", cohort), ("b", changed)):
        previous = None
        for stage in (1, 2, 3):
            out = tmp_path / name / f"stage{stage}.pt"
            run_must_stage(stage, data, out, MUST_CFG, 0, selection, previous=previous)
            previous = out
    for stage in (1, 2, 3):
        assert _same(_weights(tmp_path / "a" / f"stage{stage}.pt"), _weights(tmp_path / "b" / f"stage{stage}.pt"))
    meta = torch.load(tmp_path / "a" / "stage3.pt", weights_only=False)["meta"]
    assert meta["selection"]["mode"] == "validation" and "genomics_selected_step" in meta["ldm_history"]


def test_the_optimistic_protocol_does_look_at_the_test_fold(cohort, tmp_path):
    """The same check catches a protocol that selects on test patients."""
    changed = _with_test_outcomes_changed(cohort, tmp_path)
    assert not _same(_train_baseline(cohort, tmp_path / "a", "optimistic"),
                     _train_baseline(changed, tmp_path / "b", "optimistic"))


class _Line(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def loss(self, batch):
        loss = (self.w - 1.0) ** 2
        return loss.sum(), {"surv": float(loss.detach())}


def _items(n=4):
    return [{"patient_id": str(i), "pathology": None, "genomics": [torch.zeros(1)], "time": 1.0, "event": 1,
             "bin": 0} for i in range(n)]


def test_the_best_epoch_is_kept_and_training_stops_after_the_patience():
    model = _Line()
    values = iter([5.0, 4.0, 3.0, 3.5, 4.0, 9.0, 9.0])
    seen = []
    state = train_epochs(model, _items(), model.loss, model.parameters(),
                         OptimConfig(epochs=7, lr=0.1, accumulation_steps=4, grouped=True),
                         on_epoch=lambda e, logs: seen.append(model.w.item()), monitor=lambda: next(values),
                         patience=2)
    assert state.epochs_done == 5 and state.selected_epoch == 3 and state.best == 3.0
    assert model.w.item() == pytest.approx(seen[2])  # epoch 3's weights, not the last epoch's
    assert [h["monitor"] for h in state.history] == [5.0, 4.0, 3.0, 3.5, 4.0]


def test_a_killed_selection_resumes_to_the_same_weights(tmp_path):
    def run(progress, kill_at=None):
        model = _Line()
        values = {e: v for e, v in enumerate([5.0, 2.0, 3.0, 4.0, 1.5, 6.0])}
        epoch = {"n": 0}

        def monitor():
            epoch["n"] += 1
            return values[epoch["n"] - 1 + offset["n"]]

        def on_epoch(e, logs):
            if kill_at is not None and e == kill_at:
                raise KeyboardInterrupt

        offset = {"n": 0 if not progress.exists() else torch.load(progress, weights_only=False)["state"]["epochs_done"]}
        state = train_epochs(model, _items(), model.loss, model.parameters(),
                             OptimConfig(epochs=6, lr=0.1, accumulation_steps=4, grouped=True), progress_path=progress,
                             on_epoch=on_epoch, monitor=monitor, patience=10)
        return model.w.item(), state

    whole, state = run(tmp_path / "a.progress")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.progress", kill_at=2)
    resumed, again = run(tmp_path / "b.progress")
    assert state.selected_epoch == again.selected_epoch == 5 and resumed == whole


def test_the_paper_protocol_fits_on_train_and_validation(cohort, tmp_path):
    run_baseline("mlp", cohort, tmp_path / "m.pt", tmp_path / "p.tsv", MLP_CFG, seed=0,
                 selection=Selection(mode="last_epoch"))
    meta = torch.load(tmp_path / "m.pt", weights_only=False)["meta"]
    assert meta["selected_epoch"] == MLP_CFG["train"]["epochs"] and "monitor" not in meta["history"][-1]
    with pytest.raises(ValueError, match="validation_fraction"):
        record = dict(cohort["record"], train=cohort["record"]["train"] + cohort["record"]["validation"], validation=[])
        write_fold(tmp_path / "f.json", record)
        run_baseline("mlp", {**cohort, "split": str(tmp_path / "f.json")}, tmp_path / "n.pt", tmp_path / "n.tsv",
                     MLP_CFG, seed=0, selection=Selection())


def test_a_grid_keeps_the_point_best_on_validation_and_refit_retrains_on_train_and_validation(cohort, tmp_path):
    grid = Selection(patience=100, grid={"mlp": {"lr": [1e-5, 5e-3]}})
    assert grid.grid_points("mlp") == [{"lr": 1e-5}, {"lr": 5e-3}] and grid.grid_points("snn") == [{}]
    run_baseline("mlp", cohort, tmp_path / "g.pt", tmp_path / "g.tsv", MLP_CFG, seed=0, selection=grid)
    meta = torch.load(tmp_path / "g.pt", weights_only=False)["meta"]
    assert meta["grid_point"] == {"lr": 5e-3}  # a learning rate of 1e-5 barely moves the validation loss
    refit = Selection(patience=100, refit=True)
    run_baseline("mlp", cohort, tmp_path / "r.pt", tmp_path / "r.tsv", MLP_CFG, seed=0, selection=refit)
    meta = torch.load(tmp_path / "r.pt", weights_only=False)["meta"]
    n_train = len(cohort["record"]["train"]) + len(cohort["record"]["validation"])
    assert meta["refit_on"] == n_train
    with pytest.raises(ValueError, match="validation"):
        Selection(mode="last_epoch", refit=True)
