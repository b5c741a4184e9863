"""Reference imputations of a missing specific component: the ridge imputer, R², and the risk they feed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from test_models_must import tiny_items, tiny_must

from mustsurv.evaluate.imputation import (
    Components,
    RidgeImputer,
    components,
    imputed_risk,
    r2_against_mean,
    reference_imputations,
)
from mustsurv.models import collate

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_ridge_imputer_matches_scikit_learn_on_standardised_inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen) * torch.tensor([1.0, 5.0, 0.2, 1.0, 3.0, 1.0]) + 2.0
    y = x[:, :3] @ torch.randn(3, 4, generator=gen) + 0.3 * torch.randn(40, 4, generator=gen)
    xt = torch.randn(10, 6, generator=gen)
    ours = RidgeImputer(alpha=7.0).fit(x, y).predict(xt)
    mu, sd = x.mean(0), x.std(0)
    ref = Ridge(alpha=7.0).fit(((x - mu) / sd).numpy(), y.numpy()).predict(((xt - mu) / sd).numpy())
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        RidgeImputer(alpha=0.0)


def test_r2_against_mean_separates_informative_from_uninformative_imputations():
    gen = torch.Generator().manual_seed(1)
    true = torch.randn(50, 8, generator=gen)
    mean = torch.zeros(8)
    assert r2_against_mean(true, true, mean) == pytest.approx(1.0)
    assert r2_against_mean(mean.expand_as(true), true, mean) == pytest.approx(0.0)
    noisy = true + torch.randn(50, 8, generator=gen)  # a sample with the right spread but no information
    assert r2_against_mean(noisy - true + mean, true, mean) < -0.5
    assert 0.3 < r2_against_mean(0.5 * true, true, mean) < 1.0


def test_surrogate_error_is_zero_for_an_exact_decomposition_and_one_for_a_zero_surrogate():
    gen = torch.Generator().manual_seed(2)
    c, u_p, u_g = (torch.randn(12, 8, generator=gen) for _ in range(3))
    exact = Components(g_p=u_p + c, g_g=u_g + c, u_p_hat=u_p, u_g_hat=u_g, c_hat=c)
    assert exact.surrogate_error("genomics") == pytest.approx(0.0, abs=1e-6)
    assert exact.surrogate_error("pathology") == pytest.approx(0.0, abs=1e-6)
    empty = Components(g_p=u_p, g_g=u_g + 3 * c, u_p_hat=u_p, u_g_hat=u_g, c_hat=c)  # c̃_P = 0, c̃_G = 3ĉ
    assert empty.surrogate_error("genomics") == pytest.approx(1.0)
    assert empty.surrogate_error("pathology") == pytest.approx(2.0)


def test_imputations_feed_the_head_with_the_surrogate_shared_component():
    torch.manual_seed(0)
    model = tiny_must().eval()
    items = tiny_items(10)
    items[2] = {**items[2], "genomics": None}  # incomplete patients are left out
    comp = components(model, items, batch_size=3)
    assert comp.g_p.shape == (9, model.dim)
    batch = collate([it for it in items if it["genomics"] is not None])
    with torch.no_grad():
        d = model.decompose(batch)
    torch.testing.assert_close(comp.u_g_hat, d.u_g_hat)
    torch.testing.assert_close(comp.surrogate("genomics"), d.g_p - d.u_p_hat)
    torch.testing.assert_close(comp.c_hat, d.c_hat)
    for missing, c_tilde in (("genomics", d.g_p - d.u_p_hat), ("pathology", d.g_g - d.u_g_hat)):
        assert comp.surrogate_error(missing) == pytest.approx(float((c_tilde - d.c_hat).norm() / d.c_hat.norm()),
                                                              rel=1e-5)
    refs = reference_imputations(comp, comp, "genomics")
    # a zero ũ_G reproduces MUST's own "without LDM" prediction φ([û_P; c̃; 0]); the true û_G changes it
    with torch.no_grad():
        expected = model.predict_risk(batch, "missing_genomics", specific="zero")
        zero = imputed_risk(model, comp, "genomics", refs["zero"])
    torch.testing.assert_close(zero, expected)
    assert not torch.allclose(imputed_risk(model, comp, "genomics", refs["true"]), zero)
    torch.testing.assert_close(refs["training_mean"][0], comp.u_g_hat.mean(0))
    with pytest.raises(ValueError, match="complete patients"):
        components(model, [{**it, "pathology": None} for it in items])
