"""Reader: MPP resolution (slide, sheet, error), level choice, region reads, retries, broken files."""

from __future__ import annotations

import logging
import types

import numpy as np
import openslide
import pandas as pd
import pytest
from slides_helpers import corrupt_tile, demo_image, write_slide, write_tiff_without_mpp

from mustsurv.slides import reader
from mustsurv.slides.reader import (
    MissingMPPError,
    SlideError,
    SlideReadError,
    open_slide,
    plan_read,
)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return demo_image(1500, 1000)


@pytest.fixture
def svs(tmp_path, image):
    return write_slide(tmp_path / "TCGA-AA-0000-01Z-00-DX1.svs", image)


def test_plan_20x_reads_level0_at_patch_size():
    plan = plan_read([0.5045, 2.018, 8.07], [1, 4, 16], 0.5, 224, 0.05)
    assert (plan.level, plan.read_size, plan.patch_size_level0) == (0, 224, 224)


def test_plan_40x_reads_448_and_downsamples():
    plan = plan_read([0.2525, 1.01, 4.04], [1, 4, 16], 0.5, 224, 0.05)
    assert (plan.level, plan.read_size, plan.patch_size_level0) == (0, 448, 448)


def test_plan_uses_a_matching_coarser_level():
    # 40x slide with a 2x-downsampled level at 0.505 um/px: read that level at 224 px
    plan = plan_read([0.2525, 0.505, 1.01], [1, 2, 4], 0.5, 224, 0.05)
    assert (plan.level, plan.read_size, plan.patch_size_level0) == (1, 224, 448)


def test_plan_non_integer_scale_reads_more_pixels():
    plan = plan_read([0.35], [1], 0.5, 224, 0.05)
    assert plan.read_size == 320 and plan.patch_size_level0 == 320


def test_plan_never_upsamples():
    with pytest.raises(SlideError, match="never upsampled"):
        plan_read([1.0, 4.0], [1, 4], 0.5, 224, 0.05, name="x.svs")
    # within the tolerance a slightly coarser scan is accepted as is
    plan = plan_read([0.52], [1], 0.5, 224, 0.05)
    assert plan.read_size == 224


def test_mpp_and_magnification_from_the_slide(svs, image):
    with open_slide(svs) as s:
        assert s.mpp == pytest.approx(0.5) and s.mpp_source == "slide"
        assert s.magnification == 20
        assert s.dimensions == (1500, 1000)
        region = s.read_region(100, 200, 0, 300, 150)
    assert region.shape == (150, 300, 3) and region.dtype == np.uint8
    assert np.abs(region.astype(int) - image[200:350, 100:400]).mean() < 4  # JPEG Q90


def test_mpp_from_the_sheet_when_the_slide_has_none(tmp_path, image):
    tif = write_tiff_without_mpp(tmp_path / "S1.tif", image)
    sheet = tmp_path / "slides.tsv"
    pd.DataFrame({"slide_id": ["S1"], "patient_id": ["P1"], "path": ["S1.tif"], "mpp": [0.49]}).to_csv(
        sheet, sep="\t", index=False)
    with open_slide(tif, "S1", sheet) as s:
        assert s.mpp == pytest.approx(0.49) and s.mpp_source == "sheet"


def test_missing_mpp_names_slide_and_sheet_column(tmp_path, image):
    tif = write_tiff_without_mpp(tmp_path / "S1.tif", image)
    with pytest.raises(MissingMPPError, match=r"S1\.tif.*slides\.sheet.*mpp"):
        open_slide(tif, "S1")
    sheet = tmp_path / "slides.tsv"
    pd.DataFrame({"slide_id": ["S1"], "path": ["S1.tif"], "mpp": [np.nan]}).to_csv(sheet, sep="\t", index=False)
    with pytest.raises(MissingMPPError, match=r"slides\.tsv has no `mpp` value for slide_id 'S1'"):
        open_slide(tif, "S1", sheet)


