"""Fixed-length bags for DMML: each magnification's patches resampled to N tokens in patch order, and the
magnifications stacked into one (M·N, D) bag so the shared trainer, collation and prediction code carry them.

The deformable attention folds the N tokens of a magnification into a √N × √N grid (patch order, as the
original code), so N is a perfect square and the same at every magnification.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def grid_side(n_tokens: int) -> int:
    """The side of the token grid.

    Args:
        n_tokens: N, tokens per magnification.

    Returns:
        √N.

    Raises:
        ValueError: N is not a positive perfect square; the message names the config key.
    """
    side = math.isqrt(max(int(n_tokens), 0))
    if n_tokens < 1 or side * side != n_tokens:
        raise ValueError(f"dmml.model.n_tokens must be a perfect square (the tokens fold into a √N x √N grid), "
                         f"got {n_tokens}; e.g. 64 (demo) or 2500 (paper)")
    return side


def resample_indices(n_patches: int, n_tokens: int) -> Tensor:
    """Indices of ``n_tokens`` patches taken from ``n_patches`` in order.

    Fewer patches than tokens are repeated (each one on consecutive tokens), more are subsampled with an even
    stride; the indices never decrease, so the patch order is kept.

    Args:
        n_patches: patches in the bag (>= 1).
        n_tokens: N.

    Returns:
        (N,) long indices into the bag, non-decreasing.

    Raises:
        ValueError: the bag is empty.
    """
    if n_patches < 1:
        raise ValueError("cannot resample an empty bag")
    return torch.arange(n_tokens, dtype=torch.long) * n_patches // n_tokens


def resample_bag(bag: Tensor, n_tokens: int) -> Tensor:
    """Resample a bag to exactly ``n_tokens`` patches in patch order.

    Args:
        bag: (N_i, D) patch features in patch order.
        n_tokens: N.

    Returns:
        (N, D) features.
    """
    return bag[resample_indices(bag.shape[0], n_tokens).to(bag.device)]


def stack_magnifications(bags: list[Tensor], n_tokens: int) -> Tensor:
    """One bag of every magnification, each resampled to N, stacked in magnification order.

    Args:
        bags: M bags (N_m, D), main magnification first.
        n_tokens: N.

    Returns:
        (M·N, D) features.
    """
    return torch.cat([resample_bag(b, n_tokens) for b in bags], dim=0)


def split_magnifications(bag: Tensor, n_mags: int, n_tokens: int) -> Tensor:
    """Undo :func:`stack_magnifications`.

    Args:
        bag: (M·N, D) stacked bag.
        n_mags: M.
        n_tokens: N.

    Returns:
        (M, N, D) features.

    Raises:
        ValueError: the bag does not hold M·N patches; the message says which rule builds such bags.
    """
    if bag.shape[0] != n_mags * n_tokens:
        raise ValueError(f"a DMML bag holds {n_mags} magnifications x {n_tokens} tokens = {n_mags * n_tokens} "
                         f"patches, got {bag.shape[0]}; DMML reads bags built by mustsurv.train.dmml_data")
    return bag.reshape(n_mags, n_tokens, bag.shape[1])
