"""Softmax attention blocks on short token sequences (genomic tokens, diffusion tokens, cross-attention)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, L, H*d) -> (B, H, L, d)."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """(B, H, L, d) -> (B, L, H*d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class SelfAttentionBlock(nn.Module):
    """Pre-norm transformer block: ``x + MHSA(LN(x))`` then ``x + FFN(LN(x))``; (B, L, D) -> (B, L, D)."""

    def __init__(self, dim: int, heads: int = 8, mlp_ratio: float = 2.0, dropout: float = 0.1) -> None:
        """Build the block.

        Args:
            dim: token dimension D.
            heads: number of attention heads; must divide ``dim``.
            mlp_ratio: hidden width of the feed-forward network, as a multiple of ``dim``.
            dropout: dropout of the attention weights, the projections and the feed-forward network.

        Raises:
            ValueError: ``dim`` is not divisible by ``heads``.
        """
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.dropout = dropout
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        """Apply the block.

        Args:
            x: (B, L, D) tokens.
            key_mask: (B, L) bool, True for tokens that may be attended to; None attends to all.

        Returns:
            (B, L, D) updated tokens.
        """
        q, k, v = (_split_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(_merge_heads(att)))
        return x + self.drop(self.ffn(self.norm2(x)))

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Compute this block's keys and values of the tokens ``x``, for :meth:`forward_with_context`.

        Args:
            x: (B, L, D) context tokens.

        Returns:
            Keys and values, each (B, H, L, D/H).
        """
        d = x.shape[-1]
        k, v = F.linear(self.norm1(x), self.qkv.weight[d:], self.qkv.bias[d:]).chunk(2, dim=-1)
        return _split_heads(k, self.heads), _split_heads(v, self.heads)

    def forward_with_context(self, x: Tensor, k_ctx: Tensor, v_ctx: Tensor) -> Tensor:
        """Apply the block to tokens that attend to themselves and to context tokens.

        Equals the rows of ``x`` in ``forward(cat([x, context]))``; the context itself is not updated here.

        Args:
            x: (B, L, D) tokens.
            k_ctx: (B, H, L_c, D/H) keys of the context tokens, from :meth:`keys_values`.
            v_ctx: (B, H, L_c, D/H) values of the context tokens, from :meth:`keys_values`.

        Returns:
            (B, L, D) the block's output for ``x``.
        """
        q, k, v = (_split_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        att = F.scaled_dot_product_attention(q, torch.cat([k, k_ctx], dim=2), torch.cat([v, v_ctx], dim=2),
                                             dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(_merge_heads(att)))
        return x + self.drop(self.ffn(self.norm2(x)))


class CrossAttentionPool(nn.Module):
    """Cross-attention of paper Eq. 7, pooled over the queries.

    ``softmax(Q W_Q (K W_K)^T / sqrt(d_k)) V W_V`` with multiple heads and an output projection, then the
    mean over the valid query positions: the result carries only information from the context
    (keys/values), selected by the query modality. No residual to the queries, so ``c_{G<-P}``
    (genomic queries over pathology tokens) is built from pathology content alone.
    """

    def __init__(self, dim: int, heads: int = 8, dropout: float = 0.1) -> None:
        """Build the layer.

        Args:
            dim: token dimension D (queries and context).
            heads: number of attention heads; must divide ``dim``.
            dropout: dropout of the attention weights.

        Raises:
            ValueError: ``dim`` is not divisible by ``heads``.
        """
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.dropout = dropout
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        query: Tensor,
        context: Tensor,
        query_mask: Tensor | None = None,
        context_mask: Tensor | None = None,
    ) -> Tensor:
        """Attend from the queries to the context and pool over the valid queries.

        Args:
            query: (B, Lq, D) query tokens.
            context: (B, Lk, D) key/value tokens.
            query_mask: (B, Lq) bool, True = real token; None = all real.
            context_mask: (B, Lk) bool, True = real token; None = all real.

        Returns:
            (B, D) pooled context information.
        """
        q = _split_heads(self.w_q(self.norm_q(query)), self.heads)
        kv = self.norm_kv(context)
        k = _split_heads(self.w_k(kv), self.heads)
        v = _split_heads(self.w_v(kv), self.heads)
        mask = None if context_mask is None else context_mask[:, None, None, :]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        out = _merge_heads(att)  # (B, Lq, D)
        if query_mask is None:
            pooled = out.mean(dim=1)
        else:
            w = query_mask.to(out.dtype).unsqueeze(-1)
            pooled = (out * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        return self.proj(pooled)
