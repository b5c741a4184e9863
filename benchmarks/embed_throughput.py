"""Embedding throughput: end-to-end patches/s (read + decode + resize + forward + write) vs the bare
encoder forward at the same batch size, and peak memory, on demo slides and one large synthetic slide.

    python benchmarks/embed_throughput.py                      # demo_vit on CPU, writes the JSON below
    python benchmarks/embed_throughput.py --encoder uni2_h     # on a GPU box (random weights: speed only)

The large slide (20x, >= --large-patches patches) is a periodic mosaic of tissue patches cut from a
rendered demo slide, written tile by tile (memory stays small). Peak memory (PSS) is sampled over the
benchmark process and its reader workers together.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil
import tifffile
import torch

from mustsurv.demo.plan import DemoSettings, make_plan
from mustsurv.demo.slides import APERIO_HEADER, TILE, write_slide
from mustsurv.slides.embed import EmbedParams, embed_slide, patch_batches
from mustsurv.slides.encoders import Encoder, get_spec, pick_device
from mustsurv.slides.reader import open_slide
from mustsurv.slides.tiling import TileParams, Tiles, tile_slide
from mustsurv.slides.tissue import SegmentParams, segment_slide

REPO = Path(__file__).resolve().parents[1]


class PeakRSS:
    """Samples the memory of this process plus its children (PSS, so pages shared after fork count once)
    every ``interval`` s; ``peak_mb`` when stopped."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_full_info().pss
            for child in me.children(recursive=True):
                try:
                    total += child.memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def demo_slides(workdir: Path, n: int) -> list[Path]:
    """The first ``n`` slides of demo cohort DEMO1 (seed 1), written as SVS into ``workdir``."""
    plan = make_plan("DEMO1", DemoSettings(seed=1))
    paths = []
    for spec in plan.slides[:n]:
        path = workdir / f"{spec.slide_id}.svs"
        if not path.exists():
            write_slide(plan, spec.slide_id, path)
        paths.append(path)
    return paths


def tissue_mosaic(source: Path, side: int) -> np.ndarray:
    """RGB uint8 (side*224, side*224, 3) mosaic of full-tissue 224-px patches of a 20x ``source`` slide."""
    with open_slide(source) as slide:
        tiles = tile_slide(slide, segment_slide(slide, SegmentParams()).polygons, TileParams(min_tissue_fraction=1.0))
        patches = [slide.read_region(x, y, 0, 224, 224) for x, y in tiles.coords]
    rows = [np.concatenate([patches[(r * side + c) % len(patches)] for c in range(side)], axis=1) for r in range(side)]
    return np.concatenate(rows, axis=0)


def write_large_slide(path: Path, texture: np.ndarray, width: int, height: int, mpp: float = 0.5) -> None:
    """An Aperio SVS of ``width`` x ``height`` px tiling ``texture`` periodically, written tile by tile.

    ``mpp`` is level 0's µm/px; the objective power written (``AppMag``) is 10 / ``mpp`` (20x at 0.5,
    40x at 0.25)."""
    levels = [(1, texture)] + [(f, cv2.resize(texture, None, fx=1 / f, fy=1 / f, interpolation=cv2.INTER_AREA))
                               for f in (4, 16)]

    def tiles(tex: np.ndarray, w: int, h: int):
        th, tw = tex.shape[:2]
        # the texture repeated to one tile beyond its period: every tile is a slice of it (no per-tile gather)
        wrapped = np.tile(tex, (math.ceil((th + TILE) / th), math.ceil((tw + TILE) / tw), 1))
        for y in range(0, h, TILE):
            for x in range(0, w, TILE):
                yield np.ascontiguousarray(wrapped[y % th:y % th + TILE, x % tw:x % tw + TILE])

    head = f"{APERIO_HEADER}\r\n{width}x{height} [0,0 {width}x{height}] ({TILE}x{TILE})"
    jpeg = dict(compression="jpeg", compressionargs={"level": 90}, photometric="rgb", metadata=None)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for i, (f, tex) in enumerate(levels):
            w, h = width // f, height // f
            desc = f"{head} JPEG/RGB Q=90|AppMag = {round(10 / mpp)}|MPP = {mpp:.4f}" if f == 1 else f"{head} -> {w}x{h} JPEG/RGB Q=90"
            tif.write(tiles(tex, w, h), shape=(h, w, 3), dtype=np.uint8, tile=(TILE, TILE), subfiletype=0,
                      description=desc, **jpeg)
            if i == 0:  # stripped thumbnail as page 1, as scanners write it
                small = levels[2][1]
                reps = (math.ceil(height / 16 / small.shape[0]), math.ceil(width / 16 / small.shape[1]), 1)
                thumb = np.tile(small, reps)[: height // 16, : width // 16]
                tif.write(thumb, description=f"{head} -> {thumb.shape[1]}x{thumb.shape[0]} - ", **jpeg)


def bare_forward(encoder: Encoder, batch_size: int, n_batches: int) -> float:
    """Patches/s of ``encoder.encode`` on a uint8 batch already on its device (after two warm-up batches)."""
    x = torch.randint(0, 256, (batch_size, 224, 224, 3), dtype=torch.uint8).to(encoder.device)
    for _ in range(2):
        encoder.encode(x)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n_batches):
        out = encoder.encode(x)
    out.cpu()
    return n_batches * batch_size / (time.perf_counter() - t)


