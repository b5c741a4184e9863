"""Token buckets: consecutive patients whose padded bags stay within the budget, and results that do not
depend on them (bucketed prediction, stage-3 pairs, decomposition and imputation components equal
one-patient-at-a-time ones)."""

from __future__ import annotations

import pytest
import torch
from test_models_must import tiny_items, tiny_must

from mustsurv.evaluate.decomposition import decomposition_cosines
from mustsurv.evaluate.imputation import components
from mustsurv.models.batch import (
    item_buckets,
    max_tokens,
    set_max_tokens,
    token_buckets,
    token_budget,
)
from mustsurv.train.must import ldm_training_pairs, predict

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_buckets_respect_the_budget_and_keep_the_order() -> None:
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(0, 400, (300,), generator=gen).tolist() + [1000, 5, 5]
    for budget, max_items in ((500, 32), (1200, 4), (None, 7)):
        buckets = token_buckets(lengths, budget, max_items)
        assert [i for b in buckets for i in b] == list(range(len(lengths)))  # consecutive, each once
        for b in buckets:
            assert len(b) <= max_items
            padded = len(b) * max(max(lengths[i] for i in b), 1)
            assert budget is None or padded <= budget or len(b) == 1  # only a lone bag may exceed it
        if budget is not None:  # greedy: a bucket closes only when the next patient would break a limit
            for b, nxt in zip(buckets, buckets[1:]):
                grown = (len(b) + 1) * max(max(lengths[i] for i in [*b, nxt[0]]), 1)
                assert len(b) == max_items or grown > budget
    assert token_buckets([1000, 10, 10], 500, 8) == [[0], [1, 2]]  # the long bag goes alone
    assert token_buckets([0, 0, 0], 2, 8) == [[0, 1], [2]]  # no bag counts as one token
    with pytest.raises(ValueError, match="max_items"):
        token_buckets([1], 10, 0)


def test_token_budget_is_process_wide_and_restored() -> None:
    before = max_tokens()
    with token_budget(50):
        assert max_tokens() == 50
        items = tiny_items(6)  # bags of 5, 8, 11, 14, 17, 20 patches
        assert [len(b) for b in item_buckets(items, 16)] == [3, 2, 1]  # 3 x 11 = 33; 2 x 17 = 34; 20
    assert max_tokens() == before
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        set_max_tokens(0)


def test_bucketed_results_equal_one_patient_at_a_time() -> None:
    torch.manual_seed(0)
    model = tiny_must().eval()
    items = tiny_items(8)
    items[2] = {**items[2], "genomics": None}  # one patient without genomics
    with token_budget(40):  # buckets of 1-3 patients
        assert {len(b) for b in item_buckets(items, 16)} - {1} != set()
        bucketed = predict(model, items, n_samples=2, steps=3, batch_size=16)
        pairs = ldm_training_pairs(model, [it for it in items if it["genomics"] is not None])
        cos = decomposition_cosines(model, items)
        comp = components(model, items)
    alone = predict(model, items, n_samples=2, steps=3, batch_size=1)
    assert bucketed[["patient_id", "scenario"]].equals(alone[["patient_id", "scenario"]])
    torch.testing.assert_close(torch.tensor(bucketed.filter(like="survival").to_numpy()),
                               torch.tensor(alone.filter(like="survival").to_numpy()), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.tensor(bucketed["risk"].to_numpy()), torch.tensor(alone["risk"].to_numpy()),
                               atol=1e-5, rtol=1e-5)
    pairs_alone = ldm_training_pairs(model, [it for it in items if it["genomics"] is not None], batch_size=1)
    for key in pairs:
        for a, b in zip(pairs[key], pairs_alone[key]):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    cos_alone = decomposition_cosines(model, items, batch_size=1)
    for key in cos:
        torch.testing.assert_close(torch.as_tensor(cos[key]), torch.as_tensor(cos_alone[key]), atol=1e-5, rtol=1e-5)
    comp_alone = components(model, items, batch_size=1)
    torch.testing.assert_close(comp.u_g_hat, comp_alone.u_g_hat, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(comp.c_hat, comp_alone.c_hat, atol=1e-5, rtol=1e-5)
