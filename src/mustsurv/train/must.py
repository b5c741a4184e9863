"""MUST's three training stages and its per-scenario prediction (paper §3.4–3.6, supplement §7).

Stage 1 (warm-up, Eq. 12) and stage 2 (full objective, Eq. 16) go through the shared trainer; stage 3
freezes the model, computes the frozen model's (û, ĉ) pairs for the training patients once, and trains
the two latent diffusion models on them with mini-batches drawn from a seeded generator.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from mustsurv.models.batch import PatientItem, collate
from mustsurv.models.must import MUST
from mustsurv.study.vocabulary import (
    GENOMICS,
    PATHOLOGY,
    PATIENT_ID,
    SCENARIOS,
    Scenario,
)
from mustsurv.train.trainer import OptimConfig, TrainState, train_epochs

log = logging.getLogger(__name__)


def complete_patients(dataset: Sequence[PatientItem]) -> list[PatientItem]:
    """Select the patients having both pathology and genomics (MUST trains on complete pairs by default).

    Args:
        dataset: the training patients.

    Returns:
        The complete patients.

    Raises:
        ValueError: no patient has both modalities.
    """
    kept = [it for it in dataset if it["pathology"] is not None and it["genomics"] is not None]
    if len(kept) < len(dataset):
        log.warning("MUST training uses %d of %d patients: the others lack a modality", len(kept), len(dataset))
    if not kept:
        raise ValueError("no training patient has both pathology and genomics; MUST needs paired training data")
    return kept


def training_patients(dataset: Sequence[PatientItem], unpaired: bool) -> list[PatientItem]:
    """Select complete pairs only, or (``unpaired``: supplement §8.2) every patient with at least one modality.

    Args:
        dataset: the training patients.
        unpaired: also keep patients with one modality.

    Returns:
        The patients to train on.

    Raises:
        ValueError: no patient has both modalities (the decomposition needs pairs).
    """
    if not unpaired:
        return complete_patients(dataset)
    kept = [it for it in dataset if it["pathology"] is not None or it["genomics"] is not None]
    if not any(it["pathology"] is not None and it["genomics"] is not None for it in kept):
        raise ValueError("no training patient has both pathology and genomics; the decomposition needs pairs")
    return kept


def unpair(items: Sequence[PatientItem], fraction: float, seed: int) -> list[PatientItem]:
    """Copy ``items`` with some complete patients losing one modality (supplement §8.2).

    round(``fraction`` · n) complete patients, drawn with ``seed``, lose one modality: the first half of
    the draw loses genomics, the rest pathology.

    Args:
        items: the training patients.
        fraction: share of the complete patients to unpair.
        seed: seed of the draw.

    Returns:
        The modified copy.

    Raises:
        ValueError: fewer than two pairs would remain.
    """
    complete = [i for i, it in enumerate(items) if it[PATHOLOGY] is not None and it[GENOMICS] is not None]
    n_drop = round(fraction * len(items))
    if n_drop > len(complete) - 2:
        raise ValueError(f"cannot unpair {n_drop} of {len(items)} patients: at least two pairs must remain")
    gen = torch.Generator().manual_seed(seed)
    chosen = [complete[i] for i in torch.randperm(len(complete), generator=gen)[:n_drop].tolist()]
    out = [dict(it) for it in items]
    for j, i in enumerate(chosen):
        out[i][GENOMICS if j < (n_drop + 1) // 2 else PATHOLOGY] = None
    return out  # type: ignore[return-value]


def train_stage1(
    model: MUST,
    dataset: Sequence[PatientItem],
    cfg: OptimConfig = OptimConfig(lr=1e-3),
    progress_path: str | Path | None = None,
    unpaired: bool = False,
) -> TrainState:
    """Train stage 1 warm-up: survival loss on φ([g_P; ε]) and φ([g_G; ε]) (σ = ``model.warmup_sigma``).

    Paper: 30 epochs, AdamW lr 1e-3, wd 1e-5, bs 1 x 32 accumulation.

    Args:
        model: the MUST model.
        dataset: the training patients.
        cfg: optimiser settings.
        progress_path: resumable progress file; None = no resume.
        unpaired: also train on patients with one modality (each term uses the patients that have its
            modality).

    Returns:
        The stage's training state.
    """
    return train_epochs(model, training_patients(dataset, unpaired), model.warmup_loss, model.parameters(), cfg,
                        progress_path=progress_path)


def train_stage2(
    model: MUST,
    dataset: Sequence[PatientItem],
    cfg: OptimConfig = OptimConfig(lr=2e-4),
    progress_path: str | Path | None = None,
    unpaired: bool = False,
) -> TrainState:
    """Train stage 2: L_surv + λ_dec L_decomp + λ_sh L_shared + λ_orth L_orth; paper: 30 epochs, lr 2e-4.

    The diffusion models are not part of this stage.

    Args:
        model: the MUST model after stage 1.
        dataset: the training patients.
        cfg: optimiser settings.
        progress_path: resumable progress file; None = no resume.
        unpaired: patients with one modality take the survival loss only (:meth:`MUST.main_loss`).

    Returns:
        The stage's training state.
    """
    params = [p for n, p in model.named_parameters() if not n.startswith("ldm_")]
    return train_epochs(model, training_patients(dataset, unpaired), model.main_loss, params, cfg,
                        progress_path=progress_path)


@torch.no_grad()
def ldm_training_pairs(
    model: MUST, dataset: Sequence[PatientItem], batch_size: int = 32
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Compute the frozen model's targets and conditions for stage 3.

    Args:
        model: the MUST model after stage 2.
        dataset: the training patients (complete pairs).
        batch_size: patients per forward pass.

    Returns:
        modality -> (û (N, D), ĉ (N, D)).
    """
    model.eval()
    items = complete_patients(dataset)
    device = next(model.parameters()).device
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {PATHOLOGY: [], GENOMICS: []}
    for start in range(0, len(items), batch_size):
        pairs = model.ldm_targets(collate(items[start : start + batch_size]).to(device))
        for key, value in pairs.items():
            parts[key].append(value)
    return {k: (torch.cat([z for z, _ in v]), torch.cat([c for _, c in v])) for k, v in parts.items()}


