"""Where a MUST stage-2 epoch's time goes on a GPU: the torch profiler over 16 paper-width patients, per form.

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu_stage2_profile.py     # GPU machine, about 20 s

The model and patients of ``must_stage2_epoch`` (1536-d bags of 500-2,000 patches, D = 256, 32-patient
accumulation); after a 4-patient warm-up, one epoch of 16 patients per form (``bs1`` = the paper's
patient-by-patient accumulation, ``grouped``) under ``torch.profiler``. Prints each form's wall time, the time
the GPU ran kernels and copies and the number of kernels and copies; writes the profiler's tables (by GPU time
and by CPU time) to ``$OUT/prof_<form>.txt`` (``--out-dir``). The gap between the wall time and the GPU's busy
time is the CPU's launching and bookkeeping (the epoch is launch-bound when it is large).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "src")]

import torch  # noqa: E402
from must_stage2_epoch import paper_model, patients  # noqa: E402
from torch.autograd import DeviceType  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from mustsurv.train.must import train_stage2  # noqa: E402
from mustsurv.train.trainer import OptimConfig  # noqa: E402

FORMS = {"bs1": {}, "grouped": {"grouped": True}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", type=Path, default=Path(os.environ.get("OUT", ".")))
    ap.add_argument("--patients", type=int, default=16)
    args = ap.parse_args()
    device = torch.device("cuda")
    torch.manual_seed(0)
    data = patients(args.patients, 500, 2000, 1536)
    model = paper_model(1536).to(device)
    for name, fields in FORMS.items():
        cfg = OptimConfig(epochs=1, lr=2e-4, weight_decay=1e-5, accumulation_steps=32, **fields)
        train_stage2(copy.deepcopy(model), data[:4], cfg)  # warm-up
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            t = time.perf_counter()
            train_stage2(copy.deepcopy(model), data, cfg)
            torch.cuda.synchronize()
            wall = time.perf_counter() - t
        averages = prof.key_averages()
        device_rows = [e for e in averages if e.device_type == DeviceType.CUDA]  # kernels and copies, not the ops
        gpu_s = sum(e.self_device_time_total for e in device_rows) / 1e6
        launches = sum(e.count for e in device_rows)
        print(f"{name}: wall {wall:.3f} s, GPU busy {gpu_s:.3f} s ({gpu_s / wall:.0%}), kernels+copies {launches} "
              f"({launches / args.patients:.0f}/patient)")
        tables = (averages.table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=50) + "\n"
                  + averages.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=50))
        (args.out_dir / f"prof_{name}.txt").write_text(tables)
        print(tables)


if __name__ == "__main__":
    main()
