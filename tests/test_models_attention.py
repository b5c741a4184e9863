"""Patch attention of the heatmap methods (MUST, ABMIL, TransMIL): correct weights that follow the input."""

from __future__ import annotations

import pytest
import torch

from mustsurv.models.layers.transmil import NystromAttention, TransMIL
from mustsurv.models.registry import build_model
from mustsurv.study.methods import HEATMAP_METHODS

D = 12


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    kwargs = {"must": {"pathology_dim": D, "family_dims": [3, 4, 5, 3, 4, 5], "dim": 16, "rank": 4, "heads": 2},
              "abmil": {"pathology_dim": D, "hidden_dim": 16, "attn_dim": 8, "head_dim": 8},
              "transmil": {"pathology_dim": D, "dim": 16, "heads": 2}}[name]
    return build_model(name, **kwargs).eval()


@pytest.mark.parametrize("name", HEATMAP_METHODS)
@pytest.mark.parametrize("n", [1, 5, 40])  # 40 > the 8 landmarks of dim 16: the Nyström rows
def test_patch_attention_is_a_distribution_over_the_bag_that_depends_on_it(name, n):
    model = _model(name)
    torch.manual_seed(1)
    bag = torch.randn(n, D)
    a = model.patch_attention(bag)
    assert a.shape == (n,) and torch.isfinite(a).all()
    torch.testing.assert_close(a.sum(), torch.tensor(1.0))
    if n > 1:
        other = bag.clone()
        other[0] += 3.0  # change one patch: the weights move
        assert (model.patch_attention(other) - a).abs().max() > 1e-4
        torch.testing.assert_close(model.patch_attention(bag), a)  # deterministic in eval mode


def test_abmil_attention_is_what_pool_averages_with():
    model = _model("abmil")
    bag = torch.randn(9, D)
    with torch.no_grad():
        torch.testing.assert_close(model.pool(bag), model.patch_attention(bag) @ model.embed(bag))


@pytest.mark.parametrize("n", [6, 50])
def test_nystrom_attention_rows_reproduce_the_layers_output(n):
    torch.manual_seed(2)
    layer = NystromAttention(16, heads=2, num_landmarks=8).eval()
    x = torch.randn(1, n, 16)
    q, k, v = (layer._heads(t) for t in layer.to_qkv(x).chunk(3, dim=-1))
    rows = layer.attention_rows(x, slice(0, 3))  # (1, H, 3, N)
    torch.testing.assert_close(rows @ v, layer.attend(q, k, v)[:, :, :3], rtol=1e-4, atol=1e-5)


def test_class_attention_folds_square_padding_back_onto_its_patches():
    """N = 5 is padded to 9 tokens by repeating patches 0-3: their weights are added to those patches."""
    torch.manual_seed(3)
    agg = TransMIL(D, dim=16, heads=2).eval()
    bag = torch.randn(5, D)
    a = agg.class_attention(bag)
    with torch.no_grad():
        x = agg.ppeg(agg._front(bag, 3), 3)
        row = agg.layer2.attn.attention_rows(agg.layer2.norm(x))[0, :, 0, 1:].mean(0)  # 9 grid tokens
    expected = row[:5].clone()
    expected[:4] += row[5:]
    torch.testing.assert_close(a, expected / expected.sum())
