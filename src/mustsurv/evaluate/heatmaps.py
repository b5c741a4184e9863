"""Attention heatmaps: where a model looks in each test patient's slides.

For a model with ``patch_attention(bag) -> (N,)`` (``mustsurv.study.methods.HEATMAP_METHODS``), each test
patient of a fold is scored by that fold's model (the model that never saw the patient in training). The
weights over the patient's bag are split back to its slides, and for each slide:

- ``{slide}_heatmap.png``: the slide's thumbnail at the QC image's resolution, each patch's cell (level-0
  coordinates ÷ the thumbnail's downsample) coloured by the patch's attention percentile within the slide,
  Gaussian-smoothed over the patch grid (normalised convolution: no bleeding into the background), with a
  colour bar;
- ``{slide}_gallery.png``: the ``k`` highest- and ``k`` lowest-attention patches, cut from the slide at
  level 0 (:mod:`mustsurv.slides.reader`);
- ``{slide}_patches.tsv``: those patches (``kind``, ``rank``, ``patch``, ``x``, ``y``, ``attention``,
  ``percentile``).

``index.tsv`` lists every slide drawn (patient, fold, slide, files). Percentiles, not raw weights, are
coloured: raw weights shrink with the bag size, and Nyström rows may hold small negative values.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np
import pandas as pd
import torch

from mustsurv.cohort.splits import read_fold
from mustsurv.cohort.table import read_cohort_table
from mustsurv.slides.reader import open_slide
from mustsurv.slides.summary import read_summary
from mustsurv.study.vocabulary import PATIENT_ID
from mustsurv.train.trainer import load_checkpoint

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 1024  # long side of the thumbnail, as the QC image (mustsurv.slides.tissue.qc_image)
GALLERY_PX = 160  # side of a gallery patch
INDEX_COLUMNS = ("patient_id", "fold", "slide_id", "n_patches", "heatmap", "gallery", "patches")
PATCH_COLUMNS = ("kind", "rank", "patch", "x", "y", "attention", "percentile")


def patch_cells(coords: np.ndarray, step: float, downsample: float, shape: tuple[int, int]) -> np.ndarray:
    """Each patch's cell in a thumbnail: level-0 coordinates divided by the thumbnail's downsample.

    Args:
        coords: (N, 2) level-0 top-left (x, y) of the patches.
        step: patch side in level-0 px.
        downsample: level-0 px per thumbnail px.
        shape: the thumbnail's (height, width).

    Returns:
        (N, 4) int cells ``x0, y0, x1, y1`` (half-open, at least one px, clipped to the thumbnail).
    """
    h, w = shape
    xy0 = np.floor(np.asarray(coords, dtype=np.float64) / downsample).astype(np.int64)
    xy1 = np.maximum(xy0 + 1, np.ceil((np.asarray(coords, dtype=np.float64) + step) / downsample).astype(np.int64))
    x0, y0 = np.clip(xy0[:, 0], 0, w - 1), np.clip(xy0[:, 1], 0, h - 1)
    x1, y1 = np.clip(xy1[:, 0], 1, w), np.clip(xy1[:, 1], 1, h)
    return np.stack([x0, y0, x1, y1], axis=1)


def attention_map(values: np.ndarray, cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Paint each patch's value on its cell.

    Args:
        values: (N,) one value per patch.
        cells: (N, 4) cells from :func:`patch_cells`.
        shape: the thumbnail's (height, width).

    Returns:
        (height, width) float map, NaN where no patch lies (overlaps: the later patch wins).
    """
    grid = np.full(shape, np.nan)
    for v, (x0, y0, x1, y1) in zip(values, cells):
        grid[y0:y1, x0:x1] = v
    return grid


