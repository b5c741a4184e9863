"""Genomics branch: one MLP per functional gene family -> family tokens -> multi-head self-attention."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mustsurv.models.layers.attention import SelfAttentionBlock


class FamilyTokenizer(nn.Module):
    """Group-specific MLPs (SNN-style: Linear -> ELU -> AlphaDropout, twice), one per family.

    ``genomics``: list of F tensors (B, d_k) -> tokens (B, F, dim).
    """

    def __init__(self, family_dims: Sequence[int], dim: int = 256, hidden: int = 256, dropout: float = 0.25) -> None:
        """Build one MLP per family.

        Args:
            family_dims: d_k of each of the F families.
            dim: token dimension.
            hidden: hidden width of each MLP.
            dropout: AlphaDropout probability.

        Raises:
            ValueError: a family has no feature.
        """
        super().__init__()
        if not family_dims or min(family_dims) < 1:
            raise ValueError(f"every gene family needs at least one feature, got sizes {list(family_dims)}")
        self.family_dims = tuple(int(d) for d in family_dims)
        self.mlps = nn.ModuleList(
            nn.Sequential(
                nn.Linear(d, hidden), nn.ELU(), nn.AlphaDropout(dropout),
                nn.Linear(hidden, dim), nn.ELU(), nn.AlphaDropout(dropout),
            )
            for d in self.family_dims
        )

    def forward(self, genomics: Sequence[Tensor]) -> Tensor:
        """Embed each family.

        Args:
            genomics: F tensors (B, d_k).

        Returns:
            (B, F, dim) family tokens.

        Raises:
            ValueError: the number of families or a family's size differs from the model's.
        """
        if len(genomics) != len(self.mlps):
            raise ValueError(f"expected {len(self.mlps)} gene families, got {len(genomics)}")
        for k, (x, d) in enumerate(zip(genomics, self.family_dims)):
            if x.shape[-1] != d:
                raise ValueError(f"gene family {k} has {x.shape[-1]} features, the model was built for {d}")
        return torch.stack([mlp(x) for mlp, x in zip(self.mlps, genomics)], dim=1)


class GenomicsEncoder(nn.Module):
    """Family tokens + learnable class token -> ``layers`` self-attention blocks -> LayerNorm.

    Returns the class output g_G (B, dim) and the updated family tokens (B, F, dim).
    """

    def __init__(
        self,
        family_dims: Sequence[int],
        dim: int = 256,
        hidden: int = 256,
        heads: int = 8,
        layers: int = 1,
        dropout: float = 0.25,
    ) -> None:
        """Build the tokenizer, class token and self-attention blocks.

        Args:
            family_dims: d_k of each of the F families.
            dim: token dimension.
            hidden: hidden width of the family MLPs.
            heads: number of attention heads.
            layers: number of self-attention blocks.
            dropout: dropout of the MLPs and the attention blocks.
        """
        super().__init__()
        self.tokenizer = FamilyTokenizer(family_dims, dim, hidden, dropout)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.blocks = nn.ModuleList(SelfAttentionBlock(dim, heads, dropout=dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, genomics: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Encode the genomic families.

        Args:
            genomics: F tensors (B, d_k).

        Returns:
            g_G (B, dim) and the updated family tokens (B, F, dim).
        """
        tokens = self.tokenizer(genomics)
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1:]
