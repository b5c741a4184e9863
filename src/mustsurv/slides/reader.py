"""Whole-slide image reading: open any OpenSlide format, resolve the microns-per-pixel, pick the read level.

Coordinates are level-0 pixels (x, y) of the top-left corner throughout; images are RGB uint8 arrays of
shape (H, W, 3). A read that fails to decode is retried on a freshly opened handle (OpenSlide errors are
sticky per handle) before the slide fails with its name.
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import openslide
from openslide import lowlevel

log = logging.getLogger("mustsurv.slides")


class SlideError(RuntimeError):
    """A slide cannot be used; the message names the slide file and the fix."""


class SlideReadError(SlideError):
    """A region of a slide failed to decode even after retries."""


class MissingMPPError(SlideError):
    """Neither the slide nor the slide sheet gives the microns-per-pixel."""


@dataclass(frozen=True)
class ReadPlan:
    """How to read one patch of ``patch_size`` px at ``target_mpp`` from a slide.

    ``read_size`` px are read at pyramid level ``level`` and area-downsampled to ``patch_size`` when they
    differ (never upsampled).

    Attributes:
        level: pyramid level to read.
        level_mpp: microns per pixel of that level.
        read_size: side in px of the square read at ``level``.
        patch_size: side in px of the patch handed to the encoder.
        patch_size_level0: side of one patch in level-0 pixels.
        target_mpp: the patches' resolution in µm/px.
    """

    level: int
    level_mpp: float
    read_size: int
    patch_size: int
    patch_size_level0: int
    target_mpp: float


def plan_read(
    level_mpps: list[float],
    level_downsamples: list[float],
    target_mpp: float,
    patch_size: int,
    tolerance: float,
    name: str = "slide",
) -> ReadPlan:
    """Choose the pyramid level and read size for patches of ``patch_size`` px at ``target_mpp`` µm/px.

    The coarsest level whose resolution is at least the target (within ``tolerance``, relative) is read.
    Its scale ``target_mpp / level_mpp`` is snapped to the nearest integer when within the tolerance
    (0.2525 µm/px at 0.5 µm/px gives 2: 448 px read, downsampled to 224), else the read size is
    ``round(patch_size * scale)``.

    Args:
        level_mpps: microns per pixel of each pyramid level.
        level_downsamples: downsample factor of each level relative to level 0.
        target_mpp: the patches' resolution in µm/px.
        patch_size: side of a patch in px.
        tolerance: relative tolerance on the resolutions (0.1 = 10 %).
        name: the slide, named in the error.

    Returns:
        The read plan.

    Raises:
        SlideError: the slide is coarser than the target (patches are never upsampled); the message says
            which setting to change.
    """
    usable = [k for k, m in enumerate(level_mpps) if m <= target_mpp * (1 + tolerance)]
    if not usable:
        raise SlideError(
            f"{name}: finest resolution {min(level_mpps):.4f} um/px is coarser than the target "
            f"{target_mpp} um/px (tolerance {tolerance:.0%}); patches are never upsampled. Lower "
            f"`slides.target_mpp` or raise `slides.mpp_tolerance`, or remove the slide from the cohort."
        )
    level = max(usable, key=lambda k: level_mpps[k])
    scale = target_mpp / level_mpps[level]
    snapped = max(1, round(scale))
    if abs(scale - snapped) <= tolerance * scale:
        read_size = patch_size * snapped
    else:
        read_size = max(patch_size, round(patch_size * scale))
    return ReadPlan(
        level=level,
        level_mpp=level_mpps[level],
        read_size=read_size,
        patch_size=patch_size,
        patch_size_level0=round(read_size * level_downsamples[level]),
        target_mpp=target_mpp,
    )


def _to_rgb(img) -> np.ndarray:
    """RGB uint8 (H, W, 3) of an OpenSlide RGBA image; transparent pixels (outside the scan) become white."""
    rgba = np.asarray(img)
    rgb = np.ascontiguousarray(rgba[..., :3])
    alpha = rgba[..., 3]
    if alpha.min() < 255:
        rgb[alpha == 0] = 255
    return rgb


def _read_rgb(osr: openslide.OpenSlide, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3) of a region, read by OpenSlide's C reader into one buffer.

    Equal byte for byte to ``_to_rgb(osr.read_region(...))``, without PIL's copies or a zeroed buffer (1.5x
    faster on a 3,584-px region). OpenSlide writes premultiplied ARGB words (B, G, R, A bytes on a
    little-endian machine): where every pixel is opaque (the usual case) that is the colour itself, converted
    in one pass; otherwise the buffer goes through openslide-python's own un-premultiplying conversion and
    :func:`_to_rgb`. Without the private low-level functions (another openslide-python) the public reader is
    used.

    Raises:
        openslide.OpenSlideError: the region does not decode.
    """
    fast = sys.byteorder == "little" and hasattr(lowlevel, "_read_region") and hasattr(lowlevel, "_load_image")
    if not fast or width <= 0 or height <= 0:
        return _to_rgb(osr.read_region((x, y), level, (width, height)))
    buf = np.empty((height, width), dtype=np.uint32)  # not zeroed: OpenSlide writes every pixel
    lowlevel._read_region(osr._osr, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), x, y, level, width, height)
    bgra = buf.view(np.uint8).reshape(height, width, 4)
    if bgra[..., 3].min() == 255:
        return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
    return _to_rgb(lowlevel._load_image(buf, (width, height)))


