"""Patch encoders by name: pathology foundation models from local weights (``uni2_h``, ``uni_v1``,
``conch_v15``, ``virchow2``, ``h_optimus_0``, ``prov_gigapath``), ``timm:<architecture>`` from a local
weights file, and ``demo_vit`` (small, seeded, CPU)."""

from mustsurv.slides.encoders import (  # noqa: F401 - registers the encoders
    conch_v15,
    demo_vit,
    h_optimus_0,
    prov_gigapath,
    uni2_h,
    uni_v1,
    virchow2,
)
from mustsurv.slides.encoders.registry import (
    RANDOM_INIT,
    Encoder,
    EncoderSpec,
    EncoderWeightsError,
    available,
    build_encoder,
    get_spec,
    pick_device,
    register,
    weights_sha256,
)

__all__ = [
    "RANDOM_INIT",
    "Encoder",
    "EncoderSpec",
    "EncoderWeightsError",
    "available",
    "build_encoder",
    "get_spec",
    "pick_device",
    "register",
    "weights_sha256",
]
