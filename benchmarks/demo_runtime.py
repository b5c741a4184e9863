"""Wall time of the full demo study and each rule's share, from Snakemake's `benchmark:` files.

Runs `snakemake --cores N` on the default config in a fresh working directory (the repository's
Snakefile and config/), times it, then sums the per-job benchmark files by rule (`s` = wall seconds of
the job, `cpu_time` = its CPU seconds). Writes ``benchmarks/results/demo_runtime.json``.

    python benchmarks/demo_runtime.py [--cores 2] [--workdir /tmp/mustsurv-demo] [--targets all dmml]
    python benchmarks/demo_runtime.py --summarise-only --workdir DIR --wall SECONDS   # an existing run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]

# benchmark path (relative to benchmarks/rules/, cohort/batch parts replaced by *) -> rule
RULES = [
    (r"demo/[^/]+/tables\.tsv", "demo_tables"),
    (r"demo/[^/]+/slides/b\d+\.tsv", "demo_slides (per batch)"),
    (r"omics/[^/]+/tokens\.tsv", "omics_tokens"),
    (r"slides/[^/]+/patch/b\d+\.tsv", "slides_patch (per batch)"),
    (r"slides/[^/]+/patch/mpp[^/]+/b\d+\.tsv", "slides_patch, extra magnification (per batch)"),
    (r"slides/[^/]+/features/[^/]+/mpp[^/]+/b\d+\.tsv", "slides_embed, extra magnification (per batch)"),
    (r"slides/[^/]+/summary_mpp[^/]+\.tsv", "slides_summary_magnification"),
    (r"train/[^/]+/dmml/([a-z]+)\.tsv", "dmml_{0}"),
    (r"evaluate/[^/]+/(dmml[a-z_]*)\.tsv", "dmml_predict ({0})"),
    (r"slides/[^/]+/features/[^/]+/b\d+\.tsv", "slides_embed (per batch)"),
    (r"slides/[^/]+/summary\.tsv", "slides_summary"),
    (r"cohort/[^/]+/table\.tsv", "cohort_table"),
    (r"cohort/[^/]+/splits\.tsv", "cohort_splits"),
    (r"train/[^/]+/must/stage(\d)\.tsv", "must_stage{0}"),
    (r"train/[^/]+/([a-z0-9_]+)\.tsv", "baseline ({0})"),
    (r"evaluate/[^/]+/must\.tsv", "must_predict"),
    (r"report/[^/]+/tables\.tsv", "cohort_tables"),
    (r"report/study_tables\.tsv", "study_tables"),
    (r"report/[^/]+/metrics\.tsv", "cohort_metrics"),
    (r"report/study_metrics\.tsv", "study_metrics"),
    (r"report/[^/]+/km\.tsv", "km_figures"),
    (r"report/[^/]+/decomposition\.tsv", "decomposition_figures"),
]


def rule_of(rel: str) -> str:
    for pattern, name in RULES:
        m = re.fullmatch(pattern, rel)
        if m:
            return name.format(*m.groups())
    return rel


def summarise(workdir: Path, wall: float, cores: int) -> dict:
    per_rule: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "s": 0.0, "cpu_s": 0.0})
    for path in sorted((workdir / "benchmarks" / "rules").rglob("*.tsv")):
        row = pd.read_csv(path, sep="\t").iloc[-1]
        r = per_rule[rule_of(path.relative_to(workdir / "benchmarks" / "rules").as_posix())]
        r["jobs"] += 1
        r["s"] += float(row["s"])
        r["cpu_s"] += float(row["cpu_time"])
    total = sum(r["s"] for r in per_rule.values())
    rules = {k: {**v, "s": round(v["s"], 1), "cpu_s": round(v["cpu_s"], 1), "share_of_job_seconds": round(v["s"] / total, 3)}
             for k, v in sorted(per_rule.items(), key=lambda kv: -kv[1]["s"])}
    return {
        "wall_s": round(wall, 1),
        "wall_min": round(wall / 60, 2),
        "target_min": 10,
        "within_target": wall <= 600,
        "cores": cores,
        "jobs": sum(r["jobs"] for r in per_rule.values()),
        "job_seconds_total": round(total, 1),
        "rules": rules,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
                    "load_avg_after": os.getloadavg()},
        "note": "share_of_job_seconds: the rule's summed job wall seconds over all jobs' (jobs run side by side)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--summarise-only", action="store_true")
    ap.add_argument("--wall", type=float, default=None, help="wall seconds of an existing run (--summarise-only)")
    ap.add_argument("--targets", nargs="+", default=[], help="Snakemake targets (default: the default target)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "demo_runtime.json")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mustsurv-demo-"))
    if args.summarise_only:
        if args.wall is None:
            ap.error("--summarise-only needs --wall")
        wall = args.wall
    else:
        if (workdir / "results").exists():
            ap.error(f"{workdir} already has results/; give a fresh --workdir")
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(REPO / "config", workdir / "config", dirs_exist_ok=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--snakefile",
                        str(REPO / "Snakefile"), "--directory", str(workdir), *args.targets], check=True)
        wall = time.perf_counter() - t0
    result = {"targets": args.targets or ["(default)"], **summarise(workdir, wall, args.cores)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("wall_min", "within_target", "jobs")}))


if __name__ == "__main__":
    main()
