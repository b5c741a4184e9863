"""Final models of a cohort and the bundle that carries them.

A final model is trained on every patient of the cohort that has a modality, with the time-bin edges of
all of them, for as long as cross-validation chose: the median over the folds of the selected epoch count
of each stage (MUST: stage 1 and 2 epochs, and per diffusion model its selected step; a baseline: the
epochs of its most often chosen grid point). Under ``selection.mode: last_epoch`` the folds kept their
last epoch, so the median is the configured count. Nothing is chosen on the final model's patients
themselves (a Cox baseline, which has no epochs, chooses its penalty by inner cross-validation on them).
With ``deploy.ensemble`` the fold models themselves are bundled instead, each with its own scaler and
edges, and their risks averaged.

The bundle's risk cut-offs are, per scenario, the median and tertiles of the training patients' risks in
that scenario (the other modality masked), predicted by the bundle exactly as new patients are (:func:`mustsurv.deploy.predict.score`).
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mustsurv.cohort.splits import bin_edges, read_fold, write_fold
from mustsurv.cohort.store import FeatureStore
from mustsurv.cohort.table import HAS_GENOMICS, HAS_PATHOLOGY, read_cohort_table
from mustsurv.deploy.bundle import (
    member_record,
    open_bundle,
    stamped,
    training_record,
    write_bundle,
)
from mustsurv.deploy.inputs import cohort_patients
from mustsurv.deploy.predict import cutoffs, score
from mustsurv.models.baselines.coxnet import CoxnetBaseline
from mustsurv.models.registry import build_model, model_class
from mustsurv.omics.tokens import read_tokens
from mustsurv.study import layout
from mustsurv.study.design import magnifications
from mustsurv.study.methods import scenarios_of
from mustsurv.study.runs import MAIN_RUN
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, PATIENT_ID
from mustsurv.train.classical import fit_classical
from mustsurv.train.data import fold_datasets
from mustsurv.train.pipeline import fit_baseline, load_fold, run_must_stage
from mustsurv.train.selection import Selection
from mustsurv.train.trainer import load_checkpoint, seed_everything

log = logging.getLogger(__name__)


def median_count(values: Sequence[float]) -> int:
    """The median of the folds' counts, rounded half up.

    Args:
        values: one count per fold.

    Returns:
        The count.

    Raises:
        ValueError: no value.
    """
    if not len(values):
        raise ValueError("no fold count to take the median of")
    return int(np.floor(np.median(np.asarray(values, dtype=float)) + 0.5))


def final_split(cohort_tsv: str | Path, n_bins: int, out: str | Path) -> dict[str, Any]:
    """Write a fold file whose training part is every patient with a modality (no validation, no test).

    Args:
        cohort_tsv: the cohort table.
        n_bins: K; the edges come from all of these patients.
        out: the fold file to write.

    Returns:
        The record.
    """
    table = read_cohort_table(cohort_tsv)
    table = table.loc[table[HAS_PATHOLOGY].astype(bool) | table[HAS_GENOMICS].astype(bool)]
    record = {"fold": "final", "folds": 0, "n_bins": n_bins, "bin_edges": bin_edges(table["time"].to_numpy(),
              table["event"].to_numpy(), n_bins), "train": sorted(table[PATIENT_ID]), "validation": [], "test": []}
    write_fold(out, record)
    return record


def _meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's ``meta``."""
    return torch.load(path, map_location="cpu", weights_only=False)["meta"]


def must_epochs(checkpoints: dict[int, list[str]], cfg: dict[str, Any]) -> dict[str, Any]:
    """MUST's final training length from its fold checkpoints.

    Args:
        checkpoints: stage -> the folds' checkpoints after it.
        cfg: the config's ``must`` block (its counts are used where a fold recorded no selection).

    Returns:
        ``stage1``, ``stage2`` (epochs) and ``stage3`` (``{modality: steps}``).
    """
    out: dict[str, Any] = {}
    for stage in (1, 2):
        out[f"stage{stage}"] = median_count([_meta(p).get("selected_epoch", cfg[f"stage{stage}"]["epochs"])
                                             for p in checkpoints[stage]])
    histories = [_meta(p).get("ldm_history", {}) for p in checkpoints[3]]
    out["stage3"] = {m: median_count([h.get(f"{m}_selected_step", [cfg["stage3"]["steps"]])[0] for h in histories])
                     for m in (PATHOLOGY, GENOMICS)}
    return out


