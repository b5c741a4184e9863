"""SNN baseline: self-normalising network on genomics (genomics only).

Reference: Klambauer et al., "Self-Normalizing Neural Networks", NeurIPS 2017, in the survival form of
MCAT (Chen et al., ICCV 2021, ``SNN``, size "small"): the concatenated family vectors ->
[Linear -> ELU -> AlphaDropout(0.25)] x 2 with widths 256-256 -> Linear(256, K) hazard logits. Weights
LeCun-normal (N(0, 1/fan_in)) with zero biases, the initialisation self-normalisation assumes (MCAT's
``init_max_weights``).

Adaptations: MCAT's SNN uses ELU, as here, rather than the paper's SELU; genes in several families
appear once per family in the input. Evaluated in the ``missing_pathology`` scenario only.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.baselines.mlp import concat_families
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.registry import register_model


def snn_block(in_dim: int, out_dim: int, dropout: float = 0.25) -> nn.Sequential:
    """Build Linear -> ELU -> AlphaDropout: (…, in_dim) -> (…, out_dim).

    Args:
        in_dim: input width.
        out_dim: output width.
        dropout: AlphaDropout probability.

    Returns:
        The block.
    """
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.ELU(), nn.AlphaDropout(dropout))


def lecun_normal_init(module: nn.Module) -> None:
    """Draw weights ~ N(0, 1/fan_in) and zero biases for every ``nn.Linear`` of ``module``.

    Args:
        module: the model, initialised in place.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.weight.shape[1]))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@register_model("snn")
class SNN(BaselineModel):
    """Self-normalising MLP on the concatenated family vectors (B, Σ d_k) -> (B, K)."""

    scenarios = ("missing_pathology",)
    uses_genomics = True

    def __init__(self, family_dims: Sequence[int], hidden_dims: Sequence[int] = (256, 256), dropout: float = 0.25,
                 n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the self-normalising network.

        Args:
            family_dims: d_k of each gene family.
            hidden_dims: widths of the hidden layers (at least one).
            dropout: AlphaDropout probability.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the NLL.

        Raises:
            ValueError: a gene family has no feature or ``hidden_dims`` is empty.
        """
        super().__init__(n_bins, alpha)
        if not family_dims or min(family_dims) < 1:
            raise ValueError(f"every gene family needs at least one feature, got sizes {list(family_dims)}")
        if not hidden_dims:
            raise ValueError("the SNN needs at least one hidden layer")
        self.family_dims = tuple(int(d) for d in family_dims)
        widths = [sum(self.family_dims), *(int(h) for h in hidden_dims)]
        self.encoder = nn.Sequential(*(snn_block(a, b, dropout) for a, b in zip(widths[:-1], widths[1:])))
        self.classifier = nn.Linear(widths[-1], n_bins)
        lecun_normal_init(self)

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Predict hazard logits from the F family tensors (B, d_k); pathology in the batch is not read.

        Args:
            batch: B patients, each with F family tensors (d_k,).

        Returns:
            (B, K) hazard logits.
        """
        return self.classifier(self.encoder(concat_families(self.families(batch), self.family_dims)))
