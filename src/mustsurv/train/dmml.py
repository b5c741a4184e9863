"""DMML's three training stages and its predictions (one call per stage and fold; ``workflow/rules/dmml.smk``).

* ``teacher``: slides at every magnification + RNA subspaces, on the paired training patients; the
  classifier's gradients are coordinated between backward and step.
* ``student``: the WSI-only student from scratch on every training patient with slides (survival NLL per
  magnification); its checkpoint is also the "without distillation" ablation.
* ``distilled``: the pre-trained student further trained with the frozen teacher (NLL + subspace
  distillation), on the paired training patients (the teacher reads their RNA).

Every stage keeps the epoch its selection chooses on the validation patients (``selection``), saves its
whole model atomically and resumes from ``<checkpoint>.progress`` after a kill, as MUST's stages do.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mustsurv.evaluate.predictions import write_predictions
from mustsurv.models.batch import PatientItem, SurvivalBatch
from mustsurv.models.dmml.distillation import distillation_loss
from mustsurv.models.dmml.genes import subspace_columns
from mustsurv.models.dmml.student import DMMLStudent
from mustsurv.models.dmml.teacher import SUBSPACES, DMMLTeacher
from mustsurv.models.registry import build_model
from mustsurv.omics.tokens import read_tokens
from mustsurv.train.data import FoldData
from mustsurv.train.dmml_data import MagnificationBags, dmml_items
from mustsurv.train.must import predict
from mustsurv.train.pipeline import fresh_progress, load_fold
from mustsurv.train.selection import Selection, make_monitor, scenario_cindex
from mustsurv.train.trainer import (
    OptimConfig,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    train_epochs,
)

log = logging.getLogger(__name__)

STAGES: tuple[str, ...] = ("teacher", "student", "distilled")


def teacher_kwargs(tokens_h5: str | Path, pathology_dim: int, n_mags: int, n_bins: int,
                   cfg: dict[str, Any]) -> dict[str, Any]:
    """The teacher's constructor kwargs for a cohort.

    Args:
        tokens_h5: the cohort's family tokens (feature names of each family).
        pathology_dim: D_path.
        n_mags: M.
        n_bins: K.
        cfg: the config's ``dmml`` block.

    Returns:
        The kwargs (the subspaces as (family, column) RNA pairs).
    """
    tokens = read_tokens(tokens_h5)
    subspaces = [subspace_columns(tokens.family_names, tokens.features, cfg["subspaces"][s]) for s in SUBSPACES]
    log.info("DMML subspaces: %s", ", ".join(f"{s} {len(c)} genes" for s, c in zip(SUBSPACES, subspaces)))
    return {"pathology_dim": int(pathology_dim), "subspaces": subspaces, "n_tokens": cfg["n_tokens"],
            "n_mags": n_mags, "n_bins": int(n_bins), **cfg["model"]}


def student_kwargs(pathology_dim: int, n_mags: int, n_bins: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """The student's constructor kwargs (the teacher's width, attention and survival settings).

    Args:
        pathology_dim: D_path.
        n_mags: M.
        n_bins: K.
        cfg: the config's ``dmml`` block.

    Returns:
        The kwargs.
    """
    shared = {k: cfg["model"][k] for k in ("dim", "heads", "head_dim", "points", "dropout", "alpha")}
    return {"pathology_dim": int(pathology_dim), "n_tokens": cfg["n_tokens"], "n_mags": n_mags,
            "n_bins": int(n_bins), **shared, **cfg["student"]}


def distill_loss_fn(student: DMMLStudent, teacher: DMMLTeacher, cfg: dict[str, Any]):
    """The distillation stage's loss: the student's NLL + per magnification the subspace distillation.

    Args:
        student: the student being trained.
        teacher: the frozen teacher (eval mode, no gradient).
        cfg: the config's ``dmml.distill_loss`` block (``temperature``, ``kl_weight``, ``feature_weight``).

    Returns:
        Batch -> (loss, logs) for :func:`~mustsurv.train.trainer.train_epochs`.
    """

    def loss(batch: SurvivalBatch) -> tuple[Tensor, dict[str, float]]:
        with torch.no_grad():
            t_logits, t_feats, _ = teacher.outputs(batch)
        s_logits, s_tokens = student.outputs(batch)
        surv = student.survival_losses(s_logits, batch)
        kd = sum(distillation_loss(sl, tl, st, tf, **cfg) for sl, tl, st, tf in zip(s_logits, t_logits, s_tokens,
                                                                                      t_feats))
        return surv + kd, {"surv": float(surv.detach()), "distill": float(kd.detach())}

    return loss


def _paired(items: list[PatientItem]) -> list[PatientItem]:
    """The patients with slides and genomics."""
    return [it for it in items if it["pathology"] is not None and it["genomics"] is not None]


def _with_slides(items: list[PatientItem]) -> list[PatientItem]:
    """The patients with slides."""
    return [it for it in items if it["pathology"] is not None]


def load_dmml_fold(data: dict[str, Any], cfg: dict[str, Any], selection: Selection,
                   bags: MagnificationBags | None = None) -> tuple[FoldData, dict[str, list]]:
    """A fold's datasets and its DMML items by part.

    Args:
        data: ``cohort``, ``split``, ``tokens`` and ``summaries`` (one per magnification, main first).
        cfg: the config's ``dmml`` block.
        selection: the run's selection.
        bags: the job's bag cache, shared by its folds (a new one when None).

    Returns:
        The fold's datasets and ``{"train", "validation", "test"}`` item lists (validation None when absent).
    """
    fold = load_fold({"cohort": data["cohort"], "split": data["split"], "tokens": data["tokens"],
                      "summary": data["summaries"][0]}, selection, None)
    bags = bags if bags is not None else MagnificationBags(data["cohort"], data["summaries"], cfg["n_tokens"])
    parts = {"train": fold.train, "validation": fold.validation, "test": fold.test}
    return fold, {k: None if ds is None else dmml_items(ds, bags) for k, ds in parts.items()}


def run_dmml_stage(stage: str, data: dict[str, Any], out: str | Path, cfg: dict[str, Any], seed: int,
                   selection: Selection, teacher: str | Path | None = None, student: str | Path | None = None,
                   bags: MagnificationBags | None = None, device: torch.device = torch.device("cpu")) -> None:
    """Train one DMML stage on a fold's training patients and save the model.

    Args:
        stage: ``teacher``, ``student`` or ``distilled``.
        data: ``cohort``, ``split``, ``tokens`` and ``summaries`` (one per magnification, main first).
        out: the checkpoint to write.
        cfg: the config's ``dmml`` block.
        seed: seeds weights and order.
        selection: where and how the epoch is chosen.
        teacher: the teacher checkpoint (``distilled``).
        student: the pre-trained student checkpoint (``distilled``).
        bags: the job's bag cache, shared by its folds.
        device: where to train.

    Raises:
        ValueError: unknown stage, a missing checkpoint argument, no training patient with the needed
            modalities, or a student whose tokens cannot match the teacher's features.
    """
    if stage not in STAGES:
        raise ValueError(f"DMML has the stages {', '.join(STAGES)}, not {stage!r}")
    seed_everything(seed)
    fold, items = load_dmml_fold(data, cfg, selection, bags)
    n_mags, dim, n_bins = len(data["summaries"]), fold.train.pathology_dim, fold.train.n_bins
    if dim is None:
        raise ValueError(f"{data['cohort']}: DMML needs slides")
    pick = _with_slides if stage == "student" else _paired
    train = pick(items["train"])
    monitored = selection.monitored(FoldData(items["train"], items["validation"], items["test"]))
    monitored = None if monitored is None else pick(list(monitored))
    if not train:
        raise ValueError(f"{data['cohort']}: no training patient has the modalities DMML's {stage} stage needs")
    progress = fresh_progress(out, [data["cohort"], data["split"], data["tokens"], *data["summaries"], teacher,
                                    student])
    before_step = None
    if stage == "teacher":
        kwargs = teacher_kwargs(data["tokens"], dim, n_mags, n_bins, cfg)
        model = build_model("dmml", **kwargs).to(device)
        loss_fn, name, optim, scenario = model.loss, "dmml", cfg["teacher"], "complete"
        before_step = model.coordinate_gradients
    elif stage == "student":
        kwargs = student_kwargs(dim, n_mags, n_bins, cfg)
        model = build_model("dmml_student", **kwargs).to(device)
        loss_fn, name, optim, scenario = model.loss, "dmml_student", cfg["student_train"], "missing_genomics"
    else:
        if teacher is None or student is None:
            raise ValueError("the distilled stage continues from the teacher and the pre-trained student; pass both")
        frozen, _ = load_checkpoint(teacher, device)
        model, ckpt = load_checkpoint(student, device)
        kwargs, name, optim, scenario = ckpt["kwargs"], "dmml_student", cfg["distillation"], "missing_genomics"
        if model.branches[0].classifier.in_features != 2 * frozen.dim:
            raise ValueError("distillation matches the student's aggregated tokens (n_clusters x dim) to the "
                             "teacher's [f_t; f_m] (2 x dim); set dmml.student.n_clusters: 2")
        frozen.requires_grad_(False)
        loss_fn = distill_loss_fn(model, frozen, cfg["distill_loss"])
        model.train()
    monitor = make_monitor(selection, monitored, model.loss, scenario_cindex(predict, model, scenario, seed))
    state = train_epochs(model, train, loss_fn, model.parameters(), OptimConfig(**optim, seed=seed),
                         progress_path=progress, monitor=monitor, patience=selection.patience,
                         before_step=before_step)
    meta = {"stage": stage, "selection": asdict(selection), "history": state.history,
            "selected_epoch": state.selected_epoch}
    save_checkpoint(out, model, name, kwargs, meta)
    progress.unlink(missing_ok=True)
    log.info("DMML %s done on %d training patients; saved %s", stage, len(train), out)


def predict_dmml(ckpt: str | Path, data: dict[str, Any], out_tsv: str | Path, cfg: dict[str, Any], seed: int,
                 selection: Selection, bags: MagnificationBags | None = None,
                 device: torch.device = torch.device("cpu")) -> None:
    """Predict the test patients of a fold in every scenario the model declares.

    Args:
        ckpt: a teacher or student checkpoint.
        data: ``cohort``, ``split``, ``tokens`` and ``summaries``.
        out_tsv: the predictions file.
        cfg: the config's ``dmml`` block.
        seed: seed.
        selection: the run's selection (which patients the model was fit on, for ``train_median_risk``).
        bags: the job's bag cache, shared by its folds.
        device: where to predict.
    """
    seed_everything(seed)
    model, _ = load_checkpoint(ckpt, device)
    _, items = load_dmml_fold(data, cfg, selection, bags)
    write_predictions(predict(model, items["test"], model.scenarios, seed=seed, train=items["train"]), out_tsv)
    log.info("predicted %d test patients with %s", len(items["test"]), ckpt)
