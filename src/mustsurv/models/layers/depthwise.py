"""Depthwise "same" 2-d convolutions whose backward is two more convolution forwards.

PyTorch's CPU backward of depthwise convolutions is slow for TransMIL's shapes (the Nyström residual,
a 33 x 1 kernel per head over (N, d) values; PPEG, a 7 x 7 kernel per channel on a 36 x 36 grid of 256
channels): PPEG's forward + backward took 16 ms of CPU time against 7 ms here (1 thread), and with 2
threads on a busy machine PyTorch's backward took longer than the layer's matrix products. Here the backward is built from forwards: the input gradient is
the convolution of the output gradient with the flipped kernel, the weight gradient a grouped
convolution of the padded input with the output gradient as kernel. Same sums as ``F.conv2d`` up to float
summation order (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


class _DepthwiseSame(torch.autograd.Function):
    """Forward/backward of :func:`depthwise_conv2d`."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        """(B, C, H, W) input, (C, 1, kh, kw) kernels -> (B, C, H, W); under autocast in its dtype."""
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight = x.to(dtype), weight.to(dtype)
        pad = (weight.shape[2] // 2, weight.shape[3] // 2)
        ctx.save_for_backward(x, weight)
        ctx.pad = pad
        return F.conv2d(x, weight, padding=pad, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Input gradient: ``grad`` convolved with the flipped kernel; weight gradient: a grouped convolution
        of the padded input (channels x batch as input channels) with ``grad`` as kernel."""
        x, weight = ctx.saved_tensors
        (ph, pw), (b, c, h, w) = ctx.pad, x.shape
        grad = grad.contiguous()
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv2d(grad, weight.flip(-1, -2), padding=(ph, pw), groups=c)
        if ctx.needs_input_grad[1]:
            xp = F.pad(x, (pw, pw, ph, ph)).transpose(0, 1).reshape(1, c * b, h + 2 * ph, w + 2 * pw)
            grad_w = F.conv2d(xp, grad.transpose(0, 1), groups=c).view(weight.shape)
        return grad_x, grad_w


def depthwise_conv2d(x: Tensor, weight: Tensor) -> Tensor:
    """``F.conv2d(x, weight, padding=(kh // 2, kw // 2), groups=C)`` with a fast CPU backward.

    Args:
        x: (B, C, H, W) input.
        weight: (C, 1, kh, kw) kernels, odd kh and kw.

    Returns:
        (B, C, H, W), zero padding outside ``x``.

    Raises:
        ValueError: the kernel is not (C, 1, odd, odd).
    """
    c = x.shape[1]
    if weight.shape[:2] != (c, 1) or weight.shape[2] % 2 == 0 or weight.shape[3] % 2 == 0:
        raise ValueError(f"depthwise_conv2d needs ({c}, 1, odd, odd) kernels, got {tuple(weight.shape)}")
    return _DepthwiseSame.apply(x, weight)
