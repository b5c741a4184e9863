"""Virchow2 (Paige): ViT-Huge/14 with SwiGLU MLP and 4 register tokens; features = class token ⊕ mean
of the patch tokens (registers excluded) = 2 × 1280 = 2560-d; ~632 M parameters.

timm keyword arguments and transforms of the model card (``paige-ai/Virchow2``): ``vit_huge_patch14_224``
with ``mlp_layer=SwiGLUPacked``, ``act_layer=SiLU``, ``reg_tokens=4``, ``mlp_ratio=5.3375``,
``init_values=1e-5``, ``global_pool=""`` (all tokens out); bicubic resize to 224 px, ImageNet mean/std.
"""

from __future__ import annotations

import timm
import torch

from mustsurv.slides.encoders.registry import EncoderSpec, register

VIRCHOW2_KWARGS = {
    "img_size": 224,
    "init_values": 1e-5,
    "num_classes": 0,
    "reg_tokens": 4,
    "mlp_ratio": 5.3375,
    "global_pool": "",
    "dynamic_img_size": True,
    "mlp_layer": timm.layers.SwiGLUPacked,
    "act_layer": torch.nn.SiLU,
}
PREFIX_TOKENS = 1 + 4  # class token + registers, ahead of the patch tokens

WEIGHTS_HELP = (
    "Virchow2 weights are gated: accept the terms at https://huggingface.co/paige-ai/Virchow2, then "
    "`huggingface-cli download paige-ai/Virchow2 pytorch_model.bin --local-dir models/virchow2` and set "
    "`slides.encoder_weights.virchow2: models/virchow2/pytorch_model.bin`."
)


def build_virchow2() -> torch.nn.Module:
    """Build the Virchow2 architecture (random weights).

    Returns:
        The model, mapping (B, 3, 224, 224) images to (B, 261, 1280) tokens (class, 4 registers, 256 patches).
    """
    return timm.create_model("vit_huge_patch14_224", pretrained=False, **VIRCHOW2_KWARGS)


def class_and_mean_patch(tokens: torch.Tensor) -> torch.Tensor:
    """Virchow2's embedding: the class token next to the mean of the patch tokens.

    Args:
        tokens: (B, 1 + 4 + P, C) output tokens (class, registers, patches).

    Returns:
        (B, 2C) features.
    """
    return torch.cat([tokens[:, 0], tokens[:, PREFIX_TOKENS:].mean(dim=1)], dim=-1)


VIRCHOW2 = register(EncoderSpec(name="virchow2", dim=2560, build=build_virchow2, requires_weights=True,
                                weights_help=WEIGHTS_HELP, resize=224, crop=224, interpolation="bicubic",
                                pool=class_and_mean_patch))
