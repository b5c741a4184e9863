"""The trainer shared by every method: seeded shuffling, batch-size-1 + gradient accumulation (the
paper's protocol) or its grouped equivalent, AdamW, atomic checkpoints, resumable epochs.

Equivalence of the two forms: an epoch is cut into groups of ``accumulation_steps`` consecutive
patients of the seeded permutation and the optimiser steps once per group (the last, shorter group
included). In the paper's form each patient is its own forward/backward with its loss divided by the
group size; in the grouped form the whole group is one forward/backward of the batch-mean loss. Every
loss term in this package is a mean of per-patient terms and no layer mixes patients (no batch norm),
so both give the same gradient up to floating-point rounding; with dropout or noise injection they
differ only in which random numbers are drawn. Bags keep their own lengths in both forms (each bag
goes through its MIL aggregator alone), so no padding changes the result.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from mustsurv.cohort.store import announce
from mustsurv.io import atomic_path
from mustsurv.models.batch import PatientItem, SurvivalBatch, collate
from mustsurv.models.registry import build_model

log = logging.getLogger(__name__)

LossFn = Callable[[SurvivalBatch], tuple[Tensor, dict[str, float]]]


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("float32", "bf16")


def training_device(setting: str, gpus: int) -> torch.device:
    """The device a training or prediction job runs on.

    Args:
        setting: ``training.device``: ``auto`` (CUDA only when the job requested a GPU and one is visible),
            ``cpu`` or ``cuda``.
        gpus: ``training.gpu``, the GPUs the job requested from its scheduler (which sets
            ``CUDA_VISIBLE_DEVICES``, so the first visible device is the one it was given).

    Returns:
        ``cuda`` (the first visible device) or ``cpu``.

    Raises:
        ValueError: an unknown setting.
        RuntimeError: ``cuda`` was asked for and no GPU is visible; the message names the keys to change.
    """
    if setting not in DEVICES:
        raise ValueError(f"training.device must be one of {', '.join(DEVICES)}, got {setting!r}")
    visible = torch.cuda.is_available()
    if setting == "cuda" and not visible:
        raise RuntimeError("training.device is cuda but no GPU is visible to this job (CUDA_VISIBLE_DEVICES="
                           f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); request one with training.gpu: 1 "
                           "(and `--resources gpu=1` locally) or set training.device: cpu")
    if setting == "cuda" or (setting == "auto" and gpus >= 1 and visible):
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA).

    Args:
        seed: the seed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class OptimConfig:
    """One training stage's optimiser settings.

    Attributes:
        epochs: number of epochs.
        lr: learning rate.
        weight_decay: weight decay.
        accumulation_steps: patients per optimiser step.
        grouped: use the one-pass-per-group form.
        seed: seed of the epoch permutations.
        optimizer: ``adamw``, ``adam`` or ``sgd``.
        momentum: SGD momentum.
        precision: ``float32``, or ``bf16``: forward passes under bfloat16 autocast (matrix products and
            convolutions in bfloat16; pseudo-inverse, softmaxes, residual streams and losses in float32).
    """

    epochs: int = 30
    lr: float = 2e-4
    weight_decay: float = 1e-5
    accumulation_steps: int = 32
    grouped: bool = False
    seed: int = 0
    optimizer: str = "adamw"
    momentum: float = 0.9
    precision: str = "float32"


@dataclass
class TrainState:
    """What a progress file needs to resume a stage.

    Attributes:
        epochs_done: epochs trained so far.
        history: per-epoch mean training logs (plus ``monitor``, the monitored value, when one is given).
        selected_epoch: the epoch whose weights are kept (the last one without a monitor).
        best: the best monitored value so far (lower is better); None without a monitor.
        since_best: epochs since the best one (early stopping counts them against the patience).
    """

    epochs_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    selected_epoch: int = 0
    best: float | None = None
    since_best: int = 0


def make_optimizer(params: list[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Build the optimiser of ``cfg``, with ``cfg.lr`` and ``cfg.weight_decay``.

    Args:
        params: the parameters to train.
        cfg: ``cfg.optimizer`` is ``adamw`` (MUST, paper), ``adam`` (SurvPath and most baselines) or ``sgd``
            (CMTA, with ``cfg.momentum``).

    Returns:
        The optimiser.

    Raises:
        ValueError: unknown optimiser.
    """
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; use adamw, adam or sgd")


