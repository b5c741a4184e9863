"""Embedding: region reads equal per-patch reads, TRIDENT layout, empty masks, failures, summaries."""

from __future__ import annotations

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from slides_helpers import corrupt_tile, demo_image, write_slide

import mustsurv.slides.embed as embed_module
from mustsurv.config import ConfigError, check_config, fill_defaults
from mustsurv.slides.embed import EmbedParams, _batches, embed_slide, region_groups
from mustsurv.slides.encoders import build_encoder
from mustsurv.slides.reader import SlideError, open_slide
from mustsurv.slides.steps import summary_step
from mustsurv.slides.summary import (
    FeatureFileError,
    build_summary,
    feature_file_info,
    read_summary,
)
from mustsurv.slides.tiling import TileParams, Tiles, tile_slide
from mustsurv.slides.tissue import SegmentParams, segment_slide

TRIDENT_ATTRS = ("encoder", "patch_size", "patch_size_level0", "target_mpp", "level0_mpp", "read_level",
                 "level0_width", "level0_height", "name")


@pytest.fixture(scope="module")
def encoder():
    torch.set_num_threads(1)
    return build_encoder("demo_vit")


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    d = tmp_path_factory.mktemp("embed")
    s20 = write_slide(d / "TCGA-AA-0001-01Z-00-DX1.svs", demo_image(1500, 1000, 20), mpp=0.5, magnification=20)
    s40 = write_slide(d / "TCGA-AA-0002-01Z-00-DX1.svs", demo_image(3000, 2000, 40, seed=8), mpp=0.25,
                      magnification=40)
    return {p.stem: p for p in (s20, s40)}


def tiles_of(path, region_patches=2) -> Tiles:
    with open_slide(path) as slide:
        return tile_slide(slide, segment_slide(slide, SegmentParams()).polygons,
                          TileParams(region_patches=region_patches))


def test_region_groups_follow_blocks():
    step = 10
    coords = np.array([[0, 0], [10, 0], [0, 10], [20, 0], [30, 10], [0, 20]]) * 1
    assert region_groups(coords, step, 2) == [(0, 3), (3, 5), (5, 6)]
    assert region_groups(np.zeros((0, 2), np.int64), step, 2) == []


def test_batches_regroup_pieces():
    pieces = [torch.full((n, 1), i) for i, n in enumerate([3, 5, 1, 4])]
    out = list(_batches(iter(pieces), 4))
    assert [len(b) for b in out] == [4, 4, 4, 1]
    torch.testing.assert_close(torch.cat(out), torch.cat(pieces))


@pytest.mark.parametrize("workers", [0, 1])
def test_features_equal_per_patch_reads_in_trident_layout(slides, encoder, tmp_path, workers, monkeypatch):
    """Regions cut into patches (and 448 -> 224 area-downsampled at 40x) give the per-patch features,
    read in the main process or by a worker (forced here: these small slides have few regions)."""
    monkeypatch.setattr(embed_module, "MIN_REGIONS_FOR_WORKERS", 1)
    for sid, path in slides.items():
        tiles = tiles_of(path)
        out = tmp_path / f"{sid}.h5"
        embed_slide(path, tiles, out, encoder, EmbedParams(batch_size=7, num_workers=workers, region_patches=2))
        S = tiles.attrs["read_size"]
        with open_slide(path) as slide:
            ref_patches = [slide.read_region(x, y, 0, S, S) for x, y in tiles.coords]
        ref_patches = [p if S == 224 else cv2.resize(p, (224, 224), interpolation=cv2.INTER_AREA)
                       for p in ref_patches]
        ref = encoder.encode(torch.from_numpy(np.stack(ref_patches))).numpy()
        with h5py.File(out) as h5:
            feats = h5["features"][:]
            assert feats.dtype == np.float32 and feats.shape == (len(tiles.coords), 192)
            np.testing.assert_array_equal(h5["coords"][:], tiles.coords)
            assert h5["coords"].dtype == np.int64
            for key in TRIDENT_ATTRS:
                assert key in h5.attrs and key in h5["coords"].attrs
            assert h5.attrs["encoder"] == "demo_vit" and h5.attrs["status"] == "ok"
            assert h5.attrs["patch_size_level0"] == (224 if sid.endswith("0001-01Z-00-DX1") else 448)
        np.testing.assert_allclose(feats, ref, rtol=1e-4, atol=1e-4)
        assert not list(tmp_path.glob(".*tmp*"))


