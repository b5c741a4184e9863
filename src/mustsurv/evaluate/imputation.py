"""How much can any imputation of a missing modality's specific component ũ gain, on a trained MUST?

MUST predicts a patient without genomics from φ([û_P; c̃; ũ_G]), c̃ = g_P − û_P, with ũ_G the mean of a few
diffusion samples. Holding φ, û_P and c̃ fixed, this module swaps ũ_G (or ũ_P) for reference imputations,
so that the diffusion model can be judged against what the data allow:

* ``true``: the patient's own û from its complete data (the upper bound; no imputer can do better);
* ``training_mean``: the training patients' mean û (what an uninformative condition allows);
* ``ridge``: a ridge regression of û on c̃ fitted on the training patients (a linear conditional mean);
* ``zero``: a zero tensor (supplement Table 4's "without LDM").

An imputer beats the training mean only where c̃ predicts û; :func:`r2_against_mean` measures that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor

from mustsurv.cohort.store import announce
from mustsurv.models.batch import PatientItem, collate, item_buckets
from mustsurv.models.must import MUST
from mustsurv.survival.loss import risk_from_hazards

Missing = Literal["genomics", "pathology"]


@dataclass(frozen=True)
class Components:
    """Frozen-model representations of N complete patients, each (N, D).

    Attributes:
        g_p: pathology class output g_P.
        g_g: genomics class output g_G.
        u_p_hat: û_P.
        u_g_hat: û_G.
        c_hat: ĉ, the head's shared input.
    """

    g_p: Tensor
    g_g: Tensor
    u_p_hat: Tensor
    u_g_hat: Tensor
    c_hat: Tensor

    def surrogate(self, missing: Missing) -> Tensor:
        """The surrogate shared component c̃ = g_avail − û_avail.

        Args:
            missing: the absent modality.

        Returns:
            (N, D) c̃.
        """
        return self.g_p - self.u_p_hat if missing == "genomics" else self.g_g - self.u_g_hat

    def surrogate_error(self, missing: Missing) -> float:
        """Relative error ‖c̃ − ĉ‖ / ‖ĉ‖ over all N patients (Frobenius norms).

        0 once the decomposition is exact, 1 when c̃ is as far from the head's complete-data input ĉ as a zero
        vector is.

        Args:
            missing: the absent modality.

        Returns:
            The relative error.
        """
        return float((self.surrogate(missing) - self.c_hat).norm() / self.c_hat.norm())

    def specific(self, missing: Missing) -> Tensor:
        """The missing modality's true û.

        Args:
            missing: the absent modality.

        Returns:
            (N, D) û of that modality.
        """
        return self.u_g_hat if missing == "genomics" else self.u_p_hat


@torch.no_grad()
def components(model: MUST, items: Sequence[PatientItem], batch_size: int = 16) -> Components:
    """Compute the :class:`Components` of the complete patients among ``items`` (in order), model in eval mode.

    Args:
        model: the trained MUST.
        items: the patients; those lacking a modality are skipped.
        batch_size: the most patients per forward pass (:func:`~mustsurv.models.batch.item_buckets`).

    Returns:
        The components, each (N, D).

    Raises:
        ValueError: no patient has both modalities.
    """
    model.eval()
    complete = [it for it in items if it["pathology"] is not None and it["genomics"] is not None]
    if not complete:
        raise ValueError("no patient has both modalities; the imputation analysis needs complete patients")
    announce(complete)
    device = next(model.parameters()).device
    parts = [model.decompose(collate(bucket).to(device)) for bucket in item_buckets(complete, batch_size)]
    return Components(*(torch.cat([getattr(d, k) for d in parts])
                        for k in ("g_p", "g_g", "u_p_hat", "u_g_hat", "c_hat")))


class RidgeImputer:
    """Ridge regression of targets (N, D_out) on standardised inputs (N, D_in) with an unpenalised intercept.

    The closed form (XᵀX + λI)⁻¹ Xᵀ(Y − Ȳ), in float64.
    """

    def __init__(self, alpha: float = 100.0) -> None:
        """Set the penalty.

        Args:
            alpha: the ridge penalty λ, > 0.

        Raises:
            ValueError: ``alpha`` is not positive.
        """
        if alpha <= 0:
            raise ValueError(f"ridge alpha must be positive, got {alpha}")
        self.alpha = alpha

    def fit(self, x: Tensor, y: Tensor) -> "RidgeImputer":
        """Fit the regression.

        Args:
            x: (N, D_in) inputs.
            y: (N, D_out) targets.

        Returns:
            The fitted imputer.
        """
        x, y = x.double(), y.double()
        self.x_mean, self.x_std = x.mean(0), x.std(0).clamp_min(1e-8)
        self.y_mean = y.mean(0)
        xs = (x - self.x_mean) / self.x_std
        gram = xs.T @ xs + self.alpha * torch.eye(xs.shape[1], dtype=xs.dtype)
        self.coef = torch.linalg.solve(gram, xs.T @ (y - self.y_mean))  # (D_in, D_out)
        return self

    def predict(self, x: Tensor) -> Tensor:
        """Predict targets.

        Args:
            x: (N, D_in) inputs.

        Returns:
            (N, D_out) predictions, in ``x``'s dtype.
        """
        xs = (x.double() - self.x_mean) / self.x_std
        return (xs @ self.coef + self.y_mean).to(x.dtype)


def r2_against_mean(pred: Tensor, true: Tensor, train_mean: Tensor) -> float:
    """R² of a prediction against the training mean: 1 − ‖pred − true‖² / ‖train_mean − true‖².

    Args:
        pred: (N, D) predictions.
        true: (N, D) true values.
        train_mean: (D,) training mean.

    Returns:
        The R²; > 0 when ``pred`` is closer to ``true`` than the training mean is.
    """
    return float(1 - (pred - true).pow(2).sum() / (train_mean - true).pow(2).sum())


@torch.no_grad()
def imputed_risk(model: MUST, test: Components, missing: Missing, u_missing: Tensor) -> Tensor:
    """Risk of the head with an imputation in the missing modality's slot.

    φ([û_P; c̃; ũ_G]) for ``missing="genomics"``, φ([ũ_P; c̃; û_G]) for ``missing="pathology"``.

    Args:
        model: the trained MUST.
        test: the test patients' components.
        missing: the absent modality.
        u_missing: (N, D) the imputed ũ.

    Returns:
        (N,) risks.
    """
    c = test.surrogate(missing)
    if missing == "genomics":
        logits = model.head_logits(test.u_p_hat, c, u_missing)
    else:
        logits = model.head_logits(u_missing, c, test.u_g_hat)
    return risk_from_hazards(torch.sigmoid(logits))


def reference_imputations(train: Components, test: Components, missing: Missing,
                          alpha: float = 100.0) -> dict[str, Tensor]:
    """The reference imputations ũ of the missing modality.

    Args:
        train: the training patients' components (the mean and the ridge fit).
        test: the test patients' components.
        missing: the absent modality.
        alpha: the ridge penalty.

    Returns:
        ``true``, ``training_mean``, ``ridge`` and ``zero``, each (N_test, D).
    """
    target = train.specific(missing)
    mean = target.mean(0, keepdim=True).expand_as(test.specific(missing))
    ridge = RidgeImputer(alpha).fit(train.surrogate(missing), target).predict(test.surrogate(missing))
    return {"true": test.specific(missing), "training_mean": mean, "ridge": ridge,
            "zero": torch.zeros_like(mean)}
