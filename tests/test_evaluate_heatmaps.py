"""Heatmaps: cells land on their patches in the thumbnail; the gallery shows exactly the k extreme patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from slides_helpers import demo_image, write_slide

import mustsurv.evaluate.heatmaps as hm
from mustsurv.slides.reader import open_slide
from mustsurv.slides.tiling import TileParams, tile_slide
from mustsurv.slides.tissue import SegmentParams, segment_slide


def test_each_cell_lands_on_its_patch_position_coords_divided_by_downsample():
    rng = np.random.default_rng(0)
    step, ds, shape = 224, 16.0, (200, 300)
    xy = np.array([(x, y) for y in range(0, 2800, step) for x in range(0, 4400, step)])
    coords = xy[rng.permutation(len(xy))[:40]]
    values = rng.permutation(40).astype(float) + 1.0  # distinct
    cells = hm.patch_cells(coords, step, ds, shape)
    grid = hm.attention_map(values, cells, shape)
    for (x, y), v, (x0, y0, x1, y1) in zip(coords, values, cells):
        assert (x0, y0) == (int(x // ds), int(y // ds))  # the cell starts at coords ÷ downsample
        assert x1 - x0 == pytest.approx(step / ds, abs=1) and y1 - y0 == pytest.approx(step / ds, abs=1)
        assert grid[int((y + step / 2) / ds), int((x + step / 2) / ds)] == v  # its centre carries its value
    assert np.isnan(grid).sum() == grid.size - (cells[:, 2] - cells[:, 0]) @ (cells[:, 3] - cells[:, 1])


def test_smoothing_stays_inside_the_patches_and_keeps_a_constant_map():
    grid = np.full((50, 60), np.nan)
    grid[10:30, 10:40] = 0.3
    out = hm.smooth_map(grid, sigma=4)
    assert np.isnan(out[np.isnan(grid)]).all()
    np.testing.assert_allclose(out[10:30, 10:40], 0.3)  # no dilution by the background at the edges
    grid[10:30, 25:40] = 0.9
    out = hm.smooth_map(grid, sigma=4)
    assert 0.3 < out[20, 24] < 0.9  # the step is blurred


def test_percentiles_and_extremes():
    values = np.array([0.1, 0.5, 0.2, 0.9, 0.05, 0.3])
    np.testing.assert_allclose(hm.percentiles(values), [0.2, 0.8, 0.4, 1.0, 0.0, 0.6])
    top, bottom = hm.extremes(values, 2)
    assert list(top) == [3, 1] and list(bottom) == [4, 0]


@pytest.fixture(scope="module")
def slide_and_tiles(tmp_path_factory):
    d = tmp_path_factory.mktemp("heat")
    path = write_slide(d / "TCGA-AA-0001-01Z-00-DX1.svs", demo_image(2000, 1400, 20), mpp=0.5, magnification=20)
    with open_slide(path) as s:
        tiles = tile_slide(s, segment_slide(s, SegmentParams()).polygons, TileParams(region_patches=2))
    return path, tiles


def test_slide_gallery_shows_exactly_the_k_highest_and_lowest_patches(slide_and_tiles, tmp_path, monkeypatch):
    path, tiles = slide_and_tiles
    coords, step = tiles.coords, float(tiles.attrs["patch_size_level0"])
    n, k = len(coords), 3
    assert n >= 2 * k
    attention = np.random.default_rng(1).dirichlet(np.ones(n))
    shown = {}
    real = hm._render_gallery

    def capture(top, bottom, tv, bv, title, out):
        shown.update(top=top, bottom=bottom, tv=tv, bv=bv)
        real(top, bottom, tv, bv, title, out)

    monkeypatch.setattr(hm, "_render_gallery", capture)
    files = hm.slide_heatmap(path, path.stem, coords, step, attention, tmp_path, k, "t")
    assert all((tmp_path / f).is_file() for f in files.values())
    order = np.argsort(attention)
    tsv = pd.read_csv(tmp_path / files["patches"], sep="\t")
    assert list(tsv.loc[tsv.kind == "top", "patch"]) == list(order[::-1][:k])
    assert list(tsv.loc[tsv.kind == "bottom", "patch"]) == list(order[:k])
    np.testing.assert_allclose(shown["tv"], attention[order[::-1][:k]])
    np.testing.assert_allclose(shown["bv"], attention[order[:k]])
    # the pictures are those patches' pixels, cut from the slide at their coordinates
    with open_slide(path) as s:
        for crops, idx in ((shown["top"], order[::-1][:k]), (shown["bottom"], order[:k])):
            for crop, i in zip(crops, idx):
                ref = s.read_region(int(coords[i, 0]), int(coords[i, 1]), 0, int(step), int(step))
                ref = hm.cv2.resize(ref, (hm.GALLERY_PX, hm.GALLERY_PX), interpolation=hm.cv2.INTER_AREA)
                np.testing.assert_array_equal(crop, ref)


def test_slide_heatmap_paints_each_patch_at_its_thumbnail_position(slide_and_tiles, tmp_path, monkeypatch):
    path, tiles = slide_and_tiles
    coords, step = tiles.coords, float(tiles.attrs["patch_size_level0"])
    attention = np.arange(len(coords), dtype=float) + 1.0
    seen = {}
    monkeypatch.setattr(hm, "_render_heatmap", lambda thumb, grid, title, out: seen.update(thumb=thumb, grid=grid))
    monkeypatch.setattr(hm, "smooth_map", lambda grid, sigma: grid)  # look at the unsmoothed cells
    hm.slide_heatmap(path, path.stem, coords, step, attention, tmp_path, 2, "t")
    with open_slide(path) as s:
        w0, h0 = s.dimensions
        thumb, ds = s.thumbnail(max(w0, h0) * s.mpp / hm.THUMBNAIL_SIDE)
    assert seen["thumb"].shape == thumb.shape
    pct = hm.percentiles(attention)
    for (x, y), p in zip(coords, pct):
        assert seen["grid"][int((y + step / 2) / ds), int((x + step / 2) / ds)] == pytest.approx(p)


def test_cohort_heatmaps_scores_each_test_patient_with_its_fold_model(slide_and_tiles, tmp_path):
    """Two folds, one test patient each; index, files and the report sample are written."""
    import h5py

    from mustsurv.cohort.splits import write_fold
    from mustsurv.models.registry import build_model
    from mustsurv.train.trainer import save_checkpoint

    path, tiles = slide_and_tiles
    n = len(tiles.coords)
    slides, rows, summary = {}, [], []
    for i, pid in enumerate(["TCGA-AA-0001", "TCGA-AA-0002"]):
        sid = f"{pid}-01Z-00-DX1"
        slides[sid] = str(path)
        feats = tmp_path / f"{sid}.h5"
        with h5py.File(feats, "w") as h5:
            h5.create_dataset("features", data=np.random.default_rng(i).normal(size=(n, 8)).astype(np.float32))
            h5.create_dataset("coords", data=tiles.coords).attrs["patch_size_level0"] = tiles.attrs["patch_size_level0"]
        rows.append({"patient_id": pid, "time": 10.0 + i, "event": 1, "has_pathology": 1, "has_genomics": 0,
                     "slides": sid})
        summary.append({"slide_id": sid, "patient_id": pid, "status": "ok", "n_patches": n, "level0_mpp": 0.5,
                        "magnification": 20, "features": str(feats)})
    pd.DataFrame(rows).to_csv(tmp_path / "cohort.tsv", sep="\t", index=False)
    pd.DataFrame(summary).to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    folds = []
    for k in range(2):
        torch.manual_seed(k)
        kwargs = {"pathology_dim": 8, "hidden_dim": 8, "attn_dim": 4, "head_dim": 4}
        model = build_model("abmil", **kwargs)
        ckpt = tmp_path / f"model{k}.pt"
        save_checkpoint(ckpt, model, "abmil", kwargs, {})
        split = tmp_path / f"fold{k}.json"
        test = [rows[k]["patient_id"]]
        write_fold(split, {"fold": k, "train": [rows[1 - k]["patient_id"]], "validation": [], "test": test,
                           "bin_edges": [0.0, 1e9]})
        folds.append((str(split), str(ckpt)))
    out = tmp_path / "heatmaps" / "C" / "abmil"
    index = hm.cohort_heatmaps("abmil", folds, str(tmp_path / "cohort.tsv"), str(tmp_path / "summary.tsv"), slides,
                               out, k=2, sample=1)
    assert list(index["fold"]) == [0, 1] and list(index["patient_id"]) == ["TCGA-AA-0001", "TCGA-AA-0002"]
    assert (out / "index.tsv").is_file() and not out.with_name("abmil.tmp").exists()
    assert len(list((out / "sample").glob("*.png"))) == 2
    # patient 2's weights come from fold 1's model, not fold 0's
    from mustsurv.train.trainer import load_checkpoint

    bag = torch.from_numpy(hm.read_patches(summary[1]["features"])[0])
    expected = load_checkpoint(folds[1][1])[0].patch_attention(bag).numpy()
    tsv = pd.read_csv(out / "TCGA-AA-0002-01Z-00-DX1_patches.tsv", sep="\t")
    np.testing.assert_allclose(tsv.loc[tsv.kind == "top", "attention"], np.sort(expected)[::-1][:2], rtol=1e-5)


def test_design_plans_heatmaps_for_cohorts_with_slides_and_methods_with_attention():
    from mustsurv.config import load_config
    from mustsurv.study import layout
    from mustsurv.study.design import StudyDesign

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    config["methods"] = ["mlp", "transmil", "must", "snn"]
    study = StudyDesign(config)
    assert study.heatmap_methods() == ["transmil", "must"]
    assert study.heatmap_targets() == [layout.heatmaps_dir(c, m) for c in ("DEMO1", "DEMO2")
                                       for m in ("transmil", "must")]
    inputs = study.heatmap_inputs("DEMO1", "must")
    assert inputs["models"] == [layout.must_checkpoint("DEMO1", "must", k, 3) for k in study.folds]
    assert study.heatmap_inputs("DEMO1", "transmil")["models"][0] == layout.baseline_model("DEMO1", "transmil", 0)
    assert len(inputs["slides"]) == len(study.slides("DEMO1"))
    # the report's QC sample: report_qc slides spread over the ids, first and last included
    ids = sorted(study.slides("DEMO1"))
    shown = study.report_qc_slides("DEMO1")
    assert len(shown) == config["slides"]["report_qc"] and {ids[0], ids[-1]} <= shown
    config["slides"]["report_qc"] = 0
    assert StudyDesign(config).report_qc_slides("DEMO1") == set()
