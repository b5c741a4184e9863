"""Fitting the classical Cox baselines (``coxph_genomics``, ``coxph_pathology``, ``coxph_concat``) on one fold.

Protocol of :func:`fit_classical`, which never reads a test patient:

1. The training patients the model accepts (those with the modalities it reads) fix the feature map: the
   pathology PCA and the standardisation of every column (:meth:`CoxnetBaseline.fit_features`).
2. scikit-survival's ``CoxnetSurvivalAnalysis`` fits the elastic-net path (``l1_ratio``, ``n_alphas``,
   ``alpha_min_ratio``, ``max_iter`` from the model's config) on those training patients.
3. The penalty is the path's alpha with the best validation score: ``selection_metric="loss"`` (default) the
   Cox partial log-likelihood of the validation patients (Breslow ties; the risk sets are the validation
   patients' own), ``"cindex"`` their Harrell's C-index. Ties go to the larger alpha (the sparser model).
   The coefficients kept are the training fit at that alpha (a point of the path fit on the training
   patients; nothing is refit on validation patients).
   Without validation patients (``FoldData.validation`` None, e.g. ``selection.mode: last_epoch``, or a
   validation part that cannot score a penalty: no accepted patient with an event, or for ``cindex`` no
   comparable pair) the score is the mean over an inner stratified
   (event) ``inner_folds``-fold cross-validation of the training patients, seeded with ``seed``: the path's
   alphas of step 2 are refit on each inner training part and scored on its held-out part, then the
   coefficients at the chosen alpha are taken from the full-training path. The PCA and scaler of step 1 are
   shared by the inner folds (fit on all training patients, so held-out inner patients influence the
   feature map, never the test patients).
4. Breslow's estimator on the training patients' linear predictors gives the baseline survival (what
   sksurv's ``fit_baseline_model=True`` computes, for the chosen alpha only).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Sequence

import numpy as np

from mustsurv.models.baselines.coxnet import CoxnetBaseline
from mustsurv.models.batch import PatientItem, collate, item_buckets
from mustsurv.train.data import FoldData

log = logging.getLogger(__name__)

SELECTION_METRICS = ("loss", "cindex")


def raw_features(model: CoxnetBaseline, items: Sequence[PatientItem], chunk: int = 32) -> dict[str, np.ndarray]:
    """The model's raw inputs (bag means, genes) of ``items``, computed in token buckets and concatenated.

    Args:
        model: the Cox baseline.
        items: B patients it accepts.
        chunk: the most patients per bucket (:func:`~mustsurv.models.batch.item_buckets`).

    Returns:
        ``{"genomics": (B, Σ d_k)}`` and/or ``{"pathology": (B, D)}``, float64.
    """
    parts = [model.raw_features(collate(bucket)) for bucket in item_buckets(list(items), chunk)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def partial_log_likelihood(eta: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Cox partial log-likelihood (Breslow ties) of linear predictors over the patients' own risk sets,
    per event.

    Args:
        eta: (N,) linear predictors.
        time: (N,) observed times.
        event: (N,) 1 = event observed.

    Returns:
        Σ_{i: event} [η_i − log Σ_{j: t_j ≥ t_i} exp(η_j)] divided by the number of events (nan without events).
    """
    eta, time, event = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (eta, time, event))
    n_events = int(event.sum())
    if n_events == 0:
        return float("nan")
    shift = eta.max()
    w = np.exp(eta - shift)
    at_risk = np.array([w[time >= t].sum() for t in time[event > 0]])
    return float(((eta[event > 0] - shift) - np.log(at_risk)).sum() / n_events)


