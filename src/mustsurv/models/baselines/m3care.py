"""M3Care: learning with missing modalities in multimodal data, as a survival model on bags + gene families.

Reference: Zhang, Chu, Ma, Zhu, Wang, Wang & Zhao, "M3Care: Learning with Missing Modalities in
Multimodal Healthcare Data", KDD 2022. Instead of generating the raw missing data, M3Care imputes the
task-related information of a missing modality in the latent space from the patient's similar
neighbours: modality-specific encoders; per modality a learned, task-guided similarity kernel between
patients (a deep kernel: a Gaussian kernel on learned projections, mixed with a Gaussian kernel on the
representations); the patient similarity computed from the modalities both patients have; a patient
graph of the most similar patients; graph aggregation of the neighbours' representations of the missing
modality; a transformer over the modality tokens to capture the multimodal interactions; a task head.

This implementation (shapes: B patients, D = ``dim``, S = ``bank_size``, k = ``n_neighbors``):

* encoders: :class:`BagEncoder` -> h_P (B, D) and :class:`FamilyEncoder` -> h_G (B, D), shared with the
  other Table 2 baselines;
* kernel of modality m (one per modality, all parameters learned through the survival loss):
  ``log κ_m(x, y) = log((1 − δ_m) exp(−‖φ_m(x) − φ_m(y)‖² / (2 σ_m²)) + δ_m) − ‖x − y‖² / (2 τ_m²)``
  with φ_m = Linear(D, kd) + ReLU + Linear(kd, kd) (kd = ``kernel_dim``), squared distances averaged
  over the coordinates, σ_m, τ_m learned bandwidths and δ_m = sigmoid(learned);
* memory bank (buffers, saved in the state_dict): ``bank_pathology`` / ``bank_genomics`` (S, D) embeddings
  of training patients, ``bank_key`` (S,) a CRC-32 key of the patient id, ``bank_valid`` (S,) bool.
  :meth:`M3Care.prepare` fills it with the initial eval-mode embeddings of the training patients, every
  training step overwrites the batch patients' entries with their detached (train-mode) embeddings, and
  :meth:`M3Care.finish` refills it with the final eval-mode embeddings, so a checkpoint carries exactly
  the neighbours its predictions use;
* imputation of the missing modality m of patient i from the available modality a: the similarity to
  every valid bank patient j ≠ i is κ_a(h_i^a, bank_j^a); the k most similar are i's neighbours in the
  patient graph, with edge weights softmax(log κ) over them; the aggregated message
  ``agg = Σ_j w_ij bank_j^m`` goes through a graph-convolution layer with a residual connection,
  ``ĥ_i^m = agg + dropout(GELU(W_m agg))``;
* fusion: tokens [CLS; h_P + e_P (+ e_P^imp if imputed); h_G + e_G (+ e_G^imp if imputed)] (e learned
  modality-type and "imputed" embeddings) -> ``fusion_layers`` pre-norm self-attention blocks ->
  LayerNorm -> CLS -> Linear(D, D) + ReLU + dropout + Linear(D, K) hazard logits;
* training: all patients are paired; each independently takes the missing path with probability
  ``missing_rate`` (``torch.rand < missing_rate``), losing genomics with probability
  ``genomics_share``, else pathology (:meth:`M3Care.draw_missing`); its dropped modality is replaced by
  the imputation, which trains the kernels and the graph layer. Loss: batch-mean survival NLL.

Adaptations:

* M3Care builds the patient graph inside a (large) mini-batch; with the paper's batch-size-1 training
  the neighbours come from the memory bank of training-patient embeddings described above instead
  (the bank's embeddings are detached: the kernel's projections and the graph layer are trained, the
  bank side of the encoders is not back-propagated).
* The learned similarity threshold that sparsifies M3Care's graph is replaced by a fixed number of
  neighbours k (top-k of the kernel), which keeps the neighbourhood non-empty in a small bank; the
  patient itself is always excluded (matched by patient id), in training and when training patients
  are predicted, so no patient imputes from its own stored embedding.
* With two modalities the similarity "over the modalities both patients have" is the available
  modality's kernel alone; when both are present (``complete``) the patient's own embeddings are used
  and the bank is not read.
* If the training set exceeds ``bank_size``, the bank holds ``bank_size`` training patients evenly
  spaced in the training order (training steps refresh only patients already in the bank).
* Bank entries are refreshed inside ``loss``, so in the grouped trainer form a later patient of a group
  can see an entry an earlier one wrote; the bs-1 and grouped forms then differ slightly (the trainer's
  same-gradient equivalence holds up to these bank refreshes).
* Modality-type / imputed embeddings and a class token read out the fusion transformer (M3Care's
  multimodal interaction module is a transformer over the modality representations).
"""

