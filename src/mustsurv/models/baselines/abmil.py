"""ABMIL: gated attention-based multiple-instance learning for survival (pathology only).

Reference: Ilse, Tomczak & Welling, "Attention-based Deep Multiple Instance Learning", ICML 2018 (gated
attention), in the survival form of MCAT (Chen et al., ICCV 2021, ``MIL_Attention_FC_surv``):
patch features -> Linear(D_path, 512) + ReLU + dropout -> gated attention
``a_n = w^T (tanh(V h_n) ⊙ sigmoid(U h_n))`` with attention dimension 256, softmax over the bag, pooled
``z = Σ_n softmax(a)_n h_n`` (512) -> Linear(512, 256) + ReLU + dropout -> Linear(256, K) hazard logits.
Dropout 0.25 everywhere (after the embedding, inside both attention branches and after ρ), Xavier-normal
initialisation as in MCAT.

Adaptations: the input dimension follows the patch encoder (``pathology_dim``: 1536 for UNI2-h, 192 for the
demo encoder) instead of MCAT's 1024. Evaluated in the ``missing_genomics`` scenario (pathology present),
the only one whose inputs it reads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel, xavier_init
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.registry import register_model


class GatedAttention(nn.Module):
    """Gated attention scores: (N, L) -> (N,) unnormalised logits."""

    def __init__(self, in_dim: int = 512, attn_dim: int = 256, dropout: float = 0.25) -> None:
        """Build the tanh and sigmoid branches.

        Args:
            in_dim: instance dimension L.
            attn_dim: hidden width of the branches.
            dropout: dropout probability.
        """
        super().__init__()
        self.tanh_branch = nn.Sequential(nn.Linear(in_dim, attn_dim), nn.Tanh(), nn.Dropout(dropout))
        self.gate_branch = nn.Sequential(nn.Linear(in_dim, attn_dim), nn.Sigmoid(), nn.Dropout(dropout))
        self.score = nn.Linear(attn_dim, 1)

    def forward(self, h: Tensor) -> Tensor:
        """(N, L) instances -> (N,) unnormalised attention logits."""
        return self.score(self.tanh_branch(h) * self.gate_branch(h)).squeeze(-1)


@register_model("abmil")
class ABMIL(BaselineModel):
    """Gated-attention MIL survival model; each bag (N_i, D_path) -> K hazard logits."""

    scenarios = ("missing_genomics",)
    uses_pathology = True

    def __init__(self, pathology_dim: int = 1536, hidden_dim: int = 512, attn_dim: int = 256, head_dim: int = 256,
                 dropout: float = 0.25, n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the model.

        Args:
            pathology_dim: D_path of the patch features.
            hidden_dim: instance embedding dimension.
            attn_dim: hidden width of the gated attention.
            head_dim: hidden width of the head.
            dropout: dropout probability.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the NLL.
        """
        super().__init__(n_bins, alpha)
        self.pathology_dim = pathology_dim
        self.embed = nn.Sequential(nn.Linear(pathology_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
        self.attention = GatedAttention(hidden_dim, attn_dim, dropout)
        self.rho = nn.Sequential(nn.Linear(hidden_dim, head_dim), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(head_dim, n_bins)
        xavier_init(self)

    def pool(self, bag: Tensor) -> Tensor:
        """Attention-pool one bag.

        Args:
            bag: (N, D_path) patch features.

        Returns:
            (hidden_dim,) bag embedding.
        """
        h = self.embed(bag)
        return torch.softmax(self.attention(h), dim=0) @ h

    @torch.no_grad()
    def patch_attention(self, bag: Tensor) -> Tensor:
        """The gated-attention weights of one bag's patches (what :meth:`pool` averages with).

        Args:
            bag: (N, D_path) patch features.

        Returns:
            (N,) softmax weights summing to 1 (dropout off only in eval mode).
        """
        return torch.softmax(self.attention(self.embed(bag)), dim=0)

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Predict hazard logits from B bags; genomics in the batch is not read.

        Args:
            batch: B patients, each with a bag (N_i, D_path).

        Returns:
            (B, K) hazard logits.
        """
        pooled = torch.stack([self.pool(bag) for bag in self.bags(batch)])
        return self.classifier(self.rho(pooled))
