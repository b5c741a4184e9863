"""Feature provenance: what our, TRIDENT's and CLAM's files record, and the cohort-level agreement check."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest
import torch
from slides_helpers import demo_image, write_slide

from mustsurv.slides.embed import EmbedParams, embed_slide
from mustsurv.slides.encoders import RANDOM_INIT, build_encoder
from mustsurv.slides.provenance import (
    FIELDS,
    ProvenanceError,
    cohort_provenance,
    read_provenance,
)
from mustsurv.slides.reader import open_slide
from mustsurv.slides.steps import summary_step
from mustsurv.slides.tiling import TileParams, tile_slide
from mustsurv.slides.tissue import SegmentParams, segment_slide


def _ours(path, dim=8, encoder="uni2_h", mpp=0.5, patch_size=224, sha="ab" * 32, n=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=np.zeros((n, dim), np.float32))
        h5.create_dataset("coords", data=np.zeros((n, 2), np.int64))
        for obj in (h5, h5["coords"]):
            obj.attrs.update({"encoder": encoder, "embed_dim": dim, "target_mpp": mpp, "patch_size": patch_size,
                              "weights_sha256": sha, "status": "ok"})
    return path


def _trident(path, dim=8, mag=20, patch_size=256, n=3):
    """TRIDENT's layout: name/savetodir on `features`, the patching attributes on `coords`, encoder in the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=np.zeros((n, dim), np.float32)).attrs.update(
            {"name": path.stem, "savetodir": str(path.parent)})
        h5.create_dataset("coords", data=np.zeros((n, 2), np.int64)).attrs.update(
            {"patch_size": patch_size, "patch_size_level0": patch_size * 2, "level0_magnification": 40,
             "target_magnification": mag, "overlap": 0, "name": path.stem, "savetodir": str(path.parent)})
    return path


def _clam(path, dim=8, n=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=np.zeros((n, dim), np.float32))
        h5.create_dataset("coords", data=np.zeros((n, 2), np.int64)).attrs.update({"patch_level": 0, "patch_size": 256})
    return path


def test_our_embedding_records_every_field(tmp_path):
    torch.set_num_threads(1)
    slide = write_slide(tmp_path / "TCGA-AA-0001-01Z-00-DX1.svs", demo_image(1200, 800, 20), mpp=0.5, magnification=20)
    with open_slide(slide) as s:
        tiles = tile_slide(s, segment_slide(s, SegmentParams()).polygons, TileParams(region_patches=2))
    out = tmp_path / "f.h5"
    embed_slide(slide, tiles, out, build_encoder("demo_vit"), EmbedParams(batch_size=8, num_workers=0))
    info = read_provenance(out)
    assert info["missing"] == [] and info["format"] == "mustsurv"
    assert (info["encoder"], info["dim"], info["mpp"], info["patch_size"]) == ("demo_vit", 192, 0.5, 224)
    assert info["weights_sha256"] == RANDOM_INIT  # the seeded demo encoder says so, no fake hash


def test_trident_file_reads_magnification_and_folder_encoder_and_reports_the_rest_missing(tmp_path):
    info = read_provenance(_trident(tmp_path / "features_conch_v15" / "S1.h5", dim=768, mag=20, patch_size=512))
    assert info["format"] == "trident" and info["encoder"] == "conch_v15"
    assert (info["dim"], info["magnification"], info["patch_size"], info["mpp"]) == (768, 20.0, 512, None)
    assert info["missing"] == ["weights_sha256"]  # MPP is not needed when the magnification is stated
    other = read_provenance(_trident(tmp_path / "feats" / "S1.h5"))
    assert other["encoder"] is None and "encoder" in other["missing"]  # not guessed from an unrelated folder


def test_clam_file_reports_missing_fields(tmp_path):
    info = read_provenance(_clam(tmp_path / "S1.h5"))
    assert info["format"] == "clam" and info["patch_size"] == 256
    assert set(info["missing"]) == {"encoder", "mpp", "magnification", "weights_sha256"}


def test_cohort_agreeing_files_give_their_common_provenance(tmp_path, caplog):
    files = {f"S{i}": str(_trident(tmp_path / "features_uni_v1" / f"S{i}.h5")) for i in range(3)}
    with caplog.at_level(logging.WARNING):
        prov = cohort_provenance(files, "BLCA")
    assert prov["encoder"] == "uni_v1" and prov["magnification"] == 20.0 and prov["n_files"] == 3
    assert prov["weights_sha256"] is None and prov["missing"] == {"weights_sha256": 3}
    assert "do not record weights_sha256" in caplog.text and "not guessed" in caplog.text


@pytest.mark.parametrize("field,odd", [("encoder", {"encoder": "virchow2"}), ("dim", {"dim": 16}),
                                       ("mpp", {"mpp": 0.25}), ("patch_size", {"patch_size": 256}),
                                       ("weights_sha256", {"sha": "cd" * 32})])
def test_cohort_disagreement_fails_naming_the_files(tmp_path, field, odd):
    files = {f"S{i}": str(_ours(tmp_path / f"S{i}.h5")) for i in range(3)}
    files["ODD"] = str(_ours(tmp_path / "ODD.h5", **odd))
    with pytest.raises(ProvenanceError, match=rf"cohort C: feature files disagree on {field}.*ODD\.h5"):
        cohort_provenance(files, "C")


def test_mpp_within_tolerance_agrees_and_failed_files_are_not_compared(tmp_path):
    files = {"A": str(_ours(tmp_path / "A.h5", mpp=0.5)), "B": str(_ours(tmp_path / "B.h5", mpp=0.503))}
    failed = tmp_path / "F.h5"
    with h5py.File(failed, "w") as h5:  # a failed slide: no patches, none of the attributes
        h5.create_dataset("features", data=np.zeros((0, 192), np.float32))
        h5.attrs.update({"status": "failed", "error": "boom"})
    files["F"] = str(failed)
    prov = cohort_provenance(files)
    assert prov["mpp"] == 0.5 and prov["n_files"] == 2 and prov["missing"] == {}
    assert set(prov) >= set(FIELDS)


def test_summary_step_checks_provenance_and_writes_it(tmp_path):
    files = {f"TCGA-AA-000{i}-01Z-00-DX1": str(_ours(tmp_path / f"S{i}.h5")) for i in range(2)}
    out, prov_out = tmp_path / "summary.tsv", tmp_path / "provenance.json"
    summary_step(files, None, out, provenance_out=prov_out, cohort="C")
    assert json.loads(prov_out.read_text())["encoder"] == "uni2_h"
    files["TCGA-AA-0009-01Z-00-DX1"] = str(_ours(tmp_path / "S9.h5", encoder="uni_v1"))
    out2 = tmp_path / "summary2.tsv"
    with pytest.raises(ProvenanceError, match="S9.h5"):
        summary_step(files, None, out2, provenance_out=tmp_path / "p2.json", cohort="C")
    assert not out2.exists()  # nothing written before training can start on mixed features
