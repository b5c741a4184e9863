"""Classical baselines: elastic-net Cox proportional-hazards models (genomics, pathology, both).

Reference: Simon, Friedman, Hastie & Tibshirani, "Regularization Paths for Cox's Proportional Hazards
Model via Coordinate Descent", J. Stat. Softw. 2011 (glmnet's Coxnet), as implemented by
scikit-survival's ``CoxnetSurvivalAnalysis``; Breslow's estimator of the baseline survival.

Three models, registered like every method:

* ``coxph_genomics`` (:class:`CoxnetGenomics`): the F family vectors concatenated, (Σ d_k,) per patient
  (already standardised fold-wise by the dataset); evaluated in ``missing_pathology``;
* ``coxph_pathology`` (:class:`CoxnetPathology`): the patient's bag mean-pooled, (N, D) -> (D,), projected
  on the first ``pca_components`` principal components of the training patients; evaluated in
  ``missing_genomics``;
* ``coxph_concat`` (:class:`CoxnetConcat`): both, side by side, for complete data; evaluated in
  ``complete``.

Every column of the design matrix (genes, PCA scores) is then standardised with the training patients'
mean and standard deviation. Nothing is fit by gradient descent: :func:`mustsurv.train.classical.fit_classical`
fits the PCA, the scaler, the Coxnet path and the penalty, and the Breslow baseline survival, on training
patients only (the penalty on the validation patients), and stores them with :meth:`CoxnetBaseline.set_fitted`.
The fitted state is plain tensors in the module's extra state (``state_dict()["_extra_state"]``), so a
checkpoint is rebuilt by ``build_model(name, **kwargs)`` + ``load_state_dict`` like every other model and holds
no pickled scikit-learn object.

Outputs (B patients, K bins with edges ``[0, e_1, ..., e_{K-1}, inf]`` of the fold file):

* ``predict_risk``: the Cox linear predictor η = x·β (B,) (higher = earlier death). This is *not* the
  −Σ S of the deep models; it orders patients identically (S(t | x) = S_0(t)^exp(η) decreases in η at every t),
  and it is the quantity the Cox model ranks by. The prediction files (``mustsurv.train.must.predict``) hold
  −Σ S for every method, this one included: the same ranking, hence the same C-index;
* ``predict_survival``: (B, K) S(t | x) = S_0(t)^exp(η), Breslow S_0 of the training patients, at
  t = e_1, ..., e_{K-1} (the end of bins 0..K-2) and, for the last column, at the last observed time of the
  training patients (the end of the estimator's support, or e_{K−1} if that is later; the last bin ends at inf,
  where a Cox model has no estimate). Columns are non-increasing and in [0, 1];
* ``forward``: (B, K) hazard logits of the discrete hazards those survival columns imply,
  h_k = 1 − S_k / S_{k−1} (S_0 = 1), clamped to [1e-7, 1 − 1e-7], so ``survival_from_hazards(sigmoid(forward))``
  reproduces ``predict_survival`` (up to the clamp) and the base class's NLL can score the model.

Adaptations: the penalty is the glmnet elastic net (``l1_ratio`` mixing); the modules keep one zero-size,
non-trainable parameter so ``next(model.parameters()).device`` (used by the prediction code) works.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.baselines.mlp import concat_families
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.registry import register_model
from mustsurv.study.vocabulary import Scenario

_STATE_VERSION = 1
_EPS = 1e-7


def _t(a: Any) -> Tensor:
    """``a`` as a CPU float64 tensor (a copy)."""
    return torch.as_tensor(np.asarray(a, dtype=np.float64)).clone()


def _check_sizes(family_dims: Sequence[int] | None = None, pathology_dim: int = 1, pca_components: int = 1) -> None:
    """Raise ``ValueError`` for an empty gene family or a non-positive pathology size."""
    if family_dims is not None and (not family_dims or min(family_dims) < 1):
        raise ValueError(f"every gene family needs at least one feature, got sizes {list(family_dims)}")
    if pathology_dim < 1 or pca_components < 1:
        raise ValueError(f"pathology_dim and pca_components must be >= 1, got {pathology_dim}, {pca_components}")


class CoxnetBaseline(BaselineModel):
    """Elastic-net Cox model on a fixed feature map of the batch; see the module docstring.
    """

    uses_pathology: ClassVar[bool] = False
    uses_genomics: ClassVar[bool] = False
    same_modalities: ClassVar[bool] = True

    def __init__(self, n_bins: int = 4, l1_ratio: float = 0.5, n_alphas: int = 50, alpha_min_ratio: float = 0.01,
                 max_iter: int = 100000, inner_folds: int = 5) -> None:
        """Build an unfitted model.

        Args:
            n_bins: K, the number of survival columns ``predict_survival`` returns.
            l1_ratio: elastic-net mixing (1 = lasso, → 0 = ridge), in (0, 1].
            n_alphas: length of the penalty path.
            alpha_min_ratio: smallest penalty of the path as a fraction of the largest (the one that zeroes
                every coefficient).
            max_iter: coordinate-descent iterations of the Coxnet solver.
            inner_folds: folds of the inner cross-validation on the training patients that chooses the
                penalty when a fold has no validation patients.
        """
        super().__init__(n_bins, 0.0)
        if not 0.0 < l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must lie in (0, 1], got {l1_ratio}")
        if n_alphas < 1:
            raise ValueError(f"n_alphas must be >= 1, got {n_alphas}")
        if not 0.0 < alpha_min_ratio < 1.0:
            raise ValueError(f"alpha_min_ratio must lie in (0, 1), got {alpha_min_ratio}")
        if inner_folds < 2:
            raise ValueError(f"inner_folds must be >= 2, got {inner_folds}")
        self.l1_ratio = float(l1_ratio)
        self.n_alphas = int(n_alphas)
        self.alpha_min_ratio = float(alpha_min_ratio)
        self.max_iter = int(max_iter)
        self.inner_folds = int(inner_folds)
        # no trainable weights: this only lets `next(model.parameters()).device` find the model's device
        self.device_anchor = nn.Parameter(torch.zeros(0), requires_grad=False)
        self._fit: dict[str, Any] = {"version": _STATE_VERSION, "fitted": False}

    # ------------------------------------------------------------------ features
    def raw_features(self, batch: SurvivalBatch) -> dict[str, np.ndarray]:
        """The inputs the model reads, before PCA and standardisation.

        Args:
            batch: B patients.

        Returns:
            ``{"genomics": (B, Σ d_k)}`` and/or ``{"pathology": (B, D)}`` (bag means), float64.
        """
        out: dict[str, np.ndarray] = {}
        if self.uses_genomics:
            genes = concat_families(self.families(batch), self.family_dims)
            out["genomics"] = genes.detach().cpu().double().numpy()
        if self.uses_pathology:
            out["pathology"] = torch.stack([b.detach().double().mean(dim=0) for b in self.bags(batch)]).cpu().numpy()
        return out

    def fit_features(self, batch: SurvivalBatch) -> np.ndarray:
        """Fit the pathology PCA and the column scaler on the training patients ``batch``; drops any earlier
        Cox fit.

        Args:
            batch: The B training patients (every one accepted by :meth:`accepts`). The pathology models keep
                ``pca_components`` principal components of the pooled features, capped at min(B − 1, D).

        Returns:
            The standardised (B, p) design matrix of the training patients.
        """
        return self.fit_raw(self.raw_features(batch))

    def fit_raw(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """:meth:`fit_features` from :meth:`raw_features` output (e.g. computed bucket by bucket).

        Args:
            raw: ``{"genomics": (B, Σ d_k)}`` and/or ``{"pathology": (B, D)}`` of the B training patients.

        Returns:
            The standardised (B, p) design matrix of the training patients.
        """
        state: dict[str, Any] = {"version": _STATE_VERSION, "fitted": False}
        if "pathology" in raw:
            pooled = raw["pathology"]
            mean = pooled.mean(axis=0)
            n_comp = max(1, min(int(self.pca_components or 1), pooled.shape[0] - 1, pooled.shape[1]))
            _, _, vt = np.linalg.svd(pooled - mean, full_matrices=False)
            comps = vt[:n_comp]
            # deterministic signs: the largest-magnitude loading of each component is positive
            signs = np.sign(comps[np.arange(n_comp), np.abs(comps).argmax(axis=1)])
            signs[signs == 0] = 1.0
            state["pca_mean"], state["pca_components"] = _t(mean), _t(comps * signs[:, None])
        self._fit = state
        x = self._stack(raw)
        scale = x.std(axis=0)
        scale[~(scale > 1e-12)] = 1.0  # constant columns stay at 0 after centring
        state["feature_mean"], state["feature_scale"] = _t(x.mean(axis=0)), _t(scale)
        return self.design_from_raw(raw)

    def _stack(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Genes and/or PCA scores side by side -> (B, p), before standardisation."""
        parts = []
        if "genomics" in raw:
            parts.append(raw["genomics"])
        if "pathology" in raw:
            parts.append((raw["pathology"] - self._fit["pca_mean"].numpy()) @ self._fit["pca_components"].numpy().T)
        return np.concatenate(parts, axis=1)

    def design_from_raw(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """Standardised (B, p) design matrix of :meth:`raw_features` output, with the fitted PCA and scaler."""
        if "feature_mean" not in self._fit:
            raise RuntimeError(f"{type(self).__name__} has not been fit; run mustsurv.train.classical.fit_classical")
        return (self._stack(raw) - self._fit["feature_mean"].numpy()) / self._fit["feature_scale"].numpy()

    def design(self, batch: SurvivalBatch) -> np.ndarray:
        """Standardised (B, p) design matrix of ``batch``."""
        return self.design_from_raw(self.raw_features(batch))

    # ------------------------------------------------------------------ fitted state
    def set_fitted(self, coef: np.ndarray, penalty: float, baseline_time: np.ndarray,
                   baseline_survival: np.ndarray, bin_edges: Sequence[float]) -> None:
        """Store the Cox fit (after :meth:`fit_features`).

        Args:
            coef: (p,) coefficients on the standardised design.
            penalty: The selected Coxnet alpha.
            baseline_time: (T,) sorted unique observed times of the training patients.
            baseline_survival: (T,) Breslow baseline survival S_0 at those times.
            bin_edges: K + 1 bin edges ``[0, e_1, ..., e_{K-1}, inf]``.
        """
        if "feature_mean" not in self._fit:
            raise RuntimeError("fit_features must run before set_fitted")
        coef = np.asarray(coef, dtype=np.float64).reshape(-1)
        if coef.shape[0] != self._fit["feature_mean"].shape[0]:
            raise ValueError(f"{coef.shape[0]} coefficients for {self._fit['feature_mean'].shape[0]} features")
        if len(bin_edges) != self.n_bins + 1:
            raise ValueError(f"{len(bin_edges)} bin edges for {self.n_bins} bins")
        self._fit.update(fitted=True, coef=_t(coef), penalty=float(penalty), baseline_time=_t(baseline_time),
                         baseline_survival=_t(baseline_survival), bin_edges=_t(bin_edges))

    @property
    def fitted(self) -> bool:
        """Whether the Cox model has been fit."""
        return bool(self._fit.get("fitted"))

    @property
    def coef(self) -> np.ndarray:
        """(p,) fitted coefficients on the standardised design."""
        self._require_fit()
        return self._fit["coef"].numpy().copy()

    @property
    def penalty(self) -> float:
        """The selected Coxnet alpha."""
        self._require_fit()
        return float(self._fit["penalty"])

    @property
    def fitted_state(self) -> dict[str, Any]:
        """A copy of the fitted state (tensors and floats)."""
        return {k: v.clone() if isinstance(v, Tensor) else v for k, v in self._fit.items()}

    def get_extra_state(self) -> dict[str, Any]:
        """The fitted state as plain tensors / floats / bools (saved in the state dict)."""
        return self.fitted_state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise RuntimeError(f"{type(self).__name__}: unknown fitted-state format; retrain the model")
        self._fit = {k: v.detach().cpu().double().clone() if isinstance(v, Tensor) else v for k, v in state.items()}

    def _require_fit(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} has not been fit; run mustsurv.train.classical.fit_classical")

    # ------------------------------------------------------------------ predictions
    def linear_predictor(self, batch: SurvivalBatch) -> Tensor:
        """Cox linear predictor η = x·β (B,), float64 on the batch's device."""
        self._require_fit()
        eta = self.design(batch) @ self._fit["coef"].numpy()
        return torch.as_tensor(eta, dtype=torch.float64, device=batch.bins.device)

    def survival_times(self, bin_edges: Sequence[float] | None = None) -> np.ndarray:
        """The K times of the survival columns: e_1, ..., e_{K−1} and the last observed training time (or
        e_{K−1} if that is later).

        Args:
            bin_edges: K + 1 edges; None = the fold's edges stored at fit time.

        Returns:
            (K,) times.
        """
        self._require_fit()
        edges = self._fit["bin_edges"].numpy() if bin_edges is None else np.asarray(bin_edges, dtype=np.float64)
        if edges.shape[0] != self.n_bins + 1:
            raise ValueError(f"{edges.shape[0]} bin edges for {self.n_bins} bins")
        t_last = max(float(self._fit["baseline_time"][-1]), float(edges[-2]))
        return np.append(edges[1:-1], t_last)

    def baseline_survival_at(self, times: np.ndarray) -> np.ndarray:
        """Breslow S_0(t): a right-continuous step function, 1 before the first time, its last value after
        the last.

        Args:
            times: (T,) times.

        Returns:
            (T,) baseline survival.
        """
        self._require_fit()
        bt, bs = self._fit["baseline_time"].numpy(), self._fit["baseline_survival"].numpy()
        idx = np.searchsorted(bt, np.asarray(times, dtype=np.float64), side="right") - 1
        return np.where(idx >= 0, bs[np.clip(idx, 0, None)], 1.0)

    def survival(self, batch: SurvivalBatch, bin_edges: Sequence[float] | None = None) -> Tensor:
        """(B, K) S(t_k | x) = S_0(t_k)^exp(η) at :meth:`survival_times`, float64 on the batch's device."""
        s0 = self.baseline_survival_at(self.survival_times(bin_edges))
        eta = self.linear_predictor(batch).cpu().numpy()
        surv = np.clip(s0[None, :] ** np.exp(eta)[:, None], 0.0, 1.0)
        surv = np.minimum.accumulate(surv, axis=1)  # exact already; guards rounding
        return torch.as_tensor(surv, dtype=torch.float64, device=batch.bins.device)

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Hazard logits (B, K) of the discrete hazards h_k = 1 − S_k / S_{k−1} implied by :meth:`survival`."""
        surv = self.survival(batch)
        prev = torch.cat([torch.ones_like(surv[:, :1]), surv[:, :-1]], dim=1)
        hazard = torch.where(prev > 0, 1.0 - surv / prev.clamp_min(1e-300), torch.ones_like(surv))
        return torch.logit(hazard.clamp(_EPS, 1.0 - _EPS))

    @torch.no_grad()
    def predict_risk(self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50,
                     seed: int = 0) -> Tensor:
        """Risk = the Cox linear predictor η in ``scenario`` (not −Σ S; see the module docstring).

        Args:
            batch: B patients.
            scenario: one of the model's :attr:`scenarios`.
            n_samples: MUST's sampling argument, unused.
            steps: as ``n_samples``.
            seed: as ``n_samples``.

        Returns:
            (B,) risk scores.
        """
        self.check_scenario(scenario)
        self.eval()
        return self.linear_predictor(batch)

    @torch.no_grad()
    def predict_survival(self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50,
                         seed: int = 0, bin_edges: Sequence[float] | None = None) -> Tensor:
        """Survival (B, K) in ``scenario``: S(t | x) at e_1, ..., e_{K−1} and, last column, at the last observed
        time of the training patients (see the module docstring); non-increasing along K, in [0, 1].

        Args:
            batch: B patients.
            scenario: One of the model's ``scenarios``.
            n_samples: Unused (MUST's sampling argument, for a common call signature).
            steps: Unused.
            seed: Unused.
            bin_edges: K + 1 edges; None = the fold's edges stored at fit time.

        Returns:
            (B, K) float64 tensor on the batch's device.
        """
        self.check_scenario(scenario)
        self.eval()
        return self.survival(batch, bin_edges)


@register_model("coxph_genomics")
class CoxnetGenomics(CoxnetBaseline):
    """Elastic-net Cox model on the concatenated family vectors (B, Σ d_k); see the module docstring.
    """

    scenarios = ("missing_pathology",)
    uses_genomics = True

    def __init__(self, family_dims: Sequence[int], n_bins: int = 4, l1_ratio: float = 0.5, n_alphas: int = 50,
                 alpha_min_ratio: float = 0.01, max_iter: int = 100000, inner_folds: int = 5) -> None:
        """Build an unfitted model.

        Args:
            family_dims: d_k of the F gene families.
            n_bins: K, the number of survival columns ``predict_survival`` returns.
            l1_ratio: elastic-net mixing (1 = lasso, → 0 = ridge), in (0, 1].
            n_alphas: length of the penalty path.
            alpha_min_ratio: smallest penalty of the path as a fraction of the largest (the one that zeroes
                every coefficient).
            max_iter: coordinate-descent iterations of the Coxnet solver.
            inner_folds: folds of the inner cross-validation on the training patients that chooses the
                penalty when a fold has no validation patients.
        """
        super().__init__(n_bins, l1_ratio, n_alphas, alpha_min_ratio, max_iter, inner_folds)
        _check_sizes(family_dims=family_dims)
        self.family_dims = tuple(int(d) for d in family_dims)
        self.pca_components = None


@register_model("coxph_pathology")
class CoxnetPathology(CoxnetBaseline):
    """Elastic-net Cox model on the first ``pca_components`` principal components of mean-pooled patch
    features (B, D); see the module docstring.
    """

    scenarios = ("missing_genomics",)
    uses_pathology = True

    def __init__(self, pathology_dim: int, pca_components: int = 16, n_bins: int = 4, l1_ratio: float = 0.5,
                 n_alphas: int = 50, alpha_min_ratio: float = 0.01, max_iter: int = 100000,
                 inner_folds: int = 5) -> None:
        """Build an unfitted model.

        Args:
            pathology_dim: D, the patch feature size.
            pca_components: principal components kept (fit on the training patients; capped at n_train − 1
                and D).
            n_bins: K, the number of survival columns ``predict_survival`` returns.
            l1_ratio: elastic-net mixing (1 = lasso, → 0 = ridge), in (0, 1].
            n_alphas: length of the penalty path.
            alpha_min_ratio: smallest penalty of the path as a fraction of the largest (the one that zeroes
                every coefficient).
            max_iter: coordinate-descent iterations of the Coxnet solver.
            inner_folds: folds of the inner cross-validation on the training patients that chooses the
                penalty when a fold has no validation patients.
        """
        super().__init__(n_bins, l1_ratio, n_alphas, alpha_min_ratio, max_iter, inner_folds)
        _check_sizes(pathology_dim=pathology_dim, pca_components=pca_components)
        self.pathology_dim = int(pathology_dim)
        self.pca_components = int(pca_components)


@register_model("coxph_concat")
class CoxnetConcat(CoxnetBaseline):
    """Elastic-net Cox model on the family vectors and the pathology PCA scores side by side
    (B, Σ d_k + pca_components), complete data only; see the module docstring.
    """

    scenarios = ("complete",)
    uses_pathology = True
    uses_genomics = True

    def __init__(self, pathology_dim: int, family_dims: Sequence[int], pca_components: int = 16, n_bins: int = 4,
                 l1_ratio: float = 0.5, n_alphas: int = 50, alpha_min_ratio: float = 0.01, max_iter: int = 100000,
                 inner_folds: int = 5) -> None:
        """Build an unfitted model.

        Args:
            pathology_dim: D, the patch feature size.
            family_dims: d_k of the F gene families.
            pca_components: principal components of the pooled pathology features kept.
            n_bins: K, the number of survival columns ``predict_survival`` returns.
            l1_ratio: elastic-net mixing (1 = lasso, → 0 = ridge), in (0, 1].
            n_alphas: length of the penalty path.
            alpha_min_ratio: smallest penalty of the path as a fraction of the largest (the one that zeroes
                every coefficient).
            max_iter: coordinate-descent iterations of the Coxnet solver.
            inner_folds: folds of the inner cross-validation on the training patients that chooses the
                penalty when a fold has no validation patients.
        """
        super().__init__(n_bins, l1_ratio, n_alphas, alpha_min_ratio, max_iter, inner_folds)
        _check_sizes(family_dims=family_dims)
        _check_sizes(pathology_dim=pathology_dim, pca_components=pca_components)
        self.family_dims = tuple(int(d) for d in family_dims)
        self.pathology_dim = int(pathology_dim)
        self.pca_components = int(pca_components)
