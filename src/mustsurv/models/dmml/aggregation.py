"""Informative token aggregation of DMML's student (after TCFormer's clustering-based token merging).

The tokens of a bag are clustered by density-peak clustering with k nearest neighbours (DPC-KNN, no
gradient): each token's local density ρ_i = exp(-mean squared distance to its k nearest neighbours), its
distance δ_i to the nearest denser token (the largest distance for the densest), the ``n_clusters`` tokens
with the largest ρ·δ are the centres (in that order) and every token joins its nearest centre. Each
cluster becomes one token: the mean of its members weighted by a softmax of their learned scores within the
cluster. The result does not depend on the order of the tokens inside a cluster.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def dpc_knn(tokens: Tensor, n_clusters: int, k: int) -> Tensor:
    """Cluster tokens by density peaks.

    Args:
        tokens: (N, D) tokens.
        n_clusters: clusters C (<= N).
        k: neighbours of the density estimate (clipped to N - 1).

    Returns:
        (N,) cluster index of each token, 0..C-1; cluster j is the j-th highest-scoring centre.

    Raises:
        ValueError: more clusters than tokens.
    """
    n = tokens.shape[0]
    if n_clusters > n:
        raise ValueError(f"cannot make {n_clusters} clusters of {n} tokens")
    dist = torch.cdist(tokens.float(), tokens.float()) / tokens.shape[1] ** 0.5
    kk = max(1, min(k, n - 1))
    nearest = dist.topk(kk + 1, dim=1, largest=False).values[:, 1:] if n > 1 else dist
    density = (-nearest.pow(2).mean(dim=1)).exp()
    denser = density[None, :] > density[:, None]
    delta = torch.where(denser, dist, torch.full_like(dist, float("inf"))).min(dim=1).values
    delta = torch.where(torch.isinf(delta), dist.max(dim=1).values, delta)
    centres = (density * delta).topk(n_clusters).indices
    return dist[:, centres].argmin(dim=1)


def aggregate_clusters(tokens: Tensor, scores: Tensor, labels: Tensor, n_clusters: int) -> Tensor:
    """Merge each cluster into one token, weighting members by a softmax of their scores within the cluster.

    Args:
        tokens: (N, D) tokens.
        scores: (N,) token scores.
        labels: (N,) cluster index of each token.
        n_clusters: C.

    Returns:
        (C, D) merged tokens (a zero row for an empty cluster).
    """
    onehot = nn.functional.one_hot(labels, n_clusters).to(tokens.dtype)  # (N, C)
    logits = scores[:, None].masked_fill(onehot == 0, float("-inf"))
    weights = torch.softmax(logits, dim=0).nan_to_num(0.0)  # an empty cluster's column is all -inf
    return weights.T @ tokens


class TokenAggregation(nn.Module):
    """Scores tokens, clusters them by DPC-KNN and merges each cluster: (N, D) -> (C·D,)."""

    def __init__(self, dim: int, n_clusters: int = 2, k: int = 5) -> None:
        """Build the token scorer.

        Args:
            dim: token width D.
            n_clusters: clusters C (paper 2).
            k: neighbours of the density estimate (paper 5).
        """
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.n_clusters, self.k = n_clusters, k

    def forward(self, tokens: Tensor) -> Tensor:
        """Aggregate one bag.

        Args:
            tokens: (N, D) tokens.

        Returns:
            (C·D,) the merged tokens, concatenated in cluster order.
        """
        labels = dpc_knn(tokens.detach(), self.n_clusters, self.k)
        return aggregate_clusters(tokens, self.score(tokens).squeeze(-1), labels, self.n_clusters).flatten()
