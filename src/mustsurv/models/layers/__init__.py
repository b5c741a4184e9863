"""Shared layers: attention blocks and TransMIL (Nyström attention + PPEG)."""

from mustsurv.models.layers.attention import CrossAttentionPool, SelfAttentionBlock
from mustsurv.models.layers.transmil import PPEG, NystromAttention, TransMIL

__all__ = ["PPEG", "CrossAttentionPool", "NystromAttention", "SelfAttentionBlock", "TransMIL"]
