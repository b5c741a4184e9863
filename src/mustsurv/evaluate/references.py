"""Missing-modality references for Table 2: what a trained MUST gives without its diffusion models.

* ``must_zero_fill``: the complete-data head with the missing modality's input zero-filled (standardised
  genomics -> the training mean; pathology -> a bag of zero patch features of the same size);
* ``must_ridge``: φ([û_P; c̃; ũ_G]) (or its pathology mirror) with ũ a ridge regression of the missing û on c̃,
  fitted on the training patients - a linear conditional mean of what the diffusion model samples.

Both are scored on the complete test patients with the missing modality removed, like MUST's rows; the
table labels them as references, so a reader sees whether generation earns its cost.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mustsurv.evaluate.imputation import Components, RidgeImputer, components
from mustsurv.evaluate.predictions import survival_columns
from mustsurv.evaluate.zero_fill import zero_filled
from mustsurv.models.batch import PatientItem, collate, item_buckets
from mustsurv.models.must import MUST
from mustsurv.study.methods import REFERENCES
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, PATIENT_ID
from mustsurv.survival.loss import hazards_from_logits, survival_from_hazards


def _complete(items: Sequence[PatientItem]) -> list[PatientItem]:
    return [it for it in items if it[PATHOLOGY] is not None and it[GENOMICS] is not None]


@torch.no_grad()
def _zero_fill_survival(model: MUST, items: list[PatientItem], missing: str, batch_size: int) -> Tensor:
    """(N, K) survival of the complete-data head with ``missing``'s input zero-filled."""
    device = next(model.parameters()).device
    filled = zero_filled(items, missing)
    return torch.cat([model.predict_survival(collate(bucket).to(device), "complete").cpu()
                      for bucket in item_buckets(filled, batch_size)])


@torch.no_grad()
def _ridge_survival(model: MUST, fit: Components, target: Components, missing: str, alpha: float) -> Tensor:
    """(N, K) survival of φ with the missing û replaced by a ridge regression on c̃ fitted on ``fit``."""
    u = RidgeImputer(alpha).fit(fit.surrogate(missing), fit.specific(missing)).predict(target.surrogate(missing))
    c = target.surrogate(missing)
    logits = model.head_logits(target.u_p_hat, c, u) if missing == GENOMICS else model.head_logits(u, c, target.u_g_hat)
    return survival_from_hazards(hazards_from_logits(logits)).cpu()


def reference_predictions(model: MUST, train: Sequence[PatientItem], test: Sequence[PatientItem],
                          ridge_alpha: float = 100.0, batch_size: int = 16) -> dict[str, pd.DataFrame]:
    """The reference predictions of the complete test patients in the two missing scenarios.

    Args:
        model: A trained MUST model (eval mode is set).
        train: The patients it was fit on: the ridge imputer is fit on their complete ones, and their median
            reference risk per scenario fills ``train_median_risk``.
        test: The test patients (the complete ones are scored).
        ridge_alpha: Ridge penalty on standardised c̃.
        batch_size: Patients per forward pass.

    Returns:
        ``{reference method: predictions}`` for every method of :data:`mustsurv.study.methods.REFERENCES`,
        in the predictions file contract (``patient_id, scenario, risk, time, event, train_median_risk,
        survival_1 … survival_K``).
    """
    model.eval()
    fit, scored = _complete(train), _complete(test)
    fit_c, scored_c = components(model, fit), components(model, scored)
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in REFERENCES}
    for missing in (GENOMICS, PATHOLOGY):
        curves = {
            "must_zero_fill": (_zero_fill_survival(model, scored, missing, batch_size),
                               _zero_fill_survival(model, fit, missing, batch_size)),
            "must_ridge": (_ridge_survival(model, fit_c, scored_c, missing, ridge_alpha),
                           _ridge_survival(model, fit_c, fit_c, missing, ridge_alpha)),
        }
        for name, (surv, surv_fit) in curves.items():
            frame = pd.DataFrame({
                PATIENT_ID: [it[PATIENT_ID] for it in scored], "scenario": f"missing_{missing}",
                "risk": (-surv.sum(1)).double().numpy(), "time": [float(it["time"]) for it in scored],
                "event": [int(it["event"]) for it in scored],
                "train_median_risk": float(np.median((-surv_fit.sum(1)).double().numpy()))})
            frame[survival_columns(surv.shape[1])] = surv.double().numpy()
            frames[name].append(frame)
    return {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
