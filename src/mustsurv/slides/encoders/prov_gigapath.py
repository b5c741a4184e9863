"""Prov-GigaPath tile encoder (Providence/Microsoft): ViT-giant with 16-px patches, 40 blocks, SwiGLU MLP,
1536-d class token, ~1.13 B parameters.

timm keyword arguments of the model card's ``config.json`` (``prov-gigapath/prov-gigapath``):
``vit_giant_patch14_dinov2`` with ``img_size=224``, ``in_chans=3``, ``patch_size=16``,
``embed_dim=1536``, ``depth=40``, ``num_heads=24``, ``init_values=1e-5``, ``mlp_ratio=5.33334``,
``num_classes=0``. Transforms: bicubic resize to 256 px, centre crop 224, ImageNet mean/std.
"""

from __future__ import annotations

import timm
import torch

from mustsurv.slides.encoders.registry import EncoderSpec, register

PROV_GIGAPATH_KWARGS = {
    "img_size": 224,
    "in_chans": 3,
    "patch_size": 16,
    "embed_dim": 1536,
    "depth": 40,
    "num_heads": 24,
    "init_values": 1e-5,
    "mlp_ratio": 5.33334,
    "num_classes": 0,
}

WEIGHTS_HELP = (
    "Prov-GigaPath weights are gated: accept the terms at https://huggingface.co/prov-gigapath/prov-gigapath, "
    "then `huggingface-cli download prov-gigapath/prov-gigapath pytorch_model.bin --local-dir models/gigapath` "
    "and set `slides.encoder_weights.prov_gigapath: models/gigapath/pytorch_model.bin`."
)


def build_prov_gigapath() -> torch.nn.Module:
    """Build the Prov-GigaPath tile encoder architecture (random weights).

    Returns:
        The model, mapping (B, 3, 224, 224) images to (B, 1536) class-token features.
    """
    return timm.create_model("vit_giant_patch14_dinov2", pretrained=False, **PROV_GIGAPATH_KWARGS)


PROV_GIGAPATH = register(EncoderSpec(name="prov_gigapath", dim=1536, build=build_prov_gigapath,
                                     requires_weights=True, weights_help=WEIGHTS_HELP, resize=256, crop=224,
                                     interpolation="bicubic"))
