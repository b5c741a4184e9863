"""ShaSpec: shared-specific feature modelling for multimodal learning with a missing modality.

Reference: Wang, Chen, Ma, Avery, Hull & Carneiro, "Multi-modal Learning with Missing Modality via
Shared-Specific Feature Modelling", CVPR 2023. Every modality m goes through one *shared* encoder (the
same weights for all modalities) to a shared feature r_m and through its own *specific* encoder to a
specific feature s_m. Two auxiliary objectives shape them:

* distribution alignment (L_dao): the shared features of the modalities of a sample are pulled
  together (KL divergence between the feature distributions), so r_m carries what the modalities
  have in common and any one modality's r_m can stand in for another's;
* domain classification (L_dco): a linear classifier predicts from s_m which modality it came from
  (cross-entropy), so the specific features keep what tells the modalities apart.

Residual fusion: f_m = r_m + W_proj [r_m; s_m] (one projection for all modalities). The fused
features of all modalities are concatenated and decoded by the task head. A missing modality's fused
feature is replaced by the mean shared feature of the available modalities; with two modalities
that is the shared feature of the one present. Training draws missing modalities at random so the
head learns to use the substitute. Loss: L_task + α L_dao + β L_dco.

Here the two modalities are pathology and genomics and the task head gives K discrete-time hazard
logits (survival NLL as L_task):

* pathology input embedding: :class:`~mustsurv.models.baselines.missing.BagEncoder` (patch features ->
  Linear + ReLU + dropout -> gated-attention pooling) -> (B, dim);
* genomics input embedding: :class:`~mustsurv.models.baselines.missing.FamilyEncoder` (SNN family
  tokens -> self-attention with a class token) -> (B, dim);
* shared encoder and the two specific encoders: Linear(dim, dim) + ReLU + dropout each;
* domain classifier: Linear(dim, 2) (label 0 = pathology, 1 = genomics);
* head: [f_pathology; f_genomics] (2 dim) -> Linear(2 dim, dim) + ReLU + dropout -> Linear(dim, K).

Adaptations: ShaSpec's encoders are CNNs on co-registered images; here the modality-specific input
embeddings above (MIL pooling for the bag, family tokens for the genomics) come first, and the shared and
specific encoders are small MLPs on their outputs, the shared one a single module applied to both
modalities. L_dao is the symmetric KL divergence between the softmax-normalised shared features of the
two modalities of a patient; L_dco the cross-entropy of the domain classifier averaged over the
modalities the patient has. Modality dropout in training: each patient independently loses one
modality with probability ``modality_dropout`` (``torch.rand < rate``), pathology or genomics with
equal chance; the dropped modality is not encoded at all (its fused feature is the other modality's
shared feature, exactly as at inference), the domain loss then uses the one specific feature left and
the alignment loss, which needs both shared features, is zero for that patient. Every loss term is a
batch mean of per-patient terms, as the shared trainer requires. Xavier-normal initialisation of the
linear layers; inference is deterministic (eval mode, no sampling).
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mustsurv.models.baselines.base import xavier_init
from mustsurv.models.baselines.missing import (
    BagEncoder,
    FamilyEncoder,
    MissingModalityBaseline,
)
from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.registry import register_model
from mustsurv.study.vocabulary import GENOMICS, MODALITIES, PATHOLOGY, Scenario


class ShaSpecFeatures(NamedTuple):
    """ShaSpec's intermediate features of a batch of B patients.

    Attributes:
        shared_pathology: r_P (B, dim), zero for patients whose pathology is not kept.
        specific_pathology: s_P (B, dim), zero where pathology is not kept.
        shared_genomics: r_G (B, dim), zero where genomics is not kept.
        specific_genomics: s_G (B, dim), zero where genomics is not kept.
        fused_pathology: f_P (B, dim): r_P + W_proj [r_P; s_P] where pathology is kept, the genomics shared
            feature where it is not.
        fused_genomics: f_G (B, dim), likewise.
        keep_pathology: (B,) bool, pathology is kept.
        keep_genomics: (B,) bool, genomics is kept.
    """

    shared_pathology: Tensor
    specific_pathology: Tensor
    shared_genomics: Tensor
    specific_genomics: Tensor
    fused_pathology: Tensor
    fused_genomics: Tensor
    keep_pathology: Tensor
    keep_genomics: Tensor


def symmetric_kl(a: Tensor, b: Tensor) -> Tensor:
    """Compute the symmetric KL divergence between softmax(a) and softmax(b) over the last dim.

    Args:
        a: (B, D) logits.
        b: (B, D) logits.

    Returns:
        (B,) divergences.
    """
    la, lb = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    return 0.5 * ((la.exp() * (la - lb)).sum(-1) + (lb.exp() * (lb - la)).sum(-1))


def _encoder(dim: int, dropout: float) -> nn.Sequential:
    """Linear(dim, dim) -> ReLU -> dropout: (n, dim) -> (n, dim)."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout))


