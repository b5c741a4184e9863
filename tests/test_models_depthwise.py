"""Depthwise "same" convolutions with a backward built from forwards: equal to PyTorch's, gradients included."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mustsurv.models.layers.depthwise import depthwise_conv2d
from mustsurv.models.layers.transmil import NystromAttention


@pytest.mark.parametrize(("shape", "kernel"), [((2, 3, 40, 5), (33, 1)), ((3, 4, 6, 6), (7, 7)), ((1, 2, 5, 9), (3, 5))])
def test_equals_pytorch_grouped_convolution_and_its_gradients(shape: tuple[int, ...], kernel: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(shape[1], 1, *kernel, dtype=torch.float64, generator=g, requires_grad=True)
    ref = F.conv2d(x, w, padding=(kernel[0] // 2, kernel[1] // 2), groups=shape[1])
    out = depthwise_conv2d(x, w)
    torch.testing.assert_close(out, ref)
    weight = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    for a, b in zip(torch.autograd.grad((ref * weight).sum(), [x, w]), torch.autograd.grad((out * weight).sum(), [x, w])):
        torch.testing.assert_close(a, b)


def test_residual_convolution_of_a_length_not_a_multiple_of_the_block_equals_the_unpadded_one() -> None:
    """N is zero-padded before the convolution; the first N outputs and all gradients are unchanged."""
    g = torch.Generator().manual_seed(3)
    v = torch.randn(1, 2, 131, 4, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(2, 1, 33, 1, dtype=torch.float64, generator=g, requires_grad=True)
    ref = F.conv2d(v, w, padding=(16, 0), groups=2)
    out = NystromAttention._residual_conv(v, w)
    torch.testing.assert_close(out, ref)
    weight = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    for a, b in zip(torch.autograd.grad((ref * weight).sum(), [v, w]), torch.autograd.grad((out * weight).sum(), [v, w])):
        torch.testing.assert_close(a, b)


def test_even_kernels_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        depthwise_conv2d(torch.randn(1, 2, 8, 8), torch.randn(2, 1, 4, 1))
