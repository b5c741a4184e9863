"""MUST: modality-specific representation-aware transformer (paper §3.2–3.6, Fig. 1).

Shapes use B patients, D the model width, K time bins, N_i patches of patient i, F gene families.

* Pathology: bag (N_i, D_path) -> TransMIL (class token, Nyström attention, PPEG) -> g_P (D) and tokens
  H_P (N_i, D); a further Nyström self-attention layer over [CLS_uP; H_P] -> u_P (D).
* Genomics: F family vectors -> group-specific MLPs -> tokens -> self-attention with a class token ->
  g_G (D) and H_G (F, D); a further self-attention block over [CLS_uG; H_G] -> u_G (D).
* Bidirectional cross-attention (Eq. 7), pooled over the queries: c_{P<-G} (pathology queries over
  genomic tokens) and c_{G<-P} (genomic queries over pathology tokens).
* Low-rank shared subspace (Eq. 8): P∩ = Q Qᵀ with Q the orthonormalised (reduced QR) learnable
  B∩ (D, r), so P∩ is an exact orthogonal projector of rank r at every step.
  ĉ = P∩ c, û = (I − P∩) u (Eq. 9); g_P ≈ û_P + ĉ_{G<-P}, g_G ≈ û_G + ĉ_{P<-G} (Eq. 10).
* Head φ (MLP) on [û_P; ĉ; û_G] -> K hazard logits (Eq. 11), ĉ = mean of ĉ_{P<-G} and ĉ_{G<-P}
  (equal under the shared-consistency constraint).
* Losses: warm-up (Eq. 12) and main objective (Eq. 13–16). The decomposition and shared-consistency
  terms are squared L2 norms summed over the D dimensions as the paper writes them
  (``decomposition_norm="squared_l2"``), batch-averaged; ``"mse"`` averages over D instead, which
  makes them D times weaker for the same λ. With an exact projector the
  intra-modal orthogonality terms of Eq. 15 vanish identically (û ⟂ ĉ by construction); they are
  kept for fidelity to the paper.
* Missing modality (§3.6): c̃ = g_avail − û_avail, the missing û by DDIM of that modality's latent
  diffusion model conditioned on [c̃; CLS_u(missing)], 5 samples averaged, risk from φ.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mustsurv.models.batch import SurvivalBatch, subset
from mustsurv.models.diffusion import ConditionalLatentDiffusion
from mustsurv.models.genomics import GenomicsEncoder
from mustsurv.models.layers.attention import CrossAttentionPool, SelfAttentionBlock
from mustsurv.models.layers.transmil import TransLayer, TransMIL, checkpointing
from mustsurv.models.registry import register_model
from mustsurv.study.vocabulary import (
    GENOMICS,
    MODALITIES,
    PATHOLOGY,
    SCENARIOS,
    Scenario,
)
from mustsurv.survival import nll_loss, survival_from_hazards


@dataclass
class Decomposition:
    """Every representation of §3.2–3.3 for B patients, each (B, D).

    Attributes:
        g_p: pathology class output g_P.
        g_g: genomics class output g_G.
        u_p: pathology-specific component u_P.
        u_g: genomics-specific component u_G.
        c_pg: cross-attended shared component c_{P<-G}.
        c_gp: cross-attended shared component c_{G<-P}.
        u_p_hat: û_P, ``u_p`` projected on the specific subspace.
        u_g_hat: û_G, ``u_g`` projected on the specific subspace.
        c_pg_hat: ĉ_{P<-G}, ``c_pg`` projected on the shared subspace.
        c_gp_hat: ĉ_{G<-P}, ``c_gp`` projected on the shared subspace.
    """

    g_p: Tensor
    g_g: Tensor
    u_p: Tensor
    u_g: Tensor
    c_pg: Tensor  # c_{P<-G}: pathology queries, genomic keys/values
    c_gp: Tensor  # c_{G<-P}: genomic queries, pathology keys/values
    u_p_hat: Tensor
    u_g_hat: Tensor
    c_pg_hat: Tensor
    c_gp_hat: Tensor

    @property
    def c_hat(self) -> Tensor:
        """Shared component ĉ used by the head: mean of ĉ_{P<-G} and ĉ_{G<-P}, (B, D)."""
        return 0.5 * (self.c_pg_hat + self.c_gp_hat)


def patient_generator(seed: int, patient_id: str, device: torch.device | str = "cpu") -> torch.Generator:
    """Make a generator seeded from ``seed`` and the patient id.

    A patient's samples then do not depend on the batch it is predicted in.

    Args:
        seed: the run's sampling seed.
        patient_id: the patient's identifier.
        device: device of the generator.

    Returns:
        The seeded generator.
    """
    gen = torch.Generator(device=device)
    gen.manual_seed((int(seed) * 1_000_003 + zlib.crc32(patient_id.encode())) % (2**63))
    return gen


@register_model("must")
class MUST(nn.Module):
    """The MUST model with its two conditional latent diffusion models (``ldm_pathology``, ``ldm_genomics``)."""

    def __init__(
        self,
        family_dims: Sequence[int],
        pathology_dim: int = 1536,
        dim: int = 256,
        rank: int = 64,
        n_bins: int = 4,
        heads: int = 8,
        num_landmarks: int | None = None,
        pinv_iterations: int = 6,
        genomics_hidden: int = 256,
        genomics_layers: int = 1,
        dropout: float = 0.1,
        genomics_dropout: float = 0.25,
        warmup_sigma: float = 0.1,
        warmup_slot: Literal["modality", "first"] = "modality",
        lambda_dec: float = 1.0,
        lambda_sh: float = 1.0,
        lambda_orth: float = 0.5,
        alpha: float = 0.0,
        ldm_layers: int = 4,
        ldm_heads: int = 8,
        ldm_timesteps: int = 1000,
        ldm_schedule: str = "linear",
        ldm_beta_start: float = 1e-4,
        ldm_beta_end: float = 0.02,
        ldm_condition: Literal["shared", "surrogate"] = "shared",
        ldm_clip_x0: float | None = 4.0,
        ldm_mlp_ratio: float = 4.0,
        ldm_cls: bool = True,
        ldm_prediction: Literal["eps", "v"] = "eps",
        checkpoint_patches: int | None = 20000,
        decomposition_norm: Literal["squared_l2", "mse"] = "squared_l2",
    ) -> None:
        """Build the encoders, the shared subspace, the head and the two diffusion models.

        Defaults mirror the paper's settings (D = 256, r = 64, K = 4, σ = 0.1, λ = 1 / 1 / 0.5).

        Args:
            family_dims: d_k of each genomic family.
            pathology_dim: D_path of the patch features.
            dim: representation dimension D.
            rank: rank r of the shared subspace, 0 < r < D.
            n_bins: number of time bins K (hazard logits per patient).
            heads: attention heads of every attention layer of the encoders.
            num_landmarks: Nyström landmarks of TransMIL; None uses ``dim // 2``.
            pinv_iterations: iterations of the Nyström pseudo-inverse.
            genomics_hidden: hidden width of the family MLPs.
            genomics_layers: self-attention blocks of the genomics encoder.
            dropout: dropout of the pathology branch, the attention layers and the head.
            genomics_dropout: dropout of the genomics encoder.
            warmup_sigma: σ of the noise ε ~ N(0, σ²) of the warm-up stage (Eq. 12).
            warmup_slot: where g_m goes in the head's input for Eq. 12: ``"modality"`` puts g_P in û_P's slot
                and g_G in û_G's slot with ε (2D values, N(0, σ²)) in the two others; ``"first"`` reads
                ``[g_m; ε_m]`` literally (g in the first slot for both modalities).
            lambda_dec: weight λ_dec of the decomposition loss.
            lambda_sh: weight λ_sh of the shared-component loss.
            lambda_orth: weight λ_orth of the orthogonality loss.
            alpha: up-weighting of the uncensored term of the survival likelihood.
            ldm_layers: blocks of each diffusion model's ε-predictor.
            ldm_heads: attention heads of the ε-predictor.
            ldm_timesteps: diffusion steps T.
            ldm_schedule: noise schedule (``linear``, ``scaled_linear`` or ``cosine``).
            ldm_beta_start: first β of the schedule.
            ldm_beta_end: last β of the schedule.
            ldm_condition: what each diffusion model is trained on: ``"shared"`` (paper §3.5) the shared
                component the other modality gives, ĉ_{G<-P} / ĉ_{P<-G}; ``"surrogate"`` the inference-time
                condition itself, c̃ = g_avail − û_avail, which equals ĉ only once the decomposition is exact
                (supplement §8.2 uses it for unpaired patients).
            ldm_clip_x0: bound of DDIM's predicted clean latent (standardised units; see
                :class:`~mustsurv.models.diffusion.ConditionalLatentDiffusion`); None = off.
            ldm_mlp_ratio: FFN width of the ε-predictor's blocks over D.
            ldm_cls: False conditions the diffusion models on [ĉ] without the class token (Table 3(b)).
            ldm_prediction: ``"eps"`` or ``"v"`` network output of the diffusion models.
            checkpoint_patches: bags with more patches train with activation checkpointing (TransMIL, the
                pathology-specific layer and the cross-attention recompute their activations in backward: same
                gradients, far less memory); None = never.
            decomposition_norm: Eq. 13–14 as squared L2 norms (``"squared_l2"``, paper) or as mean squared errors
                over the D dimensions (``"mse"``).

        Raises:
            ValueError: ``rank`` is not in (0, ``dim``), or ``ldm_condition``, ``decomposition_norm`` or
                ``warmup_slot`` is not one of its values.
        """
        super().__init__()
        if not 0 < rank < dim:
            raise ValueError(f"the shared subspace rank must satisfy 0 < r < D = {dim}, got {rank}")
        if ldm_condition not in ("shared", "surrogate"):
            raise ValueError(f"ldm_condition must be 'shared' or 'surrogate', got {ldm_condition!r}")
        self.ldm_condition = ldm_condition
        if decomposition_norm not in ("squared_l2", "mse"):
            raise ValueError(f"decomposition_norm must be 'squared_l2' or 'mse', got {decomposition_norm!r}")
        self.decomposition_norm = decomposition_norm
        if warmup_slot not in ("modality", "first"):
            raise ValueError(f"warmup_slot must be 'modality' or 'first', got {warmup_slot!r}")
        self.dim, self.rank, self.n_bins = dim, rank, n_bins
        self.checkpoint_patches = checkpoint_patches
        self.warmup_sigma, self.warmup_slot = warmup_sigma, warmup_slot
        self.lambda_dec, self.lambda_sh, self.lambda_orth, self.alpha = lambda_dec, lambda_sh, lambda_orth, alpha
        # pathology branch
        self.transmil = TransMIL(pathology_dim, dim, heads, num_landmarks, pinv_iterations, dropout,
                                 checkpoint_patches)
        self.cls_u_p = nn.Parameter(torch.randn(dim) * 0.02)
        self.specific_pathology = TransLayer(dim, heads, num_landmarks, pinv_iterations, dropout, checkpoint_patches)
        self.norm_u_p = nn.LayerNorm(dim)
        # genomics branch
        self.genomics = GenomicsEncoder(family_dims, dim, genomics_hidden, heads, genomics_layers, genomics_dropout)
        self.cls_u_g = nn.Parameter(torch.randn(dim) * 0.02)
        self.specific_genomics = SelfAttentionBlock(dim, heads, dropout=dropout)
        self.norm_u_g = nn.LayerNorm(dim)
        # cross-modal interaction and shared subspace
        self.cross_pg = CrossAttentionPool(dim, heads, dropout)
        self.cross_gp = CrossAttentionPool(dim, heads, dropout)
        self.basis_raw = nn.Parameter(torch.linalg.qr(torch.randn(dim, rank))[0])
        # prediction head φ
        self.head = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, n_bins))
        # stage-3 generators of the modality-specific components
        ldm = dict(dim=dim, layers=ldm_layers, heads=ldm_heads, timesteps=ldm_timesteps, schedule=ldm_schedule,
                   beta_start=ldm_beta_start, beta_end=ldm_beta_end, clip_x0=ldm_clip_x0,
                   mlp_ratio=ldm_mlp_ratio, use_cls=ldm_cls, prediction=ldm_prediction)
        self.ldm_pathology = ConditionalLatentDiffusion(**ldm)
        self.ldm_genomics = ConditionalLatentDiffusion(**ldm)

    # ------------------------------------------------------------------ subspace
    def basis(self) -> Tensor:
        """Orthonormal basis Q (D, r) of the shared subspace (reduced QR of B∩)."""
        return torch.linalg.qr(self.basis_raw)[0]

    def projector(self) -> Tensor:
        """P∩ = Q Qᵀ (D, D): symmetric, idempotent, rank r."""
        q = self.basis()
        return q @ q.T

    def project_shared(self, x: Tensor) -> Tensor:
        """Project rows on the shared subspace: P∩ x.

        Args:
            x: (B, D) rows.

        Returns:
            (B, D) projections.
        """
        q = self.basis()
        return (x @ q) @ q.T

    def project_specific(self, x: Tensor) -> Tensor:
        """Project rows on the specific subspace: (I − P∩) x.

        Args:
            x: (B, D) rows.

        Returns:
            (B, D) projections.
        """
        return x - self.project_shared(x)

    # ------------------------------------------------------------------ encoders
    def encode_pathology(self, bags: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Encode B pathology bags.

        Each bag goes through TransMIL on its own (the square padding, landmarks and PPEG grid depend
        on its length); everything after works on padded tensors with masks.

        Args:
            bags: B bags, each (N_i, D_path).

        Returns:
            g_P (B, D), u_P (B, D), padded tokens H_P (B, N_max, D) and their mask (B, N_max) (True = real token).
        """
        g, u, tokens = [], [], []
        for bag in bags:
            g_i, h_i = self.transmil(bag)
            big = checkpointing(self, bag.shape[0], self.checkpoint_patches)
            u.append(checkpoint(self._specific_pathology, h_i, use_reentrant=False) if big
                     else self._specific_pathology(h_i))
            g.append(g_i)
            tokens.append(h_i)
        lengths = torch.tensor([t.shape[0] for t in tokens], device=tokens[0].device)
        padded = tokens[0].unsqueeze(0) if len(tokens) == 1 else nn.utils.rnn.pad_sequence(tokens, batch_first=True)
        mask = torch.arange(padded.shape[1], device=padded.device)[None] < lengths[:, None]
        return torch.stack(g), torch.stack(u), padded, mask

    def patch_attention(self, bag: Tensor) -> Tensor:
        """Where the pathology branch looks: TransMIL's class-token attention over one bag's patches.

        The class token's output is g_P, from which the shared part of the pathology representation is
        projected; u_P and the cross-attention read the token outputs, whose own attention this does not
        show (docs/heatmaps.md).

        Args:
            bag: (N, D_path) patch features.

        Returns:
            (N,) weights summing to 1.
        """
        return self.transmil.class_attention(bag)

    def _specific_pathology(self, tokens: Tensor) -> Tensor:
        """u_P (D,): the output at [CLS_uP] of the specific self-attention over a bag's tokens (N, D)."""
        x = torch.cat([self.cls_u_p.view(1, 1, -1), tokens.unsqueeze(0)], dim=1)
        return self.norm_u_p(self.specific_pathology(x)[0, 0])

    def encode_genomics(self, genomics: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Encode the genomic families.

        Args:
            genomics: F tensors (B, d_k).

        Returns:
            g_G (B, D), u_G (B, D) and the family tokens H_G (B, F, D).
        """
        g, tokens = self.genomics(genomics)
        x = torch.cat([self.cls_u_g.view(1, 1, -1).expand(tokens.shape[0], -1, -1), tokens], dim=1)
        u = self.norm_u_g(self.specific_genomics(x)[:, 0])
        return g, u, tokens

    @staticmethod
    def _require(batch: SurvivalBatch, pathology: bool, genomics: bool, what: str) -> None:
        """Raise ValueError when a patient of ``batch`` lacks a modality that ``what`` needs."""
        missing = [
            pid for pid, hp, hg in zip(batch.patient_ids, batch.has_pathology.tolist(), batch.has_genomics.tolist())
            if (pathology and not hp) or (genomics and not hg)
        ]
        if missing:
            need = " and ".join(n for n, flag in ((PATHOLOGY, pathology), (GENOMICS, genomics)) if flag)
            raise ValueError(f"{what} needs {need} for every patient; missing for {', '.join(missing[:10])}")

    def decompose(self, batch: SurvivalBatch) -> Decomposition:
        """Compute all representations for complete patients (both modalities present).

        Args:
            batch: B patients, each with pathology and genomics.

        Returns:
            The :class:`Decomposition`, each field (B, D).

        Raises:
            ValueError: a patient lacks a modality.
        """
        self._require(batch, True, True, "the full MUST forward pass")
        g_p, u_p, h_p, mask_p = self.encode_pathology([p for p in batch.pathology if p is not None])
        g_g, u_g, h_g = self.encode_genomics(batch.genomics or [])
        if checkpointing(self, h_p.shape[1], self.checkpoint_patches):  # recomputed in backward, as the bags
            c_pg = checkpoint(self.cross_pg, h_p, h_g, mask_p, use_reentrant=False)
            c_gp = checkpoint(self.cross_gp, h_g, h_p, None, mask_p, use_reentrant=False)
        else:
            c_pg = self.cross_pg(h_p, h_g, query_mask=mask_p)
            c_gp = self.cross_gp(h_g, h_p, context_mask=mask_p)
        return Decomposition(
            g_p=g_p, g_g=g_g, u_p=u_p, u_g=u_g, c_pg=c_pg, c_gp=c_gp,
            u_p_hat=self.project_specific(u_p), u_g_hat=self.project_specific(u_g),
            c_pg_hat=self.project_shared(c_pg), c_gp_hat=self.project_shared(c_gp),
        )

    def head_logits(self, u_p: Tensor, c: Tensor, u_g: Tensor) -> Tensor:
        """Apply the head φ([û_P; ĉ; û_G]).

        Args:
            u_p: (B, D) pathology-specific slot.
            c: (B, D) shared slot.
            u_g: (B, D) genomics-specific slot.

        Returns:
            (B, K) hazard logits.
        """
        return self.head(torch.cat([u_p, c, u_g], dim=1))

    # ------------------------------------------------------------------ losses
    def warmup_loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute the stage-1 loss (Eq. 12): L_surv(φ([g_P; ε_P])) + L_surv(φ([g_G; ε_G])), ε ~ N(0, σ²).

        Each term is over the patients that have the modality (mean over them).

        Args:
            batch: B patients with at least one modality each.

        Returns:
            The scalar loss and its logged parts.

        Raises:
            ValueError: no patient of the batch has either modality.
        """
        terms: dict[str, Tensor] = {}
        sigma = self.warmup_sigma
        if bool(batch.has_pathology.any()):
            idx = batch.has_pathology.nonzero().view(-1)
            g_p = self.encode_pathology([batch.pathology[i] for i in idx.tolist()])[0]
            eps = sigma * torch.randn(g_p.shape[0], 2 * self.dim, device=g_p.device, dtype=g_p.dtype)
            logits = self.head(torch.cat([g_p, eps], dim=1))
            terms["surv_p"] = nll_loss(logits, batch.bins[idx], batch.event[idx], self.alpha)
        if bool(batch.has_genomics.any()):
            idx = batch.has_genomics.nonzero().view(-1)
            g_g = self.encode_genomics([o[idx] for o in batch.genomics or []])[0]
            eps = sigma * torch.randn(g_g.shape[0], 2 * self.dim, device=g_g.device, dtype=g_g.dtype)
            x = torch.cat([eps, g_g] if self.warmup_slot == "modality" else [g_g, eps], dim=1)
            terms["surv_g"] = nll_loss(self.head(x), batch.bins[idx], batch.event[idx], self.alpha)
        if not terms:
            raise ValueError(f"patients {batch.patient_ids} have neither pathology nor genomics")
        loss = sum(terms.values())
        return loss, {k: float(v.detach()) for k, v in terms.items()}

    def main_loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute the stage-2 loss (Eq. 16): L_surv + λ_dec L_decomp + λ_sh L_shared + λ_orth L_orth (batch means).

        Unpaired patients (one modality absent; supplement §8.2) contribute the survival loss only, with
        a zero tensor for the missing û and c̃ = g_avail − û_avail as the shared component. Every term is a
        mean of per-patient terms over the batch (a paired-only term is 0 for an unpaired patient), so the
        grouped and the bs-1 forms still give the same gradient.

        Args:
            batch: B patients with at least one modality each.

        Returns:
            The scalar loss and its logged parts.

        Raises:
            ValueError: a patient has neither modality.
        """
        paired = batch.has_pathology & batch.has_genomics
        n = len(batch)
        if bool(paired.all()):
            return self._paired_loss(batch)
        if not bool((batch.has_pathology | batch.has_genomics).all()):
            raise ValueError(f"patients {batch.patient_ids} include one with neither pathology nor genomics")
        total = torch.zeros((), device=batch.bins.device)
        sums = {"surv": 0.0, "decomp": 0.0, "shared": 0.0, "orth": 0.0}
        if bool(paired.any()):
            sub = subset(batch, paired.nonzero().view(-1).tolist())
            loss, logs = self._paired_loss(sub)
            total = total + loss * len(sub) / n
            sums = {k: v * len(sub) / n for k, v in logs.items()}
        for scenario, rows in (("missing_genomics", batch.has_pathology & ~batch.has_genomics),
                               ("missing_pathology", batch.has_genomics & ~batch.has_pathology)):
            if bool(rows.any()):
                sub = subset(batch, rows.nonzero().view(-1).tolist())
                surv = nll_loss(self.unpaired_logits(sub, scenario), sub.bins, sub.event, self.alpha)
                total = total + surv * len(sub) / n
                sums["surv"] += float(surv.detach()) * len(sub) / n
        return total, sums

    def unpaired_logits(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Compute the head's logits for patients with one modality.

        φ([û_P; c̃; 0]) for ``missing_genomics`` or φ([0; c̃; û_G]) for ``missing_pathology``.

        Args:
            batch: B patients that all have the available modality.
            scenario: ``missing_genomics`` or ``missing_pathology``.

        Returns:
            (B, K) hazard logits.
        """
        if scenario == "missing_genomics":
            g, u = self.encode_pathology([p for p in batch.pathology if p is not None])[:2]
            u_hat = self.project_specific(u)
            return self.head_logits(u_hat, g - u_hat, torch.zeros_like(u_hat))
        g, u = self.encode_genomics(batch.genomics or [])[:2]
        u_hat = self.project_specific(u)
        return self.head_logits(torch.zeros_like(u_hat), g - u_hat, u_hat)

    def _sq_dist(self, a: Tensor, b: Tensor) -> Tensor:
        """Batch mean of ‖a − b‖² (``squared_l2``) or of the per-dimension mean (``mse``) for (B, D) rows."""
        sq = (a - b).pow(2)
        return (sq.sum(dim=1) if self.decomposition_norm == "squared_l2" else sq.mean(dim=1)).mean()

    def _paired_loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """The full objective of Eq. 16 on patients having both modalities."""
        d = self.decompose(batch)
        surv = nll_loss(self.head_logits(d.u_p_hat, d.c_hat, d.u_g_hat), batch.bins, batch.event, self.alpha)
        dec = (self._sq_dist(d.g_p, d.u_p_hat + d.c_gp_hat) + self._sq_dist(d.g_g, d.u_g_hat + d.c_pg_hat))
        shared = self._sq_dist(d.c_pg_hat, d.c_gp_hat)
        orth = (
            F.cosine_similarity(d.u_p_hat, d.u_g_hat, dim=1).abs()
            + F.cosine_similarity(d.u_p_hat, d.c_pg_hat, dim=1).abs()
            + F.cosine_similarity(d.u_g_hat, d.c_gp_hat, dim=1).abs()
        ).mean()
        loss = surv + self.lambda_dec * dec + self.lambda_sh * shared + self.lambda_orth * orth
        logs = {"surv": surv, "decomp": dec, "shared": shared, "orth": orth}
        return loss, {k: float(v.detach()) for k, v in logs.items()}

    def ldm_targets(self, batch: SurvivalBatch) -> dict[str, tuple[Tensor, Tensor]]:
        """Build the stage-3 training pairs of each diffusion model.

        The condition comes from the *other* modality, as at inference when this one is missing:
        ĉ_{P<-G} / ĉ_{G<-P} (``ldm_condition="shared"``) or c̃ = g_G − û_G / g_P − û_P (``"surrogate"``).

        Args:
            batch: B complete patients.

        Returns:
            ``{"pathology": (û_P, cond_P), "genomics": (û_G, cond_G)}``, each tensor (B, D).
        """
        with torch.no_grad():
            d = self.decompose(batch)
        if self.ldm_condition == "surrogate":
            return {PATHOLOGY: (d.u_p_hat, d.g_g - d.u_g_hat), GENOMICS: (d.u_g_hat, d.g_p - d.u_p_hat)}
        return {PATHOLOGY: (d.u_p_hat, d.c_pg_hat), GENOMICS: (d.u_g_hat, d.c_gp_hat)}

    def ldm_loss(self, modality: str, z0: Tensor, cond: Tensor,
                 generator: torch.Generator | None = None) -> Tensor:
        """Compute the ε-prediction loss (Eq. 19) of one modality's diffusion model.

        Args:
            modality: ``"pathology"`` or ``"genomics"``.
            z0: (B, D) targets û.
            cond: (B, D) conditions.
            generator: source of the timesteps and noise; the global one when None.

        Returns:
            Scalar loss.

        Raises:
            ValueError: unknown ``modality``.
        """
        ldm, cls = self._ldm(modality)
        return ldm.loss(z0, cond, cls.detach(), generator)

    def _ldm(self, modality: str) -> tuple[ConditionalLatentDiffusion, Tensor]:
        """The diffusion model and class token of ``modality``; ValueError for an unknown one."""
        if modality == PATHOLOGY:
            return self.ldm_pathology, self.cls_u_p
        if modality == GENOMICS:
            return self.ldm_genomics, self.cls_u_g
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")

    # ------------------------------------------------------------------ inference
    def sample_specific(
        self,
        modality: str,
        cond: Tensor,
        patient_ids: Sequence[str],
        n_samples: int = 5,
        steps: int = 50,
        seed: int = 0,
    ) -> Tensor:
        """Sample the missing modality's specific component û conditioned on [c̃; CLS_u].

        All B x S samples are denoised together; the initial noise of each patient comes from
        :func:`patient_generator`.

        Args:
            modality: the modality to generate, ``"pathology"`` or ``"genomics"``.
            cond: (B, D) conditions c̃.
            patient_ids: B patient ids (seed the noise).
            n_samples: S DDIM samples per patient.
            steps: DDIM steps.
            seed: sampling seed.

        Returns:
            (B, D) mean of the S samples.

        Raises:
            ValueError: unknown ``modality``.
        """
        ldm, cls = self._ldm(modality)
        noise = torch.stack([
            torch.randn((n_samples, self.dim), generator=patient_generator(seed, pid), dtype=cond.dtype)
            for pid in patient_ids
        ]).to(cond.device)
        samples = ldm.sample(cond, cls, noise=noise, steps=steps)
        return self.project_specific(samples.mean(dim=1))

    @torch.no_grad()
    def predict_logits(
        self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50, seed: int = 0,
        specific: Literal["ldm", "zero"] = "ldm",
    ) -> Tensor:
        """Predict hazard logits in a scenario.

        ``complete`` uses [û_P; ĉ; û_G]; ``missing_genomics`` uses [û_P; c̃; ũ_G] with c̃ = g_P − û_P
        (Eq. 20–22); ``missing_pathology`` is symmetric.

        Args:
            batch: B patients having the scenario's available modalities.
            scenario: ``complete``, ``missing_genomics`` or ``missing_pathology``.
            n_samples: DDIM samples per patient for the missing ũ.
            steps: DDIM steps.
            seed: sampling seed.
            specific: ``"ldm"`` samples the missing ũ; ``"zero"`` puts a zero tensor in its place (the
                "without LDM" inference of supplement Table 4).

        Returns:
            (B, K) hazard logits.

        Raises:
            ValueError: unknown ``specific`` or ``scenario``, or a patient lacks a needed modality.
        """
        if specific not in ("ldm", "zero"):
            raise ValueError(f"specific must be 'ldm' or 'zero', got {specific!r}")
        if scenario == "complete":
            d = self.decompose(batch)
            return self.head_logits(d.u_p_hat, d.c_hat, d.u_g_hat)
        if scenario == "missing_genomics":
            self._require(batch, True, False, "the missing-genomics scenario")
            g_p, u_p = self.encode_pathology([p for p in batch.pathology if p is not None])[:2]
            u_p_hat = self.project_specific(u_p)
            c_tilde = g_p - u_p_hat
            u_g = (torch.zeros_like(c_tilde) if specific == "zero"
                   else self.sample_specific(GENOMICS, c_tilde, batch.patient_ids, n_samples, steps, seed))
            return self.head_logits(u_p_hat, c_tilde, u_g)
        if scenario == "missing_pathology":
            self._require(batch, False, True, "the missing-pathology scenario")
            g_g, u_g = self.encode_genomics(batch.genomics or [])[:2]
            u_g_hat = self.project_specific(u_g)
            c_tilde = g_g - u_g_hat
            u_p = (torch.zeros_like(c_tilde) if specific == "zero"
                   else self.sample_specific(PATHOLOGY, c_tilde, batch.patient_ids, n_samples, steps, seed))
            return self.head_logits(u_p, c_tilde, u_g_hat)
        raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")

    @torch.no_grad()
    def predict_survival(
        self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50, seed: int = 0,
        specific: Literal["ldm", "zero"] = "ldm",
    ) -> Tensor:
        """Survival after each time bin in ``scenario`` (see :meth:`predict_logits`).

        The DDIM samples are averaged in latent space (the mean ũ of ``n_samples`` samples) before the
        head, so one set of logits, hence one survival curve, comes out per patient; the risk
        (:meth:`predict_risk`) is computed from this same curve.

        Args:
            batch: B patients.
            scenario: The evaluation scenario.
            n_samples: DDIM samples averaged per patient (missing scenarios).
            steps: DDIM steps.
            seed: Sampling seed (combined with each patient id).
            specific: ``"ldm"`` samples the missing ũ, ``"zero"`` puts a zero tensor in its place.

        Returns:
            (B, K) survival ``S(k) = Π_{j≤k} (1 − h_j)``, non-increasing along k.
        """
        return survival_from_hazards(torch.sigmoid(self.predict_logits(batch, scenario, n_samples, steps, seed,
                                                                       specific)))

    @torch.no_grad()
    def predict_risk(
        self, batch: SurvivalBatch, scenario: Scenario, n_samples: int = 5, steps: int = 50, seed: int = 0,
        specific: Literal["ldm", "zero"] = "ldm",
    ) -> Tensor:
        """Predict the risk −Σ_k S(k) in a scenario, from :meth:`predict_survival`.

        Args:
            batch: B patients.
            scenario: ``complete``, ``missing_genomics`` or ``missing_pathology``.
            n_samples: DDIM samples per patient.
            steps: DDIM steps.
            seed: sampling seed.
            specific: ``"ldm"`` or ``"zero"``.

        Returns:
            (B,) risk scores (higher = earlier death).
        """
        return -self.predict_survival(batch, scenario, n_samples, steps, seed, specific).sum(dim=1)
