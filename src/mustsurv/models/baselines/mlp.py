"""MLP baseline on genomics (genomics only).

Reference: the genomic MLP of the MUST paper's Table 1 (and of SurvPath's ``MLPOmics`` comparison):
the six family vectors concatenated into one (Σ d_k,) input -> Linear(Σ d_k, 256) + ReLU + dropout ->
Linear(256, 256) + ReLU + dropout -> Linear(256, K) hazard logits.

Adaptations: genes that belong to several families appear once per family in the concatenated input
(the families overlap); dropout 0.25 as in the other genomic baselines. Evaluated in the
``missing_pathology`` scenario (genomics present) only.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.registry import register_model


@register_model("mlp")
class GenomicsMLP(BaselineModel):
    """Two-layer ReLU MLP on the concatenated family vectors (B, Σ d_k) -> (B, K)."""

    scenarios = ("missing_pathology",)
    uses_genomics = True

    def __init__(self, family_dims: Sequence[int], hidden_dim: int = 256, dropout: float = 0.25, n_bins: int = 4,
                 alpha: float = 0.0) -> None:
        """Build the MLP.

        Args:
            family_dims: d_k of each gene family.
            hidden_dim: width of the two hidden layers.
            dropout: dropout probability.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the NLL.

        Raises:
            ValueError: a gene family has no feature.
        """
        super().__init__(n_bins, alpha)
        if not family_dims or min(family_dims) < 1:
            raise ValueError(f"every gene family needs at least one feature, got sizes {list(family_dims)}")
        self.family_dims = tuple(int(d) for d in family_dims)
        self.net = nn.Sequential(
            nn.Linear(sum(self.family_dims), hidden_dim), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden_dim, n_bins),
        )

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Predict hazard logits from the F family tensors (B, d_k); pathology in the batch is not read.

        Args:
            batch: B patients, each with F family tensors (d_k,).

        Returns:
            (B, K) hazard logits.
        """
        return self.net(concat_families(self.families(batch), self.family_dims))


def concat_families(families: Sequence[Tensor], family_dims: Sequence[int]) -> Tensor:
    """Check the F family tensors against the model's sizes and concatenate them.

    Args:
        families: F tensors (B, d_k).
        family_dims: the d_k the model was built for.

    Returns:
        (B, Σ d_k) concatenated families.

    Raises:
        ValueError: the family sizes do not match.
    """
    got = [int(f.shape[-1]) for f in families]
    if got != list(family_dims):
        raise ValueError(f"gene family sizes {got} do not match the sizes the model was built for "
                         f"{list(family_dims)}; rebuild the model from this cohort's tokens")
    return torch.cat(list(families), dim=1)
