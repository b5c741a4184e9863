"""MUST's three training stages and its per-scenario prediction (paper §3.4–3.6, supplement §7).

Stage 1 (warm-up, Eq. 12) and stage 2 (full objective, Eq. 16) go through the shared trainer; stage 3
freezes the model, computes the frozen model's (û, ĉ) pairs for the training patients once, and trains
the two latent diffusion models on them with mini-batches drawn from a seeded generator.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from mustsurv.cohort.store import announce
from mustsurv.evaluate.predictions import survival_columns
from mustsurv.io import atomic_path
from mustsurv.models.batch import PatientItem, collate, item_buckets
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
    monitor: Callable[[], float] | None = None,
    patience: int | None = None,
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
        monitor: the selection criterion, evaluated after each epoch (:func:`~mustsurv.train.trainer.train_epochs`).
        patience: epochs without improvement of ``monitor`` before stopping early.

    Returns:
        The stage's training state.
    """
    return train_epochs(model, training_patients(dataset, unpaired), model.warmup_loss, model.parameters(), cfg,
                        progress_path=progress_path, monitor=monitor, patience=patience)


def train_stage2(
    model: MUST,
    dataset: Sequence[PatientItem],
    cfg: OptimConfig = OptimConfig(lr=2e-4),
    progress_path: str | Path | None = None,
    unpaired: bool = False,
    monitor: Callable[[], float] | None = None,
    patience: int | None = None,
) -> TrainState:
    """Train stage 2: L_surv + λ_dec L_decomp + λ_sh L_shared + λ_orth L_orth; paper: 30 epochs, lr 2e-4.

    The diffusion models are not part of this stage.

    Args:
        model: the MUST model after stage 1.
        dataset: the training patients.
        cfg: optimiser settings.
        progress_path: resumable progress file; None = no resume.
        unpaired: patients with one modality take the survival loss only (:meth:`MUST.main_loss`).
        monitor: the selection criterion, evaluated after each epoch (:func:`~mustsurv.train.trainer.train_epochs`).
        patience: epochs without improvement of ``monitor`` before stopping early.

    Returns:
        The stage's training state.
    """
    params = [p for n, p in model.named_parameters() if not n.startswith("ldm_")]
    return train_epochs(model, training_patients(dataset, unpaired), model.main_loss, params, cfg,
                        progress_path=progress_path, monitor=monitor, patience=patience)


