"""Synthetic H&E-like whole-slide images written as real Aperio SVS files.

Rendering happens on a 20x canvas (0.5 um/px); a 40x slide is the same field at twice the pixels, so
40x and 20x slides of similar patients look alike once read at 20x. Tissue islands with holes sit on
a white background; eosin-pink stroma carries haematoxylin-purple nuclei whose density follows the
``shared`` factor and whose size and stain follow the ``pathology`` factor; the stroma's redness and
fibre contrast follow the patient's trace of the ``genomics`` factor; some slides get a pen mark.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import tifffile

from mustsurv.demo.plan import SlideSpec, StudyPlan
from mustsurv.io import atomic_path

TILE = 240
APERIO_HEADER = "Aperio Image Library v12.0.15"
BACKGROUND = np.array([242, 241, 243], dtype=np.float32)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int, out_shape: tuple[int, int]):
    """Low-frequency noise (zero mean, unit std) of ``out_shape`` from a coarse grid of ``cell`` px."""
    coarse = rng.standard_normal((max(2, shape[0] // cell), max(2, shape[1] // cell))).astype(np.float32)
    coarse = cv2.GaussianBlur(coarse, (0, 0), 1.0)
    field = cv2.resize(coarse, (out_shape[1], out_shape[0]), interpolation=cv2.INTER_CUBIC)
    return (field - field.mean()) / (field.std() + 1e-6)


def _tissue_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Boolean (h, w) mask of tissue islands with holes, kept away from the slide border."""
    field = _smooth_noise(rng, (h, w), 256, (h, w))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radial = ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) * 4.0
    score = field - 2.2 * radial
    tissue = score > np.quantile(score, 0.58)
    holes = _smooth_noise(rng, (h, w), 48, (h, w)) > 1.9
    border = int(0.03 * min(h, w))
    tissue[:border] = tissue[-border:] = False
    tissue[:, :border] = tissue[:, -border:] = False
    return tissue & ~holes


