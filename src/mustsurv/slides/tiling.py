"""Tiling: non-overlapping patches at the target MPP on a level-0 grid, kept by their tissue fraction.

The grid starts at level-0 (0, 0) with a step of ``patch_size_level0`` and holds only whole patches.
The tissue fraction of a cell is the area fraction covered by the tissue polygons, rasterised at
``SUBSAMPLE`` px per cell side. Patches are ordered block by block (``region_patches`` x
``region_patches`` cells, blocks row-major, cells row-major inside a block): a deterministic order
in which consecutive patches share a read region (see :mod:`mustsurv.slides.embed`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cv2
import h5py
import numpy as np

from mustsurv.config import FromConfig
from mustsurv.io import atomic_path
from mustsurv.slides.reader import ReadPlan, Slide, SlideError
from mustsurv.slides.summary import STATUS_EMPTY, STATUS_FAILED, STATUS_OK
from mustsurv.slides.tissue import Ring

SUBSAMPLE = 16  # raster px per patch side when measuring tissue fractions


@dataclass(frozen=True)
class TileParams(FromConfig):
    """Tiling settings (keys of the config's ``slides`` block).

    Attributes:
        target_mpp: the patches' resolution in µm/px.
        mpp_tolerance: relative tolerance on the resolutions.
        patch_size: side of a patch in px.
        min_tissue_fraction: a patch is kept when at least this fraction of it is tissue.
        region_patches: side, in patches, of the blocks of the patch order (one read region each).
    """

    target_mpp: float = 0.5
    mpp_tolerance: float = 0.05
    patch_size: int = 224
    min_tissue_fraction: float = 0.5
    region_patches: int = 8



@dataclass
class Tiles:
    """Kept patches of one slide.

    Attributes:
        coords: (N, 2) int64 level-0 top-left (x, y).
        tissue_fraction: (N,) float32 tissue fraction of each patch.
        attrs: the slide/plan attributes written with them (:func:`slide_attrs`).
    """

    coords: np.ndarray
    tissue_fraction: np.ndarray
    attrs: dict[str, Any]


def slide_attrs(slide: Slide, plan: ReadPlan, status: str) -> dict[str, Any]:
    """TRIDENT-style attributes of a slide's patch files.

    Args:
        slide: the open slide.
        plan: its read plan.
        status: ``ok`` or ``empty_mask``.

    Returns:
        The attributes (name, patch and read sizes, read level, MPPs, magnification, level-0 size, status).
    """
    return {
        "name": slide.name,
        "patch_size": plan.patch_size,
        "patch_size_level0": plan.patch_size_level0,
        "read_size": plan.read_size,
        "read_level": plan.level,
        "target_mpp": plan.target_mpp,
        "level0_mpp": slide.mpp,
        "mpp_source": slide.mpp_source,
        "magnification": slide.magnification,
        "level0_width": slide.dimensions[0],
        "level0_height": slide.dimensions[1],
        "status": status,
    }


def tissue_fractions(polygons: list[tuple[Ring, list[Ring]]], step: int, nx: int, ny: int) -> np.ndarray:
    """Measure the fraction of each grid cell covered by the tissue polygons.

    Holes are empty; islands inside holes count again.

    Args:
        polygons: (exterior, holes) level-0 rings.
        step: cell side in level-0 px.
        nx: cells per row.
        ny: cells per column.

    Returns:
        (ny, nx) float32 fractions.
    """
    raster = np.zeros((ny * SUBSAMPLE, nx * SUBSAMPLE), dtype=np.uint8)
    shift = 4
    f = SUBSAMPLE / step

    def fixed(ring: Ring) -> np.ndarray:
        # fillPoly fills the pixels on both edges of a polygon; moving a ring up-left by 3/4 px makes
        # [0, a) fill exactly the raster pixels 0 .. a-1, so cells sharing an edge do not both claim it
        return np.round((ring * f - 0.75) * (1 << shift)).astype(np.int32)

    # larger outlines first, so that an island inside another outline's hole is drawn after that hole
    for ext, holes in sorted(polygons, key=lambda p: -abs(cv2.contourArea(p[0].astype(np.float32)))):
        cv2.fillPoly(raster, [fixed(ext)], 1, lineType=cv2.LINE_8, shift=shift)
        if holes:
            cv2.fillPoly(raster, [fixed(h) for h in holes], 0, lineType=cv2.LINE_8, shift=shift)
    return raster.reshape(ny, SUBSAMPLE, nx, SUBSAMPLE).mean(axis=(1, 3), dtype=np.float32)


def block_order(cols: np.ndarray, rows: np.ndarray, block: int) -> np.ndarray:
    """Order grid cells block-major, row-major within a block.

    Args:
        cols: (N,) int column of each cell.
        rows: (N,) int row of each cell.
        block: block side in cells.

    Returns:
        (N,) permutation of the cells.
    """
    return np.lexsort((cols, rows, cols // block, rows // block))


def tile_slide(slide: Slide, polygons: list[tuple[Ring, list[Ring]]], params: TileParams) -> Tiles:
    """Keep the grid cells of a slide whose tissue fraction is > 0 and >= ``min_tissue_fraction``.

    Args:
        slide: the open slide.
        polygons: its tissue polygons, (exterior, holes) level-0 rings.
        params: the tiling settings.

    Returns:
        The kept patches in block-major order.

    Raises:
        SlideError: the slide is coarser than the target MPP, or smaller than one patch at it.
    """
    plan = slide.plan(params.target_mpp, params.patch_size, params.mpp_tolerance)
    step = plan.patch_size_level0
    W0, H0 = slide.dimensions
    nx, ny = W0 // step, H0 // step
    if nx == 0 or ny == 0:
        raise SlideError(
            f"{slide.path}: {W0}x{H0} px at {slide.mpp:.4f} um/px is smaller than one {params.patch_size}-px "
            f"patch at {params.target_mpp} um/px ({step} level-0 px); remove it from the cohort's slides."
        )
    frac = tissue_fractions(polygons, step, nx, ny)
    rows, cols = np.nonzero((frac > 0) & (frac >= params.min_tissue_fraction))
    order = block_order(cols, rows, params.region_patches)
    rows, cols = rows[order], cols[order]
    coords = np.stack([cols, rows], axis=1).astype(np.int64) * step
    status = STATUS_OK if len(coords) else STATUS_EMPTY
    return Tiles(coords.reshape(-1, 2), frac[rows, cols].astype(np.float32), slide_attrs(slide, plan, status))


def failed_tiles(slide_id: str, error: str) -> Tiles:
    """Tile a slide that could not be read: no patches, status ``failed`` and the error.

    Args:
        slide_id: the slide's id.
        error: the error message.

    Returns:
        The empty tiles.
    """
    return Tiles(np.zeros((0, 2), np.int64), np.zeros(0, np.float32),
                 {"name": slide_id, "status": STATUS_FAILED, "error": error})


def write_coords(path: str | os.PathLike, tiles: Tiles) -> None:
    """Write the patches to a coords file atomically.

    Datasets ``coords`` (N, 2) int64 and ``tissue_fraction`` (N,); the attributes go on the file and on
    the ``coords`` dataset (where TRIDENT keeps them).

    Args:
        path: the coords ``.h5`` to write.
        tiles: the patches.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        ds = h5.create_dataset("coords", data=tiles.coords.astype(np.int64).reshape(-1, 2))
        h5.create_dataset("tissue_fraction", data=tiles.tissue_fraction.astype(np.float32))
        for obj in (h5, ds):
            obj.attrs.update(tiles.attrs)


def read_coords(path: str | os.PathLike) -> Tiles:
    """Read a coords file written by :func:`write_coords`.

    Args:
        path: the coords ``.h5``.

    Returns:
        The patches (tissue fractions all 1 when the file has none).

    Raises:
        SlideError: the file is unreadable or lacks ``coords``; the message says to delete it so the tiling
            reruns.
    """
    try:
        with h5py.File(path, "r") as h5:
            coords = h5["coords"][:].astype(np.int64).reshape(-1, 2)
            frac = h5["tissue_fraction"][:] if "tissue_fraction" in h5 else np.ones(len(coords), np.float32)
            attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h5.attrs.items()}
    except (OSError, KeyError) as err:
        raise SlideError(f"{path}: unreadable coords file ({err}); delete it so the tiling reruns.") from err
    return Tiles(coords, frac, attrs)
