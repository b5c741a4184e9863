"""Transcriptome subspaces of DMML: which RNA features form the tumour and microenvironment vectors, and the
SNN-style gene encoder of one subspace.

A subspace is the union of some gene families' ``_rnaseq`` features (the paper uses RNA only), each gene once
(families overlap). Its columns are given as (family index, column index) pairs into the six family tokens
the datasets yield, so the model reads the fold-wise standardised RNA values every other method reads.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

RNA_SUFFIX = "_rnaseq"


def subspace_columns(family_names: Sequence[str], family_features: Sequence[Sequence[str]],
                     families: Sequence[str]) -> list[list[int]]:
    """The (family, column) pairs of a subspace's RNA features, one per gene.

    Args:
        family_names: the F family names of the tokens.
        family_features: per family, its d_k feature names (``{GENE}_{type}``).
        families: the families that make up the subspace.

    Returns:
        ``[[family index, column index], ...]`` of the ``_rnaseq`` features of those families, the first
        occurrence of each gene, in family then column order.

    Raises:
        ValueError: a family is not among the tokens', or the subspace has no RNA feature; the message names
            the config key.
    """
    unknown = [f for f in families if f not in family_names]
    if unknown:
        raise ValueError(f"dmml.subspaces names families {unknown} that the gene-family file lacks (it has "
                         f"{list(family_names)}); fix dmml.subspaces")
    seen: set[str] = set()
    out: list[list[int]] = []
    for name in families:
        k = list(family_names).index(name)
        for j, feature in enumerate(family_features[k]):
            if feature.endswith(RNA_SUFFIX) and feature not in seen:
                seen.add(feature)
                out.append([k, j])
    if not out:
        raise ValueError(f"the families {list(families)} have no RNA (`_rnaseq`) feature in this cohort; DMML reads "
                         f"RNA only - give the cohort an `rna` table or change dmml.subspaces")
    return out


def gather_subspace(genomics: Sequence[Tensor], columns: Sequence[Sequence[int]]) -> Tensor:
    """Collect a subspace's features from the family tensors.

    Args:
        genomics: F tensors (B, d_k).
        columns: the subspace's (family, column) pairs (:func:`subspace_columns`).

    Returns:
        (B, G) features, G = len(columns).
    """
    return torch.stack([genomics[k][:, j] for k, j in columns], dim=1)


class GeneEncoder(nn.Module):
    """SNN-style encoder of one subspace: Linear + ELU + AlphaDropout blocks, G -> hidden... -> dim."""

    def __init__(self, in_dim: int, hidden: Sequence[int], dim: int, dropout: float) -> None:
        """Build the blocks.

        Args:
            in_dim: G, genes of the subspace.
            hidden: widths of the hidden layers (paper 64, 48, 32).
            dim: output width (paper 128).
            dropout: AlphaDropout probability (paper 0.01).
        """
        super().__init__()
        widths = [in_dim, *hidden, dim]
        self.net = nn.Sequential(*[nn.Sequential(nn.Linear(a, b), nn.ELU(), nn.AlphaDropout(dropout))
                                   for a, b in zip(widths[:-1], widths[1:])])

    def forward(self, x: Tensor) -> Tensor:
        """Encode.

        Args:
            x: (B, G) subspace features.

        Returns:
            (B, dim) gene embedding.
        """
        return self.net(x)