def test_empty_mask_writes_empty_file_without_building_the_model(slides, tmp_path):
    enc = build_encoder("demo_vit")
    path = slides["TCGA-AA-0001-01Z-00-DX1"]
    with open_slide(path) as slide:
        empty = tile_slide(slide, [], TileParams())
    embed_slide(path, empty, tmp_path / "e.h5", enc, EmbedParams())
    assert enc._model is None
    info = feature_file_info(tmp_path / "e.h5")
    assert info["status"] == "empty_mask" and info["n_patches"] == 0 and info["dim"] == 192


def test_bad_slide_fails_with_its_name_and_others_keep_their_output(slides, encoder, tmp_path):
    good = slides["TCGA-AA-0001-01Z-00-DX1"]
    bad = write_slide(tmp_path / "TCGA-AA-0003-01Z-00-DX1.svs", demo_image(1500, 1000, 20), mpp=0.5)
    tiles = tiles_of(good)
    embed_slide(good, tiles, tmp_path / "good.h5", encoder, EmbedParams(num_workers=1))
    before = (tmp_path / "good.h5").read_bytes()
    with tmp_path.joinpath("bad.h5").open("w") as fh:  # an older finished output must survive a failed rerun
        fh.write("old")
    # corrupt every level-0 tile under the kept patches
    with open_slide(bad) as slide:
        bad_tiles = tile_slide(slide, segment_slide(slide, SegmentParams()).polygons, TileParams())
    for tile in {int(y // 240) * (1500 // 240 + 1) + int(x // 240) for x, y in bad_tiles.coords}:
        corrupt_tile(bad, tile)
    with pytest.raises(SlideError, match=r"TCGA-AA-0003-01Z-00-DX1\.svs.*failed to decode after"):
        embed_slide(bad, bad_tiles, tmp_path / "bad.h5", encoder, EmbedParams(num_workers=1, read_retries=1))
    assert (tmp_path / "bad.h5").read_text() == "old"
    assert (tmp_path / "good.h5").read_bytes() == before
    assert not list(tmp_path.glob(".*tmp*"))


def trident_file(path, n=5, dim=8, attrs_on_coords=True):
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32))
        c = h5.create_dataset("coords", data=np.arange(2 * n).reshape(n, 2).astype(np.int64))
        if attrs_on_coords:
            c.attrs.update({"patch_size_level0": 448, "level0_magnification": 40, "name": path.stem})
    return path


