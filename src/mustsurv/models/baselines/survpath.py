"""SurvPath: sparse multimodal transformer of biological-pathway tokens and patch tokens.

Reference: Jaume et al., "Modeling Dense Multimodal Interactions Between Biological Pathways and
Histology for Survival Prediction", CVPR 2024. Each pathway's genes go through their own SNN
(Linear -> ELU -> AlphaDropout, 256-256) to one token; patch features are projected linearly to the
same width; the token sequence [pathways; patches] passes one multimodal attention layer whose
attention matrix keeps three of its four blocks: pathway-to-pathway and pathway-to-patch (one softmax
over all keys for each pathway query) and patch-to-pathway (each patch query attends to the pathway
keys only); patch-to-patch is omitted, which makes the cost linear in the number of patches. As in the
authors' implementation the layer is pre-normed, single-headed with inner width D/2 and has no residual
or output projection; a pre-normed feed-forward block and a LayerNorm follow, the pathway tokens and
the patch tokens are averaged separately, concatenated and mapped by Linear(D, D/4) + ReLU +
Linear(D/4, K) to hazard logits. During training each bag is subsampled to at most ``max_patches``
patches (the paper samples 4,096); at inference every patch is used.

Adaptations: the six functional gene families (the tokens MUST uses, RNA/CNV/SNV per family) replace
the paper's Reactome/Hallmark transcriptomic pathways; the SNN tokenizer is the shared
:class:`mustsurv.models.genomics.FamilyTokenizer`. Patches are subsampled without replacement (a bag
already within the cap is kept whole). Several patients are batched by padding the patch tokens with a
key mask, which gives the same result as one patient at a time. Complete data only (``complete``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.genomics import FamilyTokenizer
from mustsurv.models.registry import register_model


class PathwayPatchAttention(nn.Module):
    """SurvPath's multimodal attention on F pathway tokens and N patch tokens.

    Pathway queries attend to every pathway and every real patch (one softmax); patch queries attend to the
    pathways only.
    """

    def __init__(self, dim: int, heads: int = 1, dim_head: int | None = None) -> None:
        """Build the projections.

        Args:
            dim: token dimension D.
            heads: attention heads.
            dim_head: width of each head; None uses ``dim // 2``.
        """
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head or dim // 2
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * heads * self.dim_head, bias=False)

    @property
    def out_dim(self) -> int:
        """Output width ``heads * dim_head``."""
        return self.heads * self.dim_head

    def forward(self, pathways: Tensor, patches: Tensor, patch_mask: Tensor) -> Tensor:
        """Attend.

        Args:
            pathways: (B, F, D) pathway tokens.
            patches: (B, N, D) patch tokens.
            patch_mask: (B, N) bool, True = real patch.

        Returns:
            (B, F + N, heads * dim_head) outputs.
        """
        b, f, _ = pathways.shape
        x = self.norm(torch.cat([pathways, patches], dim=1))
        q, k, v = (t.view(b, x.shape[1], self.heads, self.dim_head).transpose(1, 2)
                   for t in self.to_qkv(x).chunk(3, dim=-1))  # each (B, H, F+N, d)
        keys_valid = torch.cat([patch_mask.new_ones(b, f), patch_mask], dim=1)  # (B, F+N)
        out_pathways = F.scaled_dot_product_attention(q[:, :, :f], k, v, attn_mask=keys_valid[:, None, None, :])
        out_patches = F.scaled_dot_product_attention(q[:, :, f:], k[:, :, :f], v[:, :, :f])
        out = torch.cat([out_pathways, out_patches], dim=2)  # (B, H, F+N, d)
        return out.transpose(1, 2).reshape(b, x.shape[1], self.out_dim)


@register_model("survpath")
class SurvPath(BaselineModel):
    """SurvPath on family tokens and patch tokens; a complete-data multimodal method."""

    scenarios = ("complete",)
    uses_pathology = True
    uses_genomics = True

    def __init__(self, pathology_dim: int, family_dims: Sequence[int], dim: int = 256, token_hidden: int = 256,
                 heads: int = 1, dim_head: int | None = None, ffn_mult: int = 1, dropout: float = 0.1,
                 token_dropout: float = 0.25, max_patches: int | None = 4096, n_bins: int = 4,
                 alpha: float = 0.0) -> None:
        """Build the tokenizer, the patch projection, the attention, the FFN and the head.

        Args:
            pathology_dim: D_path of the patch features.
            family_dims: d_k of the F gene families.
            dim: token dimension D.
            token_hidden: hidden width of the family MLPs.
            heads: attention heads.
            dim_head: width of each head; None uses ``dim // 2``.
            ffn_mult: FFN width over the attention output width.
            dropout: dropout of the FFN.
            token_dropout: dropout of the family MLPs.
            max_patches: training-time cap on the patches of a bag (None or 0: no cap).
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the survival NLL.

        Raises:
            ValueError: ``max_patches`` is negative.
        """
        super().__init__(n_bins, alpha)
        if max_patches is not None and max_patches < 0:
            raise ValueError(f"max_patches must be positive (or 0/None for no cap), got {max_patches}")
        self.max_patches = max_patches or None
        self.pathology_dim = pathology_dim
        self.tokenizer = FamilyTokenizer(family_dims, dim, token_hidden, token_dropout)
        self.patch_proj = nn.Linear(pathology_dim, dim)
        self.attention = PathwayPatchAttention(dim, heads, dim_head)
        inner = self.attention.out_dim
        self.ffn = nn.Sequential(nn.LayerNorm(inner), nn.Linear(inner, inner * ffn_mult), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(inner * ffn_mult, inner))
        self.norm = nn.LayerNorm(inner)
        self.head = nn.Sequential(nn.Linear(2 * inner, dim // 4), nn.ReLU(), nn.Linear(dim // 4, n_bins))

    def sample_patches(self, bag: Tensor) -> Tensor:
        """Subsample a bag in training mode.

        Uses torch's global generator, which the trainer seeds per epoch.

        Args:
            bag: (N, D_path) patch features.

        Returns:
            A random subset of at most ``max_patches`` rows in training mode; the whole bag in eval mode.
        """
        if not self.training or self.max_patches is None or bag.shape[0] <= self.max_patches:
            return bag
        return bag[torch.randperm(bag.shape[0], device=bag.device)[: self.max_patches]]

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Predict hazard logits.

        Args:
            batch: B patients with both modalities.

        Returns:
            (B, K) hazard logits.
        """
        bags = [self.sample_patches(bag) for bag in self.bags(batch)]
        pathways = self.tokenizer(self.families(batch))  # (B, F, D)
        lengths = torch.tensor([bag.shape[0] for bag in bags], device=pathways.device)
        patches = nn.utils.rnn.pad_sequence([self.patch_proj(bag) for bag in bags], batch_first=True)
        mask = torch.arange(patches.shape[1], device=patches.device)[None] < lengths[:, None]  # (B, N_max)
        h = self.norm(self.ffn(self.attention(pathways, patches, mask)))  # (B, F + N_max, inner)
        f = pathways.shape[1]
        pathway_mean = h[:, :f].mean(dim=1)
        w = mask.to(h.dtype).unsqueeze(-1)
        patch_mean = (h[:, f:] * w).sum(dim=1) / w.sum(dim=1)
        return self.head(torch.cat([pathway_mean, patch_mean], dim=1))
