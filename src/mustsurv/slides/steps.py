"""Segmentation, tiling and summary steps, called by ``workflow/scripts/slides_*.py`` (no torch import here;
the embedding step is :func:`mustsurv.slides.embed.embed_step`)."""

from __future__ import annotations

import logging
import os
from typing import Any

from mustsurv.cohort.slides import read_sheet
from mustsurv.slides.reader import open_slide
from mustsurv.slides.summary import build_summary, write_summary
from mustsurv.slides.tiling import TileParams, tile_slide, write_coords
from mustsurv.slides.tissue import (
    STATUS_EMPTY,
    SegmentParams,
    qc_image,
    read_geojson,
    segment_slide,
    write_geojson,
    write_png,
)

log = logging.getLogger("mustsurv.slides")

PathLike = str | os.PathLike


def tissue_step(slide_path: PathLike, slide_id: str, sheet: PathLike | None, geojson: PathLike, qc: PathLike,
                segmentation: dict[str, Any], retries: int = 2) -> str:
    """Segment one slide into ``geojson`` and draw ``qc``; return the status (``ok`` / ``empty_mask``)."""
    with open_slide(slide_path, slide_id, sheet, retries) as slide:
        tissue = segment_slide(slide, SegmentParams.from_config(segmentation))
        write_geojson(geojson, tissue)
        write_png(qc, qc_image(slide, tissue))
    if tissue.status == STATUS_EMPTY:
        log.warning("%s: empty tissue mask - the slide gets no patches and is left out of its patient's bag; "
                    "check %s and the `slides.segmentation` settings", slide_id, qc)
    else:
        log.info("%s: %d tissue region(s) (MPP %.4f from the %s)", slide_id, len(tissue.polygons), slide.mpp,
                 slide.mpp_source)
    return tissue.status


def coords_step(slide_path: PathLike, slide_id: str, sheet: PathLike | None, geojson: PathLike, out: PathLike,
                tiling: dict[str, Any], retries: int = 2) -> int:
    """Tile one slide inside its tissue polygons into the coords file ``out``; return the patch count."""
    with open_slide(slide_path, slide_id, sheet, retries) as slide:
        tiles = tile_slide(slide, read_geojson(geojson), TileParams.from_config(tiling))
    write_coords(out, tiles)
    a = tiles.attrs
    log.info("%s: %d patches of %d px at %.3f um/px (read %d px at level %d, %d level-0 px), status %s",
             slide_id, len(tiles.coords), a["patch_size"], a["target_mpp"], a["read_size"], a["read_level"],
             a["patch_size_level0"], a["status"])
    return len(tiles.coords)


def summary_step(features: dict[str, str], sheet: PathLike | None, out: PathLike) -> None:
    """Write the cohort's slide summary from its features files ({slide_id: path})."""
    patients = None
    if sheet:
        df = read_sheet(sheet)
        patients = dict(zip(df["slide_id"], df["patient_id"]))
    table = build_summary(features, patients)
    write_summary(out, table)
    empty = table.loc[table["status"] == STATUS_EMPTY, "slide_id"].tolist()
    log.info("%d slides, %d patients, %d patches; %d with an empty tissue mask%s", len(table),
             table["patient_id"].nunique(), int(table["n_patches"].sum()), len(empty),
             f" ({', '.join(empty)})" if empty else "")
