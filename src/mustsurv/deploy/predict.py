"""Scoring new patients with a bundle, any modality subset per patient.

A new cohort is read into :class:`~mustsurv.deploy.inputs.NewPatients` (:mod:`mustsurv.deploy.inputs`).
:func:`score` predicts each patient in the scenario its modalities allow
(or in one given scenario, the other modality masked) and returns one row per patient (:data:`COLUMNS` plus
``survival_at_<edge>`` per finite bin edge). For a missing modality MUST's row also carries
``risk_sd``, the standard deviation of the risk over the DDIM samples of the missing component.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mustsurv.deploy.bundle import Bundle, Member
from mustsurv.deploy.inputs import NewPatients, PredictInputError
from mustsurv.evaluate.metrics import survival_at
from mustsurv.models.batch import PatientItem, collate
from mustsurv.models.must import MUST, patient_generator
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, PATIENT_ID, SCENARIOS

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (PATIENT_ID, "scenario", "modalities", "risk", "risk_group", "risk_tertile", "risk_sd",
                            "training_patient")
"""The columns of a prediction, before the ``survival_at_<edge>`` columns (edge in months, 2 decimals)."""
TERTILES = ("low", "intermediate", "high")


def scenario_for(modalities: Sequence[str], scenarios: Sequence[str]) -> str | None:
    """The scenario a patient is scored in: complete when it has both modalities and the method predicts it, else
    the scenario of the one modality the method reads.

    Args:
        modalities: the patient's modalities.
        scenarios: the method's scenarios.

    Returns:
        The scenario, or None when the method reads none of the patient's modalities.
    """
    options = []
    if PATHOLOGY in modalities and GENOMICS in modalities:
        options.append("complete")
    if PATHOLOGY in modalities:
        options.append("missing_genomics")
    if GENOMICS in modalities:
        options.append("missing_pathology")
    return next((s for s in options if s in scenarios), None)


def _items(patients: NewPatients, ids: Sequence[str], scenario: str, member: Member,
           bags: dict[str, torch.Tensor]) -> list[PatientItem]:
    """The patients of ``ids`` as model items in ``scenario`` (the modality it drops masked), scaled by the member."""
    keep_p, keep_g = scenario != "missing_pathology", scenario != "missing_genomics"
    omics = {}
    if keep_g:
        with_g = [p for p in ids if p in patients.omics]
        if with_g:
            raw = [np.stack([patients.omics[p][k] for p in with_g]) for k in range(len(patients.omics[with_g[0]]))]
            scaled = member.scaler.transform(raw)
            omics = {p: [torch.from_numpy(s[i].copy()) for s in scaled] for i, p in enumerate(with_g)}
    return [{"patient_id": p, "pathology": bags.get(p) if keep_p else None, "genomics": omics.get(p),
             "time": patients.time.get(p, 0.0), "event": patients.event.get(p, 0), "bin": 0} for p in ids]


@torch.no_grad()
def missing_survival(model: MUST, batch: Any, scenario: str, n_samples: int, steps: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """MUST in a missing scenario: the survival from the mean generated component, and the risk's spread over
    the samples.

    The survival equals :meth:`MUST.predict_survival` (same noise: :func:`patient_generator`); each of the S
    samples also goes through the head alone, and the standard deviation of their risks is returned.

    Args:
        model: the MUST model.
        batch: B patients having the available modality.
        scenario: ``missing_genomics`` or ``missing_pathology``.
        n_samples: S DDIM samples.
        steps: DDIM steps.
        seed: sampling seed.

    Returns:
        (B, K) survival and (B,) standard deviation of the risk over the S samples.
    """
    if scenario == "missing_genomics":
        g, u = model.encode_pathology([p for p in batch.pathology if p is not None])[:2]
    else:
        g, u = model.encode_genomics(batch.genomics or [])[:2]
    u_hat = model.project_specific(u)
    missing = GENOMICS if scenario == "missing_genomics" else PATHOLOGY
    return generate_and_score(model, u_hat, g - u_hat, missing, batch.patient_ids, n_samples, steps, seed)


@torch.no_grad()
def generate_and_score(model: MUST, u_hat: torch.Tensor, c_tilde: torch.Tensor, missing: str,
                       patient_ids: Sequence[str], n_samples: int, steps: int,
                       seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The generative part of a missing-modality prediction: c̃ → S DDIM samples of the missing û → head → survival.

    All B x S samples are denoised in one batch (the condition's keys and values computed once per patient);
    the survival comes from the mean sample, the spread from each sample through the head.

    Args:
        model: the MUST model.
        u_hat: (B, D) the available modality's specific component û.
        c_tilde: (B, D) the surrogate shared component c̃ = g − û.
        missing: the missing modality (``pathology`` or ``genomics``).
        patient_ids: B ids (seed each patient's noise).
        n_samples: S.
        steps: DDIM steps.
        seed: sampling seed.

    Returns:
        (B, K) survival and (B,) standard deviation of the risk over the S samples.
    """
    from mustsurv.survival import survival_from_hazards

    ldm, cls = model._ldm(missing)
    noise = torch.stack([torch.randn((n_samples, model.dim), generator=patient_generator(seed, pid),
                                     dtype=c_tilde.dtype) for pid in patient_ids]).to(c_tilde.device)
    samples = ldm.sample(c_tilde, cls, noise=noise, steps=steps)  # (B, S, D)
    b, s, d = samples.shape
    # (I - P) is linear: the mean of the projected samples is the projection of their mean (sample_specific)
    projected = model.project_specific(samples.reshape(b * s, d)).reshape(b, s, d)
    filled = torch.cat([projected.mean(dim=1, keepdim=True), projected], dim=1).reshape(b * (s + 1), d)
    avail, cond = u_hat.repeat_interleave(s + 1, dim=0), c_tilde.repeat_interleave(s + 1, dim=0)
    logits = (model.head_logits(avail, cond, filled) if missing == GENOMICS
              else model.head_logits(filled, cond, avail))
    surv = survival_from_hazards(torch.sigmoid(logits)).reshape(b, s + 1, -1)
    return surv[:, 0], (-surv[:, 1:].sum(dim=2)).std(dim=1, unbiased=False)


