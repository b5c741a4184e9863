"""SMIL: multimodal learning with severely missing modality, as a survival model on bags + gene families.

Reference: Ma, Ren, Zhao, Tulyakov, Wu & Peng, "SMIL: Multimodal Learning with Severely Missing
Modality", AAAI 2021. Two ideas on top of a multimodal main network:

* *missing-modality reconstruction*: the feature of an absent modality is approximated as a weighted
  sum of that modality's *priors* (k-means centroids of its training features); a reconstruction
  network φ_c infers the weights from the available modality, so only the weights, not the feature, are
  generated;
* *uncertainty-guided feature regularisation*: a Bayesian regulariser network φ_r maps the (fused)
  feature to a Gaussian over a multiplicative perturbation (Meta-Dropout style), trained by Bayesian
  meta-learning: an inner gradient step of the main network on the perturbed features, an outer loss of
  the stepped network on the unperturbed ones, whose gradient reaches φ_r through the inner step.

This implementation (shapes: B patients, D = ``dim``, C = ``n_priors``, K = ``n_bins``):

* encoders: :class:`BagEncoder` (gated-attention pooling) -> h_P (B, D) and :class:`FamilyEncoder`
  (family SNN tokens + self-attention) -> h_G (B, D), shared with the other Table 2 baselines;
* priors: buffers ``priors_pathology`` / ``priors_genomics`` (C, D), k-means centroids of the training
  patients' pathology / genomic embeddings (fitted in :meth:`SMIL.prepare`, tracked during training
  by an online k-means step on the batch's detached embeddings, refined by Lloyd iterations on the
  final eval-mode embeddings in :meth:`SMIL.finish`);
* reconstruction, both directions: ĥ_G = softmax(φ_c^{P->G}(h_P)) · priors_genomics,
  ĥ_P = softmax(φ_c^{G->P}(h_G)) · priors_pathology (φ_c an MLP D -> D -> C);
* fusion x = [h_P; h_G] (2D) with a missing modality replaced by its reconstruction; regulariser
  φ_r(x) -> (μ, log σ) (2D each); training perturbation x ⊙ softplus(μ + σ ε), ε ~ N(0, I); the
  deterministic feature x ⊙ softplus(μ) at inference and in the outer loss;
* head θ: Linear(2D, D) + ReLU + dropout + Linear(D, K) hazard logits;
* bi-level step per training batch: the meta-train set is a replay memory of the last R = ``meta_size``
  training patients (their fused features x_r, detached, with bins and events; patients of the current
  batch excluded); inner NLL L_in(θ) on their perturbed features x_r ⊙ softplus(μ(x_r) + σ(x_r) ε),
  θ' = θ − η ∇_θ L_in (``inner_lr`` η, second order: the gradient flows back through the step); the
  meta-test set is the current batch: outer NLL L_out(θ'; x̄_i) on the deterministic feature;
* loss per patient i: L_out,i + ``kl_weight`` · KL(N(μ_i, σ_i²) ‖ N(0, I)) (mean over the 2D
  features) + ``recon_weight`` · MSE(ĥ, sg(h)) (both directions), averaged over the batch.

Adaptations:

* Bags have no input space to reconstruct in, so the priors and the reconstruction live in the
  encoders' D-dim embedding space (SMIL clusters modality features too; here they are the learned
  embeddings, which drift during training — hence the online k-means tracking and the final Lloyd
  refinement; the refinement starts from the current centroids so each prior keeps its identity for
  φ_c). Empty clusters are re-seeded at the point farthest from its centroid.
* Training patients all have both modalities (paired training, as for every Table 2 baseline), so
  SMIL's modality-incomplete training set is simulated: each training patient independently takes the
  missing path with probability ``missing_rate`` (``torch.rand < missing_rate``), and then loses
  genomics with probability ``genomics_share``, else pathology (:meth:`SMIL.draw_missing`); its dropped
  modality is replaced by the reconstruction from the other one, so both reconstruction directions are
  trained by the survival loss.
* The bi-level meta-learning is simplified to one inner SGD step on the fusion head θ only (not on the
  encoders), per training batch, with the replay memory of recently seen training patients as the
  meta-train set and the current batch (one patient in the paper's batch-size-1 protocol) as the
  meta-test set; SMIL samples both from the training data. The split must not share patients: an inner
  step on the meta-test patient's own label lets θ' fit that label, and the outer loss then stops
  measuring θ (tried; the training loss collapsed and the missing-pathology C-index fell below 0.5).
  All parameters (encoders, φ_c, φ_r, θ) are then updated by the trainer's optimiser on the outer
  loss (Adam, lr 1e-3, 50 epochs per the MUST paper's supplement §7.3); inference uses θ. φ_r's σ is
  trained only through the inner step (the meta-gradient) and the KL term; μ also scales the
  deterministic feature. The replay memory is a set of buffers, so a resumed run continues with it.
* An auxiliary reconstruction term ``recon_weight`` · MSE(ĥ_m, sg(h_m)) on every training patient,
  both directions, gives φ_c a direct signal besides the survival loss (0 disables it).
* The online prior update and the replay memory are buffer updates inside ``loss`` (like batch-norm
  statistics), so the trainer's grouped and batch-size-1 forms differ in them by the grouping of the
  updates only (in the grouped form the inner step is shared by the group's patients).
"""