def test_summary_from_workflow_and_precomputed_files(slides, encoder, tmp_path):
    sid = "TCGA-AA-0001-01Z-00-DX1"
    embed_slide(slides[sid], tiles_of(slides[sid]), tmp_path / f"{sid}.h5", encoder, EmbedParams())
    empty_id = "TCGA-AA-0009-01Z-00-DX1"
    with open_slide(slides[sid]) as slide:
        embed_slide(slides[sid], tile_slide(slide, [], TileParams()), tmp_path / f"{empty_id}.h5", encoder,
                    EmbedParams())
    pre = trident_file(tmp_path / "TCGA-BB-0001-01Z-00-DX1.UUID.h5")
    files = {sid: str(tmp_path / f"{sid}.h5"), empty_id: str(tmp_path / f"{empty_id}.h5")}
    summary_step(files, {sid: "PATIENT-X"}, tmp_path / "summary.tsv")
    summary_step({pre.stem: str(pre)}, None, tmp_path / "summary_pre.tsv")  # another cohort: another encoder
    df = pd.concat([read_summary(tmp_path / "summary.tsv"), read_summary(tmp_path / "summary_pre.tsv")])
    df = df.set_index("slide_id")
    assert list(df.reset_index().columns) == ["slide_id", "patient_id", "status", "n_patches", "level0_mpp",
                                              "magnification", "features", "usable"]
    assert df.loc[sid, "patient_id"] == "PATIENT-X" and df.loc[sid, "status"] == "ok"
    assert df.loc[sid, "level0_mpp"] == pytest.approx(0.5) and df.loc[sid, "magnification"] == 20
    assert df.loc[empty_id, "status"] == "empty_mask" and df.loc[empty_id, "n_patches"] == 0
    assert df.loc[pre.stem, "patient_id"] == "TCGA-BB-0001" and df.loc[pre.stem, "n_patches"] == 5
    assert df.loc[pre.stem, "magnification"] == 40 and np.isnan(df.loc[pre.stem, "level0_mpp"])
    assert df.loc[pre.stem, "features"] == str(pre)


def test_unreadable_precomputed_files_are_named(tmp_path):
    garbage = tmp_path / "TCGA-CC-0001.h5"
    garbage.write_bytes(b"\x89HDF\r\n" + b"junk" * 50)
    with pytest.raises(FeatureFileError, match=r"TCGA-CC-0001\.h5: unreadable HDF5 file.*re-export it"):
        build_summary({"TCGA-CC-0001": str(garbage)})
    nofeat = tmp_path / "nofeat.h5"
    with h5py.File(nofeat, "w") as h5:
        h5.create_dataset("coords", data=np.zeros((3, 2)))
    with pytest.raises(FeatureFileError, match=r"nofeat\.h5: no `features` dataset"):
        feature_file_info(nofeat)
    mismatch = tmp_path / "mismatch.h5"
    with h5py.File(mismatch, "w") as h5:
        h5.create_dataset("features", data=np.zeros((3, 4)))
        h5.create_dataset("coords", data=np.zeros((2, 2)))
    with pytest.raises(FeatureFileError, match=r"mismatch\.h5: `coords` has shape"):
        feature_file_info(mismatch)


def test_features_dir_is_a_pathology_modality_in_the_config(tmp_path):
    clinical = tmp_path / "clinical.tsv"
    clinical.write_text("x\n")
    cfg = fill_defaults({"cohorts": {"C": {"clinical": str(clinical), "features_dir": str(tmp_path)}}})
    check_config(cfg)
    cfg["cohorts"]["C"]["features_dir"] = str(tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"cohorts\.C\.features_dir: folder .*absent.* does not exist"):
        check_config(cfg)


def test_regions_at_a_reduced_pyramid_level(slides, encoder, tmp_path):
    """At 1.0 um/px a 0.25 um/px slide is read from its 4x-reduced level; regions match per-patch reads."""
    path = slides["TCGA-AA-0002-01Z-00-DX1"]
    with open_slide(path) as slide:
        tiles = tile_slide(slide, segment_slide(slide, SegmentParams()).polygons,
                           TileParams(target_mpp=1.0, min_tissue_fraction=0.2, region_patches=4))
        ref = np.stack([slide.read_region(x, y, 1, 224, 224) for x, y in tiles.coords])
    assert tiles.attrs["read_level"] == 1 and tiles.attrs["patch_size_level0"] == 896 and len(tiles.coords) >= 2
    embed_slide(path, tiles, tmp_path / "l1.h5", encoder, EmbedParams(batch_size=4, num_workers=0, region_patches=4))
    with h5py.File(tmp_path / "l1.h5") as h5:
        np.testing.assert_allclose(h5["features"][:], encoder.encode(torch.from_numpy(ref)).numpy(), rtol=1e-4,
                                   atol=1e-4)
