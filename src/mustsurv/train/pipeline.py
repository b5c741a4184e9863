"""What the training and prediction rules run: one MUST stage of one run per call (the main run and every
analysis variant go through :func:`run_must_stage`), the test-fold predictions, and the baselines.

Each call reads one fold's datasets (a ``store`` shared over a job's folds reads each bag once),
continues from the previous stage's checkpoint and writes its own
checkpoint atomically. While a stage runs, its per-epoch progress is kept in ``<checkpoint>.progress``,
so a killed job resumes after its last finished epoch; the file is removed when the stage completes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mustsurv.cohort.store import FeatureStore
from mustsurv.evaluate.decomposition import decomposition_cosines
from mustsurv.evaluate.predictions import write_predictions
from mustsurv.io import atomic_path
from mustsurv.models.baselines.missing import MissingModalityBaseline
from mustsurv.models.batch import PatientItem
from mustsurv.models.must import MUST
from mustsurv.models.registry import build_model, model_class
from mustsurv.study.runs import MAIN, Variant
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.train.data import fold_datasets
from mustsurv.train.must import (
    predict,
    train_stage1,
    train_stage2,
    train_stage3,
    unpair,
)
from mustsurv.train.trainer import (
    OptimConfig,
    default_device,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    train_epochs,
)

log = logging.getLogger(__name__)


def fresh_progress(out: str | Path, inputs: list[str | Path | None]) -> Path:
    """Return the path of ``<out>.progress``; a progress file older than any input is stale and removed first.

    Args:
        out: the stage's output path.
        inputs: the stage's inputs (None entries are skipped).

    Returns:
        The progress path.
    """
    progress = Path(f"{out}.progress")
    if progress.exists():
        newest = max((Path(p).stat().st_mtime for p in inputs if p is not None and Path(p).exists()), default=0.0)
        if progress.stat().st_mtime < newest:
            log.warning("removing stale %s (older than its inputs)", progress)
            progress.unlink()
    return progress


def must_kwargs(family_sizes: list[int], pathology_dim: int, n_bins: int,
                model_cfg: dict[str, Any]) -> dict[str, Any]:
    """Build the constructor kwargs of the MUST model for a fold.

    Args:
        family_sizes: d_k of each genomic family.
        pathology_dim: D_path of the patch features.
        n_bins: number of time bins K.
        model_cfg: the config's ``must.model`` block.

    Returns:
        The data-dependent sizes merged with the config.
    """
    return {"family_dims": list(family_sizes), "pathology_dim": int(pathology_dim), "n_bins": int(n_bins),
            **model_cfg}


def run_must_stage(stage: int, data: dict[str, str | None], out: str | Path, cfg: dict[str, Any], seed: int,
                   previous: str | Path | None = None, store: FeatureStore | None = None,
                   variant: Variant = MAIN, fold: int = 0) -> None:
    """Train stage ``stage`` of the MUST run ``variant`` on fold ``fold``'s training part and save the whole model.

    A run without warm-up saves its initialised model as stage 1; a run with ``stage2_from`` starts stage 3
    from that run's stage-2 model, rebuilt with its own model kwargs (only the diffusion models may differ).

    Args:
        stage: 1, 2 or 3.
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        out: the checkpoint to write.
        cfg: the config's ``must`` block (``model``, ``stage1``, ``stage2``, ``stage3``).
        seed: the run's seed.
        previous: the checkpoint after the previous stage (stages 2 and 3).
        store: feature store shared between folds.
        variant: the MUST variant (main run or an ablation).
        fold: fold index (seeds the unpairing).

    Raises:
        ValueError: the cohort lacks slides or genomics, ``stage`` is not 1-3, ``previous`` is missing for
            stages 2 and 3, or it does not match this run's model.
    """
    seed_everything(seed)
    device = default_device()
    train, _ = fold_datasets(data["cohort"], data["split"], data.get("tokens"), data.get("summary"),
                                store=store)
    if train.pathology_dim is None or not train.family_sizes:
        raise ValueError(f"{data['cohort']}: MUST needs both slides and genomics in the cohort")
    unpaired = variant.unpaired > 0
    items = unpair(list(train), variant.unpaired, seed + fold) if unpaired else train
    progress = fresh_progress(out, [*data.values(), previous])
    kwargs = must_kwargs(train.family_sizes, train.pathology_dim, train.n_bins, variant.model_config(cfg["model"]))
    if stage == 1:
        model = build_model("must", **kwargs).to(device)
        history = []
        if variant.warmup:
            history = train_stage1(model, items, OptimConfig(**cfg["stage1"], seed=seed), progress_path=progress,
                                   unpaired=unpaired).history
        meta: dict[str, Any] = {"stage": 1, "history": history}
    elif stage == 2:
        model = _continue(previous, kwargs, device)
        state = train_stage2(model, items, OptimConfig(**cfg["stage2"], seed=seed), progress_path=progress,
                             unpaired=unpaired)
        meta = {"stage": 2, "history": state.history}
    elif stage == 3:
        model = _continue(previous, kwargs, device)
        meta = {"stage": 3, "ldm_history": train_stage3(model, items, seed=seed, **cfg["stage3"])}
    else:
        raise ValueError(f"MUST has stages 1, 2 and 3, not {stage}")
    save_checkpoint(out, model, "must", kwargs, {**meta, "run": variant.run})
    progress.unlink(missing_ok=True)
    log.info("%s stage %d done on %d training patients; saved %s", variant.run, stage, len(items), out)


def _continue(previous: str | Path | None, kwargs: dict[str, Any], device: torch.device) -> MUST:
    """Load the model of checkpoint ``previous``.

    When its kwargs differ from ``kwargs`` only in the diffusion models' settings, a model built with
    ``kwargs`` takes every other weight from it; other differences raise ValueError.
    """
    if previous is None:
        raise ValueError("stages 2 and 3 continue from the previous stage's checkpoint; pass `previous`")
    model, ckpt = load_checkpoint(previous, device)
    if ckpt["kwargs"] == kwargs:
        return model
    changed = sorted(k for k in set(kwargs) | set(ckpt["kwargs"]) if kwargs.get(k) != ckpt["kwargs"].get(k))
    if any(not k.startswith("ldm_") for k in changed):
        raise ValueError(f"{previous} was trained with other model settings ({', '.join(changed)}) than this run; "
                         f"delete it so the run retrains it")
    fresh = build_model("must", **kwargs).to(device)
    state = {n: v for n, v in model.state_dict().items() if not n.startswith("ldm_")}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if unexpected or any(not n.startswith("ldm_") for n in missing):
        raise ValueError(f"{previous} does not match this run's model: unexpected {unexpected}, missing {missing}")
    return fresh


def write_must_predictions(model: MUST, test: Sequence[PatientItem], inference: dict[str, Any], seed: int,
                           out_tsv: str | Path, out_no_ldm: str | Path | None = None) -> None:
    """Write MUST's test predictions in every scenario.

    Args:
        model: the trained MUST model.
        test: the test patients.
        inference: the config's ``must.inference`` block.
        seed: sampling seed.
        out_tsv: predictions TSV.
        out_no_ldm: if given, also the two missing scenarios with a zero tensor in place of the missing û.
    """
    sampling = dict(n_samples=inference["n_samples"], steps=inference["ddim_steps"],
                    batch_size=inference["batch_size"], seed=seed)
    for scenarios, specific, out in ((SCENARIOS, "ldm", out_tsv),
                                     (("missing_genomics", "missing_pathology"), "zero", out_no_ldm)):
        if out is not None:
            pred = predict(model, test, scenarios, specific=specific, **sampling)
            write_predictions(pred, out)


def predict_must(ckpt: str | Path, data: dict[str, str | None], out_tsv: str | Path, out_npz: str | Path,
                 inference: dict[str, Any], seed: int, store: FeatureStore | None = None,
                 out_no_ldm: str | Path | None = None) -> None:
    """Predict the risk of every test patient in every scenario it allows, and the decomposition cosines.

    Args:
        ckpt: the stage-3 checkpoint.
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        out_tsv: predictions TSV.
        out_npz: decomposition cosines.
        inference: the config's ``must.inference`` block.
        seed: sampling seed.
        store: feature store shared between folds.
        out_no_ldm: if given, also the two missing scenarios with a zero tensor in place of the missing û.
    """
    seed_everything(seed)
    model, _ = load_checkpoint(ckpt, default_device())
    _, test = fold_datasets(data["cohort"], data["split"], data.get("tokens"), data.get("summary"),
                                store=store)
    write_must_predictions(model, test, inference, seed, out_tsv, out_no_ldm)
    cos = decomposition_cosines(model, test)
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **cos)
    log.info("predicted %d test patients; mean cos(û_P, û_G) %.3f, cos(ĉ_P←G, ĉ_G←P) %.3f", len(test),
             float(np.mean(cos["cos_u_p_u_g"])) if len(cos["cos_u_p_u_g"]) else float("nan"),
             float(np.mean(cos["cos_c_pg_c_gp"])) if len(cos["cos_c_pg_c_gp"]) else float("nan"))


def run_baseline(method: str, data: dict[str, str | None], out_ckpt: str | Path, out_tsv: str | Path,
                 cfg: dict[str, Any], seed: int, store: FeatureStore | None = None) -> None:
    """Train a registry baseline on a fold's training patients it accepts and predict its test patients.

    The model predicts only the scenarios it declares (``scenarios`` class attribute).

    Args:
        method: registry name of the baseline.
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        out_ckpt: the checkpoint to write.
        out_tsv: predictions TSV.
        cfg: the config's ``baselines.<method>`` block (``model`` kwargs, ``train`` optimiser settings).
        seed: the run's seed.
        store: feature store shared between folds.

    Raises:
        ValueError: no training patient has the modalities the method needs.
    """
    seed_everything(seed)
    device = default_device()
    train, test = fold_datasets(data["cohort"], data["split"], data.get("tokens"), data.get("summary"),
                                store=store)
    cls = model_class(method)
    items = [it for it in train if cls.accepts(it)]
    if not items:
        raise ValueError(f"{data['cohort']}: no training patient has the modalities {method} needs")
    kwargs = {**cls.input_kwargs(train.pathology_dim, train.family_sizes), "n_bins": train.n_bins, **cfg["model"]}
    model = build_model(method, **kwargs).to(device)
    progress = fresh_progress(out_ckpt, list(data.values()))
    hooks = isinstance(model, MissingModalityBaseline)
    if hooks:
        model.prepare(items)
    state = train_epochs(model, items, model.loss, model.parameters(), OptimConfig(**cfg["train"], seed=seed),
                         progress_path=progress)
    if hooks:
        model.eval()
        with torch.no_grad():
            model.finish(items)
    save_checkpoint(out_ckpt, model, method, kwargs, {"history": state.history})
    progress.unlink(missing_ok=True)
    pred = predict(model, test, cls.scenarios, seed=seed)
    write_predictions(pred, out_tsv)
    log.info("%s: trained on %d of %d training patients; predicted %d test rows", method, len(items), len(train),
             len(pred))