def train_final_must(data: dict[str, str | None], cfg: dict[str, Any], seed: int, epochs: dict[str, Any],
                     workdir: str | Path, store: FeatureStore, device: torch.device) -> torch.nn.Module:
    """Train MUST's three stages on the final split for the given lengths.

    Args:
        data: ``cohort``, ``split`` (the final split), ``tokens``, ``summary``.
        cfg: the config's ``must`` block.
        seed: training seed.
        epochs: :func:`must_epochs`.
        workdir: where the stage checkpoints go.
        store: feature store.
        device: where to train.

    Returns:
        The trained model.
    """
    run_cfg = copy.deepcopy(cfg)
    run_cfg["stage1"]["epochs"], run_cfg["stage2"]["epochs"] = epochs["stage1"], epochs["stage2"]
    run_cfg["stage3"]["steps"] = dict(epochs["stage3"])
    selection = Selection(mode="last_epoch")
    previous = None
    for stage in (1, 2, 3):
        out = Path(workdir) / f"stage{stage}.pt"
        run_must_stage(stage, data, out, run_cfg, seed, selection, previous=previous, store=store, device=device)
        previous = out
    return load_checkpoint(previous, device)[0]


def train_final_baseline(method: str, data: dict[str, str | None], cfg: dict[str, Any], seed: int,
                         checkpoints: list[str], selection: Selection, store: FeatureStore,
                         device: torch.device) -> tuple[torch.nn.Module, dict[str, Any], dict[str, Any]]:
    """Train a baseline on the final split.

    Args:
        method: registry name.
        data: ``cohort``, ``split`` (the final split), ``tokens``, ``summary``.
        cfg: the config's ``baselines.<method>`` block.
        seed: training seed.
        checkpoints: the folds' checkpoints (their selected epochs and grid points).
        selection: the study's selection (its metric for a Cox baseline's inner cross-validation).
        store: feature store.
        device: where to train.

    Returns:
        The model, its constructor kwargs and what it trained for.
    """
    seed_everything(seed)
    fold = load_fold(data, Selection(mode="last_epoch"), store)
    train = fold.train
    cls = model_class(method)
    kwargs = {**cls.input_kwargs(train.pathology_dim, train.family_sizes), "n_bins": train.n_bins, **cfg["model"]}
    model = build_model(method, **kwargs).to(device)
    if issubclass(cls, CoxnetBaseline):
        return model, kwargs, {"coxnet": fit_classical(model, fold, selection.metric, seed=seed)}
    metas = [_meta(p) for p in checkpoints]
    points = [json.dumps(m.get("grid_point") or {}, sort_keys=True) for m in metas]
    point = Counter(points).most_common(1)[0][0]
    n = median_count([m["selected_epoch"] for m, p in zip(metas, points) if p == point])
    items = [it for it in train if cls.accepts(it)]
    fit_baseline(model, items, {**cfg["train"], **json.loads(point), "epochs": n}, seed, None, None, None)
    return model, kwargs, {"epochs": n, "grid_point": json.loads(point)}


