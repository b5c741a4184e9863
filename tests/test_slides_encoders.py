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


# Published sizes (model cards / papers), in millions of parameters, and the dimension of each encoder's
# features. The meta-device build must land within PARAM_TOLERANCE of the published figure (the cards
# round to 3 significant figures: 0.3 B, 632 M, 1.1 B).
PUBLISHED = {
    "uni_v1": (303.3, 1024),         # ViT-L/16 (timm vit_large_patch16_224 card: 303.3 M) + LayerScale
    "virchow2": (632.0, 2560),       # Virchow2 paper: ViT-H/14, 632 M; class token ⊕ mean patch token
    "h_optimus_0": (1130.0, 1536),   # H-optimus-0 card: ViT-g/14, 1.13 B
    "prov_gigapath": (1134.0, 1536),  # Prov-GigaPath tile encoder: ViT-g, 1.13 B
    "uni2_h": (681.0, 1536),         # UNI2-h card: ViT-h/14, 681 M
}
PARAM_TOLERANCE = 0.01


def _meta_forward(name: str, side: int = 224) -> tuple[torch.nn.Module, torch.Tensor]:
    from mustsurv.slides.encoders.registry import preprocess

    spec = get_spec(name)
    with torch.device("meta"):
        model = spec.build()
        out = model(preprocess(spec, torch.empty(2, 3, side, side)))
        out = spec.pool(out) if spec.pool else out
    return model, out


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_foundation_encoders_match_their_published_size_and_dimension(name):
    model, out = _meta_forward(name)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    published, dim = PUBLISHED[name]
    assert abs(millions - published) / published < PARAM_TOLERANCE, (name, millions)
    assert out.shape == (2, dim) and get_spec(name).dim == dim


def test_conch_v15_is_a_vit_l16_trunk_read_at_448px_with_a_768d_pooler():
    from mustsurv.slides.encoders.conch_v15 import ConchV15

    spec = get_spec("conch_v15")
    assert (spec.resize, spec.crop, spec.dim) == (448, 448, 768)
    model, out = _meta_forward("conch_v15", side=512)  # a 512-px TRIDENT tile is resized to 448
    assert out.shape == (2, 768)
    trunk = sum(p.numel() for p in model.trunk.parameters()) / 1e6
    assert abs(trunk - 303.3) / 303.3 < PARAM_TOLERANCE  # ViT-L/16
    assert len(model.trunk.blocks) == 24 and model.trunk.embed_dim == 1024
    # the pooler's weights are exactly what the checkpoint keys describe: query (1, 768), q/kv/out projections
    pool = dict(model.attn_pool_contrast.named_parameters())
    assert pool["query"].shape == (1, 768) and pool["to_kv.weight"].shape == (1536, 1024)
    assert isinstance(model, ConchV15)


def test_conch_v15_pooler_depends_on_its_input():
    from mustsurv.slides.encoders.conch_v15 import AttentionalPooler

    torch.manual_seed(0)
    pool = AttentionalPooler(16, 24, n_head=4)
    a, b = torch.randn(2, 7, 24), torch.randn(2, 7, 24)
    assert pool(a).shape == (2, 1, 16)
    assert (pool(a) - pool(b)).abs().max() > 1e-3
    # one query attending over tokens: the output is invariant to their order
    torch.testing.assert_close(pool(a), pool(a[:, torch.randperm(7)]))


def test_virchow2_features_are_class_token_next_to_mean_patch_token_without_registers():
    from mustsurv.slides.encoders.virchow2 import class_and_mean_patch

    tokens = torch.zeros(1, 1 + 4 + 3, 2)
    tokens[0, 0] = torch.tensor([1.0, 2.0])
    tokens[0, 1:5] = 100.0  # registers: must not enter the mean
    tokens[0, 5:] = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    torch.testing.assert_close(class_and_mean_patch(tokens), torch.tensor([[1.0, 2.0, 2.0, 2.0]]))


def test_model_card_transforms():
    for name in ("uni_v1", "uni2_h", "virchow2", "prov_gigapath", "conch_v15"):
        assert get_spec(name).mean == (0.485, 0.456, 0.406) and get_spec(name).std == (0.229, 0.224, 0.225)
    assert get_spec("h_optimus_0").mean == (0.707223, 0.578729, 0.703617)
    assert get_spec("h_optimus_0").std == (0.211883, 0.230117, 0.177517)
    assert (get_spec("prov_gigapath").resize, get_spec("prov_gigapath").crop) == (256, 224)
    assert get_spec("prov_gigapath").interpolation == get_spec("virchow2").interpolation == "bicubic"


