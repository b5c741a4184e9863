"""CONCH v1.5 (MahmoodLab, the patch encoder of TITAN): a ViT-Large/16 trunk (LayerScale initialised at
1.0) read at 448 px, followed by a one-query attentional pooler and a LayerNorm: 768-d, ~306 M parameters.

Layout of the vision-only weights ``pytorch_model_vision.bin`` of ``MahmoodLab/conchv1_5`` (as TITAN and
TRIDENT load them): ``trunk.*`` (a timm-compatible ViT-L/16 with class token, trained at 224 px; its
position embedding is interpolated to the 28 × 28 grid of a 448-px input), ``attn_pool_contrast.*``
(query (1, 768), LayerNorms on keys (1024) and query (768), bias-free q/kv/out projections, 8 heads) and
``ln_contrast``. Transforms (TRIDENT's conventions): bilinear resize to 448 px, centre crop 448, ImageNet
mean/std; TRIDENT tiles it at 512 px, 20×.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from mustsurv.slides.encoders.registry import EncoderSpec, register

TRUNK_KWARGS = {
    "img_size": 224,
    "patch_size": 16,
    "embed_dim": 1024,
    "depth": 24,
    "num_heads": 16,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "init_values": 1.0,
    "num_classes": 0,
    "global_pool": "",
    "dynamic_img_size": True,
}
INPUT_SIZE = 448
POOL_DIM, POOL_HEADS = 768, 8

WEIGHTS_HELP = (
    "CONCH v1.5 weights are gated: accept the terms at https://huggingface.co/MahmoodLab/conchv1_5, then "
    "`huggingface-cli download MahmoodLab/conchv1_5 pytorch_model_vision.bin --local-dir models/conchv1_5` and "
    "set `slides.encoder_weights.conch_v15: models/conchv1_5/pytorch_model_vision.bin`."
)


class AttentionalPooler(nn.Module):
    """Cross-attention of learned queries over a token sequence (CoCa-style pooling).

    Attributes:
        query: (n_queries, d_model) learned queries.
    """

    def __init__(self, d_model: int, context_dim: int, n_head: int, n_queries: int = 1) -> None:
        """Create the pooler.

        Args:
            d_model: width of the queries and of the output.
            context_dim: width of the tokens attended over.
            n_head: attention heads (``d_model`` must be divisible by it).
            n_queries: number of learned queries.
        """
        super().__init__()
        self.heads = n_head
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.ln_k = nn.LayerNorm(context_dim)
        self.ln_q = nn.LayerNorm(d_model)
        self.to_q = nn.Linear(d_model, d_model, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * d_model, bias=False)
        self.to_out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pool the tokens.

        Args:
            tokens: (B, T, context_dim) tokens.

        Returns:
            (B, n_queries, d_model) pooled vectors.
        """
        b = tokens.shape[0]
        q = self.to_q(self.ln_q(self.query)).expand(b, -1, -1)
        k, v = self.to_kv(self.ln_k(tokens)).chunk(2, dim=-1)

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, H, n, d_head)

        out = nn.functional.scaled_dot_product_attention(heads(q), heads(k), heads(v))
        return self.to_out(out.transpose(1, 2).flatten(2))


class ConchV15(nn.Module):
    """CONCH v1.5 vision tower: ViT-L/16 trunk -> attentional pooler -> LayerNorm."""

    def __init__(self) -> None:
        """Build the tower (random weights)."""
        super().__init__()
        self.trunk = timm.create_model("vit_large_patch16_224", pretrained=False, **TRUNK_KWARGS)
        self.attn_pool_contrast = AttentionalPooler(POOL_DIM, TRUNK_KWARGS["embed_dim"], POOL_HEADS)
        self.ln_contrast = nn.LayerNorm(POOL_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed images.

        Args:
            x: (B, 3, 448, 448) normalised images (any multiple of 16 works).

        Returns:
            (B, 768) features.
        """
        tokens = self.trunk(x)  # (B, 1 + (H/16)(W/16), 1024), final norm applied
        return self.ln_contrast(self.attn_pool_contrast(tokens)[:, 0])


def build_conch_v15() -> torch.nn.Module:
    """Build the CONCH v1.5 architecture (random weights).

    Returns:
        The model, mapping (B, 3, 448, 448) images to (B, 768) features.
    """
    return ConchV15()


def fit_position_embedding(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Resample a stored trunk position embedding to the trunk's 14 × 14 grid when its grid differs.

    Args:
        state: the weights file's state dict.
        model: the architecture (on the meta device).

    Returns:
        The state dict, ``trunk.pos_embed`` (1, 1 + G, 1024) resampled (bilinear) when needed.
    """
    key = "trunk.pos_embed"
    target = model.trunk.pos_embed.shape
    if key in state and state[key].shape != target:
        state = dict(state)
        state[key] = timm.layers.resample_abs_pos_embed(state[key], new_size=model.trunk.patch_embed.grid_size,
                                                        num_prefix_tokens=1, interpolation="bilinear",
                                                        antialias=False, verbose=False)
    return state


CONCH_V15 = register(EncoderSpec(name="conch_v15", dim=POOL_DIM, build=build_conch_v15, requires_weights=True,
                                 weights_help=WEIGHTS_HELP, resize=INPUT_SIZE, crop=INPUT_SIZE,
                                 adapt_state=fit_position_embedding))
