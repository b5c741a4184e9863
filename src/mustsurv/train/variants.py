"""MUST variants for the paper's analysis experiments: the ablations of Table 3 / Fig. 4 and the
training-time missingness study of supplement Table 4.

A variant is the study's ``must`` configuration with a few changes, named so the workflow can make
one job per cohort and variant:

* ``no_warmup``: stage 2 straight from initialisation (Table 3(a), "w/o warm-up").
* ``ldm_no_cls``: the diffusion models conditioned on [ĉ] without the class token (Table 3(b)). Only
  stage 3 changes, so the variant starts from the main run's stage-2 checkpoint.
* ``rank<r>``: the shared subspace of rank r (Fig. 4), for each configured rank other than the main one.
* ``unpaired<pct>``: ``pct`` % of the training patients keep one modality only (half lose genomics,
  half pathology); they take the survival loss only with a zero tensor for the missing û, and the
  diffusion models are trained on the surrogate condition c̃ (supplement §8.2).

The unchanged main run (``results/cohorts/<cohort>/predictions/must``) is the reference of every
comparison: warm-up, [ĉ; CLS], the main rank and 0 % unpaired.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch

from mustsurv.cohort.store import FeatureStore
from mustsurv.models.batch import PatientItem
from mustsurv.models.registry import build_model
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY
from mustsurv.train.data import fold_datasets
from mustsurv.train.must import train_stage1, train_stage2, train_stage3
from mustsurv.train.pipeline import write_must_predictions
from mustsurv.train.trainer import OptimConfig, default_device, load_checkpoint, save_checkpoint, seed_everything

log = logging.getLogger(__name__)

def must_variants(ablations: dict[str, Any], model_cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variant name -> its changes: ``model`` (MUST kwargs), ``warmup`` (bool), ``unpaired`` (fraction),
    ``from_stage2`` (start from the main run's stage-2 checkpoint). ``ablations``: the config block with
    ``ranks`` and ``unpaired_fractions``; ``model_cfg``: ``must.model`` (its ``rank`` and ``dim``)."""
    main_rank, dim = int(model_cfg.get("rank", 64)), int(model_cfg.get("dim", 256))
    ranks = ablation_ranks(ablations, dim)
    too_large = [r for r in ranks if not 0 < int(r) < dim]
    if too_large:
        raise ValueError(f"ablations.ranks {too_large} must lie in (0, must.model.dim = {dim}); the paper's "
                         f"16-128 are for D = 256 - scale them with D (e.g. 4, 8, 16, 32 for D = 64)")
    variants: dict[str, dict[str, Any]] = {
        "no_warmup": {"warmup": False},
        "ldm_no_cls": {"model": {"ldm_cls": False}, "from_stage2": True},
    }
    for rank in ranks:
        if int(rank) != main_rank:
            variants[f"rank{int(rank)}"] = {"model": {"rank": int(rank)}}
    for fraction in ablations.get("unpaired_fractions", []):
        if not 0 < float(fraction) < 1:
            raise ValueError(f"ablations.unpaired_fractions must lie in (0, 1), got {fraction}")
        variants[f"unpaired{round(100 * float(fraction))}"] = {
            "unpaired": float(fraction), "model": {"ldm_condition": "surrogate"}}
    return variants


def ablation_ranks(ablations: dict[str, Any], dim: int) -> list[int]:
    """The configured ``ablations.ranks``, or D/16, D/8, D/4, D/2 (the paper's 16-128 at D = 256)."""
    if ablations.get("ranks"):
        return [int(r) for r in ablations["ranks"]]
    return sorted({max(1, dim // k) for k in (16, 8, 4, 2)})


def unpair(items: Sequence[PatientItem], fraction: float, seed: int) -> list[PatientItem]:
    """A copy of ``items`` where round(``fraction`` · n) complete patients, drawn with ``seed``, lose one
    modality: the first half of the draw loses genomics, the rest pathology."""
    complete = [i for i, it in enumerate(items) if it["pathology"] is not None and it["genomics"] is not None]
    n_drop = round(fraction * len(items))
    if n_drop > len(complete) - 2:
        raise ValueError(f"cannot unpair {n_drop} of {len(items)} patients: at least two pairs must remain")
    gen = torch.Generator().manual_seed(seed)
    chosen = [complete[i] for i in torch.randperm(len(complete), generator=gen)[:n_drop].tolist()]
    out = [dict(it) for it in items]
    for j, i in enumerate(chosen):
        out[i][GENOMICS if j < (n_drop + 1) // 2 else PATHOLOGY] = None
    return out  # type: ignore[return-value]


def run_must_variant(variant: dict[str, Any], data: dict[str, Any], must_cfg: dict[str, Any],
                     out_models: Sequence[str | Path], out_predictions: Sequence[str | Path],
                     out_no_ldm: Sequence[str | Path], seed: int, store: FeatureStore | None = None,
                     stage2: Sequence[str | Path] | None = None) -> None:
    """Train and evaluate one variant on every fold of a cohort (fold k -> the k-th path of each list).

    ``data``: ``cohort``, ``splits`` (fold files) and optionally ``tokens``, ``summary``; ``stage2``: the
    main run's stage-2 checkpoints (variants with ``from_stage2``). Writes per fold the final model, the
    predictions in every scenario and, for the two missing scenarios, the predictions with a zero tensor
    in place of the missing û ("without LDM").
    """
    store = store or FeatureStore()
    device = default_device()
    if variant.get("from_stage2") and (stage2 is None or len(stage2) != len(data["splits"])):
        raise ValueError("this variant starts from the main run's stage-2 checkpoints; pass one per fold")
    for k, split in enumerate(data["splits"]):
        seed_everything(seed)  # the main run's seed on every fold, so a variant differs only in its change
        train, test = fold_datasets(data["cohort"], split, data.get("tokens"), data.get("summary"), store=store)
        if train.path_dim is None or not train.family_sizes:
            raise ValueError(f"{data['cohort']}: MUST needs both slides and genomics in the cohort")
        fraction = float(variant.get("unpaired", 0.0))
        items = unpair(list(train), fraction, seed + k) if fraction else list(train)
        kwargs = {"family_dims": list(train.family_sizes), "pathology_dim": int(train.path_dim),
                  "n_bins": int(train.n_bins), **must_cfg["model"], **variant.get("model", {})}
        model = build_model("must", **kwargs).to(device)
        if variant.get("from_stage2"):
            main, _ = load_checkpoint(stage2[k], device)  # type: ignore[index]
            state = {n: v for n, v in main.state_dict().items() if not n.startswith("ldm_")}
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or any(not n.startswith("ldm_") for n in missing):
                raise ValueError(f"{stage2[k]} does not match the variant's model: "  # type: ignore[index]
                                 f"unexpected {unexpected}, missing {missing}")
        else:
            if variant.get("warmup", True):
                train_stage1(model, items, OptimConfig(**must_cfg["stage1"], seed=seed), unpaired=bool(fraction))
            train_stage2(model, items, OptimConfig(**must_cfg["stage2"], seed=seed), unpaired=bool(fraction))
        history = train_stage3(model, items, seed=seed, **must_cfg["stage3"])
        save_checkpoint(out_models[k], model, "must", kwargs, {"variant": variant, "ldm_history": history})
        write_must_predictions(model, test, must_cfg["inference"], seed, out_predictions[k], out_no_ldm[k])
        log.info("fold %d: trained on %d patients (%d unpaired); predicted %d test patients", k, len(items),
                 sum(it["pathology"] is None or it["genomics"] is None for it in items), len(test))