class Slide:
    """An open whole-slide image with its level-0 MPP resolved (from the file, else ``fallback_mpp``).

    Attributes:
        path: the slide file.
        name: the slide's id.
        retries: extra read attempts.
        mpp: level-0 microns per pixel.
        mpp_source: ``"slide"`` (from the file) or ``"sheet"`` (the fallback).
        magnification: the scanner's objective power, NaN when the file does not say.
        dimensions: level-0 (width, height) in px.
        level_dimensions: (width, height) of each pyramid level.
        level_downsamples: downsample factor of each level relative to level 0.
        level_mpps: microns per pixel of each level.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fallback_mpp: float | None = None,
        sheet: str | os.PathLike | None = None,
        retries: int = 2,
        slide_id: str | None = None,
    ) -> None:
        """Open the slide and resolve its MPP.

        Args:
            path: the slide file (any format OpenSlide reads).
            fallback_mpp: the slide sheet's ``mpp`` for this slide, used only when the file has none.
            sheet: the slide sheet's path, named in the error when both are missing.
            retries: extra attempts (each on a reopened handle) before a failed read raises.
            slide_id: the slide's id (default: the file name without its suffix).

        Raises:
            SlideError: the file is missing or cannot be opened.
            MissingMPPError: neither the file nor the sheet gives the MPP; the message says which cell to fill.
        """
        self.path = Path(path)
        self.name = slide_id or self.path.stem
        self.retries = retries
        self._osr = self._open()
        props = self._osr.properties
        mpp = props.get(openslide.PROPERTY_NAME_MPP_X)
        if mpp is not None and float(mpp) > 0:
            self.mpp = float(mpp)
            self.mpp_source = "slide"
        elif fallback_mpp is not None and math.isfinite(fallback_mpp) and fallback_mpp > 0:
            self.mpp = float(fallback_mpp)
            self.mpp_source = "sheet"
        else:
            where = (
                f"the slide sheet {sheet} has no `mpp` value for slide_id {self.name!r}; fill that cell"
                if sheet
                else "the cohort lists its slides by glob; give it a slide sheet (`slides.sheet`) with an "
                "`mpp` column"
            )
            raise MissingMPPError(
                f"{self.path}: no microns-per-pixel in the file (property {openslide.PROPERTY_NAME_MPP_X} "
                f"missing) and {where} (e.g. 0.25 for 40x, 0.5 for 20x scans)."
            )
        power = props.get(openslide.PROPERTY_NAME_OBJECTIVE_POWER)
        self.magnification = float(power) if power not in (None, "") else float("nan")
        self.dimensions: tuple[int, int] = self._osr.dimensions
        self.level_dimensions: list[tuple[int, int]] = list(self._osr.level_dimensions)
        self.level_downsamples: list[float] = [float(d) for d in self._osr.level_downsamples]
        self.level_mpps: list[float] = [self.mpp * d for d in self.level_downsamples]

    def _open(self) -> openslide.OpenSlide:
        """Open the file with OpenSlide; a missing or unreadable file raises :class:`SlideError` naming it."""
        if not self.path.is_file():
            raise SlideError(f"{self.path}: slide file not found; fix its path in the slide sheet or glob.")
        try:
            return openslide.OpenSlide(str(self.path))
        except (openslide.OpenSlideError, OSError) as err:
            raise SlideError(
                f"{self.path}: cannot be opened as a whole-slide image ({err}); the file is corrupt, truncated "
                f"or not a slide format OpenSlide reads. Re-download or re-export it, or remove it from the "
                f"cohort."
            ) from err

    def close(self) -> None:
        """Close the OpenSlide handle."""
        self._osr.close()

    def __enter__(self) -> "Slide":
        """Use the slide as a context manager that closes it on exit."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the slide."""
        self.close()

    def plan(self, target_mpp: float, patch_size: int, tolerance: float) -> ReadPlan:
        """Plan the reads of patches from this slide.

        Args:
            target_mpp: the patches' resolution in µm/px.
            patch_size: side of a patch in px.
            tolerance: relative tolerance on the resolutions.

        Returns:
            The :class:`ReadPlan`.

        Raises:
            SlideError: the slide is coarser than the target.
        """
        return plan_read(self.level_mpps, self.level_downsamples, target_mpp, patch_size, tolerance, str(self.path))

    def read_region(self, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
        """Read a region of the slide.

        A decode failure is retried ``retries`` times on a reopened handle.

        Args:
            x: level-0 x of the region's top-left corner.
            y: level-0 y of the region's top-left corner.
            level: pyramid level to read.
            width: width in px at ``level``.
            height: height in px at ``level``.

        Returns:
            (height, width, 3) RGB uint8; transparent pixels (outside the scan) are white.

        Raises:
            SlideReadError: the region still fails to decode after the retries; the message names the slide
                and the region.
        """
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                return _read_rgb(self._osr, int(x), int(y), level, int(width), int(height))
            except openslide.OpenSlideError as err:
                last = err
                log.warning("%s: read of (%d, %d) level %d %dx%d failed (attempt %d/%d): %s",
                            self.path, x, y, level, width, height, attempt + 1, self.retries + 1, err)
                self._osr.close()
                self._osr = self._open()
        raise SlideReadError(
            f"{self.path}: region at level-0 ({x}, {y}), level {level}, {width}x{height} px failed to decode "
            f"after {self.retries + 1} attempts ({last}); the file is damaged. Re-download or re-scan it, or "
            f"remove it from the cohort (the other slides are unaffected)."
        ) from last

    def thumbnail(self, mpp: float, chunk: int = 4096) -> tuple[np.ndarray, float]:
        """Read the whole slide at about ``mpp`` µm/px (never finer than level 0).

        The best pyramid level is read in ``chunk``-px pieces, each area-resized into the output, so
        memory stays bounded for slides without a low-resolution level.

        Args:
            mpp: the thumbnail's resolution in µm/px.
            chunk: side of the pieces read, in output px.

        Returns:
            The (h, w, 3) RGB uint8 thumbnail and its downsample factor relative to level 0 (level-0 px per
            thumbnail px).

        Raises:
            SlideReadError: a piece fails to decode after the retries.
        """
        want = max(1.0, mpp / self.mpp)
        level = self._osr.get_best_level_for_downsample(want)
        lw, lh = self.level_dimensions[level]
        ds_level = self.level_downsamples[level]
        factor = want / ds_level  # further downsampling of the level, >= ~1
        W0, H0 = self.dimensions
        out_w, out_h = max(1, round(W0 / want)), max(1, round(H0 / want))
        out = np.empty((out_h, out_w, 3), dtype=np.uint8)
        step = max(1, int(chunk // factor)) * factor  # level px per chunk, a whole number of output px
        ys = np.arange(0, lh, step)
        xs = np.arange(0, lw, step)
        for ly in ys:  # the last piece of a row or column reaches the output's edge (no pixel left unset)
            oy0, oy1 = round(ly / factor), out_h if ly + step >= lh else min(out_h, round((ly + step) / factor))
            for lx in xs:
                ox0, ox1 = round(lx / factor), out_w if lx + step >= lw else min(out_w, round((lx + step) / factor))
                if oy1 <= oy0 or ox1 <= ox0:
                    continue
                w = int(min(math.ceil(step), lw - int(lx)))
                h = int(min(math.ceil(step), lh - int(ly)))
                piece = self.read_region(round(lx * ds_level), round(ly * ds_level), level, w, h)
                out[oy0:oy1, ox0:ox1] = cv2.resize(piece, (ox1 - ox0, oy1 - oy0), interpolation=cv2.INTER_AREA)
        return out, W0 / out_w


def sheet_mpp(sheet: str | os.PathLike | None, slide_id: str) -> float | None:
    """Look up a slide's ``mpp`` in the slide sheet.

    Args:
        sheet: the slide sheet, or None.
        slide_id: the slide's id.

    Returns:
        The sheet's ``mpp`` for the slide; None without a sheet, an ``mpp`` column or a value.
    """
    if not sheet:
        return None
    from mustsurv.cohort.slides import read_sheet

    df = read_sheet(sheet)
    if "mpp" not in df.columns:
        return None
    row = df.loc[df["slide_id"] == slide_id, "mpp"]
    if row.empty or not np.isfinite(float(row.iloc[0])):
        return None
    return float(row.iloc[0])


def open_slide(
    path: str | os.PathLike,
    slide_id: str | None = None,
    sheet: str | os.PathLike | None = None,
    retries: int = 2,
) -> Slide:
    """Open a slide with the sheet's MPP as fallback.

    Args:
        path: the slide file.
        slide_id: the slide's id; the file's stem when None.
        sheet: the slide sheet, or None.
        retries: extra attempts of a failed read.

    Returns:
        The open slide.

    Raises:
        SlideError: the file is missing or cannot be opened.
        MissingMPPError: neither the file nor the sheet gives the MPP; the message says which cell to fill.
    """
    slide_id = slide_id or Path(path).stem
    return Slide(path, fallback_mpp=sheet_mpp(sheet, slide_id), sheet=sheet, retries=retries, slide_id=slide_id)