def render_canvas(spec: SlideSpec, shared: float, pathology: float, genomics_trace: float = 0.0) -> np.ndarray:
    """Render one slide of a patient with these factors at 20x (0.5 um/px).

    Args:
        spec: the slide.
        shared: the patient's ``shared`` factor (nuclear density).
        pathology: the patient's ``pathology`` factor (nuclear size and stain).
        genomics_trace: the patient's ``genomics_in_tissue`` (stroma redness and fibre contrast).

    Returns:
        (H, W, 3) RGB uint8 image at the slide's level-0 size.
    """
    rng = np.random.default_rng(spec.seed)
    scale = spec.magnification // 20
    h, w = spec.height // scale, spec.width // scale
    mask = _tissue_mask(rng, h, w)

    # eosin stroma: hue follows the pathology factor, redness and fibre contrast the genomics trace;
    # low-frequency staining variation
    eosin = np.array([228.0 - 10.0 * genomics_trace, 148.0 - 10.0 * pathology, 188.0 + 8.0 * pathology],
                     dtype=np.float32)
    stain = 1.0 + 0.06 * _smooth_noise(rng, (h, w), 96, (h, w))
    fibre = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigmaX=3.0, sigmaY=0.8)
    tissue = eosin[None, None, :] * stain[..., None] + 14.0 * np.exp(0.35 * genomics_trace) * fibre[..., None]

    # haematoxylin nuclei: density ~ shared factor (and locally varying), size/darkness ~ pathology
    ys, xs = np.nonzero(mask[::4, ::4])
    density = 1.0 / 520.0 * np.exp(0.55 * shared + 0.1 * pathology)
    n_nuclei = int(rng.poisson(density * mask.sum()))
    local = _smooth_noise(rng, (h, w), 128, (h // 4 + 1, w // 4 + 1))
    weights = np.exp(0.6 * local[ys, xs])
    pick = rng.choice(len(ys), size=min(n_nuclei, len(ys) * 4), p=weights / weights.sum())
    cy = ys[pick] * 4 + rng.integers(0, 4, size=len(pick))
    cx = xs[pick] * 4 + rng.integers(0, 4, size=len(pick))
    radius = np.clip(rng.normal(5.0 * np.exp(0.18 * pathology), 1.0, size=len(pick)), 2.5, 12.0)
    ratio = rng.uniform(0.6, 1.0, size=len(pick))
    angle = rng.uniform(0, 180, size=len(pick))
    haem = np.array([95.0 - 18.0 * pathology, 55.0, 140.0 + 10.0 * pathology]).clip(20, 235)
    nuclei = np.zeros((h, w), dtype=np.uint8)
    for y, x, r, q, a in zip(cy, cx, radius, ratio, angle):
        cv2.ellipse(nuclei, (int(x), int(y)), (int(r), max(1, int(r * q))), float(a), 0, 360, 255, -1)
    alpha = cv2.GaussianBlur(nuclei.astype(np.float32) / 255.0, (0, 0), 0.8)[..., None] * 0.85
    tissue = tissue * (1 - alpha) + haem[None, None, :] * alpha

    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.5)[..., None]
    background = BACKGROUND[None, None, :] + rng.normal(0, 1.5, size=(h, w, 1)).astype(np.float32)
    img = tissue * soft + background * (1 - soft)

    if spec.pen_mark:
        pts = np.stack([rng.uniform(0.1, 0.9, 5) * w, rng.uniform(0.1, 0.9, 5) * h], axis=1).astype(np.int32)
        pen = np.zeros((h, w), dtype=np.uint8)
        cv2.polylines(pen, [pts], isClosed=False, color=255, thickness=max(6, w // 200))
        pa = cv2.GaussianBlur(pen.astype(np.float32) / 255.0, (0, 0), 2.0)[..., None] * 0.8
        img = img * (1 - pa) + np.array([40.0, 120.0, 75.0])[None, None, :] * pa

    img = np.clip(img, 0, 255).astype(np.uint8)
    if scale != 1:
        img = cv2.resize(img, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    return img


def _label(slide_id: str) -> np.ndarray:
    """The slide's label image (its id in two lines), (300, 600, 3) uint8."""
    img = np.full((300, 600, 3), 250, dtype=np.uint8)
    cv2.putText(img, slide_id[:12], (20, 130), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (10, 10, 10), 3)
    cv2.putText(img, slide_id[13:], (20, 210), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (10, 10, 10), 3)
    return img


def write_svs(path: str | os.PathLike, image: np.ndarray, mpp: float, magnification: int, slide_id: str) -> None:
    """Write an image as an Aperio SVS that OpenSlide reads with vendor ``aperio``.

    Layout as scanners write it: level 0 tiled JPEG with the Aperio ImageDescription (MPP, AppMag),
    a stripped thumbnail page, reduced levels (/4, /16) tiled with subfiletype 0, then label and macro
    images. The file is written atomically.

    Args:
        path: the SVS file to write.
        image: (H, W, 3) uint8 RGB level-0 image.
        mpp: level-0 microns per pixel.
        magnification: the scanner magnification (``AppMag``).
        slide_id: the slide's id (file name field and label).
    """
    h, w = image.shape[:2]
    head = f"{APERIO_HEADER}\r\n{w}x{h} [0,0 {w}x{h}] ({TILE}x{TILE})"
    meta = f"|AppMag = {magnification}|MPP = {mpp:.4f}|Filename = {slide_id}"
    jpeg = dict(compression="jpeg", compressionargs={"level": 90}, photometric="rgb", metadata=None)
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=False) as tif:
        tif.write(image, tile=(TILE, TILE), description=f"{head} JPEG/RGB Q=90{meta}", subfiletype=0, **jpeg)
        tw = 1024
        thumb = cv2.resize(image, (tw, max(1, h * tw // w)), interpolation=cv2.INTER_AREA)
        tif.write(thumb, description=f"{head} -> {thumb.shape[1]}x{thumb.shape[0]} - {meta}", **jpeg)
        for factor in (4, 16):
            level = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
            tif.write(
                level, tile=(TILE, TILE), subfiletype=0,
                description=f"{head} -> {level.shape[1]}x{level.shape[0]} JPEG/RGB Q=90", **jpeg,
            )
        label = _label(slide_id)
        tif.write(label, subfiletype=1, description=f"{APERIO_HEADER}\r\nlabel {label.shape[1]}x{label.shape[0]}",
                  compression="lzw", photometric="rgb", metadata=None)
        macro = np.concatenate([label, cv2.resize(thumb, (900, 300), interpolation=cv2.INTER_AREA)], axis=1)
        tif.write(macro, subfiletype=9, description=f"{APERIO_HEADER}\r\nmacro {macro.shape[1]}x{macro.shape[0]}",
                  **jpeg)


def write_slide(plan: StudyPlan, slide_id: str, path: str | os.PathLike) -> None:
    """Render one slide of the plan and write it as an Aperio SVS.

    Args:
        plan: the cohort's plan.
        slide_id: the slide to render.
        path: the SVS file to write.

    Raises:
        KeyError: the plan has no such slide.
    """
    spec = plan.slide(slide_id)
    patient = plan.patient(spec.patient_id)
    image = render_canvas(spec, patient.shared, patient.pathology, patient.genomics_in_tissue)
    write_svs(path, image, spec.mpp, spec.magnification, slide_id)
