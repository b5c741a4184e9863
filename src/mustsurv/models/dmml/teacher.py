"""DMML's teacher: slides at M magnifications + the tumour and microenvironment transcriptome subspaces.

Zhang et al., "Disentangled Multi-modal Learning of Histology and Transcriptomics for Cancer
Characterization" (arXiv 2508.16479), as its public code does it (``docs/method.md``, DMML section):

* one SNN gene encoder per subspace (shared by the magnifications): G -> 64 -> 48 -> 32 -> D, giving g_t, g_m;
* per magnification (own weights): patches -> Linear(D_path, D) + ReLU; per subspace k a deformable
  cross-attention over the √N × √N token grid whose query is g_k added to each token (the gene vector
  guides where each position looks), residual -> H_k; fusion Linear(2D, D) on [H_t; H_m]; subspace
  read-out f_k = tanh(Linear(gene-queried attention pooling of the fused tokens + their mean)); head
  Linear(2D, K) on [f_t; f_m];
* loss: the NLL of each magnification's hazards + the inter-magnification consistency of each subspace's
  attention maps (``consistency``: ``variance`` as coded, ``alignment`` as the option);
* :meth:`coordinate_gradients`, called between backward and the optimiser step, projects conflicting
  classifier gradients of the less confident subspace half (confidence-guided gradient coordination);
* prediction: per patient the logits of the more confident magnification.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mustsurv.models.batch import SurvivalBatch
from mustsurv.models.dmml.common import MultiMagnificationModel
from mustsurv.models.dmml.consistency import MODES, consistency_loss
from mustsurv.models.dmml.coordination import coordinate_classifier, half_confidence
from mustsurv.models.dmml.deformable import DeformableAttention2d
from mustsurv.models.dmml.genes import GeneEncoder, gather_subspace
from mustsurv.models.registry import register_model

SUBSPACES: tuple[str, ...] = ("tumour", "microenvironment")


class SubspaceReadout(nn.Module):
    """Gene-queried attention pooling of fused tokens + their mean -> Linear + tanh."""

    def __init__(self, dim: int) -> None:
        """Build the projections.

        Args:
            dim: D.
        """
        super().__init__()
        self.query, self.key = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Sequential(nn.Linear(dim, dim), nn.Tanh())

    def forward(self, fused: Tensor, gene: Tensor) -> Tensor:
        """Read one subspace out of the fused tokens.

        Args:
            fused: (B, N, D) fused tokens.
            gene: (B, D) the subspace's gene embedding.

        Returns:
            (B, D) subspace feature f_k.
        """
        scores = torch.einsum("bnd,bd->bn", self.key(fused), self.query(gene)) / fused.shape[-1] ** 0.5
        pooled = torch.einsum("bn,bnd->bd", torch.softmax(scores, dim=1), fused)
        return self.proj(pooled + fused.mean(dim=1))


class TeacherBranch(nn.Module):
    """The teacher at one magnification."""

    def __init__(self, pathology_dim: int, dim: int, heads: int, head_dim: int, points: int, dropout: float,
                 n_bins: int) -> None:
        """Build the branch.

        Args:
            pathology_dim: D_path.
            dim: D.
            heads: deformable attention heads.
            head_dim: width of a head.
            points: sampling points per head.
            dropout: attention dropout.
            n_bins: K.
        """
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(pathology_dim, dim), nn.ReLU())
        self.cross = nn.ModuleList([DeformableAttention2d(dim, heads, head_dim, points, dropout) for _ in SUBSPACES])
        self.fuse = nn.Linear(2 * dim, dim)
        self.readout = nn.ModuleList([SubspaceReadout(dim) for _ in SUBSPACES])
        self.classifier = nn.Linear(2 * dim, n_bins)

    def forward(self, bags: Tensor, genes: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Predict from one magnification.

        Args:
            bags: (B, N, D_path) tokens.
            genes: the two gene embeddings (B, D).

        Returns:
            (B, K) logits, (B, 2D) features [f_t; f_m], and per subspace its (B, N·heads·points) attention.
        """
        h = self.embed(bags)
        views, maps = [], []
        for attn, g in zip(self.cross, genes):
            out, a = attn(h + g[:, None, :], h)
            views.append(h + out)
            maps.append(a.flatten(1))
        fused = self.fuse(torch.cat(views, dim=-1))
        feats = torch.cat([r(fused, g) for r, g in zip(self.readout, genes)], dim=-1)
        return self.classifier(feats), feats, maps


