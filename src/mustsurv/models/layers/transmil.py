"""TransMIL (Shao et al., 2021): square padding, class token, two Nyström-attention layers, PPEG.

Used by MUST for the pathology branch (g_P) and by the TransMIL baseline. Own implementation of
Nyström attention (Xiong et al., 2021): landmarks are segment means of the queries/keys, the middle
softmax kernel is inverted with the iterative Moore–Penrose scheme, and a depthwise convolution over
the values adds a residual path. Segments are formed over the real tokens only (no zero padding of the
sequence), and sequences no longer than the landmark count use exact softmax attention.

Large bags: a :class:`TransLayer` given a ``checkpoint_above`` token count recomputes its activations in
the backward pass instead of keeping them (activation checkpointing) for longer sequences, and its
attention then also goes one head at a time, so that only one head's N x landmarks kernels are ever
alive. Outputs and gradients are unchanged (the recomputation replays the same dropout draws); the
training memory of MUST on a 200k-patch bag drops from 14.6 GB to 6.6 GB for a third more time
(``benchmarks/must_bag_scaling.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


def iterative_pinv(x: Tensor, iterations: int = 6) -> Tensor:
    """Moore–Penrose pseudo-inverse of a batch of square matrices (..., m, m) by Newton–Schulz-type
    iterations (Razavi et al.), as used by Nyströmformer; exact enough for row-stochastic ``x``."""
    abs_x = x.abs()
    scale = abs_x.sum(dim=-1).amax(dim=-1) * abs_x.sum(dim=-2).amax(dim=-1)  # (...)
    z = x.transpose(-1, -2) / scale[..., None, None]
    eye = torch.eye(x.shape[-1], device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        xz = x @ z
        z = 0.25 * z @ (13 * eye - xz @ (15 * eye - xz @ (7 * eye - xz)))
    return z


class NystromAttention(nn.Module):
    """Multi-head Nyström self-attention; (B, N, D) -> (B, N, D), memory O(N * landmarks)."""

    def __init__(
        self,
        dim: int,
        heads: int = 8,
        num_landmarks: int | None = None,
        pinv_iterations: int = 6,
        residual_kernel: int = 33,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.dim_head = dim // heads
        self.num_landmarks = num_landmarks or dim // 2
        self.pinv_iterations = pinv_iterations
        self.scale = self.dim_head**-0.5
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.res_conv = nn.Conv2d(
            heads, heads, (residual_kernel, 1), padding=(residual_kernel // 2, 0), groups=heads, bias=False
        )
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, per_head_checkpoint: bool = False) -> Tensor:
        """``x`` (B, N, D) -> (B, N, D). ``per_head_checkpoint``: attend one head at a time, each head's
        kernels recomputed in the backward pass (same result, memory of one head)."""
        b, n, _ = x.shape
        h = self.heads
        q, k, v = (t.view(b, n, h, self.dim_head).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        if per_head_checkpoint:
            out = torch.cat([checkpoint(self.attend, q[:, i:i + 1], k[:, i:i + 1], v[:, i:i + 1], use_reentrant=False)
                             for i in range(h)], dim=1)
        else:
            out = self.attend(q, k, v)
        out = out + self.res_conv(v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * self.dim_head))

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Nyström approximation of softmax(q kᵀ / √d) v for (B, H', N, d) heads -> (B, H', N, d)."""
        b, h, n, _ = q.shape
        m = self.num_landmarks
        q = q * self.scale
        if n <= m:
            return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        segment = torch.div(torch.arange(n, device=q.device) * m, n, rounding_mode="floor")  # (N,) in [0, m)
        counts = torch.bincount(segment, minlength=m).to(q.dtype).view(1, 1, m, 1)
        q_l = q.new_zeros(b, h, m, self.dim_head).index_add_(2, segment, q) / counts
        k_l = k.new_zeros(b, h, m, self.dim_head).index_add_(2, segment, k) / counts
        kernel_1 = torch.softmax(q @ k_l.transpose(-1, -2), dim=-1)  # (B, H', N, m)
        kernel_2 = torch.softmax(q_l @ k_l.transpose(-1, -2), dim=-1)  # (B, H', m, m)
        kernel_3 = torch.softmax(q_l @ k.transpose(-1, -2), dim=-1)  # (B, H', m, N)
        return kernel_1 @ (iterative_pinv(kernel_2, self.pinv_iterations) @ (kernel_3 @ v))


