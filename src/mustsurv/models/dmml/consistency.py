"""Inter-magnification gene-expression consistency of DMML's teacher.

For one subspace, the attention maps of the B patients of a batch at two magnifications, flattened to
(B, L), give the cross-scale similarity C = A_hi · A_loᵀ (B × B) with L2-normalised rows.

* ``variance`` (the original code, the default): 1e4 · Var(diag C); it equalises each patient's
  cross-scale self-similarity across the batch.
* ``alignment`` (an option that aligns the two scales directly): MSE between the row-normalised
  within-scale similarity matrices A_hi A_hiᵀ and A_lo A_loᵀ.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

MODES = ("variance", "alignment")


def consistency_loss(attn_hi: Tensor, attn_lo: Tensor, mode: str = "variance") -> Tensor:
    """Consistency of one subspace's attention across two magnifications (weight applied by the caller).

    Args:
        attn_hi: (B, L) flattened attention maps at the main magnification.
        attn_lo: (B, L) the same at the other one.
        mode: ``variance`` or ``alignment``.

    Returns:
        Scalar loss (zero for B < 2, where neither is defined).

    Raises:
        ValueError: unknown mode; the message names the config key.
    """
    if mode not in MODES:
        raise ValueError(f"dmml.model.consistency must be one of {', '.join(MODES)}, got {mode!r}")
    if attn_hi.shape[0] < 2:
        return attn_hi.sum() * 0.0
    if mode == "variance":
        c = F.normalize(attn_hi @ attn_lo.T, dim=1)
        return c.diagonal().var()
    sim_hi = F.normalize(attn_hi @ attn_hi.T, dim=1)
    sim_lo = F.normalize(attn_lo @ attn_lo.T, dim=1)
    return F.mse_loss(sim_hi, sim_lo)
