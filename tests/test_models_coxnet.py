"""Classical elastic-net Cox baselines (mustsurv.models.baselines.coxnet, mustsurv.train.classical)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mustsurv.models.batch import collate
from mustsurv.models.registry import build_model, model_class
from mustsurv.survival import c_index, survival_from_hazards
from mustsurv.train.classical import fit_classical, partial_log_likelihood
from mustsurv.train.data import FoldData
from mustsurv.train.must import predict
from mustsurv.train.trainer import load_checkpoint, save_checkpoint

FAMILY_DIMS = [10, 20, 30]
TRUE_GENES = {0: 1.2, 15: -1.0, 40: 0.9}  # index in the concatenated genes -> log-hazard ratio
PATHOLOGY_DIM = 12
EDGES = [0.0, 6.0, 14.0, 30.0, float("inf")]


class Part(list):
    """A list of patient records with the dataset attributes fit_classical reads."""

    bin_edges = EDGES


class Untouchable:
    """A test part that fails the test when anything reads it."""

    def __iter__(self):
        raise AssertionError("the test patients were read")

    def __len__(self):
        raise AssertionError("the test patients were read")

    def __getitem__(self, i):
        raise AssertionError("the test patients were read")


def cohort(n: int, seed: int, prefix: str) -> Part:
    """``n`` synthetic patients: risk from three genes and the first pathology direction."""
    rng = np.random.default_rng(seed)
    genes = rng.standard_normal((n, sum(FAMILY_DIMS)))
    latent = rng.standard_normal(n)
    eta = sum(w * genes[:, j] for j, w in TRUE_GENES.items()) + 0.8 * latent
    t_event = rng.exponential(10.0 * np.exp(-eta))
    t_cens = rng.uniform(5.0, 60.0, n)
    time = np.minimum(t_event, t_cens)
    event = (t_event <= t_cens).astype(int)
    bins = np.clip(np.searchsorted(EDGES, time, side="right") - 1, 0, len(EDGES) - 2)
    out = Part()
    for i in range(n):
        split = np.cumsum(FAMILY_DIMS)[:-1]
        fams = [torch.tensor(f, dtype=torch.float32) for f in np.split(genes[i], split)]
        n_patches = int(rng.integers(3, 9))
        bag = rng.standard_normal((n_patches, PATHOLOGY_DIM)) * 0.5
        bag[:, 0] += 2.0 * latent[i]
        out.append({"patient_id": f"{prefix}{i:03d}", "pathology": torch.tensor(bag, dtype=torch.float32),
                    "genomics": fams, "time": float(time[i]), "event": int(event[i]), "bin": int(bins[i])})
    return out


@pytest.fixture(scope="module")
def fold() -> FoldData:
    return FoldData(cohort(150, 0, "tr"), cohort(50, 1, "va"), cohort(80, 2, "te"))


def make(name: str, **model_cfg) -> tuple[torch.nn.Module, dict]:
    kwargs = {**model_class(name).input_kwargs(PATHOLOGY_DIM, FAMILY_DIMS), "n_bins": len(EDGES) - 1,
              "n_alphas": 30, **model_cfg}
    return build_model(name, **kwargs), kwargs


def with_outcomes(part: Part, seed: int) -> Part:
    """``part`` with its outcomes permuted among its patients (features unchanged)."""
    perm = np.random.default_rng(seed).permutation(len(part))
    out = Part()
    for item, j in zip(part, perm):
        out.append({**item, "time": part[j]["time"], "event": part[j]["event"], "bin": part[j]["bin"]})
    return out


def test_genomics_cox_ranks_test_patients_and_is_sparse(fold: FoldData) -> None:
    model, _ = make("coxph_genomics")
    info = fit_classical(model, FoldData(fold.train, fold.validation, Untouchable()), "loss")
    assert info["selection"] == "validation" and info["n_validation"] == 50
    test = collate(list(fold.test))
    risk = model.predict_risk(test, "missing_pathology")
    assert risk.shape == (80,)
    assert c_index(test.time, test.event, risk) > 0.7
    nonzero = set(np.flatnonzero(model.coef))
    assert 0 < len(nonzero) < sum(FAMILY_DIMS) // 2
    assert set(TRUE_GENES) <= nonzero
    assert np.sign(model.coef[[0, 15, 40]]).tolist() == [1.0, -1.0, 1.0]
    with pytest.raises(ValueError, match="evaluated only in"):
        model.predict_risk(test, "complete")


@pytest.mark.parametrize("metric", ["loss", "cindex"])
def test_penalty_follows_validation_outcomes_and_never_test_outcomes(fold: FoldData, metric: str) -> None:
    base, _ = make("coxph_genomics")
    info = fit_classical(base, fold, metric)
    same, _ = make("coxph_genomics")
    info_same = fit_classical(same, FoldData(fold.train, fold.validation, with_outcomes(fold.test, 3)), metric)
    assert info_same == info
    for key, value in base.fitted_state.items():
        other = same.fitted_state[key]
        assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other, key
    moved, _ = make("coxph_genomics")
    info_moved = fit_classical(moved, FoldData(fold.train, with_outcomes(fold.validation, 4), fold.test), metric)
    assert info_moved["scores"] != info["scores"]
    assert info_moved["alpha"] != info["alpha"]


def test_without_validation_patients_an_inner_cv_on_train_chooses(fold: FoldData) -> None:
    first, _ = make("coxph_genomics", inner_folds=3)
    info = fit_classical(first, FoldData(fold.train, None, Untouchable()), "loss", seed=5)
    again, _ = make("coxph_genomics", inner_folds=3)
    assert fit_classical(again, FoldData(fold.train, None, Untouchable()), "loss", seed=5) == info
    assert info["selection"] == "inner_cv" and info["n_validation"] == 0
    assert np.isfinite(info["scores"]).any()
    assert set(TRUE_GENES) <= set(np.flatnonzero(first.coef))


def test_validation_that_cannot_score_falls_back_to_inner_cv(fold: FoldData) -> None:
    censored = Part({**it, "event": 0} for it in fold.validation)
    model, _ = make("coxph_genomics", inner_folds=3)
    assert fit_classical(model, FoldData(fold.train, censored, fold.test), "loss")["selection"] == "inner_cv"


def test_survival_columns_and_forward_agree(fold: FoldData) -> None:
    model, _ = make("coxph_concat")
    fit_classical(model, fold, "loss")
    batch = collate(list(fold.test))
    surv = model.predict_survival(batch, "complete")
    assert surv.shape == (80, 4)
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (surv[:, 1:] <= surv[:, :-1] + 1e-12).all()
    # S(t | x) = S0(t) ** exp(eta): a higher linear predictor never survives longer
    eta = model.predict_risk(batch, "complete")
    order = torch.argsort(eta)
    assert (surv[order][1:] <= surv[order][:-1] + 1e-12).all()
    times = model.survival_times()
    assert times[:3].tolist() == EDGES[1:4]
    assert times[3] == max(it["time"] for it in fold.train)
    # the hazard logits imply the same survival columns (up to the logit clamp)
    rebuilt = survival_from_hazards(torch.sigmoid(model.predict_logits(batch, "complete")))
    assert torch.allclose(rebuilt, surv, atol=1e-5)
    # the base class's NLL can score it
    loss, logs = model.loss(batch)
    assert torch.isfinite(loss) and "surv" in logs


def test_checkpoint_round_trip_gives_identical_predictions(fold: FoldData, tmp_path) -> None:
    model, kwargs = make("coxph_concat")
    fit_classical(model, fold, "cindex")
    path = tmp_path / "coxph_concat.pt"
    save_checkpoint(path, model, "coxph_concat", kwargs, {"selection": "validation"})
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["meta"] == {"selection": "validation"} and not list(loaded.parameters())[0].requires_grad
    batch = collate(list(fold.test))
    assert torch.equal(loaded.predict_risk(batch, "complete"), model.predict_risk(batch, "complete"))
    assert torch.equal(loaded.predict_survival(batch, "complete"), model.predict_survival(batch, "complete"))
    assert torch.equal(loaded(batch), model(batch))
    # plain tensors only: the checkpoint loads without unpickling arbitrary objects
    torch.load(path, weights_only=True)
    # the shared prediction code serves it: the file's risk is −Σ S, which ranks the patients as η does
    pred = predict(loaded, list(fold.test), loaded.scenarios)
    assert len(pred) == 80 and set(pred["scenario"]) == {"complete"}
    eta = model.predict_risk(batch, "complete").numpy()
    assert np.allclose(pred["risk"].to_numpy(), -model.predict_survival(batch, "complete").sum(1).numpy())
    assert (np.argsort(pred["risk"].to_numpy(), kind="stable") == np.argsort(eta, kind="stable")).all()
    # an unfitted model refuses to predict
    with pytest.raises(RuntimeError, match="has not been fit"):
        build_model("coxph_concat", **kwargs).predict_risk(batch, "complete")


def test_pathology_pca_and_scaler_are_fit_on_training_patients_only(fold: FoldData) -> None:
    model, _ = make("coxph_pathology", pca_components=5)
    fit_classical(model, fold, "loss")
    state = model.fitted_state
    pooled = torch.stack([it["pathology"].double().mean(0) for it in fold.train])
    assert torch.allclose(state["pca_mean"], pooled.mean(0))
    assert state["pca_components"].shape == (5, PATHOLOGY_DIM)
    scores = (pooled - state["pca_mean"]) @ state["pca_components"].T
    assert torch.allclose(state["feature_mean"], scores.mean(0), atol=1e-10)
    # different held-out bags leave the feature map unchanged
    noisy = Part({**it, "pathology": it["pathology"] * 5 + 3} for it in fold.validation)
    other, _ = make("coxph_pathology", pca_components=5)
    fit_classical(other, FoldData(fold.train, noisy, Untouchable()), "loss")
    for key in ("pca_mean", "pca_components", "feature_mean", "feature_scale"):
        assert torch.equal(other.fitted_state[key], state[key]), key
    # the first direction carries the signal: the model ranks test patients
    test = collate(list(fold.test))
    assert c_index(test.time, test.event, model.predict_risk(test, "missing_genomics")) > 0.6


def test_accepts_only_patients_with_the_modalities_read(fold: FoldData) -> None:
    no_slides = [{**it, "pathology": None} for it in list(fold.train)[:40]]
    train = Part([*no_slides, *list(fold.train)[40:]])
    model, _ = make("coxph_concat")
    info = fit_classical(model, FoldData(train, fold.validation, fold.test), "loss")
    assert info["n_train"] == 110
    genomics_only, _ = make("coxph_genomics")
    assert fit_classical(genomics_only, FoldData(train, fold.validation, fold.test), "loss")["n_train"] == 150


def test_partial_log_likelihood_matches_a_hand_computation() -> None:
    eta = np.array([0.5, -0.2, 1.0])
    time = np.array([2.0, 5.0, 3.0])
    event = np.array([1, 0, 1])
    # events at t=2 (risk set all three) and t=3 (patients 2 and 3)
    want = ((0.5 - np.log(np.exp(eta).sum())) + (1.0 - np.log(np.exp(-0.2) + np.exp(1.0)))) / 2
    assert partial_log_likelihood(eta, time, event) == pytest.approx(want)
    assert np.isnan(partial_log_likelihood(eta, time, np.zeros(3)))