class TransLayer(nn.Module):
    """``x + NystromAttention(LayerNorm(x))`` (as in TransMIL); (B, N, D) -> (B, N, D).

    ``checkpoint_above``: in training, sequences longer than this are activation-checkpointed (see the
    module docstring); None never checkpoints."""

    def __init__(self, dim: int, heads: int = 8, num_landmarks: int | None = None, pinv_iterations: int = 6,
                 dropout: float = 0.1, checkpoint_above: int | None = None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = NystromAttention(dim, heads, num_landmarks, pinv_iterations, dropout=dropout)
        self.checkpoint_above = checkpoint_above

    def forward(self, x: Tensor) -> Tensor:
        if (self.checkpoint_above is not None and x.shape[1] > self.checkpoint_above and self.training
                and torch.is_grad_enabled()):
            return x + checkpoint(self.attn, self.norm(x), True, use_reentrant=False)
        return x + self.attn(self.norm(x))


class PPEG(nn.Module):
    """Pyramid position encoding generator: depthwise 7x7, 5x5 and 3x3 convolutions on the square grid
    of tokens, added to the identity; the class token (position 0) is passed through."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj7 = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.proj5 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.proj3 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor, side: int) -> Tensor:
        """``x`` (B, 1 + side², D) -> same shape."""
        b, n, d = x.shape
        if n != 1 + side * side:
            raise ValueError(f"PPEG expects 1 + {side}² tokens, got {n}")
        cls, feat = x[:, :1], x[:, 1:]
        grid = feat.transpose(1, 2).reshape(b, d, side, side)
        grid = grid + self.proj7(grid) + self.proj5(grid) + self.proj3(grid)
        return torch.cat([cls, grid.flatten(2).transpose(1, 2)], dim=1)


class TransMIL(nn.Module):
    """TransMIL aggregator for one bag of patch features.

    ``(N, in_dim)`` -> linear projection to ``dim`` (+ReLU) -> square padding (the first
    ``ceil(sqrt(N))² - N`` tokens repeated) -> class token -> TransLayer -> PPEG -> TransLayer ->
    LayerNorm. Returns the class-token output (dim,) and the N token outputs (N, dim) (padding removed).
    """

    def __init__(
        self,
        in_dim: int = 1536,
        dim: int = 256,
        heads: int = 8,
        num_landmarks: int | None = None,
        pinv_iterations: int = 6,
        dropout: float = 0.1,
        checkpoint_above: int | None = None,
    ) -> None:
        """``checkpoint_above``: bags with more patches train with activation-checkpointed Nyström layers
        (None: never)."""
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU(), nn.Dropout(dropout))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.layer1 = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout, checkpoint_above)
        self.ppeg = PPEG(dim)
        self.layer2 = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout, checkpoint_above)
        self.norm = nn.LayerNorm(dim)

    def forward(self, bag: Tensor) -> tuple[Tensor, Tensor]:
        """``bag`` (N, in_dim) -> (class output (dim,), token outputs (N, dim))."""
        if bag.ndim != 2 or bag.shape[0] == 0:
            raise ValueError(f"a bag must be a non-empty (N, D) matrix, got shape {tuple(bag.shape)}")
        n = bag.shape[0]
        h = self.fc(bag).unsqueeze(0)  # (1, N, dim)
        side = math.isqrt(n - 1) + 1 if n > 1 else 1  # ceil(sqrt(n))
        extra = side * side - n
        if extra:
            h = torch.cat([h, h[:, torch.arange(extra, device=h.device) % n]], dim=1)
        h = torch.cat([self.cls_token, h], dim=1)
        h = self.layer1(h)
        h = self.ppeg(h, side)
        h = self.layer2(h)
        h = self.norm(h)[0]
        return h[0], h[1 : n + 1]
