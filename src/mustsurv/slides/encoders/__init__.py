"""Patch encoders by name: ``uni2_h`` (UNI2-h, GPU, local weights) and ``demo_vit`` (small, seeded, CPU)."""

from mustsurv.slides.encoders import demo_vit, uni2_h  # noqa: F401 - registers the encoders
from mustsurv.slides.encoders.registry import (
    Encoder,
    EncoderSpec,
    EncoderWeightsError,
    available,
    build_encoder,
    get_spec,
    pick_device,
    register,
)

__all__ = [
    "Encoder",
    "EncoderSpec",
    "EncoderWeightsError",
    "available",
    "build_encoder",
    "get_spec",
    "pick_device",
    "register",
]
