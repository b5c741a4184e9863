"""Single-scale 2-D deformable attention over the token grid (Deformable DETR's sampling, as DMML uses it).

The N tokens of one magnification are folded into a √N × √N grid in patch order (token i at row i // √N,
column i % √N). Every query token predicts, per head, ``points`` sampling offsets around its own grid
position and a softmax weight for each; the values are read there by bilinear interpolation and summed
with those weights. The query decides where to look (a gene-guided query for the teacher's cross-attention,
the token itself for the student's self-attention), the values are the patch tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mustsurv.models.dmml.bags import grid_side


class DeformableAttention2d(nn.Module):
    """Deformable attention of N queries over N value tokens folded into a √N × √N grid."""

    def __init__(self, dim: int, heads: int, head_dim: int, points: int, dropout: float = 0.0) -> None:
        """Build the projections.

        Args:
            dim: width of queries, values and output.
            heads: attention heads (paper 8).
            head_dim: width of a head's values (paper 64).
            points: sampling points per head and query.
            dropout: dropout on the output.
        """
        super().__init__()
        self.heads, self.head_dim, self.points = heads, head_dim, points
        self.offsets = nn.Linear(dim, heads * points * 2)
        self.weights = nn.Linear(dim, heads * points)
        self.values = nn.Linear(dim, heads * head_dim)
        self.out = nn.Sequential(nn.Linear(heads * head_dim, dim), nn.Dropout(dropout))
        nn.init.zeros_(self.offsets.weight)  # start from a ring of points around each token, as Deformable DETR
        ring = torch.linspace(0, 2 * torch.pi, points + 1)[:-1]
        init = torch.stack([ring.cos(), ring.sin()], dim=-1).repeat(heads, 1)  # (H·P, 2), x then y
        with torch.no_grad():
            self.offsets.bias.copy_(init.flatten())

    def forward(self, query: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Attend.

        Args:
            query: (B, N, dim) queries, one per grid position.
            value: (B, N, dim) value tokens in patch order.

        Returns:
            (B, N, dim) output and (B, N, heads, points) attention weights.
        """
        b, n, _ = value.shape
        side = grid_side(n)
        h, p, d = self.heads, self.points, self.head_dim
        v = self.values(value).reshape(b, side, side, h, d).permute(0, 3, 4, 1, 2).reshape(b * h, d, side, side)
        idx = torch.arange(n, device=value.device)
        centre = torch.stack([(idx % side).float(), (idx // side).float()], dim=-1)  # (N, 2) x, y in cells
        offsets = self.offsets(query).reshape(b, n, h, p, 2)
        loc = centre[None, :, None, None, :] + offsets  # (B, N, H, P, 2) in cells
        grid = (2 * loc + 1) / side - 1  # cell centres -> [-1, 1] (align_corners=False)
        grid = grid.permute(0, 2, 1, 3, 4).reshape(b * h, n, p, 2)
        sampled = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (B·H, d, N, P)
        attn = torch.softmax(self.weights(query).reshape(b, n, h, p), dim=-1)
        w = attn.permute(0, 2, 1, 3).reshape(b * h, 1, n, p)
        out = (sampled * w).sum(-1).reshape(b, h, d, n).permute(0, 3, 1, 2).reshape(b, n, h * d)
        return self.out(out), attn
