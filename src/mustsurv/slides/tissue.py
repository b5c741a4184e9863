"""CLAM-style tissue segmentation at low resolution, saved as GeoJSON polygons with holes and a QC image.

Steps on a thumbnail at ``seg_mpp`` µm/px: HSV saturation, median blur, threshold (fixed or Otsu),
morphological closing, contours with a two-level hierarchy (tissue outlines and their holes), then
filtering by minimum tissue and hole areas (in mm², so independent of the scan resolution). Polygon
coordinates in the GeoJSON are level-0 pixels. A slide without any tissue contour is a valid outcome
(status :data:`~mustsurv.slides.summary.STATUS_EMPTY`), not an error.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from mustsurv.config import FromConfig
from mustsurv.io import atomic_path, write_text_atomic
from mustsurv.slides.reader import Slide
from mustsurv.slides.summary import STATUS_EMPTY, STATUS_FAILED, STATUS_OK

Ring = np.ndarray  # (K, 2) float64, level-0 (x, y), not closed


@dataclass(frozen=True)
class SegmentParams(FromConfig):
    """Segmentation settings (the config's ``slides.segmentation`` block).

    Attributes:
        seg_mpp: µm/px of the thumbnail that is segmented.
        saturation_threshold: fixed threshold 0..255 of the saturation, used when ``use_otsu`` is false.
        use_otsu: Otsu threshold on the blurred saturation instead of the fixed one.
        median_blur: odd median kernel size (thumbnail px).
        close_kernel: closing kernel size (thumbnail px); 0 disables.
        min_tissue_area_mm2: minimum area of a tissue outline minus its holes.
        min_hole_area_mm2: minimum area of a kept hole.
        max_holes: largest holes kept per tissue outline.
    """

    seg_mpp: float = 4.0  # µm/px of the thumbnail that is segmented
    saturation_threshold: int = 8  # 0..255, used when use_otsu is false
    use_otsu: bool = False  # Otsu threshold on the blurred saturation instead of the fixed one
    median_blur: int = 7  # odd kernel size (thumbnail px)
    close_kernel: int = 4  # closing kernel size (thumbnail px); 0 disables
    min_tissue_area_mm2: float = 0.02  # tissue outline minus its holes
    min_hole_area_mm2: float = 0.005
    max_holes: int = 8  # largest holes kept per tissue outline



@dataclass
class Tissue:
    """Tissue polygons of one slide.

    Attributes:
        polygons: (exterior, holes) pairs of level-0 rings.
        name: the slide's id.
        level0_width: level-0 width in px.
        level0_height: level-0 height in px.
        level0_mpp: level-0 microns per pixel.
    """

    polygons: list[tuple[Ring, list[Ring]]]
    name: str
    level0_width: int
    level0_height: int
    level0_mpp: float

    @property
    def status(self) -> str:
        """``ok`` with polygons, else ``empty_mask``."""
        return STATUS_OK if self.polygons else STATUS_EMPTY


def tissue_mask(rgb: np.ndarray, params: SegmentParams) -> np.ndarray:
    """Threshold a thumbnail's saturation into a binary tissue mask.

    Args:
        rgb: (h, w, 3) RGB uint8 thumbnail.
        params: the segmentation settings.

    Returns:
        (h, w) uint8 mask in {0, 255}.
    """
    sat = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1]
    k = params.median_blur | 1
    if k > 1:
        sat = cv2.medianBlur(sat, k)
    if params.use_otsu:
        _, mask = cv2.threshold(sat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    else:
        _, mask = cv2.threshold(sat, params.saturation_threshold, 255, cv2.THRESH_BINARY)
    if params.close_kernel > 0:
        kernel = np.ones((params.close_kernel, params.close_kernel), np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return mask


def mask_polygons(
    mask: np.ndarray, px_area_mm2: float, params: SegmentParams
) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Find the filtered tissue outlines and their holes in a mask.

    Keeps a tissue outline when its area minus its kept holes' area passes ``min_tissue_area_mm2``;
    keeps its holes larger than ``min_hole_area_mm2``, at most ``max_holes`` of them, largest first.

    Args:
        mask: (h, w) uint8 mask.
        px_area_mm2: area of one mask pixel in mm².
        params: the segmentation settings.

    Returns:
        (exterior, holes) contours in mask pixel coordinates, each (K, 2) int.
    """
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hier = hierarchy[0]  # (n, 4): next, previous, first child, parent
    out = []
    for i, c in enumerate(contours):
        if hier[i][3] != -1:
            continue
        holes = []
        child = hier[i][2]
        while child != -1:
            area = cv2.contourArea(contours[child]) * px_area_mm2
            if area > params.min_hole_area_mm2:
                holes.append((area, contours[child]))
            child = hier[child][0]
        holes = [h for _, h in sorted(holes, key=lambda t: -t[0])[: params.max_holes]]
        area = (cv2.contourArea(c) - sum(cv2.contourArea(h) for h in holes)) * px_area_mm2
        if area >= params.min_tissue_area_mm2 and len(c) >= 3:
            out.append((c[:, 0, :], [h[:, 0, :] for h in holes if len(h) >= 3]))
    return out


def _to_level0(ring: np.ndarray, downsample: float) -> Ring:
    """Thumbnail pixel indices (K, 2) -> level-0 coordinates of the pixel centres (K, 2) float64."""
    return (ring.astype(np.float64) + 0.5) * downsample


def segment_slide(slide: Slide, params: SegmentParams) -> Tissue:
    """Segment a slide's tissue on its thumbnail at ``params.seg_mpp``.

    Args:
        slide: the open slide.
        params: the segmentation settings.

    Returns:
        The tissue polygons in level-0 px (none when the mask is empty).

    Raises:
        SlideReadError: the thumbnail fails to decode after the retries.
    """
    thumb, ds = slide.thumbnail(params.seg_mpp)
    mask = tissue_mask(thumb, params)
    px_area_mm2 = (ds * slide.mpp / 1000.0) ** 2
    polys = [
        (_to_level0(ext, ds), [_to_level0(h, ds) for h in holes])
        for ext, holes in mask_polygons(mask, px_area_mm2, params)
    ]
    W0, H0 = slide.dimensions
    return Tissue(polys, slide.name, W0, H0, slide.mpp)


def _ring_json(ring: Ring) -> list[list[float]]:
    """A ring as a closed GeoJSON coordinate list, rounded to 0.1 px."""
    pts = [[round(float(x), 1), round(float(y), 1)] for x, y in ring]
    return pts + [pts[0]]


def tissue_to_geojson(tissue: Tissue) -> dict[str, Any]:
    """Convert tissue polygons to a GeoJSON FeatureCollection (QuPath-style annotations).

    Args:
        tissue: the tissue polygons.

    Returns:
        The collection: one Polygon per tissue outline with its holes; the slide's name, status and level-0
        size in ``properties``.
    """
    feats = [
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [_ring_json(ext)] + [_ring_json(h) for h in holes]},
            "properties": {"objectType": "annotation", "classification": {"name": "Tissue"}},
        }
        for ext, holes in tissue.polygons
    ]
    return {
        "type": "FeatureCollection",
        "features": feats,
        "properties": {
            "name": tissue.name,
            "status": tissue.status,
            "coordinates": "level-0 pixels (x, y)",
            "level0_width": tissue.level0_width,
            "level0_height": tissue.level0_height,
            "level0_mpp": tissue.level0_mpp,
        },
    }