def smooth_map(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing inside the painted area only (normalised convolution).

    Args:
        grid: (h, w) map with NaN outside the patches.
        sigma: standard deviation in px (0 = no smoothing).

    Returns:
        (h, w) smoothed map, NaN where ``grid`` is.
    """
    if sigma <= 0:
        return grid.copy()
    inside = np.isfinite(grid)
    num = cv2.GaussianBlur(np.where(inside, grid, 0.0), (0, 0), sigma)
    den = cv2.GaussianBlur(inside.astype(np.float64), (0, 0), sigma)
    out = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 1e-9)
    out[~inside] = np.nan
    return out


def percentiles(values: np.ndarray) -> np.ndarray:
    """Rank of each value among the slide's patches, scaled to [0, 1] (ties share their mean rank).

    Args:
        values: (N,) attention weights.

    Returns:
        (N,) percentiles (0.5 when N = 1).
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return np.full(len(values), 0.5)
    return (pd.Series(values).rank(method="average").to_numpy() - 1.0) / (len(values) - 1)


def extremes(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k highest- and k lowest-attention patches.

    Args:
        values: (N,) attention weights.
        k: patches per side (at most N each).

    Returns:
        Indices of the top patches (highest first) and of the bottom patches (lowest first).
    """
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
    k = min(k, len(order))
    return order[:k], order[::-1][:k]


def _render_heatmap(thumb: np.ndarray, smoothed: np.ndarray, title: str, out: Path) -> None:
    """Thumbnail with the smoothed percentile map over it and a colour bar, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = thumb.shape[:2]
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 0.6), dpi=110)
    ax.imshow(thumb)
    shown = ax.imshow(np.ma.masked_invalid(smoothed), cmap="jet", vmin=0.0, vmax=1.0, alpha=0.45,
                      interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    bar = fig.colorbar(shown, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("attention percentile within the slide")
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def _render_gallery(top: list[np.ndarray], bottom: list[np.ndarray], top_values: np.ndarray,
                    bottom_values: np.ndarray, title: str, out: Path) -> None:
    """Two rows of patches (highest attention, lowest attention) with their weights, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = max(len(top), 1)
    fig, axes = plt.subplots(2, k, figsize=(1.7 * k, 4.0), dpi=100, squeeze=False)
    for row, (crops, vals, label) in enumerate(((top, top_values, "highest"), (bottom, bottom_values, "lowest"))):
        for j in range(k):
            ax = axes[row, j]
            ax.axis("off")
            if j < len(crops):
                ax.imshow(crops[j])
                ax.set_title(f"{label} #{j + 1}\n{vals[j]:.2e}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(out, bbox_inches="tight")
    plt.close(fig)


def read_patches(features_h5: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, float]:
    """A features file's bag, coordinates and patch side at level 0.

    Args:
        features_h5: a features ``.h5`` (this workflow's or TRIDENT's; CLAM's without ``patch_size_level0``
            are refused).

    Returns:
        Features (N, D) float32, coords (N, 2) int64 and the level-0 patch side.

    Raises:
        ValueError: the file has no ``patch_size_level0`` attribute; the message names the file.
    """
    with h5py.File(features_h5, "r") as h5:
        feats = np.asarray(h5["features"][()], dtype=np.float32)
        coords = np.asarray(h5["coords"][()], dtype=np.int64).reshape(-1, 2)
        attrs = {**dict(h5.attrs), **dict(h5["coords"].attrs)}
    if "patch_size_level0" not in attrs:
        raise ValueError(f"{features_h5}: no `patch_size_level0` attribute; heatmaps need the level-0 patch side "
                         f"(TRIDENT and this workflow write it).")
    return feats, coords, float(attrs["patch_size_level0"])


def slide_heatmap(slide_path: str | os.PathLike, slide_id: str, coords: np.ndarray, step: float,
                  attention: np.ndarray, out_dir: Path, k: int, title: str,
                  sheet: str | os.PathLike | None = None) -> dict[str, str]:
    """Draw one slide's heatmap and gallery and list its gallery patches.

    Args:
        slide_path: the slide file.
        slide_id: its id (file names).
        coords: (N, 2) level-0 top-left of its patches.
        step: patch side in level-0 px.
        attention: (N,) the patches' attention weights.
        out_dir: folder of the outputs.
        k: gallery patches per side.
        title: figure title.
        sheet: the slide sheet (MPP fallback), or None.

    Returns:
        ``heatmap``, ``gallery`` and ``patches`` file names (in ``out_dir``).
    """
    pct = percentiles(attention)
    top, bottom = extremes(attention, k)
    files = {"heatmap": f"{slide_id}_heatmap.png", "gallery": f"{slide_id}_gallery.png",
             "patches": f"{slide_id}_patches.tsv"}
    with open_slide(slide_path, slide_id, sheet) as slide:
        w0, h0 = slide.dimensions
        thumb, ds = slide.thumbnail(max(w0, h0) * slide.mpp / THUMBNAIL_SIDE)
        cells = patch_cells(coords, step, ds, thumb.shape[:2])
        grid = smooth_map(attention_map(pct, cells, thumb.shape[:2]), sigma=0.5 * step / ds)
        crops = {int(i): cv2.resize(slide.read_region(int(coords[i, 0]), int(coords[i, 1]), 0, int(step), int(step)),
                                    (GALLERY_PX, GALLERY_PX), interpolation=cv2.INTER_AREA)
                 for i in np.concatenate([top, bottom])}
    _render_heatmap(thumb, grid, title, out_dir / files["heatmap"])
    _render_gallery([crops[int(i)] for i in top], [crops[int(i)] for i in bottom], attention[top], attention[bottom],
                    title, out_dir / files["gallery"])
    rows = [{"kind": kind, "rank": r + 1, "patch": int(i), "x": int(coords[i, 0]), "y": int(coords[i, 1]),
             "attention": float(attention[i]), "percentile": float(pct[i])}
            for kind, idx in (("top", top), ("bottom", bottom)) for r, i in enumerate(idx)]
    pd.DataFrame(rows, columns=list(PATCH_COLUMNS)).to_csv(out_dir / files["patches"], sep="\t", index=False)
    return files


def cohort_heatmaps(method: str, folds: Sequence[tuple[str, str]], cohort_tsv: str, summary_tsv: str,
                    slides: dict[str, str], out_dir: str | os.PathLike, k: int = 8, max_patients: int | None = None,
                    sheet: str | os.PathLike | None = None, sample: int = 0,
                    device: torch.device = torch.device("cpu")) -> pd.DataFrame:
    """Draw the attention heatmaps of every test patient's slides, each scored by its own fold's model.

    The folder is written under a temporary name and renamed when complete.

    Args:
        method: the method's name (titles).
        folds: per fold, (fold JSON, model checkpoint); MUST's stage-3 checkpoint or a baseline's.
        cohort_tsv: the cohort table (each patient's slides, in bag order).
        summary_tsv: the slide summary (each slide's features file).
        slides: ``{slide_id: slide file}``.
        out_dir: the folder to write (``results/figures/heatmaps/{cohort}/{method}``).
        k: gallery patches per side.
        max_patients: draw at most this many test patients per fold (None: all), the first in id order.
        sheet: the slide sheet (MPP fallback), or None.
        sample: slides whose figures are also copied to ``sample/`` for the HTML report (:func:`report_sample`).
        device: where the models run.

    Returns:
        The index (:data:`INDEX_COLUMNS`), also written as ``index.tsv``.

    Raises:
        AttributeError: the method's model has no ``patch_attention``.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    table = read_cohort_table(cohort_tsv).set_index(PATIENT_ID)
    summary = read_summary(summary_tsv, report=False).set_index("slide_id")
    rows: list[dict[str, Any]] = []
    for k_fold, (fold_json, ckpt) in enumerate(folds):
        model, _ = load_checkpoint(ckpt, device)
        test = [p for p in sorted(read_fold(fold_json)["test"]) if p in table.index and table.at[p, "slides"]]
        for patient in test[:max_patients]:
            ids = [s for s in str(table.at[patient, "slides"]).split(",") if s]
            parts = [read_patches(summary.at[s, "features"]) for s in ids]
            bag = torch.from_numpy(np.concatenate([p[0] for p in parts])).to(device)
            attention = model.patch_attention(bag).detach().cpu().numpy().astype(np.float64)
            start = 0
            for slide_id, (feats, coords, step) in zip(ids, parts):
                part = attention[start:start + len(feats)]
                start += len(feats)
                title = f"{method} · fold {k_fold} · patient {patient} · {slide_id} ({len(feats)} patches)"
                files = slide_heatmap(slides[slide_id], slide_id, coords, step, part, tmp, k, title, sheet)
                rows.append({"patient_id": patient, "fold": k_fold, "slide_id": slide_id, "n_patches": len(feats),
                             **files})
        log.info("%s fold %d: heatmaps of %d test patient(s)", method, k_fold, len(test[:max_patients]))
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    index.to_csv(tmp / "index.tsv", sep="\t", index=False)
    report_sample(tmp, index, sample)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return index


def report_sample(out_dir: str | os.PathLike, index: pd.DataFrame, n: int) -> list[Path]:
    """Copy the heatmaps and galleries of ``n`` slides into ``sample/``, the part the HTML report shows.

    The slides are spread over the index (first, last and evenly between), so folds and patients vary.

    Args:
        out_dir: the heatmap folder.
        index: its index (:func:`cohort_heatmaps`).
        n: number of slides.

    Returns:
        The copied files.
    """
    sample = Path(out_dir) / "sample"
    sample.mkdir(exist_ok=True)
    if n <= 0 or index.empty:
        return []
    rows = index.iloc[np.unique(np.linspace(0, len(index) - 1, min(n, len(index))).round().astype(int))]
    copied = []
    for row in rows.itertuples():
        for name in (row.heatmap, row.gallery):
            copied.append(Path(shutil.copy2(Path(out_dir) / name, sample / name)))
    return copied