from __future__ import annotations

import zlib
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mustsurv.models.baselines.base import xavier_init
from mustsurv.models.baselines.missing import (
    BagEncoder,
    EncoderPair,
    FamilyEncoder,
    MissingModalityBaseline,
)
from mustsurv.models.batch import PatientItem, SurvivalBatch, collate, item_buckets
from mustsurv.models.registry import register_model
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, Scenario
from mustsurv.survival import nll_loss


def patient_key(patient_id: str) -> int:
    """Compute a stable integer key of a patient id (CRC-32), stored with the replay memory.

    Args:
        patient_id: the patient's identifier.

    Returns:
        The key.
    """
    return zlib.crc32(str(patient_id).encode())


# ---------------------------------------------------------------------------------------------- k-means
def _farthest_reseed(x: Tensor, centroids: Tensor, empty: Tensor) -> Tensor:
    """Move each empty centroid onto the point of ``x`` farthest from its nearest centroid, one at a time.

    ``x`` (N, D), ``centroids`` (C, D), ``empty`` (C,) bool; returns the new centroids (C, D).
    """
    centroids = centroids.clone()
    for k in torch.nonzero(empty).flatten().tolist():
        far = torch.cdist(x, centroids).min(dim=1).values.argmax()
        centroids[k] = x[far]
    return centroids


def lloyd(x: Tensor, centroids: Tensor, iters: int) -> Tensor:
    """Run Lloyd iterations of k-means.

    A centroid left without points is re-seeded at the point farthest from its nearest centroid.

    Args:
        x: (N, D) points.
        centroids: (C, D) initial centroids.
        iters: number of iterations.

    Returns:
        (C, D) centroids.
    """
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(dim=1)  # (N,)
        counts = torch.bincount(assign, minlength=centroids.shape[0]).to(x.dtype)  # (C,)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        empty = counts == 0
        if bool(empty.any()) and x.shape[0] >= centroids.shape[0]:
            new = _farthest_reseed(x, new, empty)
        if torch.allclose(new, centroids):
            return new
        centroids = new
    return centroids


