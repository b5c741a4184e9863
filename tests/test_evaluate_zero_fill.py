"""Zero-filling baseline for a missing modality: what is zeroed, who is scored, and the score itself."""

from __future__ import annotations

import pytest
import torch
from test_models_must import tiny_items, tiny_must

from mustsurv.evaluate.zero_fill import zero_fill_cindex, zero_filled
from mustsurv.models import collate
from mustsurv.survival.metrics import c_index

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_zero_filled_zeroes_one_modality_and_keeps_the_inputs():
    items = tiny_items(5)
    items[1] = {**items[1], "genomics": None}  # a patient without genomics is not scored
    before = [it["pathology"].clone() for it in items]
    filled = zero_filled(items, "genomics")
    assert [it["patient_id"] for it in filled] == ["P00", "P02", "P03", "P04"]
    assert all(all(float(v.abs().sum()) == 0 for v in it["genomics"]) for it in filled)
    assert all(torch.equal(f["pathology"], items[i]["pathology"]) for f, i in zip(filled, [0, 2, 3, 4]))
    assert all(torch.equal(b, it["pathology"]) for b, it in zip(before, items))  # inputs untouched
    filled = zero_filled(items, "pathology")
    assert all(it["pathology"].shape == items[i]["pathology"].shape and float(it["pathology"].abs().sum()) == 0
               for it, i in zip(filled, [0, 2, 3, 4]))
    with pytest.raises(ValueError, match="modality"):
        zero_filled(items, "text")


def test_zero_fill_cindex_scores_the_complete_head_on_zeroed_inputs():
    torch.manual_seed(0)
    model = tiny_must().eval()
    items = tiny_items(8)
    got = zero_fill_cindex(model, items, "genomics", batch_size=3)
    filled = zero_filled(items, "genomics")
    with torch.no_grad():
        risk = model.predict_risk(collate(filled), "complete")
    assert got == pytest.approx(c_index([it["time"] for it in filled], [it["event"] for it in filled], risk.numpy()))
    # zeroing genomics changes the risks (the model uses its genomic input)
    with torch.no_grad():
        full = model.predict_risk(collate(items), "complete")
    assert not torch.allclose(full, risk)