def write_geojson(path: str | os.PathLike, tissue: Tissue) -> None:
    """Write the tissue polygons as GeoJSON atomically.

    Args:
        path: the GeoJSON file to write.
        tissue: the tissue polygons.
    """
    write_text_atomic(path, json.dumps(tissue_to_geojson(tissue)))


def read_geojson(path: str | os.PathLike) -> list[tuple[Ring, list[Ring]]]:
    """Read the tissue polygons of a GeoJSON file (Polygon and MultiPolygon features; others are skipped).

    Args:
        path: the GeoJSON file.

    Returns:
        (exterior, holes) rings in level-0 px.

    Raises:
        ValueError: the file is not valid JSON; the message says to delete it so the segmentation reruns.
    """
    with open(path) as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid GeoJSON ({err}); delete it so the segmentation reruns.") from err
    out = []
    for feat in doc.get("features", []):
        geom = feat.get("geometry") or {}
        if geom.get("type") == "Polygon":
            polys = [geom["coordinates"]]
        elif geom.get("type") == "MultiPolygon":
            polys = geom["coordinates"]
        else:
            continue
        for rings in polys:
            arrs = [np.asarray(r, dtype=np.float64)[:-1] for r in rings]
            out.append((arrs[0], arrs[1:]))
    return out


def qc_image(slide: Slide, tissue: Tissue, max_side: int = 1024) -> np.ndarray:
    """Draw a QC image: the slide with tissue outlines (green) and holes (blue).

    Args:
        slide: the open slide.
        tissue: its tissue polygons.
        max_side: about this many px on the long side (never finer than level 0).

    Returns:
        RGB uint8 image (h, w, 3).

    Raises:
        SlideReadError: the thumbnail fails to decode after the retries.
    """
    W0, H0 = slide.dimensions
    img, downsample = slide.thumbnail(max(W0, H0) * slide.mpp / max_side)
    f = 1.0 / downsample
    width = max(1, round(max(img.shape[:2]) / 400))
    for ext, holes in tissue.polygons:
        cv2.polylines(img, [np.round(ext * f).astype(np.int32)], True, (0, 170, 0), width, cv2.LINE_AA)
        for h in holes:
            cv2.polylines(img, [np.round(h * f).astype(np.int32)], True, (0, 0, 255), width, cv2.LINE_AA)
    if not tissue.polygons:
        cv2.putText(img, "empty tissue mask", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (200, 0, 0), 2)
    return img


def failed_geojson(path: str | os.PathLike, slide_id: str, error: str) -> None:
    """Write the GeoJSON of a slide that could not be segmented: no features, the error in ``properties``.

    Args:
        path: the GeoJSON file to write.
        slide_id: the slide's id.
        error: the error message.
    """
    doc = {"type": "FeatureCollection", "features": [],
           "properties": {"name": slide_id, "status": STATUS_FAILED, "error": error}}
    write_text_atomic(path, json.dumps(doc))


def failed_qc_image(slide_id: str, error: str) -> np.ndarray:
    """Draw a small placeholder QC image naming a failed slide and its error.

    Args:
        slide_id: the slide's id.
        error: the error message (its first 300 characters are drawn).

    Returns:
        (240, 960, 3) RGB uint8 image.
    """
    img = np.full((240, 960, 3), 235, dtype=np.uint8)
    cv2.putText(img, f"{slide_id}: FAILED", (10, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (200, 0, 0), 2)
    for k in range(0, min(len(error), 300), 75):
        cv2.putText(img, error[k:k + 75], (10, 90 + 30 * (k // 75)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (40, 40, 40), 1)
    return img


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an RGB image as PNG atomically.

    Args:
        path: the PNG file to write.
        rgb: (h, w, 3) RGB uint8 image.

    Raises:
        RuntimeError: the PNG encoding failed.
    """
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"{path}: PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())
