"""Confidence-guided gradient coordination of DMML's classifier (tumour half vs microenvironment half).

After the backward pass and before the optimiser step, the final classifier's weight W (K × 2D) is split
into the tumour columns and the microenvironment columns. For each row (time bin) whose two halves'
gradients point against each other (negative cosine), the gradient of the less confident half is projected
off the other half's gradient (PCGrad: g - (g·h / ‖h‖²) h) and rescaled to its original norm. The confidence
of a half is Σ_i softmax(o)_i[y_i] over the batch, o the logits from that half alone and y the true bin.
"""

from __future__ import annotations

import torch
from torch import Tensor


def half_confidence(half_logits: Tensor, bins: Tensor) -> Tensor:
    """The summed probability a half's logits give the true bins.

    Args:
        half_logits: (B, K) logits from one half of the classifier alone.
        bins: (B,) true time bins.

    Returns:
        Scalar confidence.
    """
    return torch.softmax(half_logits.detach(), dim=-1).gather(1, bins[:, None]).sum()


def project_conflicts(grad_a: Tensor, grad_b: Tensor, a_less_confident: bool, double: bool = False,
                      eps: float = 1e-12) -> tuple[Tensor, Tensor]:
    """Remove, row by row, the component of the less confident half's gradient that conflicts with the other.

    Args:
        grad_a: (K, D) gradient of one half of W.
        grad_b: (K, D) gradient of the other half.
        a_less_confident: True: ``grad_a`` is projected; False: ``grad_b``.
        double: subtract the projection twice, as the original code does (a bug kept as an option).
        eps: guard against a zero-norm row.

    Returns:
        The two (K, D) gradients; rows whose cosine is >= 0 are unchanged.
    """
    g, h = (grad_a, grad_b) if a_less_confident else (grad_b, grad_a)
    dot = (g * h).sum(dim=1, keepdim=True)
    conflict = dot < 0
    proj = g - (2.0 if double else 1.0) * dot / (h.pow(2).sum(dim=1, keepdim=True) + eps) * h
    proj = proj * g.norm(dim=1, keepdim=True) / (proj.norm(dim=1, keepdim=True) + eps)
    g = torch.where(conflict, proj, g)
    return (g, h) if a_less_confident else (h, g)


def coordinate_classifier(weight: torch.nn.Parameter, split: int, confidence_a: float, confidence_b: float,
                          double: bool = False) -> None:
    """Coordinate the gradient of a classifier weight in place.

    Args:
        weight: (K, 2D) classifier weight with its ``.grad`` filled; columns ``[:split]`` are the first half.
        split: the first half's width D.
        confidence_a: the first half's confidence.
        confidence_b: the second half's confidence.
        double: the original code's double subtraction.
    """
    if weight.grad is None:
        return
    grad = weight.grad
    a, b = project_conflicts(grad[:, :split], grad[:, split:], confidence_a < confidence_b, double)
    weight.grad = torch.cat([a, b], dim=1)
