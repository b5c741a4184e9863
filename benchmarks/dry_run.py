"""Wall time of `snakemake -n` on the default target (the workflow's parse step plus DAG building).

Every cluster job parses the workflow again, so this is paid once per job. Runs the dry run ``--repeats``
times in fresh working directories with the Snakefile and config of ``--repo`` (default: this checkout;
``--repo`` another checkout measures another version with its own package source first on PYTHONPATH).

    python benchmarks/dry_run.py [--repo PATH] [--repeats 5] [--out benchmarks/results/dry_run.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import write_result

REPO = Path(__file__).resolve().parents[1]


def dry_run_seconds(repo: Path) -> float:
    """One dry run of ``repo``'s default target in a fresh working directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory(prefix="mustsurv-dry-") as work:
        cmd = [sys.executable, "-m", "snakemake", "-n", "-q", "--snakefile", str(repo / "Snakefile"),
               "--directory", work, "--configfile", str(repo / "config" / "config.yaml")]
        start = time.perf_counter()
        res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if res.returncode:
        raise RuntimeError(f"dry run of {repo} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, default=REPO)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dry_run.json")
    args = ap.parse_args()
    times = [dry_run_seconds(args.repo.resolve()) for _ in range(args.repeats)]
    commit = subprocess.run(["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    write_result({"repo": str(args.repo), "commit": commit, "seconds": [round(t, 2) for t in times],
                  "median_s": round(statistics.median(times), 2)}, args.out)
    print(f"{args.repo} @ {commit}: median {statistics.median(times):.2f} s over {len(times)} dry runs")


if __name__ == "__main__":
    main()
