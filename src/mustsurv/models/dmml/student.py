"""DMML's WSI-only student: slides at M magnifications, no transcriptome.

Per magnification (own weights): patches -> Linear(D_path, D) + ReLU -> deformable self-attention over the
√N × √N token grid with residual -> informative token aggregation (DPC-KNN into C = 2 clusters, each merged
by a softmax of learned token scores) -> Linear(C·D, K). The magnifications are combined as the teacher's.
:meth:`outputs` also returns the aggregated tokens that subspace distillation matches to the teacher's
[f_t; f_m] (``mustsurv.models.dmml.distillation``). It never reads the genomics of a batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.dmml.aggregation import TokenAggregation
from mustsurv.models.dmml.common import MultiMagnificationModel
from mustsurv.models.dmml.deformable import DeformableAttention2d
from mustsurv.models.registry import register_model


class StudentBranch(nn.Module):
    """The student at one magnification."""

    def __init__(self, pathology_dim: int, dim: int, heads: int, head_dim: int, points: int, dropout: float,
                 n_clusters: int, knn: int, n_bins: int) -> None:
        """Build the branch.

        Args:
            pathology_dim: D_path.
            dim: D.
            heads: deformable attention heads.
            head_dim: width of a head.
            points: sampling points per head.
            dropout: attention dropout.
            n_clusters: aggregated tokens C.
            knn: neighbours of DPC-KNN.
            n_bins: K.
        """
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(pathology_dim, dim), nn.ReLU())
        self.attention = DeformableAttention2d(dim, heads, head_dim, points, dropout)
        self.aggregate = TokenAggregation(dim, n_clusters, knn)
        self.classifier = nn.Linear(n_clusters * dim, n_bins)

    def forward(self, bags: Tensor) -> tuple[Tensor, Tensor]:
        """Predict from one magnification.

        Args:
            bags: (B, N, D_path) tokens.

        Returns:
            (B, K) logits and (B, C·D) aggregated tokens.
        """
        h = self.embed(bags)
        out, _ = self.attention(h, h)
        h = h + out
        tokens = torch.stack([self.aggregate(t) for t in h])
        return self.classifier(tokens), tokens


@register_model("dmml_student")
class DMMLStudent(MultiMagnificationModel):
    """DMML's WSI-only student (module docstring): stacked bags (M·N, D_path) -> K hazard logits."""

    scenarios = ("complete", "missing_genomics")
    uses_pathology = True
    same_modalities = False

    def __init__(self, pathology_dim: int, n_tokens: int = 64, n_mags: int = 2, dim: int = 128, heads: int = 8,
                 head_dim: int = 64, points: int = 4, dropout: float = 0.1, n_clusters: int = 2, knn: int = 5,
                 n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the student.

        Args:
            pathology_dim: D_path of the patch features.
            n_tokens: N tokens per magnification (a perfect square).
            n_mags: M magnifications.
            dim: D (the teacher's, so the aggregated tokens match its features when C = 2).
            heads: deformable attention heads.
            head_dim: width of a head.
            points: sampling points per head.
            dropout: attention dropout.
            n_clusters: aggregated tokens C (paper 2).
            knn: neighbours of DPC-KNN (paper 5).
            n_bins: K.
            alpha: up-weighting of the uncensored NLL term.
        """
        super().__init__(pathology_dim, n_tokens, n_mags, n_bins, alpha)
        self.branches = nn.ModuleList([StudentBranch(pathology_dim, dim, heads, head_dim, points, dropout, n_clusters,
                                                     knn, n_bins) for _ in range(n_mags)])

    def outputs(self, batch: SurvivalBatch) -> tuple[Tensor, Tensor]:
        """Every magnification's prediction.

        Args:
            batch: B patients with stacked bags.

        Returns:
            (M, B, K) logits and (M, B, C·D) aggregated tokens.
        """
        logits, tokens = zip(*(branch(bags) for branch, bags in zip(self.branches, self.tokens(batch))))
        return torch.stack(logits), torch.stack(tokens)

    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """NLL of each magnification's hazards (student pre-training).

        Args:
            batch: B patients.

        Returns:
            ``(loss, {"surv": value})``.
        """
        surv = self.survival_losses(self.outputs(batch)[0], batch)
        return surv, {"surv": float(surv.detach())}