@torch.no_grad()
def ldm_training_pairs(
    model: MUST, dataset: Sequence[PatientItem], batch_size: int = 32
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Compute the frozen model's targets and conditions for stage 3.

    The patients go through the model in :func:`~mustsurv.models.batch.item_buckets` (at most ``batch_size``
    patients and the process's token budget per pass); only the (B, D) outputs are concatenated.

    Args:
        model: the MUST model after stage 2.
        dataset: the training patients (complete pairs).
        batch_size: the most patients per forward pass.

    Returns:
        modality -> (û (N, D), ĉ (N, D)).
    """
    model.eval()
    items = complete_patients(dataset)
    device = next(model.parameters()).device
    parts: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {PATHOLOGY: [], GENOMICS: []}
    announce(items)
    for bucket in item_buckets(items, batch_size):
        pairs = model.ldm_targets(collate(bucket).to(device))
        for key, value in pairs.items():
            parts[key].append(value)
    return {k: (torch.cat([z for z, _ in v]), torch.cat([c for _, c in v])) for k, v in parts.items()}


def train_stage3(
    model: MUST,
    dataset: Sequence[PatientItem],
    steps: int | dict[str, int] = 1_000_000,
    lr: float = 1e-4,
    weight_decay: float = 1e-5,
    batch_size: int = 32,
    seed: int = 0,
    validation: Sequence[PatientItem] | None = None,
    evaluations: int = 50,
    patience: int | None = None,
    checkpoint_every: int = 1000,
    progress_path: str | Path | None = None,
) -> dict[str, list[float]]:
    """Stage 3: freeze the model and train ``ldm_pathology`` and ``ldm_genomics`` for at most ``steps`` steps
    each (AdamW, mini-batches of ``batch_size`` patients without replacement within a pass).

    With ``validation`` patients, each diffusion model's denoising loss on their (û, condition) pairs is
    evaluated ``evaluations`` times over its steps, at draws of timesteps and noise that are the same at
    every evaluation (about 256 per evaluation); the weights at the lowest value are kept, and training
    stops once ``patience`` evaluations in a row brought no improvement. This is what keeps a generator
    from memorising a small training set.

    Args:
        model: the trained MUST model (stages 1-2); its diffusion models are trained in place.
        dataset: the training patients (complete pairs give the training pairs).
        steps: maximum optimiser steps per diffusion model, or per modality (``{"pathology": n, "genomics": m}``,
            as the final models of :mod:`mustsurv.deploy.final` train them).
        lr: adamW learning rate.
        weight_decay: adamW weight decay.
        batch_size: pairs per step.
        seed: seeds the mini-batches, noise and timesteps.
        validation: patients to select the stopping step on (None: keep the last step).
        evaluations: validation evaluations over ``steps``.
        patience: evaluations without improvement before stopping early (None: never early).
        checkpoint_every: steps between saves of the progress file.
        progress_path: if given, everything needed to continue (both diffusion models, optimiser, random
            generators, batch order, validation state, history) is saved there atomically every
            ``checkpoint_every`` steps and when a diffusion model is done; a run finding the file continues
            from it and ends with the same weights as an uninterrupted one.

    Returns:
        Per modality the training loss at every 1 % of the steps; with ``validation`` also
        ``<modality>_validation`` (the evaluated losses) and ``<modality>_selected_step``.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    pairs = ldm_training_pairs(model, dataset)
    held_out = ldm_training_pairs(model, validation) if validation else None
    history: dict[str, list[float]] = {}
    saved = torch.load(progress_path, weights_only=False) if progress_path and Path(progress_path).exists() else None
    for index, (modality, (z0, cond)) in enumerate(pairs.items()):
        ldm, _ = model._ldm(modality)
        n_steps = steps[modality] if isinstance(steps, dict) else steps
        if saved is not None and index < saved["index"]:  # finished before the job was killed
            ldm.load_state_dict(saved["finished"][modality])
            history.update({k: v for k, v in saved["history"].items() if k.startswith(modality)})
            continue
        ldm.fit_normalisation(z0, cond)
        ldm.train()
        for p in ldm.parameters():
            p.requires_grad_(True)
        opt = torch.optim.AdamW(ldm.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator(device=z0.device).manual_seed(seed)
        n, order, pos, start = z0.shape[0], torch.empty(0, dtype=torch.long), 0, 0
        history[modality] = []
        every = max(1, n_steps // 100)
        check = _DenoisingCheck(model, modality, *held_out[modality], seed) if held_out else None
        check_every = max(1, n_steps // max(1, evaluations))
        if saved is not None and index == saved["index"] and saved["ldm"] is not None:  # killed mid-way
            ldm.load_state_dict(saved["ldm"])
            opt.load_state_dict(saved["optimizer"])
            gen.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            if saved["cuda_rng"] is not None:
                torch.cuda.set_rng_state_all(saved["cuda_rng"])
            order, pos, start = saved["order"], saved["pos"], saved["step"]
            history[modality] = saved["history"][modality]
            if check is not None:
                check.__dict__.update(saved["check"])
            log.info("ldm %s: resuming from %s after step %d", modality, progress_path, start)

        def save(step_done: int, finished: bool) -> None:
            if progress_path is None:
                return
            done = dict(saved["finished"]) if saved is not None else {}
            done.update({m: model._ldm(m)[0].state_dict() for m in list(pairs)[:index + int(finished)]})
            mid = None if finished else {  # a finished model's state is in `finished`
                "ldm": ldm.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "order": order, "pos": pos,
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "check": None if check is None else {k: v for k, v in check.__dict__.items()
                                                    if k not in ("model", "z0", "cond")}}
            state = {"index": index + int(finished), "finished": done, "history": history, "step": step_done,
                     **(mid or {"ldm": None})}
            with atomic_path(progress_path) as tmp:
                torch.save(state, tmp)

        for step in range(start, n_steps):
            if pos + min(batch_size, n) > order.numel():
                order, pos = torch.randperm(n, generator=gen, device=z0.device), 0
            idx = order[pos : pos + batch_size]
            pos += idx.numel()
            loss = model.ldm_loss(modality, z0[idx], cond[idx], generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % every == 0 or step == n_steps - 1:
                history[modality].append(float(loss.detach()))
                log.info("ldm %s step %d/%d loss %.4f", modality, step + 1, n_steps, history[modality][-1])
            if check is not None and ((step + 1) % check_every == 0 or step == n_steps - 1):
                if check.evaluate(step + 1, ldm) and patience is not None and check.since_best >= patience:
                    log.info("ldm %s: early stop after step %d (no improvement in %d evaluations)", modality,
                             step + 1, patience)
                    break
            if (step + 1) % checkpoint_every == 0:
                save(step + 1, finished=False)
        if check is not None:
            check.restore(ldm)
            history[f"{modality}_validation"] = check.values
            history[f"{modality}_selected_step"] = [float(check.best_step)]
        save(n_steps, finished=True)
        ldm.eval()
        for p in ldm.parameters():
            p.requires_grad_(False)
    model.eval()
    return history


class _DenoisingCheck:
    """A diffusion model's denoising loss on held-out pairs at fixed draws, and the best weights so far."""

    def __init__(self, model: MUST, modality: str, z0: torch.Tensor, cond: torch.Tensor, seed: int,
                 draws: int = 256) -> None:
        repeat = max(1, -(-draws // z0.shape[0]))
        self.model, self.modality = model, modality
        self.z0, self.cond = z0.repeat(repeat, 1), cond.repeat(repeat, 1)
        self.seed = seed + 7919  # draws of their own, the same at every evaluation
        self.values: list[float] = []
        self.best, self.best_step, self.since_best = float("inf"), 0, 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def evaluate(self, step: int, ldm: torch.nn.Module) -> bool:
        """Evaluate after ``step``; keep the weights if best. Returns True (so callers can test patience)."""
        ldm.eval()
        gen = torch.Generator(device=self.z0.device).manual_seed(self.seed)
        value = float(self.model.ldm_loss(self.modality, self.z0, self.cond, generator=gen))
        ldm.train()
        self.values.append(value)
        if value < self.best:
            self.best, self.best_step, self.since_best = value, step, 0
            self.best_weights = {k: v.detach().clone() for k, v in ldm.state_dict().items()}
        else:
            self.since_best += 1
        log.info("ldm %s step %d validation loss %.4f (best %.4f at step %d)", self.modality, step, value,
                 self.best, self.best_step)
        return True

    def restore(self, ldm: torch.nn.Module) -> None:
        """Load the best weights into ``ldm``."""
        if self.best_weights is not None:
            ldm.load_state_dict(self.best_weights)


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


def _predict_scenario(
    model: MUST, items: Sequence[PatientItem], scenario: Scenario, batch_size: int, sampling: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """Survival (N, K) and risk (N,) of ``items`` (every one admitted by ``scenario``) in ``scenario``.

    The risk is −Σ_k S(k) summed on the model's device, exactly as ``predict_risk`` computes it. The patients
    go through the model in :func:`~mustsurv.models.batch.item_buckets` of at most ``batch_size``.
    """
    device = next(model.parameters()).device
    surv, risk = [], []
    announce(items)
    for bucket in item_buckets(list(items), batch_size):
        s = model.predict_survival(collate(bucket).to(device), scenario, **sampling)
        surv.append(s.cpu())
        risk.append((-s.sum(dim=1)).cpu())
    return torch.cat(surv), torch.cat(risk)


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
    train: Sequence[PatientItem] | None = None,
) -> pd.DataFrame:
    """Survival curve and risk per patient and scenario, in the predictions file contract
    (:mod:`mustsurv.evaluate.predictions`).

    A patient appears in a scenario only if it has the modalities the scenario keeps. Sampling noise is
    seeded per patient, so results do not depend on ``batch_size`` or the order of the patients. The
    model's ``predict_survival`` gives each patient's (K,) survival ``S(k)``; ``risk`` is −Σ_k S(k), the
    same value ``predict_risk`` returns.

    Args:
        model: MUST or a registry baseline (anything with ``predict_survival(batch, scenario, n_samples,
            steps, seed)``).
        dataset: the patients to predict (the test fold).
        scenarios: the scenarios to predict.
        batch_size: the most patients per forward pass (fewer when their bags exceed the token budget,
            :func:`~mustsurv.models.batch.item_buckets`).
        n_samples: DDIM samples averaged per patient (MUST's missing scenarios).
        steps: DDIM steps.
        seed: sampling seed (combined with each patient id).
        specific: ``"zero"`` (MUST only): the missing û is a zero tensor instead of an LDM sample.
        train: the patients the model was fit on; they are predicted the same way (same seeds, same
            sampling) and their median risk per scenario fills ``train_median_risk``. None leaves that
            column NaN (such a table is not a valid predictions file).

    Returns:
        One row per (patient, scenario): ``patient_id, scenario, risk, time, event, train_median_risk,
        survival_1 … survival_K``.
    """
    sampling = dict(n_samples=n_samples, steps=steps, seed=seed)
    if specific != "ldm":
        sampling["specific"] = specific
    model.eval()
    frames = []
    for scenario in scenarios:
        items = [it for it in dataset if scenario_available(it, scenario)]
        if not items:
            continue
        surv, risk = _predict_scenario(model, items, scenario, batch_size, sampling)
        median = float("nan")
        if train is not None:
            fitted = [it for it in train if scenario_available(it, scenario)]
            if fitted:
                median = float(np.median(_predict_scenario(model, fitted, scenario, batch_size, sampling)[1]
                                         .double().numpy()))
        frame = pd.DataFrame({PATIENT_ID: [it["patient_id"] for it in items], "scenario": scenario,
                              "risk": risk.tolist(), "time": [float(it["time"]) for it in items],
                              "event": [int(it["event"]) for it in items], "train_median_risk": median})
        frame[survival_columns(surv.shape[1])] = surv.double().numpy()
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[PATIENT_ID, "scenario", "risk", "time", "event", "train_median_risk"])
    return pd.concat(frames, ignore_index=True)
