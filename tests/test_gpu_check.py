"""``benchmarks/gpu_check.py`` on the CPU at its ``--smoke`` size: the JSON it writes holds what was
measured (every tile embedded, the right features, ratios and speed-ups computed from the timings), and a
missing package stops it with the wheels to carry."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    """The script as a module (it puts benchmarks/ and src/ on sys.path; restored afterwards)."""
    before = list(sys.path)
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path[:] = before


def test_smoke_run_writes_what_it_measured(gpu_check, tmp_path, monkeypatch, torch_one_thread):
    from mustsurv.slides.encoders import Encoder, get_spec
    from mustsurv.slides.reader import open_slide

    results, out, work = tmp_path / "results", tmp_path / "out", tmp_path / "work"
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--smoke", "--workdir", str(work), "--results-dir",
                                      str(results), "--out-dir", str(out), "--cpu-threads", "1"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main()
    assert exit_.value.code == 0
    written = results / "gpu_check_cpu_smoke.json"
    result = json.loads(written.read_text())
    assert (out / written.name).read_text() == written.read_text()  # the copy for $OUT
    assert result["complete"] and result["errors"] == {} and result["smoke"]

    # embedding: every tile of the 40x slide embedded once, by the project's path
    emb = result["embedding"]
    side = emb["slide"]["grid_side"]
    assert side**2 >= gpu_check.SMOKE["patches"]
    slide_path = work / emb["slide"]["name"]
    with open_slide(slide_path) as slide:
        assert slide.mpp == pytest.approx(0.25) and slide.magnification == 40
        assert list(slide.dimensions) == emb["slide"]["level0_px"] == [side * 448] * 2
        corner = cv2.resize(slide.read_region(0, 0, 0, 448, 448), (224, 224), interpolation=cv2.INTER_AREA)
    assert emb["end_to_end"]["patches"] == side**2
    with h5py.File(work / "features" / f"{slide_path.stem}.h5") as h5:
        features, coords = h5["features"][:], h5["coords"][:]
    assert features.shape == (side**2, 192) and np.isfinite(features).all()
    assert sorted(map(tuple, coords)) == [(x * 448, y * 448) for x in range(side) for y in range(side)]
    assert len(np.unique(features.round(4), axis=0)) > 1  # different patches, different features
    encoder = Encoder(get_spec("demo_vit"), None, torch.device("cpu"))
    expected = encoder.encode(torch.from_numpy(corner)[None]).numpy()[0]
    row = int(np.flatnonzero((coords == 0).all(axis=1))[0])
    np.testing.assert_allclose(features[row], expected, atol=1e-4)
    assert emb["ratio_to_bare"] == pytest.approx(emb["end_to_end"]["patches_per_s"]
                                                 / emb["bare_forward_patches_per_s"], abs=2e-3)
    assert emb["gflop_per_patch"] > 0

    # stage 2: every form timed on both devices; speed-ups from the timings
    for part in ("stage2_gpu", "stage2_cpu"):
        s2 = result[part]
        assert set(s2["seconds"]) == set(gpu_check.FORMS)
        for name, seconds in s2["seconds"].items():
            assert seconds == pytest.approx(min(s2["seconds_all_repeats"][name]), abs=1e-3)
            assert s2["seconds_per_patient"][name] == pytest.approx(seconds / s2["patients"], abs=6e-4 / s2["patients"])
        assert s2["seconds"][s2["fastest_form"]] == min(s2["seconds"].values())
        assert s2["speedup_fastest"] == pytest.approx(
            s2["seconds"][gpu_check.PAPER_FORM] / s2["seconds"][s2["fastest_form"]], rel=0.02)
    gpu, cpu = result["stage2_gpu"]["seconds_per_patient"], result["stage2_cpu"]["seconds_per_patient"]
    assert result["stage2_gpu_vs_cpu"]["gpu_vs_cpu_per_patient"] == {
        name: round(cpu[name] / gpu[name], 1) for name in gpu_check.FORMS}
    assert result["stage2_cpu"]["torch_threads"] == 1
    assert result["within_target"] == gpu_check.verdicts(result)
    assert set(result["within_target"]) == set(gpu_check.TARGETS)


def test_verdicts_compare_each_figure_with_its_target(gpu_check):
    def result(ratio, rate, gpu, cpu):
        return {"embedding": {"ratio_to_bare": ratio, "end_to_end": {"patches_per_s": rate}},
                "stage2_gpu": {"speedup_fastest": gpu}, "stage2_cpu": {"speedup_fastest": cpu}}

    assert all(gpu_check.verdicts(result(0.95, 1200.0, 6.0, 1.6)).values())
    assert not any(gpu_check.verdicts(result(0.85, 900.0, 4.0, 1.2)).values())
    assert gpu_check.verdicts({"stage2_cpu": {"speedup_fastest": 2.0}}) == {"stage2_speedup_cpu": True}
    assert gpu_check.verdicts({"embedding": {"bare_forward_before_after": [80.0]}}) == {}  # cut short


def test_a_failed_part_keeps_what_was_measured_and_the_others_run(gpu_check, tmp_path, monkeypatch,
                                                                  torch_one_thread):
    def broken(*args, **kwargs):
        raise RuntimeError("reader workers died")

    monkeypatch.setattr(gpu_check, "end_to_end", broken)
    saved = []
    cfg = {**gpu_check.SMOKE, "patches": 4, "gpu_patients": 2, "cpu_patients": 2, "cpu_threads": 1}
    result, errors = gpu_check.run_check(cfg, torch.device("cpu"), tmp_path, lambda r: saved.append(json.dumps(r)))
    assert errors == {"embedding": "RuntimeError: reader workers died"} == result["errors"]
    emb = result["embedding"]
    assert len(emb["bare_forward_before_after"]) == 1 and emb["gflop_per_patch"] > 0  # measured before the failure
    assert "end_to_end" not in emb and "embed_ratio_to_bare" not in result["within_target"]
    assert set(result["stage2_gpu"]["seconds"]) == set(result["stage2_cpu"]["seconds"]) == set(gpu_check.FORMS)
    assert len(saved) == 3 and "stage2_cpu" in json.loads(saved[-1])  # a partial JSON after each part


def test_only_the_parts_asked_for_run(gpu_check, tmp_path, torch_one_thread):
    cfg = {**gpu_check.SMOKE, "cpu_patients": 2, "cpu_threads": 1}
    result, errors = gpu_check.run_check(cfg, torch.device("cpu"), tmp_path, parts=("stage2_cpu",))
    assert errors == {} and result["parts"] == ["stage2_cpu"]
    assert "embedding" not in result and "stage2_gpu" not in result and "stage2_gpu_vs_cpu" not in result
    assert result["stage2_cpu"]["patients"] == 2 and result["within_target"].keys() == {"stage2_speedup_cpu"}


def test_missing_package_names_the_wheels_to_carry(gpu_check, monkeypatch):
    monkeypatch.setitem(gpu_check.REQUIRED, "no_such_module_mustsurv", ["no-such-wheel"])
    missing = gpu_check.missing_packages()
    assert list(missing) == ["no_such_module_mustsurv"]  # everything else imports here
    message = gpu_check.carry_message(missing)
    assert "no-such-wheel" in message and "benchmarks/gpu_wheels.txt" in message


def test_wheel_pins_cover_the_packages_the_gpu_image_lacks(gpu_check):
    pins = {line.split("==")[0] for line in (REPO / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()
            if line and not line.startswith("#")}
    assert {w for m in gpu_check.CARRIED for w in gpu_check.REQUIRED[m]} == pins
