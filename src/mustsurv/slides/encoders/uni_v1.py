"""UNI (v1, MahmoodLab): ViT-Large/16 with LayerScale, 1024-d class token, ~303 M parameters.

timm keyword arguments and transforms of the model card (``MahmoodLab/UNI``): ``vit_large_patch16_224``
with ``init_values=1e-5``, ``dynamic_img_size=True``, ``num_classes=0``; resize to 224 px, ImageNet
mean/std. Weights: the gated repository's ``pytorch_model.bin``, read from a local file.
"""

from __future__ import annotations

import timm
import torch

from mustsurv.slides.encoders.registry import EncoderSpec, register

UNI_V1_KWARGS = {
    "img_size": 224,
    "patch_size": 16,
    "init_values": 1e-5,
    "num_classes": 0,
    "dynamic_img_size": True,
}

WEIGHTS_HELP = (
    "UNI weights are gated: accept the terms at https://huggingface.co/MahmoodLab/UNI, then "
    "`huggingface-cli download MahmoodLab/UNI pytorch_model.bin --local-dir models/uni` and set "
    "`slides.encoder_weights.uni_v1: models/uni/pytorch_model.bin`."
)


def build_uni_v1() -> torch.nn.Module:
    """Build the UNI architecture (random weights).

    Returns:
        The model, mapping (B, 3, 224, 224) images to (B, 1024) class-token features.
    """
    return timm.create_model("vit_large_patch16_224", pretrained=False, **UNI_V1_KWARGS)


UNI_V1 = register(EncoderSpec(name="uni_v1", dim=1024, build=build_uni_v1, requires_weights=True,
                              weights_help=WEIGHTS_HELP, resize=224, crop=224))