def train_stage3(
    model: MUST,
    dataset: Sequence[PatientItem],
    steps: int = 1_000_000,
    lr: float = 1e-4,
    weight_decay: float = 1e-5,
    batch_size: int = 32,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train stage 3: freeze the model and train ``ldm_pathology`` and ``ldm_genomics`` for ``steps`` steps each.

    AdamW, mini-batches of ``batch_size`` patients without replacement within a pass.

    Args:
        model: the MUST model after stage 2.
        dataset: the training patients.
        steps: optimiser steps per diffusion model.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        batch_size: patients per step.
        seed: seed of the batches and the noise.

    Returns:
        The loss of every 1 % of the steps per modality (for the log).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    pairs = ldm_training_pairs(model, dataset)
    history: dict[str, list[float]] = {}
    for modality, (z0, cond) in pairs.items():
        ldm, _ = model._ldm(modality)
        ldm.fit_normalisation(z0, cond)
        ldm.train()
        for p in ldm.parameters():
            p.requires_grad_(True)
        opt = torch.optim.AdamW(ldm.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator(device=z0.device).manual_seed(seed)
        n, order, pos = z0.shape[0], torch.empty(0, dtype=torch.long), 0
        history[modality] = []
        every = max(1, steps // 100)
        for step in range(steps):
            if pos + min(batch_size, n) > order.numel():
                order, pos = torch.randperm(n, generator=gen, device=z0.device), 0
            idx = order[pos : pos + batch_size]
            pos += idx.numel()
            loss = model.ldm_loss(modality, z0[idx], cond[idx], generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % every == 0 or step == steps - 1:
                history[modality].append(float(loss.detach()))
                log.info("ldm %s step %d/%d loss %.4f", modality, step + 1, steps, history[modality][-1])
        ldm.eval()
        for p in ldm.parameters():
            p.requires_grad_(False)
    model.eval()
    return history


def scenario_available(item: PatientItem, scenario: Scenario) -> bool:
    """Tell whether the patient has the modalities the scenario keeps.

    Args:
        item: one patient.
        scenario: ``complete``, ``missing_genomics`` or ``missing_pathology``.

    Returns:
        True when the patient can be predicted in ``scenario``.

    Raises:
        ValueError: unknown ``scenario``.
    """
    if scenario == "complete":
        return item["pathology"] is not None and item["genomics"] is not None
    if scenario == "missing_genomics":
        return item["pathology"] is not None
    if scenario == "missing_pathology":
        return item["genomics"] is not None
    raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")


@torch.no_grad()
def predict(
    model: MUST,
    dataset: Sequence[PatientItem],
    scenarios: Sequence[Scenario] = SCENARIOS,
    batch_size: int = 16,
    n_samples: int = 5,
    steps: int = 50,
    seed: int = 0,
    specific: str = "ldm",
) -> pd.DataFrame:
    """Predict the risk per patient and scenario.

    A patient appears in a scenario only if it has the modalities the scenario keeps. Sampling noise is
    seeded per patient, so results do not depend on ``batch_size`` or the order of the patients.

    Args:
        model: the trained MUST model.
        dataset: the test patients.
        scenarios: the scenarios to predict.
        batch_size: patients per forward pass.
        n_samples: DDIM samples per patient.
        steps: DDIM steps.
        seed: sampling seed.
        specific: ``"ldm"``, or ``"zero"`` (MUST only): the missing û is a zero tensor instead of an LDM
            sample.

    Returns:
        Columns ``patient_id, scenario, risk, time, event``.
    """
    extra = {} if specific == "ldm" else {"specific": specific}
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for scenario in scenarios:
        items = [it for it in dataset if scenario_available(it, scenario)]
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            risk = model.predict_risk(collate(chunk).to(device), scenario, n_samples, steps, seed, **extra).cpu()
            rows += [
                {PATIENT_ID: it["patient_id"], "scenario": scenario, "risk": float(r),
                 "time": float(it["time"]), "event": int(it["event"])}
                for it, r in zip(chunk, risk.tolist())
            ]
    return pd.DataFrame(rows, columns=[PATIENT_ID, "scenario", "risk", "time", "event"])