def kmeans(x: Tensor, k: int, iters: int = 25, seed: int = 0) -> Tensor:
    """Run k-means++ seeding + Lloyd iterations.

    With fewer points than ``k`` the points are reused, each copy jittered by 1e-3 of the data scale.

    Args:
        x: (N, D) points.
        k: number of centroids.
        iters: Lloyd iterations.
        seed: seed of the k-means++ generator.

    Returns:
        (k, D) centroids.

    Raises:
        ValueError: ``x`` has no point.
    """
    gen = torch.Generator().manual_seed(seed)
    x_cpu = x.detach().float().cpu()
    n = x_cpu.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one point")
    if n < k:
        idx = torch.arange(k) % n
        scale = float(x_cpu.std()) if n > 1 else 1.0
        noise = torch.randn(k, x_cpu.shape[1], generator=gen) * 1e-3 * max(scale, 1e-6)
        cent = x_cpu[idx] + noise * (torch.arange(k) >= n).float()[:, None]
        return cent.to(x.device, x.dtype)
    first = int(torch.randint(n, (1,), generator=gen))
    chosen = [first]
    d2 = ((x_cpu - x_cpu[first]) ** 2).sum(dim=1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if float(d2.sum()) > 0 else torch.full_like(d2, 1.0 / n)
        nxt = int(torch.multinomial(probs, 1, generator=gen))
        chosen.append(nxt)
        d2 = torch.minimum(d2, ((x_cpu - x_cpu[nxt]) ** 2).sum(dim=1))
    cent = lloyd(x_cpu, x_cpu[chosen].clone(), iters)
    return cent.to(x.device, x.dtype)


# ---------------------------------------------------------------------------------------------- layers
class FunctionalHead(nn.Module):
    """Linear(in, hidden) + ReLU + dropout + Linear(hidden, K), callable with substitute weights.

    The substitute weights are the inner step's θ'; ``x`` (B, in) -> (B, K).
    """

    def __init__(self, in_dim: int, hidden: int, n_bins: int, dropout: float) -> None:
        """Build the two linear layers.

        Args:
            in_dim: input width.
            hidden: hidden width.
            n_bins: number of time bins K.
            dropout: dropout probability.
        """
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, n_bins)
        self.dropout = dropout

    def weights(self) -> list[Tensor]:
        """θ as a list [W1, b1, W2, b2]."""
        return [self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias]

    def forward(self, x: Tensor, weights: Sequence[Tensor] | None = None) -> Tensor:
        """Apply the head.

        Args:
            x: (B, in) features.
            weights: substitute [W1, b1, W2, b2]; the module's own when None.

        Returns:
            (B, K) hazard logits.
        """
        w1, b1, w2, b2 = self.weights() if weights is None else weights
        h = F.dropout(F.relu(F.linear(x, w1, b1)), self.dropout, self.training)
        return F.linear(h, w2, b2)


