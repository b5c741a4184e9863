"""The micro study of the reliability matrix (docs/reliability.md) and the helpers that run and kill it.

16 demo patients with one slide each, two folds, two time bins, MUST and one baseline (ABMIL) at tiny widths.
Epochs, stage-3 steps and ``must.stage3.checkpoint_every`` are set so that every training job writes several
progress files before it ends: a test polls for one and kills the run there (no sleep in product code).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from mustsurv.study import layout

REPO = Path(__file__).resolve().parents[2]
COHORT = "MICRO"
MICRO_CONFIG = f"""\
cohorts:
  {COHORT}:
    demo: {{seed: 5, patients: 16, two_slide_fraction: 0.0}}
cv: {{folds: 2, seed: 0, n_bins: 2}}
methods: [must, abmil]
training: {{seed: 0, gpu: 0, threads: 1}}
selection: {{stage3_evaluations: 4}}
slides: {{threads: 2, num_workers: 0, batch_slides: 16}}
must:
  model: {{dim: 16, rank: 4, heads: 2, ldm_layers: 1, ldm_timesteps: 100}}
  stage1: {{epochs: 8, lr: 1.0e-3, accumulation_steps: 4, grouped: true}}
  stage2: {{epochs: 8, lr: 2.0e-4, accumulation_steps: 4, grouped: true}}
  stage3: {{steps: 80, lr: 1.0e-4, batch_size: 4, checkpoint_every: 5}}
  inference: {{n_samples: 2, ddim_steps: 3, batch_size: 8}}
baselines:
  abmil:
    model: {{hidden_dim: 16, attn_dim: 8, head_dim: 8}}
    train: {{epochs: 8, optimizer: adam, lr: 2.0e-4, accumulation_steps: 4, grouped: true}}
"""
COHORT_DIR = layout.cohort_dir(COHORT)
TABLES = tuple(layout.study_table(name) for name in layout.STUDY_TABLES)
"""The default targets of a run of the matrix: the study tables (and so every prediction file behind them)."""


def snakemake_cmd(work: Path, *args: str, cores: int = 2, targets: Sequence[str] = TABLES) -> list[str]:
    """The Snakemake command line of a micro-study run in ``work`` building ``targets``."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--cores", str(cores), *args, *targets]


def snakemake(work: Path, *args: str, cores: int = 2, targets: Sequence[str] = TABLES, timeout: int = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake in ``work`` to the end.

    Args:
        work: the study folder.
        args: extra command-line arguments.
        cores: ``--cores``.
        targets: the files to build (none: the default target).
        timeout: seconds.
        env: the environment (default: this process's).

    Returns:
        The finished process.
    """
    return subprocess.run(snakemake_cmd(work, *args, cores=cores, targets=targets), check=False, capture_output=True,
                          text=True, timeout=timeout, env=env)


def start(work: Path, *args: str, cores: int = 2, targets: Sequence[str] = TABLES) -> subprocess.Popen:
    """Start Snakemake in ``work`` in its own process group (as a scheduler would), its output in ``work/run.out``.

    Args:
        work: the study folder.
        args: extra command-line arguments.
        cores: ``--cores``.
        targets: the files to build.

    Returns:
        The running process; its pid is the group id.
    """
    with open(work / "run.out", "ab") as out:
        return subprocess.Popen(snakemake_cmd(work, *args, cores=cores, targets=targets), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def job_processes(group: int, script: str) -> list[int]:
    """Pids of the Python processes of group ``group`` running a Snakemake ``script:`` file named ``*.{script}``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            pgid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if pgid == group and Path(argv[0].decode()).name.startswith("python") and any(
                a.decode().endswith(f".{script}") for a in argv[1:]):
            pids.append(int(proc.name))
    return pids


def wait_for(condition: Callable[[], object], proc: subprocess.Popen, what: str, timeout: float = 400) -> object:
    """Poll ``condition`` every 5 ms until it returns a truthy value; fail if ``proc`` ends first.

    Args:
        condition: the check.
        proc: the Snakemake run.
        what: what is awaited, for the failure message.
        timeout: seconds.

    Returns:
        The truthy value.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"timed out waiting for {what}")


def checksums(work: Path, patterns: tuple[str, ...] = ("results/tables/*", "results/cohorts/*/*.tsv",
                                                         "results/cohorts/*/*.csv",
                                                         "results/cohorts/*/predictions/*/*")) -> dict[str, str]:
    """SHA-256 of every table and prediction file of the study in ``work``.

    Args:
        work: the study folder.
        patterns: globs relative to ``work``.

    Returns:
        ``{relative path: hex digest}``.
    """
    return {str(p.relative_to(work)): hashlib.sha256(p.read_bytes()).hexdigest()
            for pattern in patterns for p in sorted(work.glob(pattern)) if p.is_file()}


def copy_study(src: Path, dst: Path) -> Path:
    """Copy a study folder (inputs, results, Snakemake metadata, modification times) to ``dst``."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


@dataclass(frozen=True)
class Stage:
    """A stage of the matrix: its job's outputs, the evidence that the job has made progress, its scripts."""

    outputs: tuple[str, ...]
    """Globs (relative to the study) of the outputs of the stage's job(s); the first one lists the targets."""
    progress: tuple[str, ...]
    """Globs of the files whose existence shows that the job has made progress (a progress file, or a first
    finished output)."""
    scripts: tuple[str, ...]
    """The ``script:`` file names of the stage's jobs (the ``job`` kill mode kills one of them)."""


REPORTS = (f"{COHORT_DIR}/cindex_folds.tsv", f"{COHORT_DIR}/metrics_folds.tsv", f"{COHORT_DIR}/table*.csv",
           "results/tables/*")
"""The per-cohort and study tables."""


def _must(stage: int) -> Stage:
    ckpt = f"{COHORT_DIR}/models/must/fold*/stage{stage}.pt"
    return Stage((ckpt,), (f"{ckpt}.progress",), ("must_train.py",))


STAGES = {
    "embedding": Stage((f"{COHORT_DIR}/slides/features/*/*.h5",), (f"{COHORT_DIR}/slides/features/*/*.h5",),
                       ("slides_embed.py",)),
    "stage1": _must(1),
    "stage2": _must(2),
    "stage3": _must(3),
    "baseline": Stage((f"{COHORT_DIR}/models/abmil/*/model.pt", f"{COHORT_DIR}/predictions/abmil/*"),
                      (f"{COHORT_DIR}/models/abmil/*/model.pt.progress",), ("baseline.py",)),
    "tables": Stage(REPORTS, (f"{COHORT_DIR}/cindex_folds.tsv", f"{COHORT_DIR}/metrics_folds.tsv"),
                    ("report_cohort_tables.py", "report_cohort_metrics.py", "report_study_tables.py",
                     "report_study_metrics.py")),
}


def stage_targets(reference: Path, stage: str) -> list[str]:
    """The files a run of ``stage`` alone builds: its job's first outputs in the finished ``reference`` study
    (for ``tables``, the study tables)."""
    if stage == "tables":
        return list(TABLES)
    return sorted(str(p.relative_to(reference)) for p in reference.glob(STAGES[stage].outputs[0]))


def remove_outputs(work: Path, stage: str) -> None:
    """Remove the outputs of ``stage`` (a key of :data:`STAGES`) from the study ``work``."""
    for pattern in STAGES[stage].outputs:
        for path in work.glob(pattern):
            path.unlink()