def epoch_groups(n: int, group_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Cut a seeded permutation of ``range(n)`` for ``epoch`` into consecutive groups of ``group_size``.

    Args:
        n: number of patients.
        group_size: patients per group (optimiser step), >= 1.
        seed: the stage's seed.
        epoch: epoch index.

    Returns:
        The groups of indices.

    Raises:
        ValueError: ``group_size`` < 1.
    """
    if group_size < 1:
        raise ValueError(f"accumulation_steps must be >= 1, got {group_size}")
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=gen).tolist()
    return [order[i : i + group_size] for i in range(0, n, group_size)]


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The autocast context of a training precision.

    Args:
        device: where the forward pass runs.
        precision: ``float32`` (autocast off) or ``bf16``.

    Returns:
        A ``torch.autocast`` context (disabled for ``float32``).

    Raises:
        ValueError: an unknown precision; the message names ``training.precision``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"training.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def accumulate_group(
    model: nn.Module, loss_fn: LossFn, items: Sequence[PatientItem], grouped: bool, device: torch.device,
    precision: str = "float32",
) -> dict[str, float]:
    """Add the gradient of the group-mean loss to ``.grad`` (no optimiser step).

    Args:
        model: the model.
        loss_fn: batch -> (loss, logs).
        items: the group's patients.
        grouped: one forward pass for the whole group; else one per patient.
        device: device of the batches.
        precision: ``float32`` or ``bf16`` (forward passes under bfloat16 autocast, see :func:`autocast`).

    Returns:
        The mean logs.
    """
    if grouped:
        with autocast(device, precision):
            loss, logs = loss_fn(collate(items).to(device))
        loss.backward()
        return {"loss": float(loss.detach()), **logs}
    sums: dict[str, float] = {}
    for item in items:
        with autocast(device, precision):
            loss, logs = loss_fn(collate([item]).to(device))
        (loss / len(items)).backward()
        for key, value in {"loss": float(loss.detach()), **logs}.items():
            sums[key] = sums.get(key, 0.0) + value / len(items)
    return sums


def train_epochs(
    model: nn.Module,
    dataset: Sequence[PatientItem],
    loss_fn: LossFn,
    params: Iterable[nn.Parameter],
    cfg: OptimConfig,
    device: torch.device | None = None,
    progress_path: str | Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    monitor: Callable[[], float] | None = None,
    patience: int | None = None,
    before_step: Callable[[], None] | None = None,
) -> TrainState:
    """Train ``params`` of ``model`` on ``dataset`` with ``loss_fn`` for at most ``cfg.epochs`` epochs.

    Without ``monitor`` the last epoch's weights are kept. With one, ``monitor()`` is evaluated after every
    epoch with the model in eval mode (lower is better; e.g. the validation survival loss), the weights of
    the best epoch are kept and restored at the end, and training stops once ``patience`` epochs in a row
    brought no improvement (None: never early).

    Args:
        model: the model; trained in place.
        dataset: the training patients.
        loss_fn: batch -> (loss, logs).
        params: the parameters to train (those without ``requires_grad`` are skipped).
        cfg: optimiser, epochs and accumulation.
        device: where batches go (default: the model's device).
        progress_path: if given, the model, optimiser, state and best weights are saved there atomically
            after each epoch, and a run finding that file resumes after its last finished epoch (same seed
            -> same result as an uninterrupted run).
        on_epoch: called with (epoch, logs) after each epoch.
        monitor: the selection criterion, evaluated after each epoch.
        patience: epochs without improvement of ``monitor`` before stopping early.
        before_step: called after each group's backward pass and before its optimiser step (e.g. DMML's
            gradient coordination, which edits ``.grad``).

    Returns:
        The final :class:`TrainState` (``selected_epoch`` says whose weights the model holds).

    Raises:
        ValueError: the training set is empty.
    """
    if len(dataset) == 0:
        raise ValueError("the training set is empty")
    device = device or next(model.parameters()).device
    params = [p for p in params if p.requires_grad]
    optimizer = make_optimizer(params, cfg)
    state = TrainState()
    best_weights: dict[str, Tensor] | None = None
    if progress_path is not None and Path(progress_path).exists():
        saved = torch.load(progress_path, map_location=device, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = TrainState(**saved["state"])
        best_weights = saved.get("best_weights")
        log.info("resuming from %s after epoch %d", progress_path, state.epochs_done)
    model.train()
    stopped = monitor is not None and patience is not None and state.since_best >= patience
    for epoch in range(state.epochs_done, cfg.epochs if not stopped else state.epochs_done):
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)  # dropout / noise of this epoch
        sums: dict[str, float] = {}
        groups = epoch_groups(len(dataset), cfg.accumulation_steps, cfg.seed, epoch)
        store = announce([dataset[i] for group in groups for i in group])  # the feature store reads ahead
        for group in groups:
            optimizer.zero_grad(set_to_none=True)
            logs = accumulate_group(model, loss_fn, [dataset[i] for i in group], cfg.grouped, device, cfg.precision)
            if before_step is not None:
                before_step()
            optimizer.step()
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value * len(group) / len(dataset)
        state.epochs_done = epoch + 1
        if monitor is None:
            state.selected_epoch = epoch + 1
        else:
            sums["monitor"] = _evaluate(model, monitor)
            if state.best is None or sums["monitor"] < state.best:
                state.best, state.selected_epoch, state.since_best = sums["monitor"], epoch + 1, 0
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                state.since_best += 1
        state.history.append(sums)
        log.info("epoch %d/%d %s", epoch + 1, cfg.epochs, " ".join(f"{k}={v:.4f}" for k, v in sums.items()))
        if store is not None:
            store.log_counters(f"epoch {epoch + 1}")
        if on_epoch is not None:
            on_epoch(epoch, sums)
        if progress_path is not None:
            with atomic_path(progress_path) as tmp:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "state": asdict(state), "best_weights": best_weights}, tmp)
        if monitor is not None and patience is not None and state.since_best >= patience:
            log.info("early stop after epoch %d: no improvement for %d epochs", epoch + 1, patience)
            break
    if best_weights is not None:
        model.load_state_dict(best_weights)
        log.info("kept the weights of epoch %d (monitored %.4f)", state.selected_epoch, state.best)
    return state


def _evaluate(model: nn.Module, monitor: Callable[[], float]) -> float:
    """``monitor()`` with the model in eval mode and the global RNG untouched (training resumes as if the
    evaluation had not happened)."""
    model.eval()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        value = float(monitor())
    model.train()
    return value


def save_checkpoint(
    path: str | Path, model: nn.Module, name: str, kwargs: dict[str, Any], meta: dict[str, Any] | None = None
) -> None:
    """Save ``model`` atomically so it can be rebuilt.

    Args:
        path: the checkpoint file.
        model: the model.
        name: its registry name.
        kwargs: its constructor arguments.
        meta: extra metadata.
    """
    record = {"name": name, "kwargs": _interned(kwargs), "state_dict": model.state_dict(), "meta": _interned(meta or {})}
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def _interned(value: Any) -> Any:
    """``value`` with every string interned, in dicts and lists alike.

    Pickle writes a string once and refers back to it when the same object recurs, so equal strings that are
    different objects give other bytes: a resumed run's history (keys read back from its progress file) would
    differ from an uninterrupted run's. Interning makes the checkpoint's bytes depend on the values only.
    """
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        return {_interned(k): _interned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_interned(v) for v in value)
    return value


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved by :func:`save_checkpoint`.

    Args:
        path: the checkpoint file.
        device: device to load onto.

    Returns:
        The model in eval mode and the checkpoint dict.

    Raises:
        FileNotFoundError: the checkpoint does not exist; run the training rule that writes it.
        ValueError: the file is not a readable mustsurv checkpoint; delete it and retrain.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; run the training rule that writes it")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=False)
        model = build_model(ckpt["name"], **ckpt["kwargs"])
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise ValueError(f"{path} is not a readable mustsurv checkpoint ({exc}); delete it and retrain") from exc
    return model.to(device).eval(), ckpt