class FeatureRegularizer(nn.Module):
    """φ_r: feature x (B, F) -> Gaussian (μ, log σ) of a multiplicative perturbation, each (B, F)."""

    def __init__(self, feat_dim: int, hidden: int, dropout: float) -> None:
        """Build the MLP.

        Args:
            feat_dim: feature width F.
            hidden: hidden width.
            dropout: dropout probability.
        """
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(feat_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.mu = nn.Linear(hidden, feat_dim)
        self.log_sigma = nn.Linear(hidden, feat_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, F) features -> μ and log σ, each (B, F)."""
        h = self.trunk(x)
        return self.mu(h), self.log_sigma(h).clamp(-6.0, 2.0)


# ---------------------------------------------------------------------------------------------- model
@register_model("smil")
class SMIL(EncoderPair, MissingModalityBaseline):
    """SMIL on a bag (N_i, D_path) and F family vectors per patient; see the module docstring."""

    def __init__(self, pathology_dim: int, family_dims: Sequence[int], dim: int = 256, genomics_hidden: int = 256,
                 heads: int = 4, dropout: float = 0.25, n_priors: int = 16, missing_rate: float = 0.5,
                 genomics_share: float = 0.5, inner_lr: float = 0.05, meta_size: int = 16, kl_weight: float = 1e-3,
                 recon_weight: float = 1.0, prior_momentum: float = 0.1, kmeans_iters: int = 25,
                 n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the encoders, the priors, φ_c, φ_r, the head and the replay memory.

        Args:
            pathology_dim: D_path of the patch features.
            family_dims: d_k of the F gene families.
            dim: embedding width D.
            genomics_hidden: hidden width of the family SNNs.
            heads: attention heads of the genomic encoder.
            dropout: dropout of encoders, φ_c, φ_r and head.
            n_priors: C, number of modality priors (k-means centroids) per modality.
            missing_rate: probability that a training patient takes the missing path.
            genomics_share: probability that such a patient loses genomics (else pathology).
            inner_lr: η of the inner (meta-train) step on the head; 0 disables the bi-level step.
            meta_size: R, training patients kept in the replay memory that is the inner step's meta-train set.
            kl_weight: weight of KL(N(μ, σ²) ‖ N(0, I)) of the regulariser.
            recon_weight: weight of the auxiliary reconstruction MSE against the stop-gradient embedding.
            prior_momentum: step of the online k-means update of the priors during training.
            kmeans_iters: Lloyd iterations in :meth:`prepare` and :meth:`finish`.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the survival NLL.

        Raises:
            ValueError: ``n_priors`` or ``meta_size`` < 1, or a rate outside [0, 1].
        """
        super().__init__(n_bins, alpha)
        if n_priors < 1 or meta_size < 1:
            raise ValueError(f"n_priors and meta_size must be >= 1, got {n_priors}, {meta_size}")
        for name, value in (("missing_rate", missing_rate), ("genomics_share", genomics_share),
                            ("prior_momentum", prior_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.pathology_dim = pathology_dim
        self.dim = dim
        self.n_priors = n_priors
        self.missing_rate = float(missing_rate)
        self.genomics_share = float(genomics_share)
        self.inner_lr = float(inner_lr)
        self.kl_weight = float(kl_weight)
        self.recon_weight = float(recon_weight)
        self.prior_momentum = float(prior_momentum)
        self.kmeans_iters = int(kmeans_iters)

        self.pathology_encoder = BagEncoder(pathology_dim, dim, dropout=dropout)
        self.genomics_encoder = FamilyEncoder(family_dims, dim, genomics_hidden, heads, dropout)
        # φ_c, one per direction: available embedding (B, D) -> prior logits (B, C)
        self.recon_genomics = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                            nn.Linear(dim, n_priors))
        self.recon_pathology = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                        nn.Linear(dim, n_priors))
        self.regularizer = FeatureRegularizer(2 * dim, dim, dropout)
        self.head = FunctionalHead(2 * dim, dim, n_bins, dropout)
        xavier_init(self)
        self.register_buffer("priors_pathology", torch.zeros(n_priors, dim))
        self.register_buffer("priors_genomics", torch.zeros(n_priors, dim))
        self.register_buffer("priors_ready", torch.zeros((), dtype=torch.bool))
        # replay memory of the last ``meta_size`` training patients: the meta-train set of the inner step
        self.register_buffer("meta_feat", torch.zeros(meta_size, 2 * dim))
        self.register_buffer("meta_bins", torch.zeros(meta_size, dtype=torch.long))
        self.register_buffer("meta_event", torch.zeros(meta_size, dtype=torch.long))
        self.register_buffer("meta_key", torch.full((meta_size,), -1, dtype=torch.long))
        self.register_buffer("meta_valid", torch.zeros(meta_size, dtype=torch.bool))
        self.register_buffer("meta_ptr", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ reconstruction (encoders: EncoderPair)
    def prior_weights(self, available: Tensor, target: str) -> Tensor:
        """Weigh the C priors of ``target`` from the other modality's embedding.

        Args:
            available: (B, D) embedding of the available modality.
            target: ``"genomics"`` or ``"pathology"``, the modality to reconstruct.

        Returns:
            (B, C) weights, rows summing to 1.
        """
        net = self.recon_genomics if target == GENOMICS else self.recon_pathology
        return torch.softmax(net(available), dim=-1)

    def reconstruct(self, available: Tensor, target: str) -> Tensor:
        """Reconstruct ĥ_target = weights · priors_target from the available embedding.

        Args:
            available: (B, D) embedding of the available modality.
            target: the modality to reconstruct.

        Returns:
            (B, D) reconstruction.
        """
        priors = self.priors_genomics if target == GENOMICS else self.priors_pathology
        return self.prior_weights(available, target) @ priors

    def regularized(self, x: Tensor, stochastic: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Perturb a feature: x ⊙ softplus(μ + σ ε) if ``stochastic`` else x ⊙ softplus(μ).

        Args:
            x: (B, 2D) fused features.
            stochastic: draw the noise ε.

        Returns:
            The feature (B, 2D), μ and log σ.
        """
        mu, log_sigma = self.regularizer(x)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu) if stochastic else mu
        return x * F.softplus(z), mu, log_sigma


    # ------------------------------------------------------------------ inference
    def forward_scenario(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Predict hazard logits, reading only the modalities ``scenario`` keeps.

        Args:
            batch: B patients.
            scenario: the evaluation scenario.

        Returns:
            (B, K) hazard logits.
        """
        if scenario == "complete":
            h_p, h_g = self.encode_pathology(batch), self.encode_genomics(batch)
        elif scenario == "missing_genomics":
            h_p = self.encode_pathology(batch)
            h_g = self.reconstruct(h_p, GENOMICS)
        elif scenario == "missing_pathology":
            h_g = self.encode_genomics(batch)
            h_p = self.reconstruct(h_g, PATHOLOGY)
        else:
            self.check_scenario(scenario)
            raise AssertionError("unreachable")
        feat, _, _ = self.regularized(torch.cat([h_p, h_g], dim=-1), stochastic=False)
        return self.head(feat)

    # ------------------------------------------------------------------ training
    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute the batch mean of the per-patient SMIL objective (module docstring).

        Both modalities must be in ``batch``. In training mode it also draws the simulated missingness and
        updates the priors; in eval mode it is the objective of the inference model (no missing draw, no inner
        step, no noise).

        Args:
            batch: B patients with both modalities.

        Returns:
            The scalar loss and its logged parts.
        """
        h_p, h_g = self.encode_pathology(batch), self.encode_genomics(batch)
        b = h_p.shape[0]
        if self.training:
            if not bool(self.priors_ready):
                self._init_priors_from(h_p.detach(), h_g.detach())
            drop_g, drop_p = self.draw_missing(b, h_p.device)
        else:
            drop_g = drop_p = torch.zeros(b, dtype=torch.bool, device=h_p.device)
        rec_g, rec_p = self.reconstruct(h_p, GENOMICS), self.reconstruct(h_g, PATHOLOGY)
        f_p = torch.where(drop_p[:, None], rec_p, h_p)
        f_g = torch.where(drop_g[:, None], rec_g, h_g)
        x = torch.cat([f_p, f_g], dim=-1)  # (B, 2D)
        mu, log_sigma = self.regularizer(x)
        x_mean = x * F.softplus(mu)  # deterministic (meta-test) feature
        keys = torch.tensor([patient_key(p) for p in batch.patient_ids], device=x.device)
        weights, inner, n_meta = self.head.weights(), torch.zeros(()), 0
        if self.training and self.inner_lr > 0:
            weights, inner, n_meta = self.inner_step(keys)
        outer = nll_loss(self.head(x_mean, weights), batch.bins, batch.event, self.alpha, reduction="none")
        kl = 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1.0 - 2 * log_sigma).mean(dim=-1)  # (B,)
        recon = 0.5 * ((rec_g - h_g.detach()).pow(2).mean(dim=-1) + (rec_p - h_p.detach()).pow(2).mean(dim=-1))
        total = (outer + self.kl_weight * kl + self.recon_weight * recon).mean()
        if self.training:
            self._update_priors(h_p.detach(), h_g.detach())
            self._push_meta(x.detach(), batch.bins, batch.event, keys)
        logs = {"surv": float(outer.detach().mean()), "inner": float(inner), "meta_patients": float(n_meta),
                "kl": float(kl.detach().mean()), "recon": float(recon.detach().mean()),
                "missing": float((drop_g | drop_p).float().mean())}
        return total, logs

    def inner_step(self, exclude_keys: Tensor) -> tuple[list[Tensor], Tensor, int]:
        """Take the meta-train step on the replay memory: θ' = θ − η ∇_θ L_in.

        L_in is the NLL of the head on the perturbed features x_r ⊙ softplus(μ(x_r) + σ(x_r) ε) of the stored
        patients. The graph is kept (second order), so the outer loss reaches φ_r through θ'.

        Args:
            exclude_keys: (B,) patient keys of the current batch, left out of the replay set.

        Returns:
            θ', L_in detached and the number of replay patients used; θ itself if none is usable.
        """
        theta = self.head.weights()
        usable = self.meta_valid & ~torch.isin(self.meta_key, exclude_keys)
        n = int(usable.sum())
        if n == 0 or not torch.is_grad_enabled():
            return theta, torch.zeros(()), 0
        x_r = self.meta_feat[usable]
        x_noisy, _, _ = self.regularized(x_r, stochastic=True)
        l_in = nll_loss(self.head(x_noisy), self.meta_bins[usable], self.meta_event[usable], self.alpha)
        grads = torch.autograd.grad(l_in, theta, create_graph=torch.is_grad_enabled())
        return [w - self.inner_lr * g for w, g in zip(theta, grads)], l_in.detach(), n

    @torch.no_grad()
    def _push_meta(self, x: Tensor, bins: Tensor, event: Tensor, keys: Tensor) -> None:
        """Append the batch's fused features (B, 2D), bins, events and keys to the replay ring.

        The ring holds the last ``meta_size`` training patients; the buffers are replaced by new tensors.
        """
        r = self.meta_feat.shape[0]
        take = min(x.shape[0], r)
        slots = (self.meta_ptr + torch.arange(take, device=x.device)) % r
        self.meta_feat = self.meta_feat.index_copy(0, slots, x[-take:].to(self.meta_feat.dtype))
        self.meta_bins = self.meta_bins.index_copy(0, slots, bins[-take:].to(self.meta_bins.dtype))
        self.meta_event = self.meta_event.index_copy(0, slots, event[-take:].to(self.meta_event.dtype))
        self.meta_key = self.meta_key.index_copy(0, slots, keys[-take:])
        self.meta_valid = self.meta_valid.index_fill(0, slots, True)
        self.meta_ptr = (self.meta_ptr + take) % r

    # ------------------------------------------------------------------ priors
    @torch.no_grad()
    def _init_priors_from(self, h_p: Tensor, h_g: Tensor) -> None:
        """Fallback when :meth:`prepare` was not called: seed the priors from the first batch."""
        self.priors_pathology = kmeans(h_p, self.n_priors, 1)
        self.priors_genomics = kmeans(h_g, self.n_priors, 1)
        self.priors_ready = torch.ones((), dtype=torch.bool, device=h_p.device)

    @torch.no_grad()
    def _update_priors(self, h_p: Tensor, h_g: Tensor) -> None:
        """Take an online k-means step on the priors.

        Each prior with assigned batch embeddings moves by ``prior_momentum`` towards their mean. New tensors
        replace the buffers (the old ones may be saved for backward).
        """
        for name, h in (("priors_pathology", h_p), ("priors_genomics", h_g)):
            priors: Tensor = getattr(self, name)
            assign = torch.cdist(h, priors).argmin(dim=1)
            counts = torch.bincount(assign, minlength=self.n_priors).to(h.dtype)
            means = torch.zeros_like(priors).index_add_(0, assign, h) / counts.clamp(min=1)[:, None]
            step = self.prior_momentum * (counts > 0).to(h.dtype)[:, None]
            setattr(self, name, priors + step * (means - priors))

    @torch.no_grad()
    def embeddings(self, items: Sequence[PatientItem], chunk: int = 16) -> tuple[Tensor, Tensor]:
        """Compute eval-mode embeddings (training mode is restored).

        Args:
            items: patients with both modalities.
            chunk: patients embedded per forward pass.

        Returns:
            h_P (N, D) and h_G (N, D).
        """
        was_training = self.training
        self.eval()
        device = self.priors_pathology.device
        hp, hg = [], []
        for part in item_buckets(list(items), chunk):
            batch = collate(part).to(device)
            hp.append(self.encode_pathology(batch))
            hg.append(self.encode_genomics(batch))
        self.train(was_training)
        return torch.cat(hp), torch.cat(hg)

    @torch.no_grad()
    def prepare(self, items: Sequence[PatientItem]) -> None:
        """Fit the priors: k-means (k-means++ seeding, fixed seed) on the initial eval-mode embeddings.

        Args:
            items: the training patients.
        """
        h_p, h_g = self.embeddings(items)
        self.priors_pathology = kmeans(h_p, self.n_priors, self.kmeans_iters, seed=0)
        self.priors_genomics = kmeans(h_g, self.n_priors, self.kmeans_iters, seed=1)
        self.priors_ready = torch.ones((), dtype=torch.bool, device=h_p.device)

    @torch.no_grad()
    def finish(self, items: Sequence[PatientItem]) -> None:
        """Refine the priors by Lloyd iterations on the final eval-mode embeddings.

        Starts from the current (online-tracked) centroids.

        Args:
            items: the training patients.
        """
        if not bool(self.priors_ready):
            self.prepare(items)
            return
        h_p, h_g = self.embeddings(items)
        self.priors_pathology = lloyd(h_p, self.priors_pathology.clone(), self.kmeans_iters)
        self.priors_genomics = lloyd(h_g, self.priors_genomics.clone(), self.kmeans_iters)
