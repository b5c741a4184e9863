"""GPU check (issue 21, item 4), one command on the GPU machine: the UNI2-h architecture's embedding
throughput end to end vs the bare forward (bf16) on a >= 20k-patch 40x slide, and one MUST stage-2 epoch at
paper width on the GPU vs the CPU.

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out-dir $OUT    # GPU machine, about 2-4 minutes
    python benchmarks/gpu_check.py --smoke                                # any CPU, seconds (demo_vit, tiny)

What it does, with nothing outside the working tree (``src/`` is put on ``sys.path``; no install):

1. Embedding. A 40x (0.25 µm/px) Aperio SVS of >= ``--patches`` patches (224 px at 0.5 µm/px, i.e. 448 px
   read at level 0 and area-downsampled) is written with the demo generator: a mosaic of tissue patches of
   the first 20x slide of demo cohort DEMO1, upscaled 2x and tiled periodically
   (``embed_throughput.write_large_slide``). The encoder is the UNI2-h architecture with seeded random
   weights (speed does not depend on the weights' values), bf16 autocast on CUDA. Measured as
   ``benchmarks/embed_throughput.py`` does: the bare ``Encoder.encode`` on batches already in memory
   (before and after, averaged) against the project's own path, ``embed_slide`` (read + decode +
   downsample + transfer + forward + h5 write, ``--num-workers`` reader processes), at the same batch size.
   Targets (issue 21, on an H100): ratio >= 0.90 and >= 1,000 patches/s end to end.
2. MUST stage 2. One epoch at paper width (``must_stage2_epoch.paper_model``; 1536-d bags of 500-2,000
   patches, ``must_stage2_epoch.patients``) through ``train_stage2`` in the paper's form (batch size 1,
   32-patient accumulation) and the faster forms (:data:`FORMS`), on the GPU (``--gpu-patients``, fastest of
   ``--repeats`` interleaved epochs) and on the CPU with ``--cpu-threads`` threads (``--cpu-patients``,
   one epoch; compared per patient). Targets (issue 21, item 2): fastest form >= 5x the paper's form on
   the GPU, >= 1.5x on the CPU.

Expected time on an H200 (estimated, not measured): UNI2-h is 371 GFLOP per patch (torch's FLOP counter,
681 M parameters, 265 tokens), so the 790 TFLOP/s of a bf16 matrix product on this card bound the forward
at about 2,100 patches/s and 55-70 % of it gives 1,200-1,500: the two bare measurements (2 x 3,072 patches)
and the 20,449-patch end-to-end pass take 20-30 s. Writing the 40x slide (4.1 Gpx of JPEG tiles, about
1 GB) about 15-30 s (16.6k px a side took 1 s on 2 cores here), building UNI2-h's random weights on the
CPU 10-20 s, the GPU stage-2 epochs (4 forms x (4-patient warm-up + 3 x 64 patients)) 20-40 s, the CPU ones
(4 forms x 32 patients at about 0.24 s per patient on 2 threads, ``must_stage2_epoch.json``) 30-60 s:
about 2-4 minutes in all, well inside one 600 s command.

The JSON goes to ``benchmarks/results/gpu_check_<card>.json`` (e.g. ``gpu_check_nvidia_h200.json``; the
card's name from ``torch.cuda.get_device_name``) and is copied to ``--out-dir`` (default ``$OUT`` when set),
where a partial JSON is also written after each part, so a run cut short still returns what it measured.
A part that fails is recorded under ``errors`` and the others still run (exit status 1).

Packages. The GPU image (nvidia-h200: Python 3.12, torch, timm, h5py, tifffile, opencv, psutil, pandas,
scipy) lacks openslide, imagecodecs (tifffile's JPEG) and jsonschema; they travel as wheels
(pins: ``benchmarks/gpu_wheels.txt``) to a GPU machine without network access. In the repository
root of the checkout the device tool sends, here (pip works here)::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \\
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl -r benchmarks/gpu_wheels.txt

then run with ``carry: [".whl"]`` and the command::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \\
        .whl/*.whl && export PYTHONPATH=/tmp/site || exit; \\
        PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out-dir $OUT

Without them the script stops at once and names the missing wheels.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO / "benchmarks", REPO / "src"):  # the project without installing it; src first
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# module imported by the check -> the wheels that provide it (and what it needs beyond the GPU image)
REQUIRED = {
    "torch": ["torch"], "timm": ["timm"], "numpy": ["numpy"], "pandas": ["pandas"], "scipy": ["scipy"],
    "h5py": ["h5py"], "cv2": ["opencv-python-headless"], "tifffile": ["tifffile"], "psutil": ["psutil"],
    "yaml": ["pyyaml"], "tqdm": ["tqdm"], "imagecodecs": ["imagecodecs"],
    "openslide": ["openslide-python", "openslide-bin"],
    "jsonschema": ["jsonschema", "jsonschema-specifications", "referencing", "rpds-py"],
}
CARRIED = ("imagecodecs", "openslide", "jsonschema")  # not in the GPU image: pinned in benchmarks/gpu_wheels.txt


def missing_packages() -> dict[str, str]:
    """The required modules that do not import here.

    Returns:
        ``{module: error}`` of each module whose import fails (openslide also fails when its C library
        is missing).
    """
    missing = {}
    for module in REQUIRED:
        try:
            importlib.import_module(module)
        except (ImportError, OSError) as err:
            missing[module] = f"{type(err).__name__}: {err}"
    return missing


def carry_message(missing: dict[str, str]) -> str:
    """What to carry to the GPU machine for the ``missing`` modules, and how."""
    wheels = sorted({w for m in missing for w in REQUIRED[m]})
    lines = [f"  {m}: {err}" for m, err in missing.items()]
    return ("gpu_check: these modules do not import:\n" + "\n".join(lines)
            + f"\nCarry their wheels ({', '.join(wheels)}; pinned in benchmarks/gpu_wheels.txt) as .whl: see the "
              "docstring of benchmarks/gpu_check.py (pip download ... -d .whl -r benchmarks/gpu_wheels.txt here, "
              "carry [\".whl\"], pip install --target /tmp/site there and export PYTHONPATH=/tmp/site).")


if __name__ == "__main__" and (_missing := missing_packages()):
    sys.exit(carry_message(_missing))

import copy
import logging

import cv2
import torch
from embed_throughput import bare_forward, end_to_end, readers_only, tissue_mosaic, write_large_slide
from must_stage2_epoch import paper_model, patients
from results_io import write_result

from mustsurv.demo.plan import DemoSettings, make_plan
from mustsurv.demo.slides import write_slide
from mustsurv.slides.embed import EmbedParams
from mustsurv.slides.encoders import Encoder, get_spec
from mustsurv.slides.reader import plan_read
from mustsurv.slides.tiling import TileParams
from mustsurv.train.must import train_stage2
from mustsurv.train.trainer import OptimConfig

MPP_40X = 0.25
PARTS = ("embedding", "stage2_gpu", "stage2_cpu")
PAPER_FORM = "bs1_accumulation"
FORMS = {  # stage-2 form -> its OptimConfig fields; the first is the paper's
    PAPER_FORM: {},
    "grouped": {"grouped": True},
    "bs1_accumulation_bf16": {"precision": "bf16"},
    "grouped_bf16": {"grouped": True, "precision": "bf16"},
}
TARGETS = {"embed_ratio_to_bare": 0.90, "embed_patches_per_s": 1000.0,
           "stage2_speedup_gpu": 5.0, "stage2_speedup_cpu": 1.5}
FULL = {"encoder": "uni2_h", "patches": 20000, "batch_size": 256,
        "num_workers": max(1, min(12, (os.cpu_count() or 2) - 2)), "region_patches": 8, "bare_batches": 10,
        "gpu_patients": 64, "cpu_patients": 32, "min_patches": 500, "max_patches": 2000, "repeats": 3,
        "cpu_repeats": 1, "cpu_threads": 2}
SMOKE = {"encoder": "demo_vit", "patches": 36, "batch_size": 8, "num_workers": 1, "region_patches": 2,
         "bare_batches": 2, "gpu_patients": 3, "cpu_patients": 3, "min_patches": 20, "max_patches": 40, "repeats": 1,
         "cpu_repeats": 1, "cpu_threads": 2}


def slug(name: str) -> str:
    """``NVIDIA H200`` -> ``nvidia_h200``: a device name as part of a file name."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def texture_source(workdir: Path) -> Path:
    """Write the first 20x slide of demo cohort DEMO1 (seed 1) into ``workdir`` and return its path."""
    plan = make_plan("DEMO1", DemoSettings(seed=1))
    spec = next(s for s in plan.slides if s.magnification == 20)
    path = workdir / f"{spec.slide_id}.svs"
    write_slide(plan, spec.slide_id, path)
    return path


