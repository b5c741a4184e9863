"""CMTA: cross-modal translation and alignment for survival analysis (complete data only).

Reference: Zhou & Chen, "Cross-Modal Translation and Alignment for Survival Analysis", ICCV 2023.
Per modality an encoder-decoder pair of transformers:

* pathology encoder: TransMIL (projection, square padding, class token, Nyström layer -> PPEG ->
  Nyström layer -> LayerNorm) -> class token p_enc (D) and patch tokens (N, D);
* genomics: each gene family through its own SNN (Linear -> ELU -> AlphaDropout; widths 1024 -> 256
  as CMTA's "small" size) -> F tokens; genomics encoder: class token + two Nyström layers + LayerNorm
  -> g_enc (D) and family tokens (F, D);
* cross-modal attention (single-head multi-head attention): pathology tokens query the genomic tokens
  (pathology "translated" from genomics, (N, D)) and genomic tokens query the patch tokens ((F, D));
* decoders of the same architecture as the encoders turn the translated tokens into class tokens
  p_dec (pathology from genomics) and g_dec;
* fusion: [(p_enc + p_dec)/2; (g_enc + g_dec)/2] -> Linear(2D, D) + ReLU + Linear(D, D) + ReLU ->
  Linear(D, K) hazard logits;
* loss: survival NLL + α (L1(p_dec, sg(p_enc)) + L1(g_dec, sg(g_enc))), the alignment pulling each
  decoder's class token towards the (stop-gradient) encoder's class token of the same modality.

Adaptations: the TransMIL layer is the shared :class:`mustsurv.models.layers.transmil.TransMIL`, whose
input projection (Linear + ReLU + dropout) also sits in front of the pathology decoder (CMTA's decoder
takes the 256-d translated tokens directly); the family SNN is the shared
:class:`mustsurv.models.genomics.FamilyTokenizer`; the concat fusion is used (CMTA's default; its
bilinear option is not provided). Xavier-normal initialisation of the linear layers as in CMTA.
Patients are encoded one at a time for the pathology parts (bags differ in length) and batched for
the genomic parts. α per cohort in the authors' scripts: 1.0 (BLCA, GBMLGG, UCEC), 100 (BRCA),
1e-4 (LUAD).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mustsurv.models.baselines.base import BaselineModel, xavier_init
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.genomics import FamilyTokenizer
from mustsurv.models.layers.transmil import TransLayer, TransMIL
from mustsurv.models.registry import register_model


class TokenTransformer(nn.Module):
    """Class token + two Nyström-attention layers + LayerNorm on a short token sequence (CMTA's genomic transformer).

    (B, L, D) -> (class output (B, D), token outputs (B, L, D)).
    """

    def __init__(self, dim: int, heads: int = 8, num_landmarks: int | None = None, pinv_iterations: int = 6,
                 dropout: float = 0.1) -> None:
        """Build the transformer.

        Args:
            dim: token dimension D.
            heads: attention heads.
            num_landmarks: Nyström landmarks; None uses ``dim // 2``.
            pinv_iterations: iterations of the Nyström pseudo-inverse.
            dropout: dropout probability.
        """
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 1e-6)
        self.layer1 = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout)
        self.layer2 = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L, D) tokens -> class output (B, D) and token outputs (B, L, D)."""
        h = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        h = self.norm(self.layer2(self.layer1(h)))
        return h[:, 0], h[:, 1:]


@register_model("cmta")
class CMTA(BaselineModel):
    """CMTA on a bag (N_i, D_path) and F family vectors per patient; a complete-data multimodal method."""

    scenarios = ("complete",)
    uses_pathology = True
    uses_genomics = True

    def __init__(self, pathology_dim: int, family_dims: Sequence[int], dim: int = 256, token_hidden: int = 1024,
                 heads: int = 8, cross_heads: int = 1, num_landmarks: int | None = None, pinv_iterations: int = 6,
                 dropout: float = 0.1, token_dropout: float = 0.25, alignment_weight: float = 1.0,
                 n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the pathology and genomic encoders/decoders, the cross-attention and the head.

        Args:
            pathology_dim: D_path of the patch features.
            family_dims: d_k of the F gene families.
            dim: token dimension D.
            token_hidden: hidden width of the family MLPs.
            heads: attention heads of the Nyström layers.
            cross_heads: attention heads of the cross-modal attention.
            num_landmarks: Nyström landmarks; None uses ``dim // 2``.
            pinv_iterations: iterations of the Nyström pseudo-inverse.
            dropout: dropout of the transformers.
            token_dropout: dropout of the family MLPs.
            alignment_weight: CMTA's α, weight of the L1 class-token alignment.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the survival NLL.
        """
        super().__init__(n_bins, alpha)
        self.alignment_weight = alignment_weight
        self.pathology_dim = pathology_dim
        self.pathology_encoder = TransMIL(pathology_dim, dim, heads, num_landmarks, pinv_iterations, dropout)
        self.pathology_decoder = TransMIL(dim, dim, heads, num_landmarks, pinv_iterations, dropout)
        self.tokenizer = FamilyTokenizer(family_dims, dim, token_hidden, token_dropout)
        self.genomics_encoder = TokenTransformer(dim, heads, num_landmarks, pinv_iterations, dropout)
        self.genomics_decoder = TokenTransformer(dim, heads, num_landmarks, pinv_iterations, dropout)
        self.pathology_from_genomics = nn.MultiheadAttention(dim, cross_heads, batch_first=True)
        self.genomics_from_pathology = nn.MultiheadAttention(dim, cross_heads, batch_first=True)
        self.fusion = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())
        self.classifier = nn.Linear(dim, n_bins)
        xavier_init(self)

    def encode(self, batch: SurvivalBatch) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Encode both modalities and predict.

        Args:
            batch: B patients with both modalities.

        Returns:
            Hazard logits (B, K) and the class tokens p_enc, p_dec, g_enc, g_dec, each (B, D).
        """
        bags = self.bags(batch)
        g_enc, g_tokens = self.genomics_encoder(self.tokenizer(self.families(batch)))  # (B, D), (B, F, D)
        p_enc, p_dec, translated_g = [], [], []
        for i, bag in enumerate(bags):
            cls_i, p_tokens = self.pathology_encoder(bag)  # (D,), (N, D)
            p_tokens, g_i = p_tokens.unsqueeze(0), g_tokens[i : i + 1]
            p_from_g = self.pathology_from_genomics(p_tokens, g_i, g_i, need_weights=False)[0]  # (1, N, D)
            g_from_p = self.genomics_from_pathology(g_i, p_tokens, p_tokens, need_weights=False)[0]  # (1, F, D)
            translated_g.append(g_from_p)
            p_enc.append(cls_i)
            p_dec.append(self.pathology_decoder(p_from_g[0])[0])
        g_dec = self.genomics_decoder(torch.cat(translated_g))[0]
        p_enc_t, p_dec_t = torch.stack(p_enc), torch.stack(p_dec)
        fused = self.fusion(torch.cat([(p_enc_t + p_dec_t) / 2, (g_enc + g_dec) / 2], dim=1))
        return self.classifier(fused), p_enc_t, p_dec_t, g_enc, g_dec

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Predict hazard logits.

        Args:
            batch: B patients with both modalities.

        Returns:
            (B, K) hazard logits.
        """
        return self.encode(batch)[0]

    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute NLL + α (L1(p_dec, sg(p_enc)) + L1(g_dec, sg(g_enc))).

        Args:
            batch: B patients with both modalities.

        Returns:
            The scalar loss and the logged ``surv`` and ``align`` parts.
        """
        logits, p_enc, p_dec, g_enc, g_dec = self.encode(batch)
        surv = self.survival_loss(logits, batch)
        align = F.l1_loss(p_dec, p_enc.detach()) + F.l1_loss(g_dec, g_enc.detach())
        loss = surv + self.alignment_weight * align
        return loss, {"surv": float(surv.detach()), "align": float(align.detach())}
