"""Patch embedding: worker processes read regions and cut patches, the encoder runs on full batches,
features stream into a TRIDENT-layout ``.h5`` written atomically.

Pipeline: consecutive patches of the coords file that share a ``region_patches`` block are one read
(their bounding box at the read level), cut into ``read_size`` patches and area-downsampled to
``patch_size`` when larger (never upsampled). Workers send uint8 tensors (n, S, S, 3); the main process
groups them into batches of ``batch_size``, moves them to the device, and converts there. The output
datasets are preallocated and filled batch by batch, so memory stays flat in the number of patches.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mustsurv.config import FromConfig
from mustsurv.io import atomic_path
from mustsurv.slides.batch import run_batch
from mustsurv.slides.encoders import Encoder, build_encoder, pick_device
from mustsurv.slides.reader import Slide
from mustsurv.slides.tiling import Tiles, failed_tiles, read_coords

log = logging.getLogger("mustsurv.slides")

MIN_REGIONS_FOR_WORKERS = 8  # slides with fewer regions (blocks of region_patches² patches) are read in-process


@dataclass(frozen=True)
class EmbedParams(FromConfig):
    """Embedding settings (keys of the config's ``slides`` block).

    Attributes:
        batch_size: patches per encoder batch.
        num_workers: reader worker processes (0 = read in the main process).
        region_patches: side, in patches, of the grid block read as one region.
        read_retries: extra attempts of a region read that fails to decode.
    """

    batch_size: int = 64
    num_workers: int = 1
    region_patches: int = 8
    read_retries: int = 2



def region_groups(coords: np.ndarray, step: int, region_patches: int) -> list[tuple[int, int]]:
    """Group consecutive patches that lie in the same grid block into runs.

    Works for any order; the block-major order of :func:`mustsurv.slides.tiling.tile_slide` gives one
    run per block.

    Args:
        coords: (N, 2) level-0 top-left (x, y) of the patches.
        step: patch side in level-0 px.
        region_patches: block side in patches.

    Returns:
        The [start, end) index runs, in order.
    """
    if len(coords) == 0:
        return []
    block = coords // (step * region_patches)
    change = np.nonzero(np.any(block[1:] != block[:-1], axis=1))[0] + 1
    bounds = np.concatenate([[0], change, [len(coords)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class RegionPatches(Dataset):
    """Dataset whose item ``i`` is a uint8 tensor (n_i, patch_size, patch_size, 3) of the patches of region ``i``.

    Each worker process opens its own slide handle on first use.
    """

    def __init__(self, path: Path, slide_id: str, mpp: float, tiles: Tiles, groups: list[tuple[int, int]],
                 retries: int) -> None:
        """Keep what each worker needs to read the regions.

        Args:
            path: the slide file.
            slide_id: the slide's id.
            mpp: the slide's level-0 MPP (the coords file's, so the reader needs no sheet).
            tiles: the slide's patches and read attributes (``read_level``, ``read_size``, ``patch_size``).
            groups: the [start, end) patch runs of the regions (:func:`region_groups`).
            retries: extra attempts of a failed read.
        """
        self.path, self.slide_id, self.mpp, self.retries = path, slide_id, mpp, retries
        self.coords = tiles.coords
        self.groups = groups
        self.level = int(tiles.attrs["read_level"])
        self.read_size = int(tiles.attrs["read_size"])
        self.patch_size = int(tiles.attrs["patch_size"])
        self._slide: Slide | None = None
        self._pid = -1

    def __len__(self) -> int:
        """Number of regions."""
        return len(self.groups)

    def _handle(self) -> Slide:
        """The slide handle of the current process, (re)opened after a fork."""
        if self._slide is None or self._pid != os.getpid():
            self._slide = Slide(self.path, fallback_mpp=self.mpp, retries=self.retries, slide_id=self.slide_id)
            self._pid = os.getpid()
        return self._slide

    def __getitem__(self, i: int) -> torch.Tensor:
        """Read region ``i`` and cut it into its patches.

        Args:
            i: the region's index.

        Returns:
            (n_i, patch_size, patch_size, 3) uint8 patches, area-downsampled from ``read_size`` when larger.

        Raises:
            SlideReadError: the region fails to decode after the retries.
        """
        slide = self._handle()
        a, b = self.groups[i]
        xy = self.coords[a:b]
        x0, y0 = xy.min(axis=0)
        ds = slide.level_downsamples[self.level]
        off = np.round((xy - (x0, y0)) / ds).astype(np.int64)  # (n, 2) offsets at the read level
        w, h = off.max(axis=0) + self.read_size
        region = slide.read_region(int(x0), int(y0), self.level, int(w), int(h))
        S, P = self.read_size, self.patch_size
        out = np.empty((b - a, P, P, 3), dtype=np.uint8)
        for k, (ox, oy) in enumerate(off):
            patch = region[oy:oy + S, ox:ox + S]
            out[k] = patch if S == P else cv2.resize(patch, (P, P), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(out)


class _LogStream:
    """File-like object turning tqdm's refreshes into log lines."""

    def __init__(self, logger: logging.Logger) -> None:
        """Send the text to ``logger`` at level INFO."""
        self.logger = logger

    def write(self, text: str) -> None:
        """Log ``text`` without its line breaks (nothing when empty)."""
        text = text.strip("\r\n ")
        if text:
            self.logger.info(text)

    def flush(self) -> None:
        """Nothing to flush."""
        pass


