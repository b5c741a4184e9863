"""Tiling: tissue fractions, grid, deterministic block order, 40x vs 20x physical size, tiny slides."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from slides_helpers import demo_image, write_slide

from mustsurv.slides.reader import SlideError, open_slide
from mustsurv.slides.tiling import (
    TileParams,
    block_order,
    read_coords,
    tile_slide,
    tissue_fractions,
    write_coords,
)
from mustsurv.slides.tissue import SegmentParams, segment_slide


def square(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def test_tissue_fractions_are_area_fractions():
    # cells of 100 px; the square covers cell (0,0) fully and half of cells (1,0) and (0,1)
    frac = tissue_fractions([(square(0, 0, 150, 150), [])], 100, 3, 2)
    assert frac.shape == (2, 3)
    np.testing.assert_allclose(frac, [[1.0, 0.5, 0.0], [0.5, 0.25, 0.0]], atol=0.02)


def test_holes_are_empty_and_islands_inside_holes_count():
    outer = (square(0, 0, 300, 300), [square(100, 100, 200, 200)])
    island = (square(125, 125, 175, 175), [])
    frac = tissue_fractions([outer], 100, 3, 3)
    assert frac[1, 1] == pytest.approx(0.0, abs=0.01) and frac[0, 0] == pytest.approx(1.0, abs=0.01)
    frac = tissue_fractions([outer, island], 100, 3, 3)
    assert frac[1, 1] == pytest.approx(0.25, abs=0.07)  # within one raster pixel (1/16 cell) per edge


def test_block_order_is_block_major():
    rows, cols = np.divmod(np.arange(16), 4)  # 4x4 grid, row-major
    order = block_order(cols, rows, 2)
    got = list(zip(rows[order], cols[order]))
    assert got[:4] == [(0, 0), (0, 1), (1, 0), (1, 1)] and got[4:6] == [(0, 2), (0, 3)]
    assert sorted(got) == sorted(zip(rows, cols))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """The same synthetic field scanned at 20x (0.5 um/px) and 40x (0.25 um/px)."""
    d = tmp_path_factory.mktemp("pair")
    s20 = write_slide(d / "S20.svs", demo_image(1500, 1000, 20), mpp=0.5, magnification=20)
    s40 = write_slide(d / "S40.svs", demo_image(3000, 2000, 40), mpp=0.25, magnification=40)
    return s20, s40


def test_40x_and_20x_patches_have_the_same_physical_size(pair):
    out = {}
    for path in pair:
        with open_slide(path) as slide:
            tissue = segment_slide(slide, SegmentParams())
            out[path.stem] = (tile_slide(slide, tissue.polygons, TileParams()), slide.mpp)
    (t20, mpp20), (t40, mpp40) = out["S20"], out["S40"]
    assert t20.attrs["read_size"] == 224 and t40.attrs["read_size"] == 448
    assert t20.attrs["patch_size_level0"] * mpp20 == pytest.approx(112.0)
    assert t40.attrs["patch_size_level0"] * mpp40 == pytest.approx(112.0)
    # the same physical grid: patch top-lefts in micrometres largely coincide
    um20 = {tuple(c) for c in (t20.coords * mpp20).round().astype(int)}
    um40 = {tuple(c) for c in (t40.coords * mpp40).round().astype(int)}
    assert len(um20) > 10 and len(um20 & um40) / len(um20 | um40) > 0.85


def test_tiles_are_inside_the_slide_and_deterministic(pair, tmp_path):
    with open_slide(pair[0]) as slide:
        tissue = segment_slide(slide, SegmentParams())
        a = tile_slide(slide, tissue.polygons, TileParams(min_tissue_fraction=0.5))
        b = tile_slide(slide, tissue.polygons, TileParams(min_tissue_fraction=0.5))
        loose = tile_slide(slide, tissue.polygons, TileParams(min_tissue_fraction=0.1))
    np.testing.assert_array_equal(a.coords, b.coords)
    assert a.coords.dtype == np.int64 and (a.coords % 224 == 0).all()
    assert (a.coords[:, 0] + 224 <= 1500).all() and (a.coords[:, 1] + 224 <= 1000).all()
    assert len(np.unique(a.coords, axis=0)) == len(a.coords)
    assert (a.tissue_fraction >= 0.5).all() and len(loose.coords) > len(a.coords)
    write_coords(tmp_path / "c.h5", a)
    back = read_coords(tmp_path / "c.h5")
    np.testing.assert_array_equal(back.coords, a.coords)
    np.testing.assert_array_equal(back.tissue_fraction, a.tissue_fraction)
    with h5py.File(tmp_path / "c.h5") as h5:
        assert h5["coords"].dtype == np.int64 and h5["coords"].shape == (len(a.coords), 2)
        for key in ("patch_size", "patch_size_level0", "target_mpp", "level0_mpp", "read_level",
                    "level0_width", "level0_height", "name"):
            assert key in h5.attrs and key in h5["coords"].attrs
        assert h5.attrs["name"] == "S20" and h5.attrs["level0_width"] == 1500


def test_slide_smaller_than_a_patch_fails_clearly(tmp_path):
    tiny = write_slide(tmp_path / "tiny.svs", demo_image(400, 300, 40)[:300, :400], mpp=0.25, magnification=40)
    with open_slide(tiny) as slide, pytest.raises(SlideError, match=r"tiny\.svs.*smaller than one 224-px patch"):
        tile_slide(slide, [(square(0, 0, 400, 300), [])], TileParams())
