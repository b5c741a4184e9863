"""``demo_vit``: a small timm ViT with deterministic seeded random weights, for the CPU demo and tests.

Its features are a fixed random nonlinear function of the pixels (mean-pooled tokens), NOT pathology
features: they carry colour and texture statistics, which is what the synthetic demo slides vary.
"""

from __future__ import annotations

import timm
import torch

from mustsurv.slides.encoders.registry import EncoderSpec, register

DEMO_VIT_KWARGS = {
    "img_size": 224,
    "patch_size": 16,
    "embed_dim": 192,
    "depth": 4,
    "num_heads": 3,
    "num_classes": 0,
    "global_pool": "avg",
    "dynamic_img_size": True,
}


def build_demo_vit() -> torch.nn.Module:
    """Build a 4-block, 192-wide ViT/16 (~1.9 M parameters).

    Returns:
        The model (random weights), mapping (B, 3, H, W) images to (B, 192) features.
    """
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, **DEMO_VIT_KWARGS)


DEMO_VIT = register(EncoderSpec(name="demo_vit", dim=192, build=build_demo_vit, seed=0))
