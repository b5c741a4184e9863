"""The micro study of the reliability matrix (docs/reliability.md): run once per session, copied per test.

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
from pathlib import Path
from typing import Callable

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
slides: {{threads: 1, num_workers: 0, batch_slides: 16}}
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
TABLES = [layout.study_table(name) for name in layout.STUDY_TABLES]
"""The targets of every run of the matrix: the study tables (and so every prediction file behind them)."""


def snakemake_cmd(work: Path, *args: str, cores: int = 2, targets: bool = True) -> list[str]:
    """The Snakemake command line of a micro-study run in ``work`` (the tables as targets unless ``targets=False``)."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--cores", str(cores), *args, *(TABLES if targets else [])]


def snakemake(work: Path, *args: str, cores: int = 2, targets: bool = True,
              timeout: int = 600) -> subprocess.CompletedProcess:
    """Run Snakemake in ``work`` to the end.

    Args:
        work: the study folder.
        args: extra command-line arguments.
        cores: ``--cores``.
        targets: append the study tables as targets.
        timeout: seconds.

    Returns:
        The finished process (stdout and stderr together in ``stdout``).
    """
    return subprocess.run(snakemake_cmd(work, *args, cores=cores, targets=targets), capture_output=True, text=True,
                          timeout=timeout)


def start(work: Path, *args: str, cores: int = 2) -> subprocess.Popen:
    """Start Snakemake in ``work`` in its own process group (as a scheduler would), its output in ``work/run.out``.

    Args:
        work: the study folder.
        args: extra command-line arguments.
        cores: ``--cores``.

    Returns:
        The running process; its pid is the group id.
    """
    with open(work / "run.out", "ab") as out:
        return subprocess.Popen(snakemake_cmd(work, *args, cores=cores), stdout=out, stderr=subprocess.STDOUT,
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


@pytest.fixture(scope="session")
def micro_inputs(tmp_path_factory) -> Path:
    """A study folder holding the micro study's config and its generated demo inputs only."""
    work = tmp_path_factory.mktemp("micro_inputs")
    (work / "config").mkdir()
    (work / "config" / "config.yaml").write_text(MICRO_CONFIG)
    res = snakemake(work, "--until", "demo_tables", f"demo_slides_{COHORT}_b000", targets=False)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


@pytest.fixture(scope="session")
def micro_study(micro_inputs, tmp_path_factory) -> Path:
    """The micro study run to its tables with ``--cores 2`` (the uninterrupted reference); never modified."""
    work = copy_study(micro_inputs, tmp_path_factory.mktemp("micro") / "study")
    res = snakemake(work, cores=2)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work
