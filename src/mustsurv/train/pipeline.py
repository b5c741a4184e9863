"""What the training and prediction rules run: one MUST stage of one run per call (the main run and every
analysis variant go through :func:`run_must_stage`), the test-fold predictions, and the baselines.

Each call reads one fold's datasets (a ``store`` shared over a job's folds keeps bags in memory within its
budget and logs its counters after every call),
continues from the previous stage's checkpoint and writes its own
checkpoint atomically. While a stage runs, its per-epoch progress is kept in ``<checkpoint>.progress``,
so a killed job resumes after its last finished epoch; the file is removed when the stage completes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from mustsurv.cohort.store import FeatureStore
from mustsurv.evaluate.decomposition import decomposition_cosines
from mustsurv.evaluate.predictions import write_predictions
from mustsurv.io import atomic_path
from mustsurv.models.baselines.coxnet import CoxnetBaseline
from mustsurv.models.baselines.missing import MissingModalityBaseline
from mustsurv.models.batch import PatientItem
from mustsurv.models.must import MUST
from mustsurv.models.registry import build_model, model_class
from mustsurv.study.runs import MAIN, Variant
from mustsurv.study.vocabulary import SCENARIOS
from mustsurv.train.classical import fit_classical
from mustsurv.train.data import FoldData, fold_datasets
from mustsurv.train.must import (
    predict,
    train_stage1,
    train_stage2,
    train_stage3,
    unpair,
)
from mustsurv.train.selection import Selection, make_monitor, scenario_cindex
from mustsurv.train.trainer import (
    OptimConfig,
    TrainState,
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


def load_fold(data: dict[str, str | None], selection: Selection, store: FeatureStore | None) -> FoldData:
    """Load a fold's datasets as ``selection`` needs them (fit on train, or on train + validation).

    Args:
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        selection: the run's selection.
        store: feature store shared between folds.

    Returns:
        The fold's datasets.
    """
    return fold_datasets(data["cohort"], data["split"], data.get("tokens"), data.get("summary"), store=store,
                         fit_on_validation=selection.fit_on_validation)


def run_must_stage(stage: int, data: dict[str, str | None], out: str | Path, cfg: dict[str, Any], seed: int,
                   selection: Selection, previous: str | Path | None = None, store: FeatureStore | None = None,
                   variant: Variant = MAIN, fold: int = 0, device: torch.device = torch.device("cpu"),
                   precision: str = "float32") -> None:
    """Train stage ``stage`` of the MUST run ``variant`` on fold ``fold``'s training part and save the whole model.

    Every stage selects as ``selection`` says: stages 1-2 keep the epoch with the lowest validation survival
    loss (or C-index) and stop early; stage 3 stops each diffusion model at its lowest validation denoising
    loss. A run without warm-up saves its initialised model as stage 1; a run with ``stage2_from`` starts
    stage 3 from that run's stage-2 model, rebuilt with its own model kwargs (only the diffusion models may
    differ).

    Args:
        stage: 1, 2 or 3.
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        out: the checkpoint to write (the whole model after this stage).
        cfg: the config's ``must`` block (``model``, ``stage1``, ``stage2``, ``stage3``).
        seed: seeds weights, order, noise.
        selection: where and how choices are made (:class:`~mustsurv.train.selection.Selection`).
        previous: the checkpoint after the previous stage (stages 2 and 3).
        store: feature store shared by the job's folds.
        variant: the MUST run.
        fold: the fold index (seeds the unpairing of an unpaired run).
        device: where to train (:func:`~mustsurv.train.trainer.training_device`).
        precision: ``training.precision`` of stages 1-2 (``float32`` or ``bf16``).

    Raises:
        ValueError: the cohort lacks slides or genomics, ``stage`` is not 1-3, ``previous`` is missing for
            stages 2 and 3, or it does not match this run's model.
    """
    seed_everything(seed)
    fold_data = load_fold(data, selection, store)
    train = fold_data.train
    monitored = selection.monitored(fold_data)
    if train.pathology_dim is None or not train.family_sizes:
        raise ValueError(f"{data['cohort']}: MUST needs both slides and genomics in the cohort")
    unpaired = variant.unpaired > 0
    items = unpair(list(train), variant.unpaired, seed + fold) if unpaired else train
    progress = fresh_progress(out, [*data.values(), previous])
    kwargs = must_kwargs(train.family_sizes, train.pathology_dim, train.n_bins, variant.model_config(cfg["model"]))
    meta: dict[str, Any] = {"stage": stage, "run": variant.run, "selection": asdict(selection)}
    if stage in (1, 2):
        model = build_model("must", **kwargs).to(device) if stage == 1 else _continue(previous, kwargs, device)
        meta["history"], meta["selected_epoch"] = [], 0
        if stage == 2 or variant.warmup:
            loss_fn = model.warmup_loss if stage == 1 else model.main_loss
            monitor = make_monitor(selection, monitored, loss_fn, scenario_cindex(predict, model, "complete", seed))
            train_stage = train_stage1 if stage == 1 else train_stage2
            state = train_stage(model, items, OptimConfig(**cfg[f"stage{stage}"], seed=seed, precision=precision), progress_path=progress,
                                unpaired=unpaired, monitor=monitor, patience=selection.patience)
            meta["history"], meta["selected_epoch"] = state.history, state.selected_epoch
    elif stage == 3:
        model = _continue(previous, kwargs, device)
        meta["ldm_history"] = train_stage3(model, items, seed=seed, validation=monitored,
                                           evaluations=selection.stage3_evaluations, patience=selection.patience,
                                           progress_path=progress, **cfg["stage3"])
    else:
        raise ValueError(f"MUST has stages 1, 2 and 3, not {stage}")
    save_checkpoint(out, model, "must", kwargs, meta)
    progress.unlink(missing_ok=True)
    train.store.log_counters(f"{variant.run} stage {stage}, fold {fold}")
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
                           out_tsv: str | Path, out_no_ldm: str | Path | None = None,
                           train: Sequence[PatientItem] | None = None) -> None:
    """Write MUST's test predictions in every scenario.

    Args:
        model: the trained MUST model.
        test: the test patients.
        inference: the config's ``must.inference`` block.
        seed: sampling seed.
        out_tsv: predictions TSV.
        out_no_ldm: if given, also the two missing scenarios with a zero tensor in place of the missing û.
        train: the patients the model was fit on, predicted the same way for the files' ``train_median_risk``.
    """
    sampling = dict(n_samples=inference["n_samples"], steps=inference["ddim_steps"],
                    batch_size=inference["batch_size"], seed=seed)
    for scenarios, specific, out in ((SCENARIOS, "ldm", out_tsv),
                                     (("missing_genomics", "missing_pathology"), "zero", out_no_ldm)):
        if out is not None:
            pred = predict(model, test, scenarios, specific=specific, train=train, **sampling)
            write_predictions(pred, out)


def predict_must(ckpt: str | Path, data: dict[str, str | None], out_tsv: str | Path, out_npz: str | Path,
                 inference: dict[str, Any], seed: int, selection: Selection, store: FeatureStore | None = None,
                 out_no_ldm: str | Path | None = None, device: torch.device = torch.device("cpu")) -> None:
    """Predict the risk of every test patient in every scenario it allows, and the decomposition cosines.

    Args:
        ckpt: the stage-3 checkpoint.
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        out_tsv: predictions TSV.
        out_npz: decomposition cosines.
        inference: the config's ``must.inference`` block.
        seed: sampling seed.
        selection: the run's selection (which patients the model was fit on, for ``train_median_risk``).
        store: feature store shared between folds.
        out_no_ldm: if given, also the two missing scenarios with a zero tensor in place of the missing û.
        device: where to predict.
    """
    seed_everything(seed)
    model, _ = load_checkpoint(ckpt, device)
    fold = load_fold(data, selection, store)
    train, test = fold.train, fold.test
    write_must_predictions(model, test, inference, seed, out_tsv, out_no_ldm, train=train)
    cos = decomposition_cosines(model, test)
    test.store.log_counters(f"predicting {ckpt}")
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **cos)
    log.info("predicted %d test patients; mean cos(û_P, û_G) %.3f, cos(ĉ_P←G, ĉ_G←P) %.3f", len(test),
             float(np.mean(cos["cos_u_p_u_g"])) if len(cos["cos_u_p_u_g"]) else float("nan"),
             float(np.mean(cos["cos_c_pg_c_gp"])) if len(cos["cos_c_pg_c_gp"]) else float("nan"))


def run_baseline(method: str, data: dict[str, str | None], out_ckpt: str | Path, out_tsv: str | Path,
                 cfg: dict[str, Any], seed: int, selection: Selection, store: FeatureStore | None = None,
                 device: torch.device = torch.device("cpu")) -> None:
    """Train a registry baseline on a fold's training patients it accepts and predict its test patients.

    The epoch kept (and the stop) are chosen as ``selection`` says, on the validation patients the method
    accepts. The model predicts only the scenarios it declares (``scenarios`` class attribute).

    Args:
        method: the registry name.
        data: ``cohort``, ``split`` and optionally ``tokens``, ``summary`` paths.
        out_ckpt: the checkpoint to write.
        out_tsv: the test predictions to write.
        cfg: the config's ``baselines.<method>`` block (``model`` kwargs, ``train`` optimiser settings).
        seed: seeds weights, order, noise and sampling.
        selection: where and how choices are made.
        store: feature store shared by the job's folds.
        device: where to train.

    Raises:
        ValueError: no training patient has the modalities the method needs.
    """
    seed_everything(seed)
    fold_data = load_fold(data, selection, store)
    train, test = fold_data.train, fold_data.test
    cls = model_class(method)
    items = [it for it in train if cls.accepts(it)]
    if not items:
        raise ValueError(f"{data['cohort']}: no training patient has the modalities {method} needs")
    monitored = selection.monitored(fold_data)
    monitored = None if monitored is None else [it for it in monitored if cls.accepts(it)]
    kwargs = {**cls.input_kwargs(train.pathology_dim, train.family_sizes), "n_bins": train.n_bins, **cfg["model"]}
    if issubclass(cls, CoxnetBaseline):  # no epochs: the penalty is chosen on the validation patients
        model = build_model(method, **kwargs)
        info = fit_classical(model, fold_data, selection.metric, seed=seed)
        save_checkpoint(out_ckpt, model, method, kwargs, {"selection": asdict(selection), "coxnet": info})
        _write_test_predictions(model, cls, test, out_tsv, seed, [it for it in train if cls.accepts(it)])
        return
    points = selection.grid_points(method)
    single = len(points) == 1 and not selection.refit
    progress = fresh_progress(out_ckpt, list(data.values()))
    best: tuple[float, dict[str, Any], torch.nn.Module, TrainState] | None = None
    for point in points:
        seed_everything(seed)
        model = build_model(method, **kwargs).to(device)
        monitor = make_monitor(selection, monitored, model.loss,
                               scenario_cindex(predict, model, cls.scenarios[0], seed))
        state = fit_baseline(model, items, {**cfg["train"], **point}, seed, progress if single else None, monitor,
                              selection.patience)
        score = state.best if state.best is not None else 0.0
        log.info("%s %s: selected epoch %d (monitored %.4f)", method, point or "", state.selected_epoch, score)
        if best is None or score < best[0]:
            best = (score, point, model, state)
    _, point, model, state = best  # type: ignore[misc]
    meta = {"history": state.history, "selected_epoch": state.selected_epoch, "selection": asdict(selection),
            "grid_point": point}
    if selection.refit:
        refit = fold_datasets(data["cohort"], data["split"], data.get("tokens"), data.get("summary"), store=store,
                              fit_on_validation=True)
        items = [it for it in refit.train if cls.accepts(it)]
        seed_everything(seed)
        model = build_model(method, **kwargs).to(device)
        fit_baseline(model, items, {**cfg["train"], **point, "epochs": state.selected_epoch}, seed, None, None, None)
        test = refit.test
        meta["refit_on"] = len(items)
    save_checkpoint(out_ckpt, model, method, kwargs, meta)
    progress.unlink(missing_ok=True)
    _write_test_predictions(model, cls, test, out_tsv, seed, items)
    test.store.log_counters(f"{method} on {data['split']}")


def fit_baseline(model: torch.nn.Module, items: Sequence[PatientItem], train_cfg: dict[str, Any], seed: int,
                  progress: Path | None, monitor: Callable[[], float] | None, patience: int | None) -> TrainState:
    """Train a deep baseline (with a missing-modality baseline's prepare / finish hooks around the epochs).

    Args:
        model: the baseline; trained in place.
        items: the patients it is fit on.
        train_cfg: optimiser settings (:class:`~mustsurv.train.trainer.OptimConfig` fields, ``epochs`` included).
        seed: seeds the epoch order.
        progress: resumable progress file, or None.
        monitor: the selection criterion, or None (keep the last epoch).
        patience: epochs without improvement before stopping early.

    Returns:
        The training state (``selected_epoch``: whose weights the model holds).
    """
    hooks = isinstance(model, MissingModalityBaseline)
    if hooks:
        model.prepare(items)
    state = train_epochs(model, items, model.loss, model.parameters(), OptimConfig(**train_cfg, seed=seed),
                         progress_path=progress, monitor=monitor, patience=patience)
    if hooks:
        model.eval()
        with torch.no_grad():
            model.finish(items)
    return state


def _write_test_predictions(model: torch.nn.Module, cls: type, test: Sequence[PatientItem], out_tsv: str | Path,
                            seed: int, train: Sequence[PatientItem]) -> None:
    """A baseline's test predictions in the scenarios it declares, with its training patients' median risk."""
    pred = predict(model, test, cls.scenarios, seed=seed, train=train)
    write_predictions(pred, out_tsv)
    log.info("%s: trained on %d training patients; predicted %d test rows", cls.__name__, len(train), len(pred))
