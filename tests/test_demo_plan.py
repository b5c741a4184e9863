import numpy as np
import pytest
from sksurv.metrics import concordance_index_censored

from mustsurv.demo.plan import DemoSettings, make_plan


def _cindex(plan, risk):
    event = np.array([p.event for p in plan.patients], dtype=bool)
    time = np.array([p.time_months for p in plan.patients])
    return concordance_index_censored(event, time, np.asarray(risk))[0]


def test_same_seed_same_plan_other_seed_other_plan():
    a = make_plan("A", DemoSettings(seed=5))
    b = make_plan("A", DemoSettings(seed=5))
    c = make_plan("A", DemoSettings(seed=6))
    assert a == b
    assert [p.patient_id for p in a.patients] != [p.patient_id for p in c.patients]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_realistic_censoring_and_planted_signal(seed):
    plan = make_plan("A", DemoSettings(seed=seed, patients=300))
    censored = 1 - np.mean([p.event for p in plan.patients])
    assert 0.3 <= censored <= 0.65
    oracle = _cindex(plan, [p.eta for p in plan.patients])
    assert oracle > 0.7
    # each factor alone carries part of the signal; a random score does not
    for attr in ("shared", "pathology", "genomics"):
        assert _cindex(plan, [getattr(p, attr) for p in plan.patients]) > 0.58
    rng = np.random.default_rng(0)
    assert abs(_cindex(plan, rng.standard_normal(300)) - 0.5) < 0.08


def test_barcodes_slides_and_magnifications():
    plan = make_plan("A", DemoSettings(seed=1, patients=120))
    ids = [p.patient_id for p in plan.patients]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 12 and i.startswith("TCGA-") for i in ids)
    slides = plan.slides
    assert all(s.slide_id[:12] == s.patient_id and s.slide_id.endswith(("DX1", "DX2")) for s in slides)
    assert {s.magnification for s in slides} == {20, 40}
    for s in slides:
        assert s.mpp == pytest.approx(10.0 / s.magnification, rel=0.02)
        assert 8e6 <= s.width * s.height <= 16e6 if s.magnification == 40 else 2e6 <= s.width * s.height <= 4e6
    assert any(len(p.slides) == 2 for p in plan.patients)
    assert any(s.pen_mark for s in slides) and not all(s.pen_mark for s in slides)


def test_missing_fractions():
    plan = make_plan("A", DemoSettings(seed=4, patients=200, missing_pathology_fraction=0.3,
                                       missing_genomics_fraction=0.2))
    no_p = sum(not p.slides for p in plan.patients)
    no_g = sum(not p.has_genomics for p in plan.patients)
    assert 35 <= no_p <= 85 and 15 <= no_g <= 60
    assert all(p.slides or p.has_genomics for p in plan.patients)
    default = make_plan("A", DemoSettings(seed=4))
    assert all(p.slides and p.has_genomics for p in default.patients)


@pytest.mark.parametrize("rho", [0.0, 0.6])
def test_cross_modal_traces_correlate_with_the_other_modality_factor(rho):
    """Each specific factor leaves a trace of correlation rho in the other modality; the factors, times
    and slides do not move with rho."""
    plan = make_plan("A", DemoSettings(seed=3, patients=2000, cross_modal=rho))
    base = make_plan("A", DemoSettings(seed=3, patients=2000))
    g, p = (np.array([getattr(q, a) for q in plan.patients]) for a in ("genomics", "pathology"))
    g_tissue = np.array([q.genomics_in_tissue for q in plan.patients])
    p_omics = np.array([q.pathology_in_omics for q in plan.patients])
    assert np.corrcoef(g, g_tissue)[0, 1] == pytest.approx(rho, abs=0.05)
    assert np.corrcoef(p, p_omics)[0, 1] == pytest.approx(rho, abs=0.05)
    assert g_tissue.std() == pytest.approx(1.0, abs=0.05)
    assert [(q.shared, q.pathology, q.genomics, q.time_months, q.slides) for q in plan.patients] == [
        (q.shared, q.pathology, q.genomics, q.time_months, q.slides) for q in base.patients]
