"""Tissue segmentation: mask, contours with holes, area filters, GeoJSON, QC image, empty masks, real slide."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from slides_helpers import write_slide

from mustsurv.slides.reader import open_slide
from mustsurv.slides.tiling import TileParams, tile_slide
from mustsurv.slides.tissue import (
    SegmentParams,
    mask_polygons,
    qc_image,
    read_geojson,
    segment_slide,
    tissue_mask,
    write_geojson,
    write_png,
)

PINK = (225, 140, 190)
WHITE = (242, 241, 243)


def blob_image() -> np.ndarray:
    """1500x1000 white field: a pink disc with a white hole, a small pink speck, a grey smudge."""
    img = np.full((1000, 1500, 3), WHITE, np.uint8)
    cv2.circle(img, (600, 500), 350, PINK, -1)
    cv2.circle(img, (600, 500), 90, WHITE, -1)  # hole: ~0.0064 mm^2 at 0.5 um/px
    cv2.circle(img, (1300, 150), 12, PINK, -1)  # speck: ~0.0001 mm^2
    cv2.rectangle(img, (1100, 700), (1400, 900), (150, 150, 150), -1)  # unsaturated: not tissue
    return img


def test_mask_keeps_saturated_tissue_only():
    mask = tissue_mask(blob_image(), SegmentParams(median_blur=1, close_kernel=0))
    assert mask[500, 400] == 255 and mask[500, 600] == 0 and mask[800, 1200] == 0 and mask[50, 50] == 0


def test_contours_with_holes_and_area_filters():
    params = SegmentParams(median_blur=3, close_kernel=0, min_tissue_area_mm2=0.01, min_hole_area_mm2=0.005)
    polys = mask_polygons(tissue_mask(blob_image(), params), (0.5 / 1000) ** 2, params)
    assert len(polys) == 1  # the speck is below the tissue area
    ext, holes = polys[0]
    assert len(holes) == 1
    assert cv2.contourArea(ext) == pytest.approx(np.pi * 350**2, rel=0.02)
    assert cv2.contourArea(holes[0]) == pytest.approx(np.pi * 90**2, rel=0.05)
    bigger_holes_only = SegmentParams(median_blur=3, close_kernel=0, min_tissue_area_mm2=0.01, min_hole_area_mm2=0.01)
    assert mask_polygons(tissue_mask(blob_image(), params), (0.5 / 1000) ** 2, bigger_holes_only)[0][1] == []


def test_slide_segmentation_geojson_roundtrip_and_qc(tmp_path):
    svs = write_slide(tmp_path / "S.svs", blob_image())
    with open_slide(svs) as slide:
        tissue = segment_slide(slide, SegmentParams(seg_mpp=2.0))
        qc = qc_image(slide, tissue)
    assert tissue.status == "ok" and len(tissue.polygons) == 1 and len(tissue.polygons[0][1]) == 1
    write_geojson(tmp_path / "S.geojson", tissue)
    doc = json.loads((tmp_path / "S.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and doc["properties"]["status"] == "ok"
    rings = doc["features"][0]["geometry"]["coordinates"]
    assert len(rings) == 2 and rings[0][0] == rings[0][-1]  # exterior + hole, closed rings
    back = read_geojson(tmp_path / "S.geojson")
    ext = back[0][0]
    # level-0 coordinates: the disc is centred at (600, 500) with radius 350
    assert np.abs(ext.mean(axis=0) - (600, 500)).max() < 15
    assert np.abs(np.hypot(*(ext - (600, 500)).T) - 350).max() < 20  # 5 thumbnail px at 2 um/px
    # QC: thumbnail of the whole slide with green outlines
    assert qc.shape[1] == 1024 and (qc == (0, 170, 0)).all(axis=2).sum() > 100
    write_png(tmp_path / "qc.png", qc)
    assert cv2.imread(str(tmp_path / "qc.png")).shape == qc.shape


def test_empty_slide_gives_empty_mask_not_an_error(tmp_path):
    svs = write_slide(tmp_path / "blank.svs", np.full((1000, 1500, 3), WHITE, np.uint8))
    with open_slide(svs) as slide:
        tissue = segment_slide(slide, SegmentParams())
        tiles = tile_slide(slide, tissue.polygons, TileParams())
    assert tissue.status == "empty_mask" and tissue.polygons == []
    write_geojson(tmp_path / "blank.geojson", tissue)
    assert read_geojson(tmp_path / "blank.geojson") == []
    assert tiles.coords.shape == (0, 2) and tiles.attrs["status"] == "empty_mask"


def test_read_geojson_rejects_broken_file(tmp_path):
    bad = tmp_path / "x.geojson"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"x\.geojson: not valid GeoJSON"):
        read_geojson(bad)


def test_real_slide_segmentation_and_tiling(shared_data, tmp_path):
    """CMU-1-Small-Region (real Aperio H&E, 2220x2967 at 0.499 um/px): tissue found, background left out."""
    path = shared_data / "slides" / "CMU-1-Small-Region.svs"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open_slide(path) as slide:
        tissue = segment_slide(slide, SegmentParams())
        tiles = tile_slide(slide, tissue.polygons, TileParams())
        write_png(tmp_path / "qc.png", qc_image(slide, tissue))
        thumb, ds = slide.thumbnail(4.0)
        patches = [slide.read_region(x, y, 0, 224, 224) for x, y in tiles.coords]
    assert tissue.status == "ok" and tiles.attrs["read_size"] == 224 and tiles.attrs["patch_size_level0"] == 224
    assert 30 <= len(tiles.coords) <= 80
    assert (tiles.tissue_fraction >= 0.5).all()
    assert (tiles.coords >= 0).all()
    assert (tiles.coords[:, 0] + 224 <= 2220).all() and (tiles.coords[:, 1] + 224 <= 2967).all()
    # kept patches are stained (saturated) tissue; the slide's left margin is background
    sat = [cv2.cvtColor(p, cv2.COLOR_RGB2HSV)[..., 1].mean() for p in patches]
    margin = cv2.cvtColor(thumb[:, :20], cv2.COLOR_RGB2HSV)[..., 1].mean()
    assert np.median(sat) > 40 > 3 * margin