def test_preprocess_resizes_then_centre_crops_then_normalises():
    from mustsurv.slides.encoders.registry import preprocess

    spec = get_spec("prov_gigapath")
    x = torch.rand(1, 3, 256, 256)
    y = preprocess(spec, x)  # 256 px: no resize, centre crop 224
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    torch.testing.assert_close(y, (x[..., 16:240, 16:240] - mean) / std)
    assert preprocess(spec, torch.rand(1, 3, 224, 224)).shape == (1, 3, 224, 224)  # 224 -> 256 -> 224
    assert preprocess(get_spec("conch_v15"), torch.rand(1, 3, 512, 512)).shape == (1, 3, 448, 448)


@pytest.mark.parametrize("name", ["uni_v1", "conch_v15", "virchow2", "h_optimus_0", "prov_gigapath"])
def test_foundation_encoders_need_their_weights_and_name_the_file(tmp_path, name):
    with pytest.raises(EncoderWeightsError, match=rf"encoder_weights\.{name}.*huggingface"):
        build_encoder(name)
    with pytest.raises(EncoderWeightsError, match=r"nope\.bin does not exist"):
        build_encoder(name, tmp_path / "nope.bin")


def test_weights_of_another_encoder_are_refused_naming_file_and_encoder(tmp_path):
    # a real state dict, of the wrong architecture (wrong keys and shapes)
    other = tmp_path / "demo_vit.pt"
    torch.save(build_encoder("demo_vit").model.state_dict(), other)
    with pytest.raises(EncoderWeightsError, match=r"demo_vit\.pt: not a state dict of encoder 'uni_v1'"):
        build_encoder("uni_v1", other).model  # noqa: B018


def test_timm_encoder_reads_dimension_and_loads_local_weights(tmp_path):
    name = "timm:vit_tiny_patch16_224"
    spec = get_spec(name)
    assert spec.dim == 192 and spec.requires_weights
    with pytest.raises(EncoderWeightsError, match="timm:vit_tiny_patch16_224"):
        build_encoder(name)
    torch.manual_seed(1)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0).eval()
    from safetensors.torch import save_file

    path = tmp_path / "tiny.safetensors"
    save_file(ref.state_dict(), str(path))
    enc = build_encoder(name, path)
    x = torch.randint(0, 256, (2, 224, 224, 3), dtype=torch.uint8)
    from mustsurv.slides.encoders.registry import preprocess

    torch.testing.assert_close(enc.encode(x), ref(preprocess(spec, x.permute(0, 3, 1, 2).float() / 255)))
    with pytest.raises(KeyError, match="unknown timm architecture"):
        get_spec("timm:no_such_net")


def test_weights_hash_is_the_files_sha256_or_random_init(tmp_path):
    import hashlib

    from mustsurv.slides.encoders import RANDOM_INIT

    assert build_encoder("demo_vit").weights_hash == RANDOM_INIT
    path = tmp_path / "demo.pt"
    torch.save(build_encoder("demo_vit").model.state_dict(), path)
    assert build_encoder("demo_vit", path).weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_schema_lists_exactly_the_registered_encoders():
    import yaml

    from mustsurv.config import SCHEMA, ConfigError, fill_defaults

    schema = yaml.safe_load(SCHEMA.read_text())
    enum = schema["properties"]["slides"]["properties"]["encoder"]["anyOf"][0]["enum"]
    assert sorted(enum) == available()
    cfg = {"cohorts": {"A": {"demo": {"seed": 1}}}, "slides": {"encoder": "conch_v1.5"}}
    with pytest.raises(ConfigError, match=r"slides\.encoder.*conch_v15.*timm:"):
        fill_defaults(cfg)
    fill_defaults({"cohorts": {"A": {"demo": {"seed": 1}}}, "slides": {"encoder": "timm:resnet50"}})


def test_conch_v15_resamples_a_stored_position_embedding_of_another_grid():
    from mustsurv.slides.encoders.conch_v15 import fit_position_embedding

    with torch.device("meta"):
        model = get_spec("conch_v15").build()
    stored = torch.randn(1, 1 + 28 * 28, 1024)  # e.g. saved for a 448-px grid
    out = fit_position_embedding({"trunk.pos_embed": stored, "other": torch.zeros(1)}, model)
    assert out["trunk.pos_embed"].shape == model.trunk.pos_embed.shape == (1, 1 + 14 * 14, 1024)
    torch.testing.assert_close(out["trunk.pos_embed"][:, 0], stored[:, 0])  # the class token's entry is kept
    same = {"trunk.pos_embed": torch.randn(1, 197, 1024)}
    assert fit_position_embedding(same, model)["trunk.pos_embed"] is same["trunk.pos_embed"]
