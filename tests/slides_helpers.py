"""Tiny slide fixtures for the slides tests (written with the demo's Aperio SVS writer)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import numpy as np
import tifffile

from mustsurv.demo.plan import SlideSpec
from mustsurv.demo.slides import render_canvas, write_svs


def demo_image(width: int = 1500, height: int = 1000, magnification: int = 20, seed: int = 7) -> np.ndarray:
    """RGB uint8 (height, width, 3) synthetic H&E field; a 40x image is the 20x field at twice the pixels."""
    spec = SlideSpec("TCGA-AA-0000-01Z-00-DX1", "TCGA-AA-0000", magnification, 0.5 * 20 / magnification,
                     width, height, False, seed)
    return render_canvas(spec, 0.0, 0.0)


def write_slide(path: Path, image: np.ndarray, mpp: float = 0.5, magnification: int = 20) -> Path:
    """``image`` as an Aperio SVS at ``path``."""
    write_svs(path, image, mpp, magnification, path.stem)
    return path


def write_tiff_without_mpp(path: Path, image: np.ndarray) -> Path:
    """A tiled generic TIFF without resolution tags: OpenSlide opens it but reports no MPP."""
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb", compression="zlib", metadata=None,
                     resolutionunit=1)
    return path


def corrupt_tile(path: Path, tile_index: int) -> None:
    """Overwrite the start of level-0 tile ``tile_index`` so that its JPEG cannot be decoded."""
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[tile_index]
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\x00" * 64)


def gdc_tree(root: Path, slides: dict[str, np.ndarray], mpp: float = 0.5) -> Path:
    """A GDC-client style download: each slide in its own UUID folder, plus the GDC manifest listing them.

    Args:
        root: the download folder.
        slides: ``{TCGA slide barcode: RGB image}``; files are named ``<barcode>.<UUID>.svs`` as GDC names them.
        mpp: level-0 microns per pixel of every slide.

    Returns:
        The manifest (``root/gdc_manifest.txt``, columns id, filename, md5, size, state).
    """
    rows = ["id\tfilename\tmd5\tsize\tstate"]
    for barcode, image in slides.items():
        file_id = str(uuid.uuid5(uuid.NAMESPACE_URL, barcode))
        name = f"{barcode}.{str(uuid.uuid5(uuid.NAMESPACE_DNS, barcode)).upper()}.svs"
        (root / file_id).mkdir(parents=True)
        path = write_slide(root / file_id / name, image, mpp)
        rows.append(f"{file_id}\t{name}\t{hashlib.md5(path.read_bytes()).hexdigest()}\t{path.stat().st_size}\treleased")
    manifest = root / "gdc_manifest.txt"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest
