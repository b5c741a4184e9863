"""Segmentation, tiling and summary steps, called by ``workflow/scripts/slides_*.py`` (no torch import here;
the embedding step is :func:`mustsurv.slides.embed.embed_batch`)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from mustsurv.io import atomic_path
from mustsurv.slides.batch import run_batch
from mustsurv.slides.provenance import FIELDS, cohort_provenance
from mustsurv.slides.reader import open_slide
from mustsurv.slides.summary import (
    STATUS_EMPTY,
    STATUS_FAILED,
    build_summary,
    feature_file_error,
    write_summary,
)
from mustsurv.slides.tiling import (
    TileParams,
    failed_tiles,
    tile_slide,
    write_coords,
)
from mustsurv.slides.tissue import (
    SegmentParams,
    failed_geojson,
    failed_qc_image,
    qc_image,
    read_geojson,
    segment_slide,
    write_geojson,
    write_png,
)
from mustsurv.study.vocabulary import PATIENT_ID

log = logging.getLogger("mustsurv.slides")

PathLike = str | os.PathLike


def tissue_step(slide_path: PathLike, slide_id: str, sheet: PathLike | None, geojson: PathLike, qc: PathLike,
                segmentation: dict[str, Any], retries: int = 2) -> str:
    """Segment one slide into a GeoJSON file and draw its QC image.

    Args:
        slide_path: the slide file.
        slide_id: the slide's id.
        sheet: the slide sheet (MPP fallback), or None.
        geojson: the tissue GeoJSON to write.
        qc: the QC PNG to write.
        segmentation: the config's ``slides.segmentation`` block.
        retries: extra attempts of a failed read.

    Returns:
        The status, ``ok`` or ``empty_mask``.

    Raises:
        SlideError: the slide cannot be opened, read, or has no MPP.
    """
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
    """Tile one slide inside its tissue polygons into a coords file.

    Args:
        slide_path: the slide file.
        slide_id: the slide's id.
        sheet: the slide sheet (MPP fallback), or None.
        geojson: the slide's tissue GeoJSON.
        out: the coords ``.h5`` to write.
        tiling: the config's ``slides`` block (:class:`~mustsurv.slides.tiling.TileParams` keys).
        retries: extra attempts of a failed read.

    Returns:
        The number of patches.

    Raises:
        SlideError: the slide cannot be opened, has no MPP, is coarser than the target or smaller than one
            patch.
    """
    with open_slide(slide_path, slide_id, sheet, retries) as slide:
        tiles = tile_slide(slide, read_geojson(geojson), TileParams.from_config(tiling))
    write_coords(out, tiles)
    a = tiles.attrs
    log.info("%s: %d patches of %d px at %.3f um/px (read %d px at level %d, %d level-0 px), status %s",
             slide_id, len(tiles.coords), a["patch_size"], a["target_mpp"], a["read_size"], a["read_level"],
             a["patch_size_level0"], a["status"])
    return len(tiles.coords)


def patch_batch(slides: dict[str, PathLike], sheet: PathLike | None, outputs: dict[str, dict[str, PathLike]],
                segmentation: dict[str, Any], tiling: dict[str, Any], retries: int = 2) -> dict[str, str]:
    """Segment and tile a batch of slides.

    A slide that fails gets failure outputs (status ``failed``, the error in GeoJSON properties and coords
    attributes) and the others go on (:func:`mustsurv.slides.batch.run_batch`).

    Args:
        slides: ``{slide_id: slide file}``.
        sheet: the slide sheet (MPP fallback), or None.
        outputs: per slide id, the paths ``geojson``, ``qc`` and ``coords`` of that slide.
        segmentation: the config's ``slides.segmentation`` block.
        tiling: the config's ``slides`` block.
        retries: extra attempts of a failed read.

    Returns:
        ``{slide_id: error}`` of the slides that failed.
    """

    def one(slide_id: str) -> int:
        out = outputs[slide_id]
        tissue_step(slides[slide_id], slide_id, sheet, out["geojson"], out["qc"], segmentation, retries)
        return coords_step(slides[slide_id], slide_id, sheet, out["geojson"], out["coords"], tiling, retries)

    def failed(slide_id: str, error: str) -> None:
        out = outputs[slide_id]
        failed_geojson(out["geojson"], slide_id, error)
        write_png(out["qc"], failed_qc_image(slide_id, error))
        write_coords(out["coords"], failed_tiles(slide_id, error))

    return run_batch(list(slides), one, "segmentation and tiling", failed)[1]


def tile_batch(slides: dict[str, PathLike], sheet: PathLike | None, geojsons: dict[str, PathLike],
               coords: dict[str, PathLike], tiling: dict[str, Any], retries: int = 2) -> dict[str, str]:
    """Tile a batch of slides at another magnification inside their existing tissue masks.

    A slide that fails (or whose mask records a failure) gets a failed coords file and the others go on.

    Args:
        slides: ``{slide_id: slide file}``.
        sheet: the slide sheet (MPP fallback), or None.
        geojsons: per slide id, its tissue GeoJSON (from the main magnification's segmentation).
        coords: per slide id, the coords ``.h5`` to write.
        tiling: the config's ``slides`` block with this magnification's ``target_mpp``.
        retries: extra attempts of a failed read.

    Returns:
        ``{slide_id: error}`` of the slides that failed.
    """

    def one(slide_id: str) -> int:
        return coords_step(slides[slide_id], slide_id, sheet, geojsons[slide_id], coords[slide_id], tiling, retries)

    def failed(slide_id: str, error: str) -> None:
        write_coords(coords[slide_id], failed_tiles(slide_id, error))

    return run_batch(list(slides), one, f"tiling at {tiling['target_mpp']} um/px", failed)[1]


class SlideFailedError(RuntimeError):
    """Slides of a cohort failed in segmentation, tiling or embedding; the message names them and the fix."""


def summary_step(features: dict[str, str], patients: dict[str, str] | None, out: PathLike,
                 skip_failed: bool = False, provenance_out: PathLike | None = None, cohort: str = "") -> None:
    """Write the cohort's slide summary from its features files, after checking their provenance.

    Args:
        features: ``{slide_id: features file}``.
        patients: ``{slide_id: patient id}`` (:meth:`mustsurv.study.design.StudyDesign.slide_patients`), or
            None (the slide ids under the ``auto`` rule).
        out: the ``summary.tsv`` to write.
        skip_failed: list failed slides with that status (left out of the bags) instead of stopping.
        provenance_out: where to write the features' common provenance as JSON (None: not written).
        cohort: the cohort's name, for the messages.

    Raises:
        SlideFailedError: slides have status ``failed`` and ``skip_failed`` is false; the message names them,
            their errors and the fixes.
        FeatureFileError: a features file is unusable or has an unknown status.
        ProvenanceError: the feature files disagree on encoder, dimension, MPP, patch size or weights.
    """
    table = build_summary(features, patients)  # checks every file's datasets first
    provenance = cohort_provenance(features, cohort)
    log.info("features: %s", ", ".join(f"{k}={provenance[k]}" for k in FIELDS))
    errors = {s: feature_file_error(p) for s, p in features.items()}
    failed = table[table["status"] == STATUS_FAILED]
    if len(failed) and not skip_failed:
        lines = "\n".join(f"  {r.slide_id}: {errors.get(r.slide_id, '?')}" for r in failed.itertuples())
        raise SlideFailedError(
            f"{len(failed)} slide(s) of this cohort could not be processed:\n{lines}\n"
            "Replace the slide file(s) (their batch then reruns), remove them from the cohort's slide "
            "sheet/glob, or set `slides.skip_failed: true` to leave them out of their patients' bags. "
            "Every other slide's outputs are kept."
        )
    write_summary(out, table)
    if provenance_out is not None:
        with atomic_path(provenance_out) as tmp:
            Path(tmp).write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    for r in failed.itertuples():
        log.warning("%s: failed (%s) - left out of patient %s's bag", r.slide_id, errors.get(r.slide_id, "?"),
                    r.patient_id)
    empty = table.loc[table["status"] == STATUS_EMPTY, "slide_id"].tolist()
    log.info("%d slides, %d patients, %d patches; %d with an empty tissue mask%s", len(table),
             table[PATIENT_ID].nunique(), int(table["n_patches"].sum()), len(empty),
             f" ({', '.join(empty)})" if empty else "")