@register_model("shaspec")
class ShaSpec(MissingModalityBaseline):
    """ShaSpec on a bag (N_i, D_path) and F family vectors per patient; evaluated in every scenario."""

    def __init__(self, pathology_dim: int, family_dims: Sequence[int], dim: int = 256, genomics_hidden: int = 256,
                 heads: int = 4, dropout: float = 0.25, modality_dropout: float = 0.5, align_weight: float = 0.1,
                 domain_weight: float = 0.1, n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the modality embeddings, shared/specific encoders, projection, classifiers and head.

        Args:
            pathology_dim: D_path of the patch features.
            family_dims: d_k of the F gene-family vectors.
            dim: width of every feature (input embeddings, shared, specific and fused features).
            genomics_hidden: hidden width of the family SNNs.
            heads: attention heads of the genomics encoder.
            dropout: dropout rate of every layer.
            modality_dropout: probability that a training patient loses one modality (0 = never).
            align_weight: α, weight of the distribution-alignment loss on the shared features.
            domain_weight: β, weight of the domain-classification loss on the specific features.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the survival NLL.

        Raises:
            ValueError: ``modality_dropout`` is outside [0, 1].
        """
        super().__init__(n_bins, alpha)
        if not 0.0 <= modality_dropout <= 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1], got {modality_dropout}")
        self.pathology_dim = int(pathology_dim)
        self.family_dims = tuple(int(d) for d in family_dims)
        self.dim = dim
        self.modality_dropout = float(modality_dropout)
        self.align_weight = float(align_weight)
        self.domain_weight = float(domain_weight)
        self.pathology_embed = BagEncoder(self.pathology_dim, dim, dropout=dropout)
        self.genomics_embed = FamilyEncoder(self.family_dims, dim, genomics_hidden, heads, dropout)
        self.shared = _encoder(dim, dropout)
        self.specific = nn.ModuleDict({m: _encoder(dim, dropout) for m in MODALITIES})
        self.domain_classifier = nn.Linear(dim, len(MODALITIES))
        self.fusion = nn.Linear(2 * dim, dim)
        self.head = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, n_bins))
        xavier_init(self)

    # ------------------------------------------------------------------ features
    def _scatter(self, rows: Tensor, values: Tensor, batch_size: int) -> Tensor:
        """(n, dim) ``values`` of the patients ``rows`` (n,) -> (B, dim) with zeros elsewhere."""
        out = values.new_zeros(batch_size, values.shape[-1])
        return out.index_copy(0, rows, values)

    def embed_pathology(self, batch: SurvivalBatch, keep: Tensor) -> Tensor | None:
        """Embed the bags of the kept patients; only their bags are read.

        Args:
            batch: B patients.
            keep: (B,) bool, the patients whose pathology is used.

        Returns:
            (n, dim) embeddings of the n kept patients, or None if n = 0.
        """
        rows = keep.nonzero().flatten().tolist()
        if not rows:
            return None
        sub = replace(batch, patient_ids=[batch.patient_ids[i] for i in rows],
                      pathology=[batch.pathology[i] for i in rows])
        return self.pathology_embed(self.bags(sub))

    def embed_genomics(self, batch: SurvivalBatch, keep: Tensor) -> Tensor | None:
        """Embed the genomics of the kept patients; only their rows of the family tensors are read.

        Args:
            batch: B patients.
            keep: (B,) bool, the patients whose genomics is used.

        Returns:
            (n, dim) embeddings of the n kept patients, or None if n = 0.
        """
        rows = keep.nonzero().flatten()
        if rows.numel() == 0:
            return None
        sub = replace(batch, patient_ids=[batch.patient_ids[i] for i in rows.tolist()],
                      has_genomics=batch.has_genomics[rows.to(batch.has_genomics.device)],
                      genomics=None if batch.genomics is None else [o[rows.to(o.device)] for o in batch.genomics])
        return self.genomics_embed(self.families(sub))

    def features(self, batch: SurvivalBatch, keep_pathology: Tensor, keep_genomics: Tensor) -> ShaSpecFeatures:
        """Compute the shared, specific and fused features with the kept modalities.

        A modality a patient does not keep is never read.

        Args:
            batch: B patients.
            keep_pathology: (B,) bool, pathology is kept.
            keep_genomics: (B,) bool, genomics is kept.

        Returns:
            The features, each (B, dim).

        Raises:
            ValueError: a mask is not (B,), or a patient keeps no modality.
        """
        b = len(batch)
        device = self.fusion.weight.device
        keep_pathology, keep_genomics = keep_pathology.to(device).bool(), keep_genomics.to(device).bool()
        if keep_pathology.shape != (b,) or keep_genomics.shape != (b,):
            raise ValueError(f"keep masks must be ({b},), got {tuple(keep_pathology.shape)} and "
                             f"{tuple(keep_genomics.shape)}")
        if not bool((keep_pathology | keep_genomics).all()):
            raise ValueError("every patient needs at least one modality")
        zeros = self.fusion.weight.new_zeros(b, self.dim)
        parts: dict[str, tuple[Tensor, Tensor]] = {}
        for name, keep, embed in ((PATHOLOGY, keep_pathology, self.embed_pathology),
                                  (GENOMICS, keep_genomics, self.embed_genomics)):
            h = embed(batch, keep)
            if h is None:
                parts[name] = (zeros, zeros)
                continue
            rows = keep.nonzero().flatten()
            parts[name] = (self._scatter(rows, self.shared(h), b), self._scatter(rows, self.specific[name](h), b))
        (r_p, s_p), (r_g, s_g) = parts[PATHOLOGY], parts[GENOMICS]
        own_p = r_p + self.fusion(torch.cat([r_p, s_p], dim=-1))
        own_g = r_g + self.fusion(torch.cat([r_g, s_g], dim=-1))
        # a missing modality's feature: the shared feature of the available one
        f_p = torch.where(keep_pathology[:, None], own_p, r_g)
        f_g = torch.where(keep_genomics[:, None], own_g, r_p)
        return ShaSpecFeatures(r_p, s_p, r_g, s_g, f_p, f_g, keep_pathology, keep_genomics)

    def logits_from(self, feats: ShaSpecFeatures) -> Tensor:
        """Predict hazard logits from the fused features.

        Args:
            feats: the batch's features.

        Returns:
            (B, K) hazard logits.
        """
        return self.head(torch.cat([feats.fused_pathology, feats.fused_genomics], dim=-1))

    @staticmethod
    def scenario_masks(batch_size: int, scenario: Scenario) -> tuple[Tensor, Tensor]:
        """Make the keep masks of ``scenario``.

        Args:
            batch_size: B.
            scenario: ``complete``, ``missing_genomics`` or ``missing_pathology``.

        Returns:
            ``keep_pathology`` and ``keep_genomics``, each (B,) bool.

        Raises:
            ValueError: unknown ``scenario``.
        """
        ones = torch.ones(batch_size, dtype=torch.bool)
        if scenario == "complete":
            return ones, ones.clone()
        if scenario == "missing_genomics":
            return ones, ~ones
        if scenario == "missing_pathology":
            return ~ones, ones
        raise ValueError(f"unknown scenario {scenario!r}")

    def draw_dropout(self, batch_size: int) -> tuple[Tensor, Tensor]:
        """Draw the training modality dropout.

        Each patient loses one modality with probability ``modality_dropout`` (``torch.rand < rate``),
        pathology or genomics with equal chance; at most one modality is dropped.

        Args:
            batch_size: B.

        Returns:
            ``keep_pathology`` and ``keep_genomics``, each (B,) bool.
        """
        drop = torch.rand(batch_size) < self.modality_dropout
        drop_pathology = torch.rand(batch_size) < 0.5
        return ~(drop & drop_pathology), ~(drop & ~drop_pathology)

    # ------------------------------------------------------------------ losses
    def alignment_loss(self, feats: ShaSpecFeatures) -> Tensor:
        """Compute the per-patient distribution alignment: symmetric KL between the two shared features.

        Args:
            feats: the batch's features.

        Returns:
            (B,) losses; 0 for a patient that lacks one of the shared features.
        """
        both = feats.keep_pathology & feats.keep_genomics
        kl = symmetric_kl(feats.shared_pathology, feats.shared_genomics)
        return torch.where(both, kl, torch.zeros_like(kl))

    def domain_loss(self, feats: ShaSpecFeatures) -> Tensor:
        """Compute the per-patient domain classification loss.

        Cross-entropy of the classifier on each kept specific feature against its modality's label
        (0 pathology, 1 genomics), averaged over the kept ones.

        Args:
            feats: the batch's features.

        Returns:
            (B,) losses.
        """
        b = feats.keep_pathology.shape[0]
        total = feats.fused_pathology.new_zeros(b)
        for label, (spec, keep) in enumerate(((feats.specific_pathology, feats.keep_pathology),
                                              (feats.specific_genomics, feats.keep_genomics))):
            target = torch.full((b,), label, dtype=torch.long, device=spec.device)
            ce = F.cross_entropy(self.domain_classifier(spec), target, reduction="none")
            total = total + torch.where(keep, ce, torch.zeros_like(ce))
        return total / (feats.keep_pathology.float() + feats.keep_genomics.float())

    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute survival NLL + α L_dao + β L_dco, each a batch mean of per-patient terms.

        In training mode each patient may lose a modality (``modality_dropout``).

        Args:
            batch: B patients with both modalities.

        Returns:
            The scalar loss and the logged surv, align, domain and ``dropped`` (the fraction of patients that
            lost a modality).
        """
        b = len(batch)
        if self.training:
            keep_pathology, keep_genomics = self.draw_dropout(b)
        else:
            keep_pathology, keep_genomics = self.scenario_masks(b, "complete")
        feats = self.features(batch, keep_pathology, keep_genomics)
        surv = self.survival_loss(self.logits_from(feats), batch)
        align = self.alignment_loss(feats).mean()
        domain = self.domain_loss(feats).mean()
        loss = surv + self.align_weight * align + self.domain_weight * domain
        dropped = float((~(feats.keep_pathology & feats.keep_genomics)).float().mean())
        return loss, {"surv": float(surv.detach()), "align": float(align.detach()),
                      "domain": float(domain.detach()), "dropped": dropped}

    # ------------------------------------------------------------------ inference
    def forward_scenario(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Predict hazard logits reading only the modalities ``scenario`` keeps.

        A missing modality's fused feature is the available modality's shared feature.

        Args:
            batch: B patients.
            scenario: the evaluation scenario.

        Returns:
            (B, K) hazard logits.
        """
        keep_pathology, keep_genomics = self.scenario_masks(len(batch), scenario)
        return self.logits_from(self.features(batch, keep_pathology, keep_genomics))
