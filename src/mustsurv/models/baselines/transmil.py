"""TransMIL baseline (pathology only).

Reference: Shao et al., "TransMIL: Transformer based Correlated Multiple Instance Learning for Whole
Slide Image Classification", NeurIPS 2021: Linear(D_path, 512) + ReLU, square padding of the bag,
class token, Nyström-attention layer -> PPEG (7/5/3 depthwise convolutions) -> Nyström-attention layer
-> LayerNorm, and a linear classifier on the class token (here K hazard logits).

The aggregator is the shared :class:`mustsurv.models.layers.transmil.TransMIL`, the same layer MUST
uses for its pathology branch (see that module for the Nyström details). Adaptations: the input
dimension follows the patch encoder (``pathology_dim``); width, heads and landmarks are configurable
(defaults are the paper's 512 / 8 / 256); evaluated in the ``missing_genomics`` scenario only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.layers.transmil import TransMIL
from mustsurv.models.registry import register_model


@register_model("transmil")
class TransMILSurv(BaselineModel):
    """TransMIL survival model; each bag (N_i, D_path) -> K hazard logits from the class token."""

    scenarios = ("missing_genomics",)
    uses_pathology = True

    def __init__(self, pathology_dim: int = 1536, dim: int = 512, heads: int = 8, num_landmarks: int | None = None,
                 pinv_iterations: int = 6, dropout: float = 0.1, n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the model.

        Args:
            pathology_dim: D_path of the patch features.
            dim: TransMIL token dimension.
            heads: attention heads.
            num_landmarks: Nyström landmarks; None uses ``dim // 2``.
            pinv_iterations: iterations of the Nyström pseudo-inverse.
            dropout: dropout probability.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the NLL.
        """
        super().__init__(n_bins, alpha)
        self.pathology_dim = pathology_dim
        self.aggregator = TransMIL(pathology_dim, dim, heads, num_landmarks, pinv_iterations, dropout)
        self.classifier = nn.Linear(dim, n_bins)

    def patch_attention(self, bag: Tensor) -> Tensor:
        """The class token's attention over one bag's patches (:meth:`TransMIL.class_attention`).

        Args:
            bag: (N, D_path) patch features.

        Returns:
            (N,) weights summing to 1.
        """
        return self.aggregator.class_attention(bag)

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Predict hazard logits from B bags; genomics in the batch is not read.

        Args:
            batch: B patients, each with a bag (N_i, D_path).

        Returns:
            (B, K) hazard logits.
        """
        cls = torch.stack([self.aggregator(bag)[0] for bag in self.bags(batch)])
        return self.classifier(cls)