def test_corrupt_and_truncated_files_fail_with_their_name(tmp_path, svs):
    garbage = tmp_path / "garbage.svs"
    garbage.write_bytes(b"not a slide" * 100)
    with pytest.raises(SlideError, match=r"garbage\.svs: cannot be opened.*corrupt, truncated"):
        open_slide(garbage)
    truncated = tmp_path / "truncated.svs"
    data = svs.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SlideError, match=r"truncated\.svs"):
        open_slide(truncated)
    with pytest.raises(SlideError, match="not found"):
        open_slide(tmp_path / "absent.svs")


def test_undecodable_tile_is_retried_then_fails_with_the_slide_name(svs, caplog):
    corrupt_tile(svs, 0)
    with open_slide(svs, retries=2) as s:
        assert s.read_region(800, 600, 0, 100, 100).shape == (100, 100, 3)  # other tiles still read
        with caplog.at_level(logging.WARNING, logger="mustsurv"), pytest.raises(SlideReadError) as err:
            s.read_region(0, 0, 0, 224, 224)
    assert str(svs) in str(err.value) and "after 3 attempts" in str(err.value)
    assert sum("failed (attempt" in r.message for r in caplog.records) == 3


def test_transient_decode_failure_recovers_on_retry(svs, monkeypatch):
    real = reader._read_rgb
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise openslide.OpenSlideError("simulated decode error")
        return real(*args, **kwargs)

    monkeypatch.setattr(reader, "_read_rgb", flaky)
    with open_slide(svs, retries=1) as s:
        assert s.read_region(0, 0, 0, 64, 64).shape == (64, 64, 3)
    assert calls["n"] == 2


@pytest.mark.parametrize("level, x, y, w, h", [
    (0, 0, 0, 1500, 1000),     # the whole slide, every pixel opaque
    (0, 37, 211, 300, 200),    # inside, off the tile grid
    (0, 1300, 900, 400, 300),  # partly outside the scan: transparent pixels become white
    (1, -64, -32, 500, 400),   # a coarser level, partly before the origin
])
def test_one_buffer_read_equals_openslide_public_reader(svs, level, x, y, w, h):
    osr = openslide.OpenSlide(str(svs))
    try:
        fast = reader._read_rgb(osr, x, y, min(level, osr.level_count - 1), w, h)
        public = reader._to_rgb(osr.read_region((x, y), min(level, osr.level_count - 1), (w, h)))
    finally:
        osr.close()
    assert fast.shape == (h, w, 3) and fast.dtype == np.uint8 and fast.flags.c_contiguous
    np.testing.assert_array_equal(fast, public)
    if x + w > 1500:
        assert (fast[:, 1500 - x:] == 255).all()


def test_public_reader_is_used_without_openslide_low_level_functions(svs, monkeypatch):
    monkeypatch.setattr(reader, "lowlevel", types.SimpleNamespace())  # another openslide-python
    with open_slide(svs) as s:
        region = s.read_region(10, 20, 0, 120, 90)
    osr = openslide.OpenSlide(str(svs))
    np.testing.assert_array_equal(region, reader._to_rgb(osr.read_region((10, 20), 0, (120, 90))))
    osr.close()


def test_thumbnail_in_chunks_matches_whole_read(svs):
    with open_slide(svs) as s:
        whole, ds = s.thumbnail(2.0)
        chunked, ds2 = s.thumbnail(2.0, chunk=128)
    assert whole.shape == chunked.shape == (250, 375, 3) and ds == ds2 == pytest.approx(4.0)
    assert np.abs(whole.astype(int) - chunked.astype(int)).mean() < 2


def test_thumbnail_sets_every_pixel_up_to_its_edges(tmp_path):
    """A level whose size does not divide evenly still fills the last row and column (no uninitialised
    memory, which made QC images differ between two runs)."""
    slide = write_slide(tmp_path / "TCGA-AA-0000-01Z-00-DX1.svs", np.full((1001, 1500, 3), 200, np.uint8))
    with open_slide(slide) as s:
        for mpp in (2.0, 7.0):
            thumb, _ = s.thumbnail(mpp)
            assert np.abs(thumb.astype(int) - 200).max() < 20, mpp