from __future__ import annotations

import math
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
from mustsurv.models.layers.attention import SelfAttentionBlock
from mustsurv.models.registry import register_model
from mustsurv.study.vocabulary import GENOMICS, MODALITIES, PATHOLOGY, Scenario


def patient_key(patient_id: str) -> int:
    """Compute a stable integer key of a patient id (CRC-32), stored in the memory bank.

    Args:
        patient_id: the patient's identifier.

    Returns:
        The key.
    """
    return zlib.crc32(str(patient_id).encode())


class DeepKernel(nn.Module):
    """Learned similarity of one modality: log κ(x, y) for queries and keys.

    See the module docstring for the formula.
    """

    def __init__(self, dim: int, kernel_dim: int) -> None:
        """Build the projection and the learned bandwidths.

        Args:
            dim: embedding dimension D.
            kernel_dim: width of the projection.
        """
        super().__init__()
        self.project = nn.Sequential(nn.Linear(dim, kernel_dim), nn.ReLU(), nn.Linear(kernel_dim, kernel_dim))
        self.log_sigma = nn.Parameter(torch.zeros(()))  # bandwidth on the projections
        self.log_tau = nn.Parameter(torch.full((), math.log(2.0)))  # bandwidth on the representations
        self.delta_logit = nn.Parameter(torch.full((), -2.0))  # δ = sigmoid(.) ≈ 0.12

    @staticmethod
    def _sq_dist(x: Tensor, y: Tensor) -> Tensor:
        """Mean squared coordinate difference (B, S) of ``x`` (B, d) and ``y`` (S, d)."""
        d2 = x.pow(2).sum(-1, keepdim=True) + y.pow(2).sum(-1)[None, :] - 2 * x @ y.T
        return d2.clamp(min=0.0) / x.shape[-1]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Compute the log-similarities.

        Args:
            x: (B, D) queries.
            y: (S, D) keys.

        Returns:
            (B, S) log κ(x, y).
        """
        deep = -self._sq_dist(self.project(x), self.project(y)) / (2 * torch.exp(2 * self.log_sigma))
        raw = -self._sq_dist(x, y) / (2 * torch.exp(2 * self.log_tau))
        # log((1 − δ) e^deep + δ) with δ = sigmoid(logit), in log-sigmoids so a saturated logit keeps finite gradients
        return torch.logaddexp(F.logsigmoid(-self.delta_logit) + deep,
                               F.logsigmoid(self.delta_logit).expand_as(deep)) + raw


@register_model("m3care")
class M3Care(EncoderPair, MissingModalityBaseline):
    """M3Care on a bag (N_i, D_path) and F family vectors per patient; see the module docstring."""

    def __init__(self, pathology_dim: int, family_dims: Sequence[int], dim: int = 256, genomics_hidden: int = 256,
                 heads: int = 4, fusion_layers: int = 1, kernel_dim: int = 64, n_neighbors: int = 8,
                 bank_size: int = 1024, missing_rate: float = 0.5, genomics_share: float = 0.5,
                 dropout: float = 0.25, n_bins: int = 4, alpha: float = 0.0) -> None:
        """Build the encoders, the similarity kernels, the memory bank, the graph layer and the fusion head.

        Args:
            pathology_dim: D_path of the patch features.
            family_dims: d_k of the F gene families.
            dim: embedding width D.
            genomics_hidden: hidden width of the family SNNs.
            heads: attention heads of the genomic encoder and the fusion transformer.
            fusion_layers: blocks of the fusion transformer.
            kernel_dim: width of the similarity kernels' projections.
            n_neighbors: k, neighbours of a patient in the graph (top-k of the kernel).
            bank_size: S, capacity of the memory bank of training patients.
            missing_rate: probability that a training patient takes the missing path.
            genomics_share: probability that such a patient loses genomics (else pathology).
            dropout: dropout of the encoders, graph layer, fusion and head.
            n_bins: number of time bins K (hazard logits per patient).
            alpha: up-weighting of the uncensored term of the survival NLL.

        Raises:
            ValueError: ``n_neighbors`` or ``bank_size`` < 1, or a rate outside [0, 1].
        """
        super().__init__(n_bins, alpha)
        if n_neighbors < 1 or bank_size < 1:
            raise ValueError(f"n_neighbors and bank_size must be >= 1, got {n_neighbors}, {bank_size}")
        for name, value in (("missing_rate", missing_rate), ("genomics_share", genomics_share)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.pathology_dim = pathology_dim
        self.dim = dim
        self.n_neighbors = int(n_neighbors)
        self.bank_size = int(bank_size)
        self.missing_rate = float(missing_rate)
        self.genomics_share = float(genomics_share)

        self.pathology_encoder = BagEncoder(pathology_dim, dim, dropout=dropout)
        self.genomics_encoder = FamilyEncoder(family_dims, dim, genomics_hidden, heads, dropout)
        self.kernels = nn.ModuleDict({m: DeepKernel(dim, kernel_dim) for m in MODALITIES})
        self.graph = nn.ModuleDict({m: nn.Linear(dim, dim) for m in MODALITIES})
        self.graph_dropout = nn.Dropout(dropout)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.type_embed = nn.Parameter(torch.randn(2, dim) * 0.02)  # [pathology, genomics]
        self.imputed_embed = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.fusion = nn.ModuleList(SelfAttentionBlock(dim, heads, dropout=dropout) for _ in range(fusion_layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, n_bins))
        xavier_init(self)
        self.register_buffer("bank_pathology", torch.zeros(bank_size, dim))
        self.register_buffer("bank_genomics", torch.zeros(bank_size, dim))
        self.register_buffer("bank_key", torch.full((bank_size,), -1, dtype=torch.long))
        self.register_buffer("bank_valid", torch.zeros(bank_size, dtype=torch.bool))


    # ------------------------------------------------------------------ imputation
    def _bank(self, modality: str) -> Tensor:
        """The bank buffer (S, D) of ``modality``."""
        return self.bank_pathology if modality == PATHOLOGY else self.bank_genomics

    def similarity(self, available: Tensor, modality: str, patient_ids: Sequence[str]) -> Tensor:
        """Compute log κ_modality between the queries and every bank patient.

        Args:
            available: (B, D) query embeddings.
            modality: ``"pathology"`` or ``"genomics"``, the modality of ``available``.
            patient_ids: B query patient ids (their own bank entries are excluded).

        Returns:
            (B, S) log-similarities; −inf for empty slots and for the query patient's own entry.
        """
        logk = self.kernels[modality](available, self._bank(modality))
        keys = torch.tensor([patient_key(p) for p in patient_ids], device=available.device)
        allowed = self.bank_valid[None, :] & (self.bank_key[None, :] != keys[:, None])
        return logk.masked_fill(~allowed, float("-inf"))

    def neighbours(self, available: Tensor, modality: str, patient_ids: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Find the patient graph's edges from the available ``modality``.

        Args:
            available: (B, D) query embeddings.
            modality: the modality of ``available``.
            patient_ids: B query patient ids.

        Returns:
            Indices (B, k') and weights (B, k'), k' = min(k, allowed bank patients), the weights a softmax of
            log κ over the k' neighbours.

        Raises:
            ValueError: the bank has no neighbour for these patients (call ``prepare(items)`` first).
        """
        logk = self.similarity(available, modality, patient_ids)
        n_allowed = int(torch.isfinite(logk).sum(dim=1).min())
        if n_allowed == 0:
            raise ValueError("the M3Care memory bank has no neighbour for these patients; call prepare(items) "
                             "with the training patients before training and finish(items) after it")
        top, idx = logk.topk(min(self.n_neighbors, n_allowed), dim=1)
        return idx, torch.softmax(top, dim=1)

    def impute(self, available: Tensor, available_modality: str, patient_ids: Sequence[str]) -> Tensor:
        """Impute the other modality's latent from the available one.

        Graph aggregation of the bank neighbours' embeddings + residual GCN layer.

        Args:
            available: (B, D) embeddings of ``available_modality``.
            available_modality: ``"pathology"`` or ``"genomics"``.
            patient_ids: B patient ids.

        Returns:
            (B, D) imputed embeddings of the other modality.
        """
        missing = GENOMICS if available_modality == PATHOLOGY else PATHOLOGY
        idx, w = self.neighbours(available, available_modality, patient_ids)
        agg = (w[..., None] * self._bank(missing)[idx]).sum(dim=1)  # (B, D)
        return agg + self.graph_dropout(F.gelu(self.graph[missing](agg)))

    # ------------------------------------------------------------------ fusion
    def fuse(self, h_p: Tensor, h_g: Tensor, imputed_p: Tensor, imputed_g: Tensor) -> Tensor:
        """Fuse the modality tokens into hazard logits.

        Args:
            h_p: (B, D) pathology tokens (real or imputed).
            h_g: (B, D) genomics tokens (real or imputed).
            imputed_p: (B,) bool, the pathology token is imputed.
            imputed_g: (B,) bool, the genomics token is imputed.

        Returns:
            (B, K) hazard logits.
        """
        tok_p = h_p + self.type_embed[0] + imputed_p[:, None].to(h_p.dtype) * self.imputed_embed[0]
        tok_g = h_g + self.type_embed[1] + imputed_g[:, None].to(h_g.dtype) * self.imputed_embed[1]
        x = torch.cat([self.cls_token.expand(h_p.shape[0], -1, -1), tok_p[:, None], tok_g[:, None]], dim=1)
        for block in self.fusion:
            x = block(x)
        return self.head(self.norm(x[:, 0]))

    def forward_scenario(self, batch: SurvivalBatch, scenario: Scenario) -> Tensor:
        """Predict hazard logits, reading only the modalities ``scenario`` keeps (and the bank).

        Args:
            batch: B patients.
            scenario: the evaluation scenario.

        Returns:
            (B, K) hazard logits.
        """
        b = len(batch)
        yes = torch.ones(b, dtype=torch.bool, device=self.bank_valid.device)
        no = torch.zeros_like(yes)
        if scenario == "complete":
            return self.fuse(self.encode_pathology(batch), self.encode_genomics(batch), no, no)
        if scenario == "missing_genomics":
            h_p = self.encode_pathology(batch)
            return self.fuse(h_p, self.impute(h_p, PATHOLOGY, batch.patient_ids), no, yes)
        if scenario == "missing_pathology":
            h_g = self.encode_genomics(batch)
            return self.fuse(self.impute(h_g, GENOMICS, batch.patient_ids), h_g, yes, no)
        self.check_scenario(scenario)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ training
    def loss(self, batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        """Compute the batch-mean survival NLL with simulated missingness.

        In training mode; in eval mode the complete logits. Both modalities must be in ``batch``. In training
        mode the batch's detached embeddings then overwrite their bank entries.

        Args:
            batch: B patients with both modalities.

        Returns:
            The scalar loss and its logged parts.
        """
        h_p, h_g = self.encode_pathology(batch), self.encode_genomics(batch)
        b = h_p.shape[0]
        drop_g = drop_p = torch.zeros(b, dtype=torch.bool, device=h_p.device)
        if self.training:
            drop_g, drop_p = self.draw_missing(b, h_p.device)
        f_p, f_g = h_p, h_g
        ids = batch.patient_ids
        if bool(drop_g.any()):
            rows = torch.nonzero(drop_g).flatten()
            f_g = f_g.index_put((rows,), self.impute(h_p[rows], PATHOLOGY, [ids[i] for i in rows.tolist()]))
        if bool(drop_p.any()):
            rows = torch.nonzero(drop_p).flatten()
            f_p = f_p.index_put((rows,), self.impute(h_g[rows], GENOMICS, [ids[i] for i in rows.tolist()]))
        surv = self.survival_loss(self.fuse(f_p, f_g, drop_p, drop_g), batch)
        if self.training:
            self.write_bank(ids, h_p.detach(), h_g.detach(), insert=False)
        return surv, {"surv": float(surv.detach()), "missing": float((drop_g | drop_p).float().mean())}

    # ------------------------------------------------------------------ memory bank
    @torch.no_grad()
    def write_bank(self, patient_ids: Sequence[str], h_p: Tensor, h_g: Tensor, insert: bool = True) -> None:
        """Store embeddings in the bank slots of ``patient_ids``.

        The slot holding the same patient is used, else (``insert``) a free slot, else the patient is skipped.
        The buffers are replaced by new tensors (the old ones may be saved for the backward pass).

        Args:
            patient_ids: B patient ids.
            h_p: (B, D) pathology embeddings.
            h_g: (B, D) genomics embeddings.
            insert: take a free slot for a patient not yet in the bank.
        """
        keys = self.bank_key.tolist()
        valid = self.bank_valid.tolist()
        slot_of = {k: s for s, (k, v) in enumerate(zip(keys, valid)) if v}
        free = [s for s, v in enumerate(valid) if not v]
        rows, slots = [], []
        for r, pid in enumerate(patient_ids):
            key = patient_key(pid)
            slot = slot_of.get(key)
            if slot is None and insert and free:
                slot = free.pop(0)
                slot_of[key] = slot
            if slot is not None:
                rows.append(r)
                slots.append(slot)
        if not slots:
            return
        device = self.bank_pathology.device
        slot_t = torch.tensor(slots, device=device)
        row_t = torch.tensor(rows, device=h_p.device)
        self.bank_pathology = self.bank_pathology.index_copy(0, slot_t, h_p[row_t].to(self.bank_pathology.dtype))
        self.bank_genomics = self.bank_genomics.index_copy(0, slot_t, h_g[row_t].to(self.bank_genomics.dtype))
        self.bank_key = self.bank_key.index_copy(0, slot_t, torch.tensor([patient_key(patient_ids[r]) for r in rows],
                                                                       device=device))
        self.bank_valid = self.bank_valid.index_fill(0, slot_t, True)

    @torch.no_grad()
    def fill_bank(self, items: Sequence[PatientItem], chunk: int = 16) -> None:
        """Empty the bank and fill it with the eval-mode embeddings of ``items``.

        At most ``bank_size`` of them, evenly spaced in the given order; training mode is restored afterwards.

        Args:
            items: patients with both modalities.
            chunk: patients embedded per forward pass.
        """
        if len(items) > self.bank_size:
            picks = torch.linspace(0, len(items) - 1, self.bank_size).round().long().unique().tolist()
            items = [items[i] for i in picks]
        self.bank_valid = torch.zeros_like(self.bank_valid)
        self.bank_key = torch.full_like(self.bank_key, -1)
        self.bank_pathology = torch.zeros_like(self.bank_pathology)
        self.bank_genomics = torch.zeros_like(self.bank_genomics)
        was_training = self.training
        self.eval()
        device = self.bank_pathology.device
        for part in item_buckets(list(items), chunk):
            batch = collate(part).to(device)
            self.write_bank(batch.patient_ids, self.encode_pathology(batch), self.encode_genomics(batch), insert=True)
        self.train(was_training)

    def prepare(self, items: Sequence[PatientItem]) -> None:
        """Fill the bank with the initial embeddings of the training patients.

        Args:
            items: the training patients.
        """
        self.fill_bank(items)

    def finish(self, items: Sequence[PatientItem]) -> None:
        """Refill the bank with the final eval-mode embeddings of the training patients.

        Args:
            items: the training patients.
        """
        self.fill_bank(items)
