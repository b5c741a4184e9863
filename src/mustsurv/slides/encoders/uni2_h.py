"""UNI2-h (MahmoodLab): ViT-giant/14 with SwiGLU MLP and 8 register tokens, 1536-d, ~681 M parameters.

Built with timm and the model card's exact keyword arguments; the weights come from a local file
(the gated Hugging Face repository ``MahmoodLab/UNI2-h``, file ``pytorch_model.bin``).
"""

from __future__ import annotations

import timm
import torch

from mustsurv.slides.encoders.registry import EncoderSpec, register

UNI2_H_KWARGS = {
    "img_size": 224,
    "patch_size": 14,
    "depth": 24,
    "num_heads": 24,
    "init_values": 1e-5,
    "embed_dim": 1536,
    "mlp_ratio": 2.66667 * 2,
    "num_classes": 0,
    "no_embed_class": True,
    "mlp_layer": timm.layers.SwiGLUPacked,
    "act_layer": torch.nn.SiLU,
    "reg_tokens": 8,
    "dynamic_img_size": True,
}

WEIGHTS_HELP = (
    "UNI2-h weights are gated: accept the terms at https://huggingface.co/MahmoodLab/UNI2-h, then "
    "`huggingface-cli login` and `huggingface-cli download MahmoodLab/UNI2-h pytorch_model.bin "
    "--local-dir models/uni2-h`, and set `slides.encoder_weights.uni2_h: models/uni2-h/pytorch_model.bin`."
)


def build_uni2_h() -> torch.nn.Module:
    """Build the UNI2-h architecture (random weights).

    Returns:
        The model, mapping (B, 3, 224, 224) images to (B, 1536) class-token features.
    """
    return timm.create_model("vit_giant_patch14_224", pretrained=False, **UNI2_H_KWARGS)


UNI2_H = register(
    EncoderSpec(name="uni2_h", dim=1536, build=build_uni2_h, requires_weights=True, weights_help=WEIGHTS_HELP)
)