def write_40x_slide(workdir: Path, patches: int) -> dict:
    """Write a 40x (0.25 µm/px) SVS holding at least ``patches`` full-tissue patches at the tiling defaults.

    The texture is a 10 x 10 mosaic of the demo slide's 224-px tissue patches at 20x, upscaled 2x (a 40x
    scan of the same field); the slide is a square grid of ``ceil(sqrt(1.02 patches))`` patches a side.

    Args:
        workdir: where the demo slide and the large slide are written.
        patches: the least number of patches.

    Returns:
        ``path`` (the slide), ``level0_px``, ``mpp``, ``grid_side`` (patches a side), ``write_seconds``
        (the large slide only) and ``file_mb``.
    """
    tiling = TileParams()
    step = plan_read([MPP_40X], [1.0], tiling.target_mpp, tiling.patch_size, tiling.mpp_tolerance).patch_size_level0
    side = math.ceil(math.sqrt(patches * 1.02))
    texture = cv2.resize(tissue_mosaic(texture_source(workdir), 10), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    path = workdir / "TCGA-LG-0040-01Z-00-DX1.svs"
    t = time.perf_counter()
    write_large_slide(path, texture, side * step, side * step, mpp=MPP_40X)
    return {"path": path, "level0_px": [side * step, side * step], "mpp": MPP_40X, "grid_side": side,
            "write_seconds": round(time.perf_counter() - t, 1), "file_mb": round(path.stat().st_size / 2**20, 1)}


def flops_per_patch(encoder: Encoder) -> int:
    """FLOPs of ``encoder.encode`` on one 224-px patch (torch's FLOP counter: matrix products, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        encoder.encode(torch.zeros(1, 224, 224, 3, dtype=torch.uint8))
    return int(counter.get_total_flops())


def embedding_check(encoder: Encoder, slide: Path, params: EmbedParams, outdir: Path, bare_batches: int,
                    record: dict | None = None) -> dict:
    """Bare forward (before and after) vs end to end on ``slide`` at ``params.batch_size``.

    Args:
        encoder: the encoder (its model is built here, timed as ``build_seconds``).
        slide: the slide to tile and embed.
        params: the embedding settings (batch size, reader workers, region side).
        outdir: where the features file is written (``<slide stem>.h5``).
        bare_batches: batches timed per bare-forward measurement.
        record: filled with each figure as soon as it is measured (a failure later keeps the earlier ones);
            None = a new dict.

    Returns:
        ``record`` with ``build_seconds``, ``gflop_per_patch``, ``bare_forward_before_after``,
        ``end_to_end`` (``embed_throughput.end_to_end``'s fields), ``bare_forward_patches_per_s`` (mean of
        before and after), ``ratio_to_bare``, ``end_to_end_tflop_per_s``, ``readers_only`` (the same slide's
        batches read with no encoder: what the readers can feed) and, on CUDA, ``peak_gpu_memory_gb``.
    """
    out = {} if record is None else record
    t = time.perf_counter()
    _ = encoder.model  # builds the model (seeded random weights) and moves it to the device
    out["build_seconds"] = round(time.perf_counter() - t, 1)
    flops = flops_per_patch(encoder)
    out["gflop_per_patch"] = round(flops / 1e9, 2)
    if encoder.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    bare = bare_forward(encoder, params.batch_size, bare_batches)
    out["bare_forward_before_after"] = [round(bare, 1)]
    out["bare_forward_patches_timed"] = bare_batches * params.batch_size
    e2e = out["end_to_end"] = end_to_end(encoder, [slide], params, outdir)
    bare_after = bare_forward(encoder, params.batch_size, bare_batches)
    bare_mean = (bare + bare_after) / 2
    out["bare_forward_before_after"].append(round(bare_after, 1))
    out["bare_forward_patches_per_s"] = round(bare_mean, 1)
    out["ratio_to_bare"] = round(e2e["patches_per_s"] / bare_mean, 3)
    out["end_to_end_tflop_per_s"] = round(e2e["patches_per_s"] * flops / 1e12, 1)
    out["readers_only"] = readers_only([slide], params)
    if encoder.device.type == "cuda":
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage2_epochs(device: torch.device, n_patients: int, min_patches: int, max_patches: int, repeats: int,
                  pathology_dim: int = 1536, accumulation: int = 32) -> dict:
    """Time one MUST stage-2 epoch per form of :data:`FORMS` at paper width on ``device``.

    Every form trains a copy of the same seeded model on the same synthetic patients (bags (N, pathology_dim),
    N in [min_patches, max_patches]); after one untimed warm-up epoch per form on 4 patients, the forms are
    timed ``repeats`` times interleaved and each keeps its fastest epoch.

    Args:
        device: where the model trains (bags move there per step, as in training).
        n_patients: patients in the epoch.
        min_patches: smallest bag.
        max_patches: largest bag.
        repeats: timed epochs per form.
        pathology_dim: patch feature dimension (UNI2-h: 1536).
        accumulation: patients per optimiser step.

    Returns:
        ``seconds`` (fastest epoch per form), ``seconds_all_repeats``, ``seconds_per_patient``,
        ``speedup_vs_paper_form`` per form, ``fastest_form`` and ``speedup_fastest`` (over the paper's form).
    """
    torch.manual_seed(0)
    data = patients(n_patients, min_patches, max_patches, pathology_dim)
    model = paper_model(pathology_dim).to(device)

    def epoch(items: list, fields: dict) -> float:
        m = copy.deepcopy(model)
        cfg = OptimConfig(epochs=1, lr=2e-4, weight_decay=1e-5, accumulation_steps=accumulation, **fields)
        _sync(device)
        t0 = time.perf_counter()
        train_stage2(m, items, cfg)
        _sync(device)
        return time.perf_counter() - t0

    for fields in FORMS.values():  # warm-up: kernels, allocator, libraries' handles
        epoch(data[:4], fields)
    times: dict[str, list[float]] = {name: [] for name in FORMS}
    for _ in range(repeats):
        for name, fields in FORMS.items():
            times[name].append(epoch(data, fields))
    seconds = {name: min(t) for name, t in times.items()}
    fastest = min(seconds, key=seconds.__getitem__)
    return {
        "device": str(device), "patients": n_patients, "repeats": repeats, "torch_threads": torch.get_num_threads(),
        "seconds": {name: round(s, 3) for name, s in seconds.items()},
        "seconds_all_repeats": {name: [round(x, 3) for x in t] for name, t in times.items()},
        "seconds_per_patient": {name: round(s / n_patients, 5) for name, s in seconds.items()},
        "speedup_vs_paper_form": {name: round(seconds[PAPER_FORM] / s, 2) for name, s in seconds.items()},
        "fastest_form": fastest,
        "speedup_fastest": round(seconds[PAPER_FORM] / seconds[fastest], 2),
    }


def stage2_comparison(gpu: dict, cpu: dict) -> dict:
    """Per-patient speed-ups of the accelerator's epochs over the CPU's, per form and fastest vs fastest.

    Args:
        gpu: :func:`stage2_epochs` on the accelerator.
        cpu: :func:`stage2_epochs` on the CPU.

    Returns:
        ``gpu_vs_cpu_per_patient`` per form and ``gpu_fastest_vs_cpu_fastest``.
    """
    g, c = gpu["seconds_per_patient"], cpu["seconds_per_patient"]
    return {"gpu_vs_cpu_per_patient": {name: round(c[name] / g[name], 1) for name in g},
            "gpu_fastest_vs_cpu_fastest": round(c[cpu["fastest_form"]] / g[gpu["fastest_form"]], 1)}


def verdicts(result: dict) -> dict:
    """Each issue-21 target of :data:`TARGETS` against the measured figure (figures not measured are left out).

    Args:
        result: the check's result so far (``embedding``, ``stage2_gpu``, ``stage2_cpu``).

    Returns:
        ``{target: true/false}``.
    """
    emb = result.get("embedding", {})
    figures = {"embed_ratio_to_bare": emb.get("ratio_to_bare"),
               "embed_patches_per_s": emb.get("end_to_end", {}).get("patches_per_s"),
               "stage2_speedup_gpu": result.get("stage2_gpu", {}).get("speedup_fastest"),
               "stage2_speedup_cpu": result.get("stage2_cpu", {}).get("speedup_fastest")}
    return {key: value >= TARGETS[key] for key, value in figures.items() if value is not None}


def machine(device: torch.device) -> dict:
    """The accelerator and host: card, memory, CUDA/cuDNN versions, CPU count, /dev/shm size."""
    info = {"cpu_count": os.cpu_count(), "torch_cuda": torch.version.cuda}
    shm = Path("/dev/shm")
    if shm.is_dir():
        info["dev_shm_gb"] = round(shutil.disk_usage(shm).total / 2**30, 1)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(card=props.name, memory_gb=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
                    cudnn=torch.backends.cudnn.version())
    return info


def run_check(cfg: dict, device: torch.device, workdir: Path, save=lambda result: None,
              parts: tuple[str, ...] = PARTS) -> tuple[dict, dict]:
    """Run the ``parts``; a part that fails is recorded and the next one still runs.

    Args:
        cfg: the sizes (:data:`FULL` or :data:`SMOKE`, possibly overridden).
        device: the accelerator (``cuda``), or the CPU in a smoke run.
        workdir: scratch folder (the slides and the features file).
        save: called with the result after each part (the partial JSON).
        parts: the parts to run, of :data:`PARTS` (a rerun of a failed part alone).

    Returns:
        The result (``embedding``, ``stage2_gpu``, ``stage2_cpu``, ``stage2_gpu_vs_cpu``, ``targets``,
        ``within_target``) and ``{part: error}``.
    """
    result: dict = {"settings": cfg, "parts": list(parts), "machine": machine(device), "targets": TARGETS}
    errors: dict[str, str] = {}

    def part(name: str, fn) -> None:
        t = time.perf_counter()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - one failed part must not lose the others' figures
            errors[name] = f"{type(err).__name__}: {err}"
            traceback.print_exc()
        print(f"gpu_check: {name} {'failed' if name in errors else 'done'} in {time.perf_counter() - t:.1f} s",
              flush=True)
        result["within_target"] = verdicts(result)
        result["errors"] = errors
        save(result)

    def embedding() -> None:
        slide = write_40x_slide(workdir, cfg["patches"])
        params = EmbedParams(batch_size=cfg["batch_size"], num_workers=cfg["num_workers"],
                             region_patches=cfg["region_patches"])
        # seeded random weights: throughput does not depend on the weights' values
        encoder = Encoder(get_spec(cfg["encoder"]), None, device)
        out = workdir / "features"
        out.mkdir(exist_ok=True)
        path = slide.pop("path")
        result["embedding"] = {"encoder": cfg["encoder"], "weights": "seeded random (throughput only)",
                               "precision": "bf16 autocast" if device.type == "cuda" else "float32",
                               "batch_size": params.batch_size, "num_workers": params.num_workers,
                               "region_patches": params.region_patches, "slide": {"name": path.name, **slide}}
        embedding_check(encoder, path, params, out, cfg["bare_batches"], record=result["embedding"])

    def stage2_gpu() -> None:
        result["stage2_gpu"] = stage2_epochs(device, cfg["gpu_patients"], cfg["min_patches"], cfg["max_patches"],
                                             cfg["repeats"])

    def stage2_cpu() -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg["cpu_threads"])
        try:
            result["stage2_cpu"] = stage2_epochs(torch.device("cpu"), cfg["cpu_patients"], cfg["min_patches"],
                                                 cfg["max_patches"], cfg["cpu_repeats"])
        finally:
            torch.set_num_threads(threads)
        if "stage2_gpu" in result:
            result["stage2_gpu_vs_cpu"] = stage2_comparison(result["stage2_gpu"], result["stage2_cpu"])

    for name, fn in (("embedding", embedding), ("stage2_gpu", stage2_gpu), ("stage2_cpu", stage2_cpu)):
        if name in parts:
            part(name, fn)
    return result, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on any device (CPU: seconds)")
    for key, value in FULL.items():
        ap.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None,
                        help=f"default {value} ({SMOKE[key]} with --smoke)")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                    help="the parts to run (default all; e.g. a failed part alone)")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temp dir, deleted)")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="where the JSON goes (default benchmarks/results; the temp dir with --smoke)")
    ap.add_argument("--out-dir", type=Path, default=os.environ.get("OUT") or None,
                    help="the JSON (and a partial one after each part) is copied here (default: $OUT if set)")
    args = ap.parse_args()
    cfg = {key: getattr(args, key) if getattr(args, key) is not None else value
           for key, value in (SMOKE if args.smoke else FULL).items()}
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif args.smoke:
        device = torch.device("cpu")
    else:
        sys.exit("gpu_check: no CUDA device is visible; this check is for the GPU machine (use --smoke on a CPU).")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    name = slug(torch.cuda.get_device_name(device)) if device.type == "cuda" else "cpu"
    filename = f"gpu_check_{name}{'_smoke' if args.smoke else ''}.json"
    results_dir = args.results_dir or (Path(tempfile.gettempdir()) if args.smoke else REPO / "benchmarks" / "results")
    out_dir = args.out_dir
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    def save(result: dict) -> None:
        if out_dir is not None:
            (out_dir / filename).write_text(json.dumps({**result, "complete": False}, indent=1) + "\n")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result, errors = run_check(cfg, device, workdir, save, tuple(args.parts))
    result = {"what": "issue 21 item 4: UNI2-h embedding end to end vs bare forward (bf16), MUST stage-2 epoch "
                      "GPU vs CPU", "device": name, "smoke": args.smoke, **result,
              "seconds_total": round(time.perf_counter() - t0, 1), "complete": not errors}
    write_result(result, results_dir / filename)
    if out_dir is not None:
        shutil.copy(results_dir / filename, out_dir / filename)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
