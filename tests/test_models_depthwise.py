"""Depthwise "same" convolutions as shifted sums: equal to PyTorch's grouped convolutions, gradients included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mustsurv.models.layers.depthwise import depthwise_same


def test_along_one_dimension_equals_a_grouped_k_by_1_convolution_and_its_gradients() -> None:
    """The Nyström residual form: (B, H, N, d) values, one 33-tap kernel per head."""
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, 3, 40, 5, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 1, 33, 1, dtype=torch.float64, generator=g, requires_grad=True)
    ref = F.conv2d(v, w, padding=(16, 0), groups=3)
    out = depthwise_same(v, w.view(3, 33).t().reshape(33, 3, 1, 1), (2,))
    torch.testing.assert_close(out, ref)
    weight = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    for a, b in zip(torch.autograd.grad((ref * weight).sum(), [v, w]), torch.autograd.grad((out * weight).sum(), [v, w])):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda x, k: depthwise_same(x, k, (2,)),
                                    (v[:1, :, :9].detach().requires_grad_(), w.detach().view(3, 33)[:, :5].t()
                                     .reshape(5, 3, 1, 1).requires_grad_()))


def test_on_a_grid_equals_a_depthwise_2d_convolution_and_its_gradients() -> None:
    """The PPEG form: (B, C, s, s) grid, one 7x7 kernel per channel."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64, generator=g, requires_grad=True)
    k = torch.randn(4, 1, 7, 7, dtype=torch.float64, generator=g, requires_grad=True)
    ref = F.conv2d(x, k, padding=3, groups=4)
    out = depthwise_same(x, k.view(4, 7, 7).permute(1, 2, 0).reshape(7, 7, 4, 1, 1), (2, 3))
    torch.testing.assert_close(out, ref)
    weight = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    for a, b in zip(torch.autograd.grad((ref * weight).sum(), [x, k]), torch.autograd.grad((out * weight).sum(), [x, k])):
        torch.testing.assert_close(a, b)


def test_even_kernels_are_refused() -> None:
    with pytest.raises(ValueError, match="odd kernel"):
        depthwise_same(torch.randn(1, 2, 8), torch.randn(4, 2, 1), (2,))
