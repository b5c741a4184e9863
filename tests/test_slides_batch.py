"""Batches of slides: a slide that fails gets failure outputs, the others finish, the summary names it."""

from __future__ import annotations

import errno
import json
from dataclasses import asdict

import h5py
import pytest
from slides_helpers import corrupt_tile, demo_image, write_slide

from mustsurv.slides.batch import run_batch
from mustsurv.slides.embed import EmbedParams, embed_batch
from mustsurv.slides.steps import SlideFailedError, patch_batch, summary_step
from mustsurv.slides.summary import read_summary
from mustsurv.slides.tiling import TileParams, read_coords
from mustsurv.slides.tissue import SegmentParams

# config blocks as the schema fills them (every key present)
SEG = asdict(SegmentParams())
TILING = asdict(TileParams(region_patches=4))


def embed_block(**changes):
    return asdict(EmbedParams(batch_size=16, num_workers=0, **changes))


def test_run_batch_runs_every_slide_and_records_the_failures():
    seen, failed = [], []

    def step(slide_id):
        seen.append(slide_id)
        if slide_id in ("b", "d"):
            raise ValueError(f"cannot read {slide_id}")
        return slide_id.upper()

    results, failures = run_batch(["a", "b", "c", "d"], step, "step", lambda s, msg: failed.append((s, msg)))
    assert seen == ["a", "b", "c", "d"] and results == {"a": "A", "c": "C"}
    assert failures == {"b": "ValueError: cannot read b", "d": "ValueError: cannot read d"}
    assert failed == list(failures.items())

    def broken(slide_id, msg):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):  # failing to record a failure fails the job
        run_batch(["b"], step, "step", broken)


def test_a_full_disk_fails_the_batch_instead_of_marking_the_slide_failed():
    """ENOSPC is the machine's fault: recorded as a failed slide, the rerun would keep the slide out."""
    failed = []

    def step(slide_id):
        if slide_id == "b":
            raise OSError(errno.ENOSPC, "No space left on device")
        return slide_id

    with pytest.raises(OSError, match="No space left"):
        run_batch(["a", "b", "c"], step, "step", lambda s, msg: failed.append(s))
    assert failed == []


def test_a_truncated_slide_gets_failed_outputs_and_the_summary_names_it(tmp_path):
    good = write_slide(tmp_path / "TCGA-AA-0001-01Z-00-DX1.svs", demo_image(1500, 1000, 20), mpp=0.5)
    data = write_slide(tmp_path / "full.svs", demo_image(1500, 1000, 20, seed=3), mpp=0.5).read_bytes()
    bad = tmp_path / "TCGA-AA-0002-01Z-00-DX1.svs"
    bad.write_bytes(data[: len(data) // 3])
    slides = {bad.stem: bad, good.stem: good}
    outputs = {s: {k: tmp_path / "out" / f"{s}.{k}" for k in ("geojson", "qc", "coords")} for s in slides}
    failures = patch_batch(slides, None, outputs, SEG, TILING, retries=0)
    assert list(failures) == [bad.stem] and "SlideError" in failures[bad.stem]
    assert all(p.exists() for o in outputs.values() for p in o.values())  # every output, failed or not
    assert len(read_coords(outputs[good.stem]["coords"]).coords) > 0
    bad_tiles = read_coords(outputs[bad.stem]["coords"])
    assert len(bad_tiles.coords) == 0 and bad_tiles.attrs["status"] == "failed"
    assert json.loads(outputs[bad.stem]["geojson"].read_text())["properties"]["status"] == "failed"
    # the embedding carries the failure on; the summary stops the run naming the slide, or skips it
    jobs = [(s, slides[s], outputs[s]["coords"], tmp_path / f"{s}.h5") for s in slides]
    assert embed_batch(jobs, "demo_vit", None, embed_block(), "cpu", threads=1) == {}
    features = {s: str(out) for s, _, _, out in jobs}
    with pytest.raises(SlideFailedError, match=r"(?s)TCGA-AA-0002-01Z-00-DX1: SlideError.*skip_failed") as err:
        summary_step(features, None, tmp_path / "summary.tsv")
    assert "TCGA-AA-0001" not in str(err.value) and not (tmp_path / "summary.tsv").exists()
    summary_step(features, None, tmp_path / "summary.tsv", skip_failed=True)
    table = read_summary(tmp_path / "summary.tsv").set_index("slide_id")
    assert table.loc[bad.stem, "status"] == "failed" and table.loc[bad.stem, "n_patches"] == 0
    assert table.loc[good.stem, "status"] == "ok" and table.loc[good.stem, "n_patches"] > 0


def test_an_undecodable_tile_fails_only_its_slide_at_embedding(tmp_path):
    a = write_slide(tmp_path / "TCGA-AA-0001-01Z-00-DX1.svs", demo_image(1500, 1000, 20), mpp=0.5)
    b = write_slide(tmp_path / "TCGA-AA-0003-01Z-00-DX1.svs", demo_image(1500, 1000, 20, seed=5), mpp=0.5)
    slides = {a.stem: a, b.stem: b}
    outputs = {s: {k: tmp_path / f"{s}.{k}" for k in ("geojson", "qc", "coords")} for s in slides}
    assert patch_batch(slides, None, outputs, SEG, TILING) == {}
    for tile in range(40):  # corrupt every level-0 tile of slide b (after tiling read its thumbnail)
        try:
            corrupt_tile(b, tile)
        except IndexError:
            break
    jobs = [(s, slides[s], outputs[s]["coords"], tmp_path / f"{s}.h5") for s in slides]
    failures = embed_batch(jobs, "demo_vit", None, embed_block(read_retries=0), "cpu", threads=1)
    assert list(failures) == [b.stem] and "failed to decode" in failures[b.stem]
    with h5py.File(tmp_path / f"{a.stem}.h5") as h5:
        assert h5["features"].shape[0] > 0 and h5.attrs["status"] == "ok"
    with h5py.File(tmp_path / f"{b.stem}.h5") as h5:
        assert h5["features"].shape[0] == 0 and h5.attrs["status"] == "failed" and "decode" in h5.attrs["error"]
def test_embed_batch_builds_one_encoder_for_all_slides(tmp_path):
    a = write_slide(tmp_path / "TCGA-AA-0001-01Z-00-DX1.svs", demo_image(1500, 1000, 20), mpp=0.5)
    b = write_slide(tmp_path / "TCGA-AA-0002-01Z-00-DX1.svs", demo_image(3000, 2000, 40, seed=8), mpp=0.25,
                    magnification=40)
    slides = {a.stem: a, b.stem: b}
    outputs = {s: {k: tmp_path / f"{s}.{k}" for k in ("geojson", "qc", "coords")} for s in slides}
    assert patch_batch(slides, None, outputs, SEG, TILING) == {}
    counts = {s: len(read_coords(outputs[s]["coords"]).coords) for s in slides}
    jobs = [(s, slides[s], outputs[s]["coords"], tmp_path / f"{s}.h5") for s in slides]
    assert embed_batch(jobs, "demo_vit", None, embed_block(), "cpu", threads=1) == {}
    for s, _, _, out in jobs:
        with h5py.File(out) as h5:
            assert h5["features"].shape == (counts[s], 192) and h5.attrs["encoder"] == "demo_vit"
            # 20x and 40x slides: patches cover the same physical size (224 px at 0.5 um/px).
            assert h5["coords"].attrs["patch_size_level0"] * h5.attrs["level0_mpp"] == pytest.approx(112, rel=0.02)
