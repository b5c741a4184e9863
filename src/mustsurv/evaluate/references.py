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

import pandas as pd
import torch

from mustsurv.evaluate.imputation import components, imputed_risk, reference_imputations
from mustsurv.evaluate.zero_fill import zero_filled
from mustsurv.models.batch import PatientItem, collate
from mustsurv.models.must import MUST
from mustsurv.study.methods import REFERENCES
from mustsurv.study.vocabulary import GENOMICS, PATHOLOGY, PATIENT_ID

COLUMNS = [PATIENT_ID, "scenario", "risk", "time", "event"]


@torch.no_grad()
def reference_predictions(model: MUST, train: Sequence[PatientItem], test: Sequence[PatientItem],
                          ridge_alpha: float = 100.0, batch_size: int = 16) -> dict[str, pd.DataFrame]:
    """The reference predictions of the complete test patients in the two missing scenarios.

    Args:
        model: A trained MUST model.
        train: The patients it was fit on (the ridge imputer is fit on their complete ones).
        test: The test patients (the complete ones are scored).
        ridge_alpha: Ridge penalty on standardised c̃.
        batch_size: Patients per forward pass.

    Returns:
        ``{reference method: predictions}`` for every method of
        :data:`mustsurv.study.methods.REFERENCES`, columns ``patient_id, scenario, risk, time, event``.
    """
    model.eval()
    device = next(model.parameters()).device
    complete = [it for it in test if it[PATHOLOGY] is not None and it[GENOMICS] is not None]
    tr, te = components(model, train), components(model, complete)
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in REFERENCES}
    for missing in (GENOMICS, PATHOLOGY):
        filled = zero_filled(complete, missing)
        zero = torch.cat([model.predict_risk(collate(filled[s:s + batch_size]).to(device), "complete").cpu()
                          for s in range(0, len(filled), batch_size)])
        ridge = imputed_risk(model, te, missing, reference_imputations(tr, te, missing, ridge_alpha)["ridge"])
        for name, risk in (("must_zero_fill", zero), ("must_ridge", ridge.cpu())):
            frames[name].append(pd.DataFrame({
                PATIENT_ID: [it[PATIENT_ID] for it in complete], "scenario": f"missing_{missing}",
                "risk": risk.numpy().astype(float), "time": [float(it["time"]) for it in complete],
                "event": [int(it["event"]) for it in complete]}))
    return {name: pd.concat(parts, ignore_index=True)[COLUMNS] for name, parts in frames.items()}
