"""Discrete-time hazard loss, risk, C-index (against scikit-survival and an own count), KM, log-rank."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mustsurv.survival import (
    c_index,
    hazards_from_logits,
    kaplan_meier,
    logrank,
    nll_loss,
    risk_from_hazards,
    survival_from_hazards,
)


def _harrell(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Brute-force Harrell's C: a pair is comparable when the earlier time is an event; ties in
    time count when exactly the earlier-or-equal one is an event and the other is censored."""
    num, den = 0.0, 0
    n = len(time)
    for i in range(n):
        if not event[i]:
            continue
        for j in range(n):
            if i == j:
                continue
            if time[i] < time[j] or (time[i] == time[j] and not event[j]):
                den += 1
                num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    return num / den


def test_survival_curve_and_risk_by_hand() -> None:
    h = torch.tensor([[0.5, 0.5, 0.5, 1.0], [0.1, 0.2, 0.3, 0.4]])
    s = survival_from_hazards(h)
    torch.testing.assert_close(s[0], torch.tensor([0.5, 0.25, 0.125, 0.0]))
    torch.testing.assert_close(s[1], torch.tensor([0.9, 0.72, 0.504, 0.3024]))
    risk = risk_from_hazards(h)
    torch.testing.assert_close(risk, -s.sum(1))
    assert risk[0] > risk[1]  # higher hazards -> higher risk


def test_nll_terms_match_the_discrete_likelihood() -> None:
    logits = torch.randn(5, 4, dtype=torch.float64)
    bins = torch.tensor([0, 1, 3, 2, 0])
    events = torch.tensor([1, 0, 1, 1, 0])
    h = torch.sigmoid(logits)
    expected = []
    for i in range(5):
        y = int(bins[i])
        surv_before = math.prod(1 - float(h[i, j]) for j in range(y))
        if events[i]:
            expected.append(-math.log(surv_before) - math.log(float(h[i, y])))
        else:
            expected.append(-math.log(surv_before * (1 - float(h[i, y]))))
    per = nll_loss(logits, bins, events, reduction="none")
    torch.testing.assert_close(per, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(nll_loss(logits, bins, events), per.mean())
    # alpha adds weight to the uncensored patients only
    heavier = nll_loss(logits, bins, events, alpha=0.5, reduction="none")
    torch.testing.assert_close(heavier[events == 0], 0.5 * per[events == 0])
    torch.testing.assert_close(heavier[events == 1], per[events == 1])


def test_nll_eps_clamp_keeps_loss_finite_and_rejects_bad_bins() -> None:
    logits = torch.tensor([[-200.0, 200.0, 200.0, 200.0]], requires_grad=True)
    loss = nll_loss(logits, torch.tensor([0]), torch.tensor([1]))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(-math.log(1e-7), rel=1e-4)
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match="time bins"):
        nll_loss(torch.zeros(1, 4), torch.tensor([4]), torch.tensor([1]))


def test_nll_gradient_lowers_risk_of_long_survivors() -> None:
    logits = torch.zeros(2, 4, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        nll_loss(logits, torch.tensor([0, 3]), torch.tensor([1, 0])).backward()
        opt.step()
    risk = risk_from_hazards(hazards_from_logits(logits.detach()))
    assert risk[0] > risk[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_index_equals_scikit_survival_and_brute_force_with_ties(seed: int) -> None:
    from lifelines.utils import concordance_index
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(seed)
    n = 60
    time = rng.integers(1, 15, n).astype(float)  # many tied times
    event = rng.random(n) < 0.6
    risk = rng.integers(0, 6, n).astype(float)  # many tied risks
    ours = c_index(time, event, risk)
    assert ours == pytest.approx(concordance_index_censored(event, time, risk)[0], abs=1e-12)
    assert ours == pytest.approx(_harrell(time, event, risk), abs=1e-12)
    # lifelines scores predicted survival times, so it gets -risk; it agrees without time ties
    t_unique = rng.permutation(n).astype(float) + 1
    assert c_index(t_unique, event, risk) == pytest.approx(concordance_index(t_unique, -risk, event), abs=1e-12)


def test_c_index_perfect_and_inverted() -> None:
    time = np.array([1.0, 2, 3, 4, 5])
    event = np.ones(5, bool)
    assert c_index(time, event, -time) == 1.0
    assert c_index(time, event, time) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        c_index(time, event, np.array([1.0, np.nan, 0, 0, 0]))


def test_kaplan_meier_and_logrank_match_lifelines() -> None:
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    rng = np.random.default_rng(3)
    t = rng.exponential(10, 80).round(1)
    e = rng.random(80) < 0.7
    g = np.repeat([0, 1], 40)
    t[g == 1] *= 2.5
    curve = kaplan_meier(t, e)
    ref = KaplanMeierFitter().fit(t, e)
    np.testing.assert_allclose(curve.survival, ref.survival_function_.iloc[:, 0].to_numpy())
    assert (curve.lower <= curve.survival + 1e-12).all() and (curve.upper >= curve.survival - 1e-12).all()
    assert len(curve.censor_times) == int((~e).sum())
    p = logrank(t, e, g)
    assert p == pytest.approx(logrank_test(t[g == 0], t[g == 1], e[g == 0], e[g == 1]).p_value)
    assert p < 0.05
