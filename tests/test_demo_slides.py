import hashlib

import numpy as np
import openslide
import pytest

from mustsurv.demo.plan import DemoSettings, SlideSpec, make_plan
from mustsurv.demo.slides import render_canvas, write_slide, write_svs


def _spec(mag: int, seed: int = 3, pen: bool = False) -> SlideSpec:
    scale = mag // 20
    return SlideSpec("TCGA-AA-0001-01Z-00-DX1", "TCGA-AA-0001", mag, 10.0 / mag * 1.009,
                     1200 * scale, 900 * scale, pen, seed)


@pytest.mark.parametrize("mag", [20, 40])
def test_svs_opens_as_aperio_with_mpp_levels_and_associated_images(tmp_path, mag):
    spec = _spec(mag)
    path = tmp_path / "s.svs"
    write_svs(path, render_canvas(spec, 0.0, 0.0), spec.mpp, mag, spec.slide_id)
    slide = openslide.OpenSlide(str(path))
    props = slide.properties
    assert props["openslide.vendor"] == "aperio"
    assert float(props["openslide.mpp-x"]) == pytest.approx(spec.mpp, rel=1e-3)
    assert float(props["openslide.mpp-y"]) == pytest.approx(spec.mpp, rel=1e-3)
    assert int(props["openslide.objective-power"]) == mag
    assert slide.level_count >= 3
    assert slide.level_dimensions[0] == (spec.width, spec.height)
    assert [round(d) for d in slide.level_downsamples[:3]] == [1, 4, 16]
    assert {"thumbnail", "label", "macro"} <= set(slide.associated_images)
    region = np.asarray(slide.read_region((spec.width // 3, spec.height // 3), 0, (256, 256)))[..., :3]
    assert region.std() > 5  # real content, decoded


def test_same_seed_byte_identical(tmp_path):
    plan = make_plan("D", DemoSettings(seed=9, patients=10))
    slide = min(plan.slides, key=lambda s: s.width * s.height)
    write_slide(plan, slide.slide_id, tmp_path / "a.svs")
    write_slide(plan, slide.slide_id, tmp_path / "b.svs")
    digest = [hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.svs", "b.svs")]
    assert digest[0] == digest[1]


def _stats(img: np.ndarray):
    tissue = img.min(axis=2) < 215
    purple = tissue & (img[..., 1] < 90)
    return tissue.mean(), purple.sum() / max(tissue.sum(), 1)


def test_tissue_islands_on_white_and_pen_mark():
    spec = _spec(20, pen=False)
    img = render_canvas(spec, 0.0, 0.0)
    tissue_frac, _ = _stats(img)
    assert 0.15 < tissue_frac < 0.7
    corners = np.concatenate([img[:20, :20].reshape(-1, 3), img[-20:, -20:].reshape(-1, 3)])
    assert corners.mean() > 230
    pen = render_canvas(_spec(20, pen=True), 0.0, 0.0)
    green = (pen[..., 1].astype(int) - pen[..., 0] > 30) & (pen[..., 1].astype(int) - pen[..., 2] > 10)
    assert green.sum() > 500 and not ((img[..., 1].astype(int) - img[..., 0] > 30)
                                      & (img[..., 1].astype(int) - img[..., 2] > 10)).any()


def test_texture_statistics_carry_the_latent_factors():
    """Nuclear density rises with the shared factor; nuclear size/stain follow the pathology factor."""
    spec = _spec(20)
    dens = [_stats(render_canvas(spec, s, 0.0))[1] for s in (-1.5, 0.0, 1.5)]
    assert dens[0] < dens[1] < dens[2]
    low, high = render_canvas(spec, 0.0, -1.5), render_canvas(spec, 0.0, 1.5)
    tissue = (low.min(axis=2) < 215) & (high.min(axis=2) < 215)
    # the pathology factor shifts the stroma's green/blue balance
    assert high[tissue][:, 1].mean() < low[tissue][:, 1].mean() - 5


def test_stroma_shows_the_genomics_trace():
    """The genomics trace reddens the stroma less / more and leaves the nuclei alone; 0 is the default."""
    spec = _spec(20)
    np.testing.assert_array_equal(render_canvas(spec, 0.3, 0.2, 0.0), render_canvas(spec, 0.3, 0.2))
    low, high = render_canvas(spec, 0.0, 0.0, -1.5), render_canvas(spec, 0.0, 0.0, 1.5)
    tissue = (low.min(axis=2) < 215) & (high.min(axis=2) < 215) & (low[..., 1] > 110)
    assert high[tissue][:, 0].mean() < low[tissue][:, 0].mean() - 10
    assert _stats(low)[1] == pytest.approx(_stats(high)[1], rel=0.05)


def test_40x_and_20x_show_the_same_field():
    s20, s40 = _spec(20), _spec(40)
    a = render_canvas(s20, 0.5, 0.5)
    b = render_canvas(s40, 0.5, 0.5)
    b_at_20 = b.reshape(a.shape[0], 2, a.shape[1], 2, 3).mean(axis=(1, 3))
    assert np.abs(b_at_20 - a.astype(float)).mean() < 6
