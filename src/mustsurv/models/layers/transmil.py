"""TransMIL (Shao et al., 2021): square padding, class token, two Nyström-attention layers, PPEG.

Used by MUST for the pathology branch (g_P) and by the TransMIL baseline. Own implementation of
Nyström attention (Xiong et al., 2021): landmarks are segment means of the queries/keys, the middle
softmax kernel is inverted with the iterative Moore–Penrose scheme, and a depthwise convolution over
the values adds a residual path. Segments are formed over the real tokens only (no zero padding of the
sequence), and sequences no longer than the landmark count use exact softmax attention. The
depthwise convolutions (the Nyström residual, PPEG) are PyTorch's own (a backward built from convolution
forwards was 0.96-0.98x as fast in a MUST stage-2 epoch on a quiet 2-core CPU, and was removed).

Large bags (training, more patches than ``checkpoint_above``): nothing of size N x D is kept for backward
but the bag and the tokens between a few segments; everything else is recomputed (activation
checkpointing, which replays the same dropout draws). TransMIL runs as two checkpointed segments, each
Nyström layer attends one head at a time (q, k, v and the residual convolution of that head only), its
kernels are built in blocks of ``chunk_tokens`` rows (softmax over N from a blockwise log-sum-exp), PPEG
convolves channel blocks, and the patch projection keeps one boolean mask instead of two activations.
Outputs and gradients equal the plain computation up to float summation order (tested). MUST's training
step on a 200k-patch bag peaks at 3.9 GB instead of 14.6 GB (``benchmarks/must_bag_scaling.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

_RES_BLOCK = 128  # the residual convolution sees N padded to a multiple of this


def iterative_pinv(x: Tensor, iterations: int = 6) -> Tensor:
    """Compute the Moore–Penrose pseudo-inverse of a batch of square matrices.

    Newton–Schulz-type iterations (Razavi et al.), as used by Nyströmformer; exact enough for
    row-stochastic ``x``.

    Args:
        x: (..., m, m) matrices.
        iterations: number of iterations.

    Returns:
        (..., m, m) pseudo-inverses, in float32 (or ``x``'s dtype when wider), also under autocast: the
        iteration is too sensitive for bfloat16.
    """
    with torch.autocast(x.device.type, enabled=False):
        return _pinv_iterations(x.float() if x.dtype in (torch.bfloat16, torch.float16) else x, iterations)


def _pinv_iterations(x: Tensor, iterations: int) -> Tensor:
    """The iterations of :func:`iterative_pinv` in ``x``'s dtype: (..., m, m) -> (..., m, m)."""
    abs_x = x.abs()
    scale = abs_x.sum(dim=-1).amax(dim=-1) * abs_x.sum(dim=-2).amax(dim=-1)  # (...)
    z = x.transpose(-1, -2) / scale[..., None, None]
    eye = torch.eye(x.shape[-1], device=x.device, dtype=x.dtype)
    for _ in range(iterations):
        xz = x @ z
        z = 0.25 * z @ (13 * eye - xz @ (15 * eye - xz @ (7 * eye - xz)))
    return z


def _softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dimension, in float32 when ``scores`` are half or bfloat16 (autocast)."""
    return torch.softmax(scores, dim=-1, dtype=torch.float32 if scores.dtype in (torch.bfloat16, torch.float16)
                         else None)


def _block_logsumexp(q_l: Tensor, k: Tensor) -> Tensor:
    """log Σ_j exp(q_l k_jᵀ) over a block of keys: (B, H, m, d), (B, H, n, d) -> (B, H, m)."""
    return torch.logsumexp(q_l @ k.transpose(-1, -2), dim=-1)


def _block_softmax_values(q_l: Tensor, k: Tensor, v: Tensor, lse: Tensor) -> Tensor:
    """A block's part of softmax(q_l kᵀ) v given the full log-sum-exp ``lse`` (B, H, m) -> (B, H, m, d)."""
    return torch.exp(q_l @ k.transpose(-1, -2) - lse.unsqueeze(-1)) @ v


def _block_rows(q: Tensor, k_l: Tensor, w: Tensor) -> Tensor:
    """softmax(q k_lᵀ) w for a block of query rows: (B, H, n, d), (B, H, m, d), (B, H, m, d) -> (B, H, n, d)."""
    return _softmax(q @ k_l.transpose(-1, -2)) @ w


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
        """Build the layer.

        Args:
            dim: token dimension D.
            heads: number of attention heads; must divide ``dim``.
            num_landmarks: number of Nyström landmarks m; None uses ``dim // 2``.
            pinv_iterations: iterations of :func:`iterative_pinv`.
            residual_kernel: length K of the depthwise residual convolution along N over the values.
            dropout: dropout after the output projection.

        Raises:
            ValueError: ``dim`` is not divisible by ``heads``.
        """
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.dim_head = dim // heads
        self.num_landmarks = num_landmarks or dim // 2
        self.pinv_iterations = pinv_iterations
        self.chunk_tokens = 16384  # longer sequences attend block by block (see _attend_chunked)
        self.scale = self.dim_head**-0.5
        self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.res_conv = nn.Conv2d(
            heads, heads, (residual_kernel, 1), padding=(residual_kernel // 2, 0), groups=heads, bias=False
        )
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, per_head_checkpoint: bool = False) -> Tensor:
        """Apply Nyström self-attention.

        Args:
            x: (B, N, D) tokens.
            per_head_checkpoint: attend one head at a time, each head's kernels recomputed in the backward
                pass (same result, memory of one head).

        Returns:
            (B, N, D) attention output (before any outer residual).
        """
        b, n, _ = x.shape
        h = self.heads
        if per_head_checkpoint:  # q, k, v and the residual convolution of one head at a time, from x
            out = torch.cat([checkpoint(self._attend_head, x, i, use_reentrant=False) for i in range(h)], dim=1)
        else:
            q, k, v = (self._heads(t) for t in self.to_qkv(x).chunk(3, dim=-1))
            out = self.attend(q, k, v)
            out += self._residual_conv(v, self.res_conv.weight)  # in place: fewer N x D buffers alive
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * self.dim_head))

    def _heads(self, t: Tensor) -> Tensor:
        """(B, N, H' * d) -> (B, H', N, d)."""
        return t.view(t.shape[0], t.shape[1], -1, self.dim_head).transpose(1, 2)

    def _attend_head(self, x: Tensor, i: int) -> Tensor:
        """Head ``i``'s attention plus residual-convolution output (B, 1, N, d) from the layer input ``x``
        (B, N, D)."""
        inner = self.heads * self.dim_head
        rows = torch.cat([torch.arange(j * inner + i * self.dim_head, j * inner + (i + 1) * self.dim_head)
                          for j in range(3)]).to(x.device)
        q, k, v = (self._heads(t) for t in F.linear(x, self.to_qkv.weight[rows]).chunk(3, dim=-1))
        return self.attend(q, k, v) + self._residual_conv(v, self.res_conv.weight[i:i + 1])

    @staticmethod
    def _residual_conv(v: Tensor, weight: Tensor) -> Tensor:
        """Apply the residual convolution along N of heads ``v`` (B, H', N, d) with kernels ``weight`` (H', 1, K, 1).

        ``res_conv``'s (K, 1) convolution (:func:`_depthwise_conv2d`); N is zero-padded to a multiple of
        ``_RES_BLOCK`` tokens, which changes no output (the convolution pads with zeros anyway) and keeps the
        number of distinct shapes (each a new oneDNN primitive) small. Returns (B, H', N, d).
        """
        n = v.shape[2]
        padded = F.pad(v, (0, 0, 0, -n % _RES_BLOCK))
        return _depthwise_conv2d(padded, weight)[:, :, :n]

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Compute the Nyström approximation of softmax(q kᵀ / √d) v.

        Args:
            q: (B, H', N, d) queries.
            k: (B, H', N, d) keys.
            v: (B, H', N, d) values.

        Returns:
            (B, H', N, d) attention output.
        """
        n = q.shape[2]
        q = q * self.scale
        if n <= self.num_landmarks:
            return _softmax(q @ k.transpose(-1, -2)) @ v
        q_l, k_l = self._landmarks(q), self._landmarks(k)
        kernel_2 = _softmax(q_l @ k_l.transpose(-1, -2))  # (B, H', m, m)
        if n > self.chunk_tokens:
            return self._attend_chunked(q, k, v, q_l, k_l, kernel_2)
        kernel_1 = _softmax(q @ k_l.transpose(-1, -2))  # (B, H', N, m)
        kernel_3 = _softmax(q_l @ k.transpose(-1, -2))  # (B, H', m, N)
        return kernel_1 @ (iterative_pinv(kernel_2, self.pinv_iterations) @ (kernel_3 @ v))

    def _landmarks(self, t: Tensor) -> Tensor:
        """Segment means of ``t`` (B, H', N, d) over m contiguous segments of the tokens -> (B, H', m, d)."""
        b, h, n, d = t.shape
        m = self.num_landmarks
        segment = torch.div(torch.arange(n, device=t.device) * m, n, rounding_mode="floor")  # (N,) in [0, m)
        counts = torch.bincount(segment, minlength=m).to(t.dtype).view(1, 1, m, 1)
        return t.new_zeros(b, h, m, d).index_add_(2, segment, t) / counts

    def attention_rows(self, x: Tensor, rows: slice = slice(0, 1)) -> Tensor:
        """The attention weights of some query tokens over all tokens, as :meth:`attend` applies them.

        Exact softmax rows for sequences no longer than the landmark count, else the Nyström rows
        ``softmax(q_r k_lᵀ) pinv(softmax(q_l k_lᵀ)) softmax(q_l kᵀ)`` (they sum to about 1 and may hold
        small negative values). ``attention_rows(x) @ v`` equals the rows of :meth:`attend` (before the
        residual convolution).

        Args:
            x: (B, N, D) tokens (the layer's normalised input).
            rows: the query tokens (default: the first, TransMIL's class token).

        Returns:
            (B, H, R, N) weights per head.
        """
        q, k, _ = (self._heads(t) for t in self.to_qkv(x).chunk(3, dim=-1))
        q = q * self.scale
        if q.shape[2] <= self.num_landmarks:
            return _softmax(q[:, :, rows] @ k.transpose(-1, -2))
        q_l, k_l = self._landmarks(q), self._landmarks(k)
        kernel_1 = _softmax(q[:, :, rows] @ k_l.transpose(-1, -2))  # (B, H, R, m)
        kernel_2 = _softmax(q_l @ k_l.transpose(-1, -2))  # (B, H, m, m)
        kernel_3 = _softmax(q_l @ k.transpose(-1, -2))  # (B, H, m, N)
        return kernel_1 @ (iterative_pinv(kernel_2, self.pinv_iterations) @ kernel_3)

    def _attend_chunked(self, q: Tensor, k: Tensor, v: Tensor, q_l: Tensor, k_l: Tensor, kernel_2: Tensor) -> Tensor:
        """Run :meth:`attend` over blocks of ``chunk_tokens`` tokens, each recomputed in backward.

        No (N, m) kernel is ever whole: kernel_3's softmax over N from a blockwise log-sum-exp, kernel_3 v as a
        sum of blocks, kernel_1 (row-wise) block by block. Same result up to float summation order.
        """
        blocks = [slice(s, s + self.chunk_tokens) for s in range(0, q.shape[2], self.chunk_tokens)]
        lse = torch.logsumexp(torch.stack([checkpoint(_block_logsumexp, q_l, k[:, :, b], use_reentrant=False)
                                           for b in blocks], dim=-1), dim=-1)  # (B, H', m)
        k3v = sum(checkpoint(_block_softmax_values, q_l, k[:, :, b], v[:, :, b], lse, use_reentrant=False)
                  for b in blocks)  # (B, H', m, d)
        w = iterative_pinv(kernel_2, self.pinv_iterations) @ k3v
        return torch.cat([checkpoint(_block_rows, q[:, :, b], k_l, w, use_reentrant=False) for b in blocks], dim=2)


class _LinearReLUDropout(torch.autograd.Function):
    """Compute dropout(relu(x Wᵀ + b)), keeping one boolean mask (N, out) for backward instead of the activations.

    For a 200k-patch bag that is 50 MB instead of 200 MB. The dropout draw uses the global generator, so
    activation checkpointing replays it. Under autocast the product runs in the autocast dtype (as
    ``nn.Linear`` would) and the backward uses the same casts; gradients reach the parameters in their dtype.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, p: float) -> Tensor:  # noqa: ANN001
        """Forward pass: ``x`` (N, in), ``weight`` (out, in), ``bias`` (out,), dropout ``p`` -> (N, out)."""
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
        y = F.linear(x, weight, bias)
        mask = y > 0
        if p > 0:
            mask &= torch.empty_like(y).bernoulli_(1 - p).bool()
        scale = 1.0 / (1 - p)
        ctx.save_for_backward(x, weight, mask)
        ctx.scale = scale
        return y.mul_(mask).mul_(scale)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:  # noqa: ANN001
        """Backward pass from the saved mask; no gradient for ``p``."""
        x, weight, mask = ctx.saved_tensors
        g = grad * mask * ctx.scale
        grad_x = g @ weight if ctx.needs_input_grad[0] else None
        return grad_x, g.transpose(-1, -2) @ x, g.sum(dim=0), None


def checkpointing(module: nn.Module, n: int, above: int | None) -> bool:
    """Tell whether ``module`` should activation-checkpoint a sequence of ``n`` tokens.

    Args:
        module: the layer (its ``training`` flag is read).
        n: sequence length.
        above: checkpoint sequences longer than this; None never checkpoints.

    Returns:
        True when training with gradients enabled and ``n > above``.
    """
    return above is not None and n > above and module.training and torch.is_grad_enabled()


class TransLayer(nn.Module):
    """``x + NystromAttention(LayerNorm(x))`` (as in TransMIL); (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int = 8, num_landmarks: int | None = None, pinv_iterations: int = 6,
                 dropout: float = 0.1, checkpoint_above: int | None = None) -> None:
        """Build the layer.

        Args:
            dim: token dimension D.
            heads: number of attention heads.
            num_landmarks: number of Nyström landmarks; None uses ``dim // 2``.
            pinv_iterations: iterations of the pseudo-inverse.
            dropout: dropout after the attention's output projection.
            checkpoint_above: in training, sequences longer than this are activation-checkpointed (see the
                module docstring); None never checkpoints.
        """
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = NystromAttention(dim, heads, num_landmarks, pinv_iterations, dropout=dropout)
        self.checkpoint_above = checkpoint_above

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer: (B, N, D) -> (B, N, D)."""
        if checkpointing(self, x.shape[1], self.checkpoint_above):
            return checkpoint(self._residual, x, True, use_reentrant=False)
        return self._residual(x)

    def _residual(self, x: Tensor, per_head_checkpoint: bool = False) -> Tensor:
        """``x + attention(norm(x))`` without checkpointing of the whole layer."""
        out = self.attn(self.norm(x), per_head_checkpoint)
        return out.add_(x) if out.dtype == x.dtype else x + out  # autocast: the residual stream stays float32


def _depthwise_conv2d(x: Tensor, weight: Tensor) -> Tensor:
    """A depthwise "same" convolution without bias: (B, C, H, W) input, (C, 1, kh, kw) kernels -> (B, C, H, W)."""
    return F.conv2d(x, weight, padding=(weight.shape[2] // 2, weight.shape[3] // 2), groups=x.shape[1])


def _depthwise_tokens(feat: Tensor, kernel: Tensor, bias: Tensor, side: int) -> Tensor:
    """A depthwise 7x7 convolution of tokens laid out on their square grid: (B, side², C) -> (B, side², C)."""
    b, _, c = feat.shape
    grid = feat.transpose(1, 2).reshape(b, c, side, side)
    out = _depthwise_conv2d(grid, kernel) + bias.view(c, 1, 1)
    return out.flatten(2).transpose(1, 2)


class PPEG(nn.Module):
    """Pyramid position encoding generator: depthwise 7x7, 5x5 and 3x3 convolutions on the square grid
    of tokens, added to the identity; the class token (position 0) is passed through."""

    def __init__(self, dim: int) -> None:
        """Build the three depthwise convolutions.

        Args:
            dim: token dimension D.
        """
        super().__init__()
        self.proj7 = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.proj5 = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.proj3 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor, side: int, channel_blocks: int = 1) -> Tensor:
        """Add the position encoding to the grid tokens.

        Args:
            x: (B, 1 + side², D) class token followed by the grid tokens.
            side: side length of the square token grid.
            channel_blocks: when > 1, the (depthwise) convolution runs on that many channel blocks, each
                recomputed in backward (large bags: no whole grid copy is kept).

        Returns:
            (B, 1 + side², D), the class token unchanged.

        Raises:
            ValueError: ``x`` does not hold 1 + side² tokens.
        """
        b, n, d = x.shape
        if n != 1 + side * side:
            raise ValueError(f"PPEG expects 1 + {side}² tokens, got {n}")
        kernel, bias = self.kernel(), self.proj7.bias + self.proj5.bias + self.proj3.bias
        feat = x[:, 1:]
        if channel_blocks > 1:
            bounds = torch.linspace(0, d, channel_blocks + 1).long().tolist()
            out = torch.cat([checkpoint(_depthwise_tokens, feat[..., s:e], kernel[s:e], bias[s:e], side,
                                        use_reentrant=False) for s, e in zip(bounds[:-1], bounds[1:])], dim=2)
        else:
            out = _depthwise_tokens(feat, kernel, bias, side)
        return torch.cat([x[:, :1], out], dim=1)

    def kernel(self) -> Tensor:
        """Return the one 7x7 depthwise kernel (D, 1, 7, 7) equal to identity + 7x7 + 5x5 + 3x3.

        The smaller kernels are zero-padded to 7x7: one convolution instead of three (a third of the time and
        memory), same sum.
        """
        identity = torch.zeros(1, 1, 7, 7, dtype=self.proj7.weight.dtype, device=self.proj7.weight.device)
        identity[..., 3, 3] = 1.0
        return self.proj7.weight + F.pad(self.proj5.weight, (1, 1, 1, 1)) + F.pad(self.proj3.weight, (2, 2, 2, 2)) + identity


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
        """Build the aggregator.

        Args:
            in_dim: patch feature dimension.
            dim: token dimension after the projection.
            heads: number of attention heads.
            num_landmarks: number of Nyström landmarks; None uses ``dim // 2``.
            pinv_iterations: iterations of the pseudo-inverse.
            dropout: dropout of the projection and the attention output.
            checkpoint_above: bags with more patches train with activation-checkpointed Nyström layers
                (None: never).
        """
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU(), nn.Dropout(dropout))
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.layer1 = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout, checkpoint_above)
        self.ppeg = PPEG(dim)
        self.layer2 = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout, checkpoint_above)
        self.norm = nn.LayerNorm(dim)
        self.checkpoint_above = checkpoint_above

    def forward(self, bag: Tensor) -> tuple[Tensor, Tensor]:
        """Aggregate one bag.

        Args:
            bag: (N, in_dim) patch features, N >= 1.

        Returns:
            The class-token output (dim,) and the token outputs (N, dim), padding removed.

        Raises:
            ValueError: ``bag`` is not a non-empty 2-D matrix.
        """
        if bag.ndim != 2 or bag.shape[0] == 0:
            raise ValueError(f"a bag must be a non-empty (N, D) matrix, got shape {tuple(bag.shape)}")
        n = bag.shape[0]
        side = math.isqrt(n - 1) + 1 if n > 1 else 1  # ceil(sqrt(n))
        if checkpointing(self, n, self.checkpoint_above):
            # two segments, each recomputed in backward: only the bag and the tokens between them are kept
            h = checkpoint(self._front, bag, side, use_reentrant=False)
            h = checkpoint(self._back, h, side, use_reentrant=False)
        else:
            h = self._back(self._front(bag, side), side)
        return h[0], h[1 : n + 1]

    def _front(self, bag: Tensor, side: int) -> Tensor:
        """Projection, square padding, class token, first layer: (N, in_dim) -> (1, 1 + side², dim)."""
        n = bag.shape[0]
        linear, drop = self.fc[0], self.fc[2]
        if torch.is_grad_enabled():  # (N, dim): one mask kept for backward instead of two activations
            h = _LinearReLUDropout.apply(bag, linear.weight, linear.bias, drop.p if self.training else 0.0)
        else:
            h = self.fc(bag)
        h = h.unsqueeze(0)  # (1, N, dim)
        pad = h[:, torch.arange(side * side - n, device=h.device) % n]
        return self.layer1(torch.cat([self.cls_token, h, pad], dim=1))

    @torch.no_grad()
    def class_attention(self, bag: Tensor) -> Tensor:
        """How much the class token of the last layer attends to each patch.

        The class-token row of the second Nyström layer, averaged over heads; a patch's square-padding
        copies add their weight to it; renormalised to sum to 1 over the N patches. This is the attention
        that forms the class-token output (TransMIL's slide embedding, MUST's g_P).

        Args:
            bag: (N, in_dim) patch features, N >= 1.

        Returns:
            (N,) attention weights summing to 1 (Nyström rows may hold small negative values).
        """
        n = bag.shape[0]
        side = math.isqrt(n - 1) + 1 if n > 1 else 1
        x = self.ppeg(self._front(bag, side), side)
        row = self.layer2.attn.attention_rows(self.layer2.norm(x))[0, :, 0, 1:].mean(dim=0)  # (side²,)
        positions = torch.arange(side * side, device=bag.device)
        source = torch.where(positions < n, positions, (positions - n) % n)  # padding repeats the first tokens
        weights = torch.zeros(n, dtype=row.dtype, device=row.device).index_add_(0, source, row)
        return weights / weights.sum()

    def _back(self, h: Tensor, side: int) -> Tensor:
        """PPEG, second layer, LayerNorm: (1, 1 + side², dim) -> (1 + side², dim)."""
        blocks = 8 if checkpointing(self, h.shape[1], self.checkpoint_above) else 1
        return self.norm(self.layer2(self.ppeg(h, side, blocks)))[0]