@register_model("dmml")
class DMMLTeacher(MultiMagnificationModel):
    """DMML's teacher (module docstring): stacked bags (M·N, D_path) + RNA subspaces -> K hazard logits."""

    scenarios = ("complete",)
    uses_pathology = True
    uses_genomics = True

    def __init__(self, pathology_dim: int, subspaces: Sequence[Sequence[Sequence[int]]], n_tokens: int = 64,
                 n_mags: int = 2, dim: int = 128, gene_hidden: Sequence[int] = [64, 48, 32],  # noqa: B006 (never mutated)
                 gene_dropout: float = 0.01,
                 heads: int = 8, head_dim: int = 64, points: int = 4, dropout: float = 0.1,
                 consistency: str = "variance", consistency_weight: float = 1.0e4, coordination: bool = True,
                 double_projection: bool = False, n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the teacher.

        Args:
            pathology_dim: D_path of the patch features.
            subspaces: per subspace (tumour, microenvironment), its (family, column) RNA pairs
                (:func:`~mustsurv.models.dmml.genes.subspace_columns`).
            n_tokens: N tokens per magnification (a perfect square).
            n_mags: M magnifications.
            dim: D.
            gene_hidden: hidden widths of the gene encoders.
            gene_dropout: AlphaDropout of the gene encoders.
            heads: deformable attention heads.
            head_dim: width of a head.
            points: sampling points per head.
            dropout: attention dropout.
            consistency: ``variance`` (as coded) or ``alignment``.
            consistency_weight: weight of the consistency loss.
            coordination: coordinate the classifier's gradients (:meth:`coordinate_gradients`).
            double_projection: the original code's double subtraction in the coordination.
            n_bins: K.
            alpha: up-weighting of the uncensored NLL term.

        Raises:
            ValueError: not two subspaces, an unknown consistency mode, or a bad bag layout.
        """
        super().__init__(pathology_dim, n_tokens, n_mags, n_bins, alpha)
        if len(subspaces) != len(SUBSPACES):
            raise ValueError(f"DMML has the subspaces {SUBSPACES}; got {len(subspaces)} column lists")
        if consistency not in MODES:
            raise ValueError(f"dmml.model.consistency must be one of {', '.join(MODES)}, got {consistency!r}")
        self.subspaces = [[list(map(int, c)) for c in cols] for cols in subspaces]
        self.dim, self.consistency, self.consistency_weight = dim, consistency, consistency_weight
        self.coordination, self.double_projection = coordination, double_projection
        self.genes = nn.ModuleList([GeneEncoder(len(c), gene_hidden, dim, gene_dropout) for c in self.subspaces])
        self.branches = nn.ModuleList([TeacherBranch(pathology_dim, dim, heads, head_dim, points, dropout, n_bins)
                                       for _ in range(n_mags)])
        self._confidence = torch.zeros(n_mags, 2)

    def gene_embeddings(self, batch: SurvivalBatch) -> list[Tensor]:
        """The two subspace embeddings.

        Args:
            batch: B patients with genomics.

        Returns:
            [g_t, g_m], each (B, D).
        """
        fams = self.families(batch)
        return [enc(gather_subspace(fams, cols)) for enc, cols in zip(self.genes, self.subspaces)]

    def outputs(self, batch: SurvivalBatch) -> tuple[Tensor, Tensor, list[list[Tensor]]]:
        """Every magnification's prediction.

        Args:
            batch: B patients with stacked bags and genomics.

        Returns:
            (M, B, K) logits, (M, B, 2D) subspace features, and per magnification the two (B, L) attention maps.
        """
        genes = self.gene_embeddings(batch)
        logits, feats, maps = [], [], []
        for branch, bags in zip(self.branches, self.tokens(batch)):
            z, f, a = branch(bags, genes)
            logits.append(z)
            feats.append(f)
            maps.append(a)
        return torch.stack(logits), torch.stack(feats), maps

    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """NLL per magnification + inter-magnification consistency; records the halves' confidences.

        Args:
            batch: B patients (B >= 2 for the consistency term).

        Returns:
            ``(loss, {"surv", "consistency"})``.
        """
        logits, feats, maps = self.outputs(batch)
        surv = self.survival_losses(logits, batch)
        cons = logits.sum() * 0.0
        for other in maps[1:]:
            for a_main, a_other in zip(maps[0], other):
                cons = cons + consistency_loss(a_main, a_other, self.consistency)
        if self.training:
            for m, (branch, f) in enumerate(zip(self.branches, feats)):
                w = branch.classifier.weight
                halves = (f[:, :self.dim] @ w[:, :self.dim].T, f[:, self.dim:] @ w[:, self.dim:].T)
                self._confidence[m] += torch.stack([half_confidence(h, batch.bins).cpu() for h in halves])
        total = surv + self.consistency_weight * cons
        return total, {"surv": float(surv.detach()), "consistency": float(cons.detach())}

    def coordinate_gradients(self) -> None:
        """Coordinate each magnification's classifier gradient with the confidences recorded since the last
        call (between backward and the optimiser step), then reset them."""
        if self.coordination:
            for branch, (c_t, c_m) in zip(self.branches, self._confidence.tolist()):
                coordinate_classifier(branch.classifier.weight, self.dim, c_t, c_m, self.double_projection)
        self._confidence.zero_()
