"""Discrete-time hazard model (paper §3.1, Eq. 4–6).

Time is cut into ``K`` bins; a model emits ``K`` logits per patient, the hazard of bin ``k`` is
``h_k = sigmoid(logit_k)`` = P(T = k | T >= k), the survival after bin ``k`` is
``S(k) = prod_{j<=k} (1 - h_j)`` and the risk score is ``-sum_k S(k)`` (higher = earlier death).

The likelihood follows MCAT's definition of the censored and uncensored terms (bins are 0-based):

* event in bin ``y``: the patient survived bins ``0..y-1`` and died in ``y``:
  ``-log S(y-1) - log h_y`` with ``S(-1) = 1``;
* censored in bin ``y``: the patient survived bin ``y``: ``-log S(y)``.

Eq. 6 of the paper writes the event term as ``-log h_y`` only; the extra ``-log S(y-1)`` is the
survival up to the event bin that the full discrete likelihood (and MCAT, whose loss the paper
cites) includes. ``alpha`` up-weights the uncensored term: ``(1 - alpha) * (cens + unc) + alpha * unc``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hazards_from_logits(logits: Tensor) -> Tensor:
    """Compute the hazards ``h = sigmoid(logits)``.

    Args:
        logits: (B, K) hazard logits.

    Returns:
        (B, K) hazards in (0, 1).
    """
    return torch.sigmoid(logits)


def survival_from_hazards(hazards: Tensor) -> Tensor:
    """Compute the survival ``S(k) = prod_{j<=k}(1 - h_j)``.

    Args:
        hazards: (B, K) hazards.

    Returns:
        (B, K) survival, non-increasing in k.
    """
    return torch.cumprod(1.0 - hazards, dim=1)


def risk_from_hazards(hazards: Tensor) -> Tensor:
    """Compute the risk score ``-sum_k S(k)``.

    Args:
        hazards: (B, K) hazards.

    Returns:
        (B,) risk; larger means shorter expected survival.
    """
    return -survival_from_hazards(hazards).sum(dim=1)


def nll_loss(
    logits: Tensor,
    bins: Tensor,
    events: Tensor,
    alpha: float = 0.0,
    eps: float = 1e-7,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of the discrete-time hazard model (paper Eq. 6, MCAT terms).

    Args:
        logits: (B, K) hazard logits.
        bins: (B,) integer time bin of each patient, 0 <= bin < K.
        events: (B,) 1 if death was observed, 0 if censored.
        alpha: weight of the extra uncensored term, 0 gives the plain likelihood.
        eps: probabilities are clamped to at least ``eps`` before the log.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (returns (B,)).

    Returns:
        Scalar loss (or (B,) per-patient losses for ``reduction="none"``).

    Raises:
        ValueError: ``logits`` is not (B, K), a bin lies outside [0, K-1], or ``reduction`` is unknown.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (B, K), got shape {tuple(logits.shape)}")
    if logits.dtype in (torch.bfloat16, torch.float16):  # autocast: the clamps and logs need float32
        logits = logits.float()
    n_bins = logits.shape[1]
    y = bins.long().view(-1, 1)
    if (y < 0).any() or (y >= n_bins).any():
        raise ValueError(f"time bins must lie in [0, {n_bins - 1}], got {bins.tolist()}")
    event = events.to(logits.dtype).view(-1, 1)
    hazards = hazards_from_logits(logits)
    surv = survival_from_hazards(hazards)
    surv_padded = torch.cat([torch.ones_like(event), surv], dim=1)  # S(-1) = 1 at index 0
    surv_before = torch.gather(surv_padded, 1, y).clamp_min(eps)  # S(y - 1)
    surv_at = torch.gather(surv_padded, 1, y + 1).clamp_min(eps)  # S(y)
    hazard_at = torch.gather(hazards, 1, y).clamp_min(eps)  # h_y
    uncensored = -event * (torch.log(surv_before) + torch.log(hazard_at))
    censored = -(1.0 - event) * torch.log(surv_at)
    per_patient = ((1.0 - alpha) * (censored + uncensored) + alpha * uncensored).view(-1)
    if reduction == "mean":
        return per_patient.mean()
    if reduction == "sum":
        return per_patient.sum()
    if reduction == "none":
        return per_patient
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
