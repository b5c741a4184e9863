"""Common ground of the Table 2 missing-modality baselines (SMIL, M3Care, ShaSpec, LD-CVAE).

They train on paired patients (both modalities) and are evaluated in every scenario they support. At
inference the modality a scenario removes is *stripped from the batch* before the model sees it
(:func:`strip_modality`), so a model cannot read it by accident; ``forward_scenario`` then builds the
logits from what is left.

Shared encoders, so the four methods differ only in how they handle a missing modality:

* :class:`BagEncoder`: patch features (N_i, D_path) -> Linear + ReLU + dropout -> gated attention
  pooling (ABMIL) -> (dim,) per patient.
* :class:`FamilyEncoder`: the six family vectors -> SNN family tokens -> self-attention with a class
  token (:class:`~mustsurv.models.genomics.GenomicsEncoder`) -> (B, dim).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from typing import ClassVar, Sequence

import torch
from torch import Tensor, nn

from mustsurv.models.baselines.abmil import GatedAttention
from mustsurv.models.baselines.base import BaselineModel
from mustsurv.models.batch import PatientItem, SurvivalBatch
from mustsurv.models.genomics import GenomicsEncoder
from mustsurv.study.vocabulary import SCENARIOS, Scenario


def strip_modality(batch: SurvivalBatch, scenario: Scenario) -> SurvivalBatch:
    """Set the modality that ``scenario`` removes to absent (bags None / family tensors None).

    Args:
        batch: B patients.
        scenario: ``complete``, ``missing_genomics`` or ``missing_pathology``.

    Returns:
        The stripped batch.

    Raises:
        ValueError: unknown ``scenario``.
    """
    if scenario == "missing_genomics":
        return replace(batch, genomics=None, has_genomics=torch.zeros_like(batch.has_genomics))
    if scenario == "missing_pathology":
        return replace(batch, pathology=[None] * len(batch), has_pathology=torch.zeros_like(batch.has_pathology))
    if scenario == "complete":
        return batch
    raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")


def draw_missing(n: int, rate: float, genomics_share: float, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Simulate missingness for n training patients, never both modalities.

    A patient is dropped with probability ``rate`` (``torch.rand < rate``: rate 1 drops everyone)
    and then loses genomics with probability ``genomics_share``, else pathology.

    Args:
        n: number of patients.
        rate: probability that a patient loses a modality.
        genomics_share: probability that a dropped patient loses genomics (else pathology).
        device: device of the masks.

    Returns:
        ``drop_genomics`` (n,) and ``drop_pathology`` (n,) bool masks.
    """
    missing = torch.rand(n, device=device) < rate
    genomics = torch.rand(n, device=device) < genomics_share
    return missing & genomics, missing & ~genomics


