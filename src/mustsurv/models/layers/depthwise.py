"""Depthwise "same" convolutions as sums of shifted copies, with a hand-written backward.

PyTorch's CPU backward of depthwise convolutions is far slower than their arithmetic: at TransMIL's sizes
(a 33-tap convolution along ~1,300 tokens per head, a 7x7 one on a 36 x 36 grid of 256 channels) it took
more time than all the matrix products of a Nyström layer. Here a convolution with an odd K-tap kernel
(zero padding K // 2 on each side) is the sum over its taps of the shifted input times the tap's
weight; the input gradient is the same sum over the padded output gradient with the kernel flipped; each
tap's weight gradient is one product-sum. The result equals ``torch.nn.functional.conv1d``/``conv2d``
with ``groups`` = channels up to float summation order (tested).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor


def _padded(x: Tensor, dims: tuple[int, ...], pads: tuple[int, ...]) -> Tensor:
    """``x`` with ``pads[i]`` zeros on both sides of dimension ``dims[i]``."""
    shape = list(x.shape)
    for d, p in zip(dims, pads):
        shape[d] += 2 * p
    out = x.new_zeros(shape)
    out[_window(x.ndim, dims, pads, x.shape)] = x
    return out


def _window(ndim: int, dims: tuple[int, ...], starts: tuple[int, ...], shape: torch.Size | tuple[int, ...]) -> tuple:
    """Index selecting ``shape[d]`` entries from ``starts[i]`` along each ``dims[i]`` (all of other dimensions)."""
    index = [slice(None)] * ndim
    for d, s in zip(dims, starts):
        index[d] = slice(s, s + shape[d])
    return tuple(index)


class _ShiftedSumConv(torch.autograd.Function):
    """Forward/backward of :func:`depthwise_same`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, dims: tuple[int, ...]) -> Tensor:
        """Convolve ``x`` along ``dims`` with the per-tap weights ``weight`` (*K, *broadcast shape)."""
        kernel = tuple(weight.shape[: len(dims)])
        pads = tuple(k // 2 for k in kernel)
        xp = _padded(x, dims, pads)
        out = torch.zeros_like(x)
        for tap in itertools.product(*(range(k) for k in kernel)):
            out.addcmul_(xp[_window(x.ndim, dims, tap, x.shape)], weight[tap])
        ctx.save_for_backward(x, weight)
        ctx.dims = dims
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        """Input gradient: the flipped-kernel sum over the padded ``grad``; weight gradient per tap."""
        x, weight = ctx.saved_tensors
        dims = ctx.dims
        kernel = tuple(weight.shape[: len(dims)])
        pads = tuple(k // 2 for k in kernel)
        taps = list(itertools.product(*(range(k) for k in kernel)))
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            gp = _padded(grad, dims, pads)
            grad_x = torch.zeros_like(x)
            for tap in taps:
                flipped = tuple(k - 1 - t for k, t in zip(kernel, tap))
                grad_x.addcmul_(gp[_window(x.ndim, dims, flipped, x.shape)], weight[tap])
        if ctx.needs_input_grad[1]:
            xp = _padded(x, dims, pads)
            w_shape = weight.shape[len(dims):]
            lead = x.ndim - len(w_shape)
            reduce = [i for i in range(x.ndim) if i < lead or w_shape[i - lead] == 1]
            grad_w = torch.stack([
                (grad * xp[_window(x.ndim, dims, tap, x.shape)]).sum(dim=reduce).view(w_shape)
                for tap in taps
            ]).view(weight.shape)
        return grad_x, grad_w, None


def depthwise_same(x: Tensor, weight: Tensor, dims: tuple[int, ...]) -> Tensor:
    """A depthwise convolution with odd kernels and "same" zero padding, as a sum of shifted copies.

    ``out[..., n, ...] = Σ_t weight[t] * x[..., n + t - K // 2, ...]`` along each dimension of ``dims``
    (zero outside ``x``), where ``weight[t]`` broadcasts against ``x`` (e.g. one value per channel).

    Args:
        x: input of any shape.
        weight: (*K, *W) taps, one K per dimension of ``dims`` (odd lengths); W broadcasts against ``x``'s
            trailing dimensions (right-aligned, as in elementwise products).
        dims: the dimensions of ``x`` to convolve along (non-negative, one per K).

    Returns:
        A tensor of ``x``'s shape.

    Raises:
        ValueError: a kernel length is even or ``dims`` and the kernel disagree.
    """
    kernel = weight.shape[: len(dims)]
    if len(dims) == 0 or any(k % 2 == 0 for k in kernel) or any(d < 0 or d >= x.ndim for d in dims):
        raise ValueError(f"depthwise_same needs odd kernel lengths along valid dims, got kernel {tuple(kernel)} "
                         f"along {dims} of a {x.ndim}-d input")
    return _ShiftedSumConv.apply(x, weight, tuple(dims))