def _batches(pieces: Iterator[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Regroup uint8 pieces (n_i, S, S, 3) into batches (batch_size, S, S, 3) (the last may be smaller)."""
    buf: list[torch.Tensor] = []
    held = 0
    for piece in pieces:
        buf.append(piece)
        held += len(piece)
        while held >= batch_size:
            cat = torch.cat(buf) if len(buf) > 1 else buf[0]
            yield cat[:batch_size]
            rest = cat[batch_size:]
            buf, held = ([rest] if len(rest) else []), len(rest)
    if held:
        yield torch.cat(buf) if len(buf) > 1 else buf[0]


def feature_attrs(tiles: Tiles, encoder: Encoder) -> dict[str, Any]:
    """Attributes of a features file: the coords file's slide attributes plus the encoder's provenance.

    The coords file gives ``target_mpp`` and ``patch_size``; the encoder adds ``encoder``, ``embed_dim`` and
    ``weights_sha256`` (``random-init`` for a seeded encoder), as :mod:`mustsurv.slides.provenance` reads them.

    Args:
        tiles: the slide's patches, with their attributes.
        encoder: the encoder.

    Returns:
        The attributes.
    """
    return {**tiles.attrs, "encoder": encoder.spec.name, "embed_dim": encoder.dim,
            "weights_sha256": encoder.weights_hash}


def embed_slide(
    slide_path: str | os.PathLike,
    tiles: Tiles,
    out_path: str | os.PathLike,
    encoder: Encoder,
    params: EmbedParams,
    logger: logging.Logger = log,
    progress_interval: float = 10.0,
) -> dict[str, Any]:
    """Embed the patches of one slide into a features file (TRIDENT layout), atomically.

    Output datasets: ``features`` (N, D) float32, ``coords`` (N, 2) int64 (same order),
    ``tissue_fraction`` (N,); attributes on the file and on ``coords``. With N = 0 (empty tissue mask)
    the file holds empty datasets and no model is built.

    Args:
        slide_path: the slide file.
        tiles: the patches to embed (a coords file's content).
        out_path: the features ``.h5`` to write.
        encoder: the patch encoder.
        params: the embedding settings.
        logger: logger of the progress lines.
        progress_interval: seconds between progress lines.

    Returns:
        The attributes written.

    Raises:
        SlideReadError: a region fails to decode after the retries.
        RuntimeError: fewer or more patches were embedded than the coords file lists.
    """
    n, dim = len(tiles.coords), encoder.dim
    attrs = feature_attrs(tiles, encoder)
    name = str(tiles.attrs.get("name", Path(slide_path).stem))
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as h5:
            chunks = (min(n, max(1, (4 << 20) // (4 * dim))), dim) if n else None
            feats = h5.create_dataset("features", shape=(n, dim), dtype=np.float32, chunks=chunks)
            coords = h5.create_dataset("coords", data=tiles.coords.astype(np.int64).reshape(-1, 2))
            h5.create_dataset("tissue_fraction", data=tiles.tissue_fraction.astype(np.float32))
            for obj in (h5, coords):
                obj.attrs.update(attrs)
            if n:
                _fill(feats, slide_path, name, tiles, encoder, params, logger, progress_interval)
    logger.info("%s: %d patches -> %s (%s, %d-d)", name, n, out_path, encoder.spec.name, dim)
    return attrs


def patch_batches(slide_path: str | os.PathLike, name: str, tiles: Tiles,
                  params: EmbedParams) -> Iterator[torch.Tensor]:
    """The patches of ``tiles`` read region by region (``params.num_workers`` reader processes), in batches.

    Args:
        slide_path: the slide file.
        name: the slide's name in messages.
        tiles: the patches to read (a coords file's content).
        params: the embedding settings (batch size, reader workers, region side, read retries).

    Yields:
        (B, S, S, 3) uint8 patches in the order of ``tiles.coords``, B = ``params.batch_size`` (the last may be
        smaller).
    """
    step = int(tiles.attrs["patch_size_level0"])
    groups = region_groups(tiles.coords, step, params.region_patches)
    data = RegionPatches(Path(slide_path), name, float(tiles.attrs["level0_mpp"]), tiles, groups, params.read_retries)
    # Starting a reader process costs about as much as reading a few regions: a small slide is read in
    # the main process instead.
    workers = params.num_workers if len(groups) >= MIN_REGIONS_FOR_WORKERS else 0
    loader = DataLoader(data, batch_size=None, shuffle=False, num_workers=workers,
                        prefetch_factor=4 if workers else None)
    yield from _batches(iter(loader), params.batch_size)


def _fill(feats: h5py.Dataset, slide_path, name: str, tiles: Tiles, encoder: Encoder, params: EmbedParams,
          logger: logging.Logger, progress_interval: float) -> None:
    """Embed the patches of ``tiles`` batch by batch into the preallocated dataset ``feats``."""
    cuda = encoder.device.type == "cuda"
    n = len(tiles.coords)
    bar = tqdm(total=n, unit="patch", desc=name, file=_LogStream(logger), mininterval=progress_interval,
               ascii=True, dynamic_ncols=False, ncols=100)
    done = 0
    # CUDA: nothing here waits on the batch just queued. The regrouped batch is pinned, so its transfer does
    # not wait for the forward passes before it, and each batch's features are copied back asynchronously;
    # batch k is written while batch k + 1 runs.
    pending: tuple[int, torch.Tensor, torch.cuda.Event | None] | None = None  # (offset, host features, copied)
    for batch in patch_batches(slide_path, name, tiles, params):
        out = encoder.encode(batch.pin_memory() if cuda else batch)
        host = _copy_to_host(out)
        if pending is not None:
            _store(feats, *pending)
        pending = (done, *host)
        done += len(batch)
        bar.update(len(batch))
    if pending is not None:
        _store(feats, *pending)
    bar.close()
    if done != n:
        raise RuntimeError(f"{slide_path}: embedded {done} patches but the coords file lists {n}")


def _copy_to_host(out: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event | None]:
    """Start copying features ``out`` (B, D) to host memory.

    Returns:
        The host tensor (B, D) and, for a CUDA ``out``, the event recorded after the asynchronous copy into
        pinned memory (the tensor is valid once it has completed); a CPU ``out`` is returned as it is, with None.
    """
    if out.device.type != "cuda":
        return out, None
    host = torch.empty(out.shape, dtype=out.dtype, pin_memory=True)
    host.copy_(out, non_blocking=True)
    copied = torch.cuda.Event()
    copied.record()
    return host, copied


def _store(feats: h5py.Dataset, offset: int, host: torch.Tensor, copied: torch.cuda.Event | None) -> None:
    """Write host features ``host`` (B, D) to rows ``offset:`` of ``feats`` once ``copied`` (if any) has completed."""
    if copied is not None:
        copied.synchronize()
    arr = host.numpy()
    feats[offset:offset + len(arr)] = arr


def embed_batch(jobs: Sequence[tuple[str, str | os.PathLike, str | os.PathLike, str | os.PathLike]], encoder: str,
                weights: str | os.PathLike | None, embed: dict[str, Any], device: str = "auto",
                threads: int = 2) -> dict[str, str]:
    """Embed a batch of slides with one encoder instance.

    The encoder is built once per batch (start-up dominates on small slides). On CPU it gets
    ``threads - num_workers`` threads (at least one); the readers the rest. A slide that fails (e.g. a
    tile that does not decode after the retries) gets a features file with no patches, status
    ``failed`` and the error, and the others go on (:func:`mustsurv.slides.batch.run_batch`).

    Args:
        jobs: (slide_id, slide file, coords file, features file to write) of each slide.
        encoder: the encoder's name.
        weights: its local weights file, or None.
        embed: the config's ``slides`` block (:class:`EmbedParams` keys).
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        threads: CPU threads of the job.

    Returns:
        ``{slide_id: error}`` of the slides that failed.

    Raises:
        KeyError: unknown encoder name.
        EncoderWeightsError: the encoder's weights file is missing or does not fit.
        RuntimeError: ``cuda`` is asked for but no CUDA device is visible.
    """
    params = EmbedParams.from_config(embed)
    dev = pick_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(max(1, threads - params.num_workers))
    log.info("encoder %s on %s (%d torch threads, %d reader workers, batch %d), %d slide(s)", encoder, dev,
             torch.get_num_threads(), params.num_workers, params.batch_size, len(jobs))
    model = build_encoder(encoder, weights, dev)
    by_id = {slide_id: (slide, coords, out) for slide_id, slide, coords, out in jobs}

    def one(slide_id: str) -> dict[str, Any]:
        slide, coords, out = by_id[slide_id]
        return embed_slide(slide, read_coords(coords), out, model, params)

    def failed(slide_id: str, error: str) -> None:
        embed_slide(by_id[slide_id][0], failed_tiles(slide_id, error), by_id[slide_id][2], model, params)

    return run_batch(list(by_id), one, f"embedding ({encoder})", failed)[1]
