"""Encoder registry: UNI2-h architecture on the meta device, weights handling, the seeded demo encoder."""

from __future__ import annotations

import pytest
import timm
import torch

from mustsurv.slides.encoders import (
    EncoderWeightsError,
    available,
    build_encoder,
    get_spec,
)
from mustsurv.slides.encoders.uni2_h import UNI2_H_KWARGS


def test_registry_lists_encoders_and_rejects_unknown_names():
    assert {"uni2_h", "demo_vit"} <= set(available())
    with pytest.raises(KeyError, match="slides.encoder"):
        get_spec("resnet_nope")


def test_uni2_h_kwargs_are_the_model_cards():
    expected = {
        "img_size": 224, "patch_size": 14, "depth": 24, "num_heads": 24, "init_values": 1e-5,
        "embed_dim": 1536, "mlp_ratio": 2.66667 * 2, "num_classes": 0, "no_embed_class": True,
        "mlp_layer": timm.layers.SwiGLUPacked, "act_layer": torch.nn.SiLU, "reg_tokens": 8,
        "dynamic_img_size": True,
    }
    assert UNI2_H_KWARGS == expected


def test_uni2_h_architecture_on_meta_device():
    spec = get_spec("uni2_h")
    with torch.device("meta"):
        model = spec.build()
        out = model(torch.empty(2, 3, 224, 224))
    n = sum(p.numel() for p in model.parameters())
    assert 680e6 < n < 683e6  # ~681.4 M
    assert out.shape == (2, 1536) and spec.dim == 1536
    assert model.num_reg_tokens == 8 and len(model.blocks) == 24
    assert spec.mean == (0.485, 0.456, 0.406) and spec.std == (0.229, 0.224, 0.225)


def test_uni2_h_without_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(EncoderWeightsError, match=r"encoder_weights\.uni2_h.*huggingface\.co/MahmoodLab/UNI2-h"):
        build_encoder("uni2_h")
    with pytest.raises(EncoderWeightsError, match=r"missing\.bin does not exist.*huggingface-cli download"):
        build_encoder("uni2_h", tmp_path / "missing.bin")


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.bin"
    torch.save({"not": torch.zeros(1)}, bogus)
    enc = build_encoder("uni2_h", bogus)
    with pytest.raises(EncoderWeightsError, match=r"bogus\.bin: not a state dict of encoder 'uni2_h'"):
        enc.model  # noqa: B018 - building the model loads the weights


def test_demo_vit_is_deterministic_and_loads_saved_weights(tmp_path):
    x = torch.randint(0, 256, (4, 224, 224, 3), dtype=torch.uint8)
    a, b = build_encoder("demo_vit"), build_encoder("demo_vit")
    fa = a.encode(x)
    assert fa.shape == (4, 192) and fa.dtype == torch.float32
    torch.testing.assert_close(fa, b.encode(x), rtol=0, atol=0)
    # different images give different features; weights round-trip through a local file
    assert (fa[0] - fa[1]).abs().max() > 1e-3
    path = tmp_path / "demo.pt"
    torch.save(a.model.state_dict(), path)
    torch.testing.assert_close(build_encoder("demo_vit", path).encode(x), fa)


def test_encode_normalises_uint8_patches_like_the_model_card():
    enc = build_encoder("demo_vit")
    x = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    mean = torch.tensor(enc.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(enc.spec.std).view(1, 3, 1, 1)
    ref = enc.model((x.permute(0, 3, 1, 2).float() / 255 - mean) / std)
    torch.testing.assert_close(enc.encode(x), ref)
