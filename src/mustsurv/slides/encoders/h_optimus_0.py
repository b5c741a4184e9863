"""H-optimus-0 (Bioptimus): ViT-giant/14 (DINOv2 layout) with 4 register tokens, 1536-d class token,
~1.13 B parameters.

timm keyword arguments and transforms of the model card (``bioptimus/H-optimus-0``):
``vit_giant_patch14_reg4_dinov2`` with ``img_size=224``, ``init_values=1e-5``, ``global_pool="token"``,
``dynamic_img_size=False``, ``num_classes=0``; 224 px, the card's own mean (0.707223, 0.578729,
0.703617) and std (0.211883, 0.230117, 0.177517).
"""

from __future__ import annotations

import timm
import torch

from mustsurv.slides.encoders.registry import EncoderSpec, register

H_OPTIMUS_0_KWARGS = {
    "img_size": 224,
    "init_values": 1e-5,
    "num_classes": 0,
    "global_pool": "token",
    "dynamic_img_size": False,
}
MEAN = (0.707223, 0.578729, 0.703617)
STD = (0.211883, 0.230117, 0.177517)

WEIGHTS_HELP = (
    "H-optimus-0 weights: accept the terms at https://huggingface.co/bioptimus/H-optimus-0, then "
    "`huggingface-cli download bioptimus/H-optimus-0 pytorch_model.bin --local-dir models/h-optimus-0` and set "
    "`slides.encoder_weights.h_optimus_0: models/h-optimus-0/pytorch_model.bin`."
)


def build_h_optimus_0() -> torch.nn.Module:
    """Build the H-optimus-0 architecture (random weights).

    Returns:
        The model, mapping (B, 3, 224, 224) images to (B, 1536) class-token features.
    """
    return timm.create_model("vit_giant_patch14_reg4_dinov2", pretrained=False, **H_OPTIMUS_0_KWARGS)


H_OPTIMUS_0 = register(EncoderSpec(name="h_optimus_0", dim=1536, build=build_h_optimus_0, mean=MEAN, std=STD,
                                   requires_weights=True, weights_help=WEIGHTS_HELP, resize=224, crop=224))