class BagEncoder(nn.Module):
    """Bags (N_i, D_path) -> gated-attention pooled embeddings (B, dim)."""

    def __init__(self, pathology_dim: int, dim: int = 256, attn_dim: int | None = None,
                 dropout: float = 0.25) -> None:
        """Build the embedding and the gated attention.

        Args:
            pathology_dim: D_path of the patch features.
            dim: embedding dimension.
            attn_dim: hidden width of the gated attention; None uses ``dim // 2``.
            dropout: dropout probability.
        """
        super().__init__()
        self.pathology_dim = pathology_dim
        self.embed = nn.Sequential(nn.Linear(pathology_dim, dim), nn.ReLU(), nn.Dropout(dropout))
        self.attention = GatedAttention(dim, attn_dim or dim // 2, dropout)

    def forward(self, bags: Sequence[Tensor]) -> Tensor:
        """Pool each bag.

        Args:
            bags: B bags, each (N_i, D_path).

        Returns:
            (B, dim) embeddings.
        """
        out = []
        for bag in bags:
            h = self.embed(bag)
            out.append(torch.softmax(self.attention(h), dim=0) @ h)
        return torch.stack(out)


class FamilyEncoder(nn.Module):
    """F family tensors (B, d_k) -> (B, dim): SNN family tokens + self-attention, the class token's output."""

    def __init__(self, family_dims: Sequence[int], dim: int = 256, hidden: int = 256, heads: int = 4,
                 dropout: float = 0.25) -> None:
        """Build the genomics encoder (one self-attention block).

        Args:
            family_dims: d_k of each family.
            dim: token dimension.
            hidden: hidden width of the family MLPs.
            heads: attention heads.
            dropout: dropout probability.
        """
        super().__init__()
        self.encoder = GenomicsEncoder(family_dims, dim, hidden, heads, layers=1, dropout=dropout)

    def forward(self, genomics: Sequence[Tensor]) -> Tensor:
        """F family tensors (B, d_k) -> (B, dim) class-token output."""
        return self.encoder(genomics)[0]


class MissingModalityBaseline(BaselineModel):
    """Base of the Table 2 baselines: multimodal, trained on paired patients, evaluated per scenario."""

    scenarios: ClassVar[tuple[Scenario, ...]] = SCENARIOS
    uses_pathology = True
    uses_genomics = True
    same_modalities = False

    def prepare(self, items: Sequence[PatientItem]) -> None:
        """Prepare with the training patients before training (e.g. fit priors); no-op by default.

        Args:
            items: the training patients.
        """

    def finish(self, items: Sequence[PatientItem]) -> None:
        """Finish with the training patients after training, in eval mode under ``no_grad``; no-op by default.

        E.g. fill a memory bank with the final embeddings.

        Args:
            items: the training patients.
        """

    @abstractmethod
    def forward_scenario(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Predict from the modalities ``scenario`` keeps (the others are absent in ``batch``).

        Args:
            batch: B patients, the removed modality stripped.
            scenario: the evaluation scenario.

        Returns:
            (B, K) hazard logits.
        """

    def forward(self, batch: SurvivalBatch) -> Tensor:
        """Complete-data hazard logits (B, K)."""
        return self.forward_scenario(batch, "complete")

    @torch.no_grad()
    def predict_logits(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Predict hazard logits in ``scenario``; the removed modality is stripped from ``batch`` first.

        Args:
            batch: B patients.
            scenario: the evaluation scenario.

        Returns:
            (B, K) hazard logits.
        """
        self.check_scenario(scenario)
        self.eval()
        return self.forward_scenario(strip_modality(batch, scenario), scenario)


class EncoderPair:
    """Mixin of a missing-modality baseline with one :class:`BagEncoder` (``pathology_encoder``) and one
    :class:`FamilyEncoder` (``genomics_encoder``) into the shared width D, trained with simulated
    missingness (``missing_rate``, ``genomics_share``): SMIL, M3Care."""

    pathology_encoder: BagEncoder
    genomics_encoder: FamilyEncoder
    missing_rate: float
    genomics_share: float

    def draw_missing(self, n: int, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Draw per-patient simulated missingness for training.

        :func:`draw_missing` with ``missing_rate`` and ``genomics_share``.

        Args:
            n: number of patients.
            device: device of the masks.

        Returns:
            ``drop_genomics`` (n,) and ``drop_pathology`` (n,) bool masks.
        """
        return draw_missing(n, self.missing_rate, self.genomics_share, device)

    def encode_pathology(self, batch: SurvivalBatch) -> Tensor:
        """Encode the bags.

        Args:
            batch: B patients with pathology.

        Returns:
            h_P (B, D).
        """
        return self.pathology_encoder(self.bags(batch))  # type: ignore[attr-defined]

    def encode_genomics(self, batch: SurvivalBatch) -> Tensor:
        """Encode the family tensors.

        Args:
            batch: B patients with genomics.

        Returns:
            h_G (B, D).
        """
        return self.genomics_encoder(self.families(batch))  # type: ignore[attr-defined]