def build_bundle(method: str, cohort: str, inputs: dict[str, Any], checkpoints: dict[int, list[str]] | list[str],
                 config: dict[str, Any], out: str | Path, device: torch.device | None = None) -> None:
    """Train the final model(s) of a method on a cohort (or take its fold models) and write its bundle.

    Args:
        method: the method.
        cohort: the cohort's name.
        inputs: ``cohort`` (table), ``splits`` (fold files), ``tokens`` and ``summary`` (or None).
        checkpoints: MUST: stage -> fold checkpoints; a baseline: its fold checkpoints.
        config: the study's (schema-filled) config.
        out: the bundle to write.
        device: where to train (None: the CPU).
    """
    device = device or torch.device("cpu")
    seed = config["training"]["seed"]
    store = FeatureStore()
    selection = Selection.from_config(config["selection"])
    data = {"cohort": inputs["cohort"], "tokens": inputs.get("tokens"), "summary": inputs.get("summary")}
    with tempfile.TemporaryDirectory(prefix="mustsurv-final-") as tmp:
        split = final_split(inputs["cohort"], config["cv"]["n_bins"], Path(tmp) / "final.json")
        data["split"] = str(Path(tmp) / "final.json")
        final = fold_datasets(data["cohort"], data["split"], data["tokens"], data["summary"], store=store,
                              fit_on_validation=True).train
        if config["deploy"]["ensemble"]:
            members, epochs = _fold_members(method, inputs, checkpoints, selection, store, device), {"ensemble": True}
        elif method == MAIN_RUN:
            epochs = must_epochs(checkpoints, config["must"])
            log.info("final MUST on %d patients for %s", len(final), epochs)
            model = train_final_must(data, config["must"], seed, epochs, tmp, store, device)
            kwargs = load_checkpoint(Path(tmp) / "stage3.pt")[1]["kwargs"]
            members = [member_record(method, kwargs, model, final.scaler, split["bin_edges"])]
        else:
            model, kwargs, epochs = train_final_baseline(method, data, config["baselines"][method], seed,
                                                         checkpoints, selection, store, device)
            log.info("final %s on %d patients: %s", method, len(final), epochs)
            members = [member_record(method, kwargs, model, final.scaler, split["bin_edges"])]
    scenarios = list(scenarios_of(method))
    reads_p = any(s in scenarios for s in ("complete", "missing_genomics"))
    reads_g = any(s in scenarios for s in ("complete", "missing_pathology"))
    genomics = None
    if inputs.get("tokens") is not None and reads_g:
        tokens = read_tokens(inputs["tokens"])
        genomics = {"family_names": tokens.family_names, "features": tokens.features,
                    "rna_transform": tokens.rna_transform}
    slides = config["slides"]
    encoder = None if final.pathology_dim is None or not reads_p else {
        "name": slides["encoder"], "dim": int(final.pathology_dim), "target_mpp": magnifications(slides)[0],
        "patch_size": int(slides["patch_size"]), "provenance": _provenance(cohort)}
    inference = {**{k: config["must"]["inference"][k] for k in ("n_samples", "ddim_steps", "batch_size")},
                 "seed": seed}
    record = {"method": method, "cohort": cohort, "kind": "ensemble" if config["deploy"]["ensemble"] else "final",
              "scenarios": scenarios, "members": members, "bin_edges": split["bin_edges"],
              "genomics": genomics, "encoder": encoder, "cutoffs": {}, "inference": inference,
              "training": training_record(final.patients, final.time, final.event, epochs), "config": config}
    bundle = open_bundle(stamped(record), out, device)
    patients = cohort_patients(bundle, inputs["cohort"], inputs.get("tokens"), inputs.get("summary"))
    record["cutoffs"] = cutoffs(pd.concat([score(bundle, patients, s, allow_training_patients=True)
                                           for s in bundle.scenarios]))
    write_bundle(out, record)
    log.info("wrote %s (%s, %d member(s)); cut-offs %s", out, record["kind"], len(members), record["cutoffs"])


def _provenance(cohort: str) -> dict[str, Any] | None:
    """The cohort's feature provenance (``slides_summary``'s ``provenance.json``), None when it was not written."""
    path = Path(layout.slide_provenance(cohort))
    return json.loads(path.read_text()) if path.is_file() else None


def _fold_members(method: str, inputs: dict[str, Any], checkpoints: dict[int, list[str]] | list[str],
                  selection: Selection, store: FeatureStore, device: torch.device) -> list[dict[str, Any]]:
    """The fold models as bundle members, each with the scaler and edges of the patients it was fit on."""
    paths = checkpoints[3] if isinstance(checkpoints, dict) else checkpoints
    members = []
    for split, path in zip(inputs["splits"], paths):
        model, ckpt = load_checkpoint(path, device)
        fold = fold_datasets(inputs["cohort"], split, inputs.get("tokens"), inputs.get("summary"), store=store,
                             fit_on_validation=selection.fit_on_validation)
        members.append(member_record(ckpt["name"], ckpt["kwargs"], model, fold.train.scaler,
                                     read_fold(split)["bin_edges"]))
    return members