def tile_all(slides: list[Path], params: EmbedParams) -> list[tuple[Path, Tiles]]:
    """Each slide with its patches at the tiling defaults (``params.region_patches`` per region side)."""
    work = []
    for path in slides:
        with open_slide(path) as slide:
            work.append((path, tile_slide(slide, segment_slide(slide, SegmentParams()).polygons, TileParams(
                region_patches=params.region_patches))))
    return work


def end_to_end(encoder: Encoder, slides: list[Path], params: EmbedParams, outdir: Path) -> dict:
    """Tile the slides (not timed), then embed them one by one (timed, like one job per slide)."""
    work = tile_all(slides, params)
    n = sum(len(t.coords) for _, t in work)
    with PeakRSS() as rss:
        t0 = time.perf_counter()
        for path, tiles in work:
            embed_slide(path, tiles, outdir / f"{path.stem}.h5", encoder, params)
        wall = time.perf_counter() - t0
    mags = sorted({int(t.attrs["magnification"]) for _, t in work})
    return {"slides": len(work), "magnifications": mags, "patches": n, "seconds": round(wall, 2),
            "patches_per_s": round(n / wall, 1), "peak_pss_mb": rss.peak_mb}


def readers_only(slides: list[Path], params: EmbedParams) -> dict:
    """Tile the slides (not timed), then read their patches in batches as embedding does, with no encoder (timed):
    the most patches/s the readers (``params.num_workers`` processes) can feed an encoder."""
    work = tile_all(slides, params)
    t0 = time.perf_counter()
    n = sum(len(batch) for path, tiles in work for batch in patch_batches(path, path.stem, tiles, params))
    wall = time.perf_counter() - t0
    return {"patches": n, "seconds": round(wall, 2), "patches_per_s": round(n / wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default="demo_vit")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="CPU: encoder gets threads - num_workers")
    ap.add_argument("--demo-slides", type=int, default=8)
    ap.add_argument("--large-patches", type=int, default=20000)
    ap.add_argument("--workdir", type=Path, default=None, help="where slides are written (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "embed_throughput.json")
    args = ap.parse_args()

    device = pick_device("auto")
    if device.type == "cpu":
        torch.set_num_threads(max(1, args.threads - args.num_workers))
    # random (seeded) weights: throughput does not depend on the weights' values
    encoder = Encoder(get_spec(args.encoder), None, device)
    params = EmbedParams(batch_size=args.batch_size, num_workers=args.num_workers)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "out").mkdir(exist_ok=True)
        demos = demo_slides(work, args.demo_slides)
        side = math.ceil(math.sqrt(args.large_patches * 1.02))
        large = work / "TCGA-LG-0001-01Z-00-DX1.svs"
        t = time.perf_counter()
        if not large.exists():
            source = next(p for p in demos if open_slide(p).magnification == 20)
            write_large_slide(large, tissue_mosaic(source, 10), side * 224, side * 224)
        write_s = time.perf_counter() - t

        bare = bare_forward(encoder, args.batch_size, n_batches=max(10, 2000 // args.batch_size))
        demo = end_to_end(encoder, demos, params, work / "out")
        big = end_to_end(encoder, [large], params, work / "out")
        bare_after = bare_forward(encoder, args.batch_size, n_batches=max(10, 2000 // args.batch_size))

    bare_mean = (bare + bare_after) / 2
    result = {
        "encoder": args.encoder,
        "weights": "seeded random (throughput only)",
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(0),
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "bare_forward_patches_per_s": round(bare_mean, 1),
        "bare_forward_before_after": [round(bare, 1), round(bare_after, 1)],
        "demo_slides": {**demo, "ratio_to_bare": round(demo["patches_per_s"] / bare_mean, 3)},
        "large_slide": {**big, "ratio_to_bare": round(big["patches_per_s"] / bare_mean, 3),
                        "level0_px": [side * 224, side * 224], "write_seconds": round(write_s, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