def harrell_c(eta: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Harrell's C-index of risk ``eta`` (N,) (sksurv; ties count 1/2); nan without a comparable pair."""
    from sksurv.metrics import concordance_index_censored

    try:
        return float(concordance_index_censored(np.asarray(event, bool), np.asarray(time, float),
                                                np.asarray(eta, float))[0])
    except (ZeroDivisionError, ValueError):
        return float("nan")


def score_path(coefs: np.ndarray, x: np.ndarray, time: np.ndarray, event: np.ndarray, metric: str) -> np.ndarray:
    """Validation score of every point of a path (higher is better).

    Args:
        coefs: (p, A) coefficients, one column per alpha.
        x: (N, p) standardised design of the scored patients.
        time: (N,) observed times.
        event: (N,) event indicators.
        metric: ``loss`` (mean partial log-likelihood per event) or ``cindex``.

    Returns:
        (A,) scores.
    """
    eta = x @ coefs
    fn = partial_log_likelihood if metric == "loss" else harrell_c
    return np.array([fn(eta[:, a], time, event) for a in range(coefs.shape[1])])


def coxnet_path(model: CoxnetBaseline, x: np.ndarray, time: np.ndarray, event: np.ndarray,
                alphas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fit the elastic-net Cox path with the model's settings.

    Args:
        model: Supplies ``l1_ratio``, ``n_alphas``, ``alpha_min_ratio`` and ``max_iter``.
        x: (N, p) standardised design (column means 0; sksurv centres again, a no-op here).
        time: (N,) observed times.
        event: (N,) event indicators.
        alphas: (A,) decreasing penalties to fit (None: sksurv's path of ``n_alphas`` values).

    Returns:
        (alphas (A',), coefficients (p, A')) in sksurv's (decreasing-alpha) order. When the solver fails at
        the small end of the path (sksurv's "weights are too large" ``ArithmeticError``), the path is refit
        without its smallest alphas (``alpha_min_ratio`` × 10, or the smaller half of ``alphas``) and A' < A.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sksurv.linear_model import CoxnetSurvivalAnalysis
    from sksurv.util import Surv

    y = Surv.from_arrays(event=np.asarray(event, bool), time=np.asarray(time, float))
    ratio = model.alpha_min_ratio
    while True:
        est = CoxnetSurvivalAnalysis(l1_ratio=model.l1_ratio, n_alphas=model.n_alphas, alpha_min_ratio=ratio,
                                     alphas=alphas, max_iter=model.max_iter, normalize=False,
                                     fit_baseline_model=False)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="all coefficients are zero")
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(x, y)
            return np.asarray(est.alphas_, float), np.asarray(est.coef_, float)
        except ArithmeticError:
            if alphas is None:
                if ratio >= 0.5:
                    raise
                ratio = min(0.5, ratio * 10)
                log.warning("Coxnet path failed at small alphas; refitting with alpha_min_ratio %g", ratio)
            else:
                if len(alphas) <= 1:
                    raise
                alphas = alphas[: (len(alphas) + 1) // 2]


def breslow(eta: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breslow baseline survival of a fitted Cox model (sksurv's ``BreslowEstimator``).

    Args:
        eta: (N,) training linear predictors.
        time: (N,) observed times.
        event: (N,) event indicators.

    Returns:
        (unique observed times (T,), S_0 at them (T,)).
    """
    from sksurv.linear_model.coxph import BreslowEstimator

    est = BreslowEstimator().fit(np.asarray(eta, float), np.asarray(event, bool), np.asarray(time, float))
    return np.asarray(est.baseline_survival_.x, float), np.asarray(est.baseline_survival_.y, float)


def _outcomes(items: Sequence[PatientItem]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([float(it["time"]) for it in items]), np.array([int(it["event"]) for it in items]))


def _inner_cv(model: CoxnetBaseline, x: np.ndarray, time: np.ndarray, event: np.ndarray, alphas: np.ndarray,
              metric: str, seed: int) -> np.ndarray:
    """(A,) mean score over the inner folds of each alpha (nan where no fold could score it)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n_splits = min(model.inner_folds, len(time))
    counts = np.bincount(event.astype(int), minlength=2)
    if counts.min() >= n_splits:
        splits = StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(x, event)
    else:
        splits = KFold(n_splits, shuffle=True, random_state=seed).split(x)
    scores = []
    for inner_train, held_out in splits:
        if event[inner_train].sum() == 0:
            continue
        fold_alphas, coefs = coxnet_path(model, x[inner_train], time[inner_train], event[inner_train], alphas)
        s = np.full(len(alphas), np.nan)
        s[: len(fold_alphas)] = score_path(coefs, x[held_out], time[held_out], event[held_out], metric)
        scores.append(s)
    if not scores:
        return np.full(len(alphas), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan columns
        return np.nanmean(np.vstack(scores), axis=0)


def fit_classical(model: CoxnetBaseline, data: FoldData, selection_metric: str = "loss", seed: int = 0,
                  bin_edges: Sequence[float] | None = None) -> dict[str, Any]:
    """Fit a Cox baseline on a fold's training patients, its penalty chosen on the validation patients (see
    the module docstring); the model is changed in place and ready to predict and save.

    Args:
        model: A freshly built ``coxph_*`` model.
        data: The fold; ``data.test`` is not read.
        selection_metric: ``loss`` (validation partial log-likelihood) or ``cindex`` (validation Harrell's C).
        seed: Seed of the inner cross-validation (used only without validation patients).
        bin_edges: K + 1 bin edges of the fold (None: ``data.train.bin_edges``).

    Returns:
        What to log and keep in the checkpoint's ``meta``: ``selection`` (``validation`` or ``inner_cv``),
        ``metric``, ``alpha`` (chosen), ``alphas`` and ``scores`` (the path and its scores, lists of A floats),
        ``n_nonzero`` (non-zero coefficients), ``n_features``, ``n_train``, ``n_validation`` (accepted
        patients; 0 with inner CV), ``train_events``, ``validation_score`` (the chosen alpha's score).
    """
    if selection_metric not in SELECTION_METRICS:
        raise ValueError(f"selection metric must be one of {', '.join(SELECTION_METRICS)}, not {selection_metric!r}")
    cls = type(model)
    train = [it for it in data.train if cls.accepts(it)]
    if len(train) < 3:
        raise ValueError(f"{cls.__name__}: {len(train)} training patient(s) have the modalities it needs; need >= 3")
    t_train, e_train = _outcomes(train)
    if e_train.sum() == 0:
        raise ValueError(f"{cls.__name__}: no event among the {len(train)} training patients; a Cox model needs one")
    edges = list(bin_edges) if bin_edges is not None else list(data.train.bin_edges)

    x_train = model.fit_raw(raw_features(model, train))
    alphas, coefs = coxnet_path(model, x_train, t_train, e_train)

    validation = [] if data.validation is None else [it for it in data.validation if cls.accepts(it)]
    t_val, e_val = _outcomes(validation) if validation else (np.zeros(0), np.zeros(0, int))
    scores = np.full(len(alphas), np.nan)
    if validation and e_val.sum() > 0:
        selection = "validation"
        scores = score_path(coefs, model.design_from_raw(raw_features(model, validation)), t_val, e_val,
                            selection_metric)
    if not np.isfinite(scores).any():
        if data.validation is not None:
            log.warning("%s: the %d accepted validation patients cannot score a penalty (no event or no comparable "
                        "pair); choosing it by inner %d-fold CV on the training patients", cls.__name__,
                        len(validation), model.inner_folds)
        selection = "inner_cv"
        scores = _inner_cv(model, x_train, t_train, e_train, alphas, selection_metric, seed)
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    best = int(np.argmax(finite))  # first maximum = largest alpha among ties
    coef = coefs[:, best]
    base_t, base_s = breslow(x_train @ coef, t_train, e_train)
    model.set_fitted(coef, float(alphas[best]), base_t, base_s, edges)
    info = {
        "selection": selection, "metric": selection_metric, "alpha": float(alphas[best]),
        "alphas": [float(a) for a in alphas], "scores": [float(s) for s in scores],
        "validation_score": float(scores[best]), "n_nonzero": int(np.count_nonzero(coef)),
        "n_features": int(coef.shape[0]), "n_train": len(train),
        "n_validation": len(validation) if selection == "validation" else 0, "train_events": int(e_train.sum()),
    }
    log.info("%s: alpha %.4g chosen by %s %s (score %.4f) among %d; %d of %d coefficients non-zero; %d training "
             "patients", cls.__name__, info["alpha"], selection, selection_metric, info["validation_score"],
             len(alphas), info["n_nonzero"], info["n_features"], len(train))
    return info
