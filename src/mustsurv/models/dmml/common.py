"""What DMML's teacher and student share: the bag layout, the per-magnification patch projection and the
combination of the magnifications' predictions."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.dmml.bags import grid_side, split_magnifications


def most_confident(logits: Tensor) -> Tensor:
    """Per patient, the logits of the magnification whose softmax has the largest maximum.

    Args:
        logits: (M, B, K) logits of every magnification.

    Returns:
        (B, K) combined logits.
    """
    conf = torch.softmax(logits, dim=-1).amax(dim=-1)  # (M, B)
    pick = conf.argmax(dim=0)  # (B,)
    return logits.gather(0, pick[None, :, None].expand(1, *logits.shape[1:])).squeeze(0)


class MultiMagnificationModel(BaselineModel):
    """A DMML model: bags of M magnifications x N tokens stacked as (M·N, D_path)."""

    def __init__(self, pathology_dim: int, n_tokens: int, n_mags: int, n_bins: int, alpha: float) -> None:
        """Check and keep the bag layout.

        Args:
            pathology_dim: D_path.
            n_tokens: N tokens per magnification (a perfect square).
            n_mags: M magnifications.
            n_bins: K.
            alpha: up-weighting of the uncensored NLL term.

        Raises:
            ValueError: N is not a perfect square or M < 1.
        """
        super().__init__(n_bins, alpha)
        grid_side(n_tokens)
        if n_mags < 1:
            raise ValueError(f"DMML needs at least one magnification, got {n_mags}")
        self.pathology_dim, self.n_tokens, self.n_mags = pathology_dim, n_tokens, n_mags

    def tokens(self, batch: SurvivalBatch) -> Tensor:
        """The batch's bags by magnification.

        Args:
            batch: B patients with stacked bags (M·N, D_path).

        Returns:
            (M, B, N, D_path) features.
        """
        return torch.stack([split_magnifications(b, self.n_mags, self.n_tokens) for b in self.bags(batch)], dim=1)

    def survival_losses(self, logits: Tensor, batch: SurvivalBatch) -> Tensor:
        """The NLL of each magnification's hazards, summed.

        Args:
            logits: (M, B, K) logits.
            batch: the batch.

        Returns:
            Scalar loss.
        """
        return sum(self.survival_loss(z, batch) for z in logits)

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Combined hazard logits.

        Args:
            batch: B patients.

        Returns:
            (B, K) logits of each patient's most confident magnification.
        """
        return most_confident(self.outputs(batch)[0])

    @abstractmethod
    def outputs(self, batch: SurvivalBatch) -> tuple[Tensor, ...]:
        """Per-magnification logits (M, B, K) first, then the model's features."""