def _member_outputs(member: Member, items: list[PatientItem], scenario: str, inference: dict[str, Any],
                    edges: list[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One member's survival at the bundle's edges (N, K), risk (N,) and risk spread (N,) of ``items``."""
    model = member.model
    device = next(model.parameters()).device
    surv, sd = [], []
    for start in range(0, len(items), inference["batch_size"]):
        batch = collate(items[start:start + inference["batch_size"]]).to(device)
        if isinstance(model, MUST) and scenario != "complete":
            s, spread = missing_survival(model, batch, scenario, inference["n_samples"], inference["ddim_steps"],
                                         inference["seed"])
        else:
            s = model.predict_survival(batch, scenario, n_samples=inference["n_samples"],
                                       steps=inference["ddim_steps"], seed=inference["seed"])
            spread = torch.full((len(batch),), float("nan"))
        surv.append(s.double().cpu().numpy())
        sd.append(spread.double().cpu().numpy())
    s, spread = np.concatenate(surv), np.concatenate(sd)
    risk = -s.sum(axis=1)
    if member.bin_edges != edges:  # an ensemble member: its step function at the bundle's edges
        s = np.hstack([survival_at(s, member.bin_edges, edges[1:-1]), s[:, -1:]])
    return s, risk, spread


def _survival_columns(edges: list[float]) -> list[str]:
    """``survival_at_<edge>`` for the finite inner edges (months, 2 decimals)."""
    return [f"survival_at_{e:.2f}" for e in edges[1:-1]]


def score(bundle: Bundle, patients: NewPatients, scenario: str | None = None,
          allow_training_patients: bool = False) -> pd.DataFrame:
    """Score every patient with the bundle.

    Args:
        bundle: the bundle.
        patients: the patients.
        scenario: None: each patient in the scenario its modalities allow (:func:`scenario_for`); a scenario:
            only the patients that allow it, the modality it drops masked.
        allow_training_patients: score patients whose id hash is among the bundle's training patients (their
            rows say ``training_patient``); else they are an error.

    Returns:
        One row per scored patient: :data:`COLUMNS`, then ``survival_at_<edge>`` (the survival after each finite
        bin edge), then ``survival_1 … survival_K`` (the predictions-file contract).

    Raises:
        PredictInputError: a patient has neither modality, the method reads none of a patient's modalities, or a
            patient is a training patient (without ``allow_training_patients``).
    """
    if not patients.ids:
        raise PredictInputError("empty cohort: no patient to score")
    empty = [p for p in patients.ids if not patients.modalities(p)]
    if empty:
        raise PredictInputError(f"{len(empty)} patient(s) have neither pathology nor genomics (e.g. {empty[0]}); "
                                f"give their slide features or omics, or leave them out")
    training = [p for p in patients.ids if bundle.is_training_patient(p)]
    if training and not allow_training_patients:
        raise PredictInputError(f"{len(training)} patient(s) were training patients of {bundle.path} (e.g. "
                                f"{training[0]}): their risk is not a prediction; leave them out or pass "
                                f"--allow-training-patients")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; use one of {', '.join(SCENARIOS)}")
    by_scenario: dict[str, list[str]] = {}
    for p in patients.ids:
        mods = patients.modalities(p)
        s = scenario_for(mods, bundle.scenarios) if scenario is None else scenario
        if scenario is None and s is None:
            raise PredictInputError(f"patient {p} has only {'+'.join(mods)}, which {bundle.method} does not read "
                                    f"(it predicts {', '.join(bundle.scenarios)})")
        if scenario is not None and scenario_for(mods, [scenario]) is None:
            continue
        by_scenario.setdefault(s, []).append(p)
    edges = [float(e) for e in bundle.data["bin_edges"]]
    from mustsurv.cohort.store import FeatureStore

    store = FeatureStore()
    frames = []
    for s, ids in by_scenario.items():
        bags = {p: store.get(p, patients.bags[p]) for p in ids if p in patients.bags}
        outs = [_member_outputs(m, _items(patients, ids, s, m, bags), s, bundle.data["inference"], edges)
                for m in bundle.members]
        surv = np.mean([o[0] for o in outs], axis=0)
        risk = np.mean([o[1] for o in outs], axis=0)
        spread = np.mean([o[2] for o in outs], axis=0)
        cut = bundle.data["cutoffs"].get(s)
        used = {"complete": f"{PATHOLOGY}+{GENOMICS}", "missing_genomics": PATHOLOGY, "missing_pathology": GENOMICS}[s]
        frame = pd.DataFrame({
            PATIENT_ID: ids, "scenario": s, "modalities": used, "risk": risk,
            "risk_group": (np.where(risk > cut["median"], "high", "low") if cut else "n/a"),
            "risk_tertile": ([TERTILES[int(np.searchsorted(cut["tertiles"], r, side="right"))] for r in risk]
                             if cut else "n/a"),
            "risk_sd": spread, "training_patient": [p in training for p in ids]})
        frame[_survival_columns(edges)] = surv[:, :-1]
        frame[[f"survival_{k}" for k in range(1, surv.shape[1] + 1)]] = surv
        frames.append(frame)
    if not frames:
        raise PredictInputError(f"no patient allows the scenario {scenario}")
    return pd.concat(frames, ignore_index=True).sort_values([PATIENT_ID, "scenario"], ignore_index=True)


def cutoffs(pred: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Risk cut-offs per scenario from the training patients' predictions.

    Args:
        pred: :func:`score`'s rows of the training patients.

    Returns:
        scenario -> ``median`` and ``tertiles`` (two floats) of the risk.
    """
    out = {}
    for s, rows in pred.groupby("scenario"):
        r = rows["risk"].to_numpy(dtype=float)
        out[str(s)] = {"median": float(np.median(r)), "tertiles": [float(q) for q in np.quantile(r, [1 / 3, 2 / 3])]}
    return out


def write_scores(pred: pd.DataFrame, path: str | Path) -> None:
    """Write :func:`score`'s rows as TSV atomically (without the predictions-file ``survival_k`` columns).

    Args:
        pred: the rows.
        path: the TSV.
    """
    from mustsurv.io import atomic_path

    columns = [c for c in pred.columns if not (c.startswith("survival_") and not c.startswith("survival_at_"))]
    with atomic_path(path) as tmp:
        pred.loc[:, columns].to_csv(tmp, sep="\t", index=False, float_format="%.6g")
