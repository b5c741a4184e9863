"""Kill -9 of a real Snakemake run part-way through a stage, then resume: the tables equal an uninterrupted run's.

Each case starts from a copy of the finished micro study with one stage's outputs removed, so Snakemake runs
that stage and everything after it. The test polls for the stage's first progress file (or first finished
output) and kills there, before the stage's job ends, in one of two ways:

* ``group``: SIGKILL to the whole Snakemake process group, as a scheduler does at its time limit; then
  ``snakemake --unlock`` and a plain rerun;
* ``job``: SIGKILL to the stage job's Python process while Snakemake lives; Snakemake records the failure
  and exits non-zero; a plain rerun completes.

Both kill modes run on every stage except embedding and stage 2 (group only), to keep the matrix within its
time budget (docs/reliability.md).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import COHORT, checksums, copy_study, job_processes, snakemake, start, wait_for

from mustsurv.study import layout

pytestmark = pytest.mark.reliability

COHORT_DIR = layout.cohort_dir(COHORT)


@dataclass(frozen=True)
class Stage:
    """A stage of the matrix: what to remove so it reruns, its progress evidence and its job's final outputs."""

    remove: tuple[str, ...]
    """Globs (relative to the study) of the outputs removed before the run."""
    progress: tuple[str, ...]
    """Globs of the files whose existence shows that the job has made progress."""
    final: str
    """Glob of the job's final outputs; not all of them may exist when the kill lands."""
    n_final: int
    """How many files ``final`` matches once the job is done."""
    scripts: tuple[str, ...]
    """The ``script:`` file names of the stage's jobs (the ``job`` kill mode kills one of them)."""


def _must(stage: int) -> Stage:
    ckpt = f"{COHORT_DIR}/models/must/fold*/stage{stage}.pt"
    return Stage((ckpt,), (f"{ckpt}.progress",), ckpt, 2, ("must_train.py",))


STAGES = {
    "embedding": Stage((f"{COHORT_DIR}/slides/features/*/*.h5",), (f"{COHORT_DIR}/slides/features/*/*.h5",),
                       f"{COHORT_DIR}/slides/features/*/*.h5", 16, ("slides_embed.py",)),
    "stage1": _must(1),
    "stage2": _must(2),
    "stage3": _must(3),
    "baseline": Stage((f"{COHORT_DIR}/models/abmil/*/model.pt", f"{COHORT_DIR}/predictions/abmil/*"),
                      (f"{COHORT_DIR}/models/abmil/*/model.pt.progress",), f"{COHORT_DIR}/models/abmil/*/model.pt", 2,
                      ("baseline.py",)),
    "tables": Stage((f"{COHORT_DIR}/*.tsv", f"{COHORT_DIR}/*.csv", "results/tables/*"),
                    (f"{COHORT_DIR}/cindex_folds.tsv", f"{COHORT_DIR}/metrics_folds.tsv"), "results/tables/*", 6,
                    ("report_cohort_tables.py", "report_cohort_metrics.py", "report_study_tables.py",
                     "report_study_metrics.py")),
}
CASES = [(s, m) for s in STAGES for m in ("group", "job") if m == "group" or s not in ("embedding", "stage2")]


def _exists(work: Path, globs: tuple[str, ...]) -> bool:
    return any(any(work.glob(g)) for g in globs)


@pytest.mark.parametrize(("stage", "mode"), CASES)
def test_a_run_killed_mid_stage_resumes_to_the_same_tables(micro_study, tmp_path, stage, mode):
    spec = STAGES[stage]
    work = copy_study(micro_study, tmp_path / "study")
    reference = checksums(micro_study)
    for pattern in spec.remove:
        for path in work.glob(pattern):
            path.unlink()
    run = start(work)

    def ready():
        if not _exists(work, spec.progress):
            return None
        if mode == "group":
            return [run.pid]
        return next((pids for s in spec.scripts if (pids := job_processes(run.pid, s))), None)

    pids = wait_for(ready, run, f"progress of {stage}")
    if mode == "group":
        os.killpg(run.pid, signal.SIGKILL)
    else:
        os.kill(pids[0], signal.SIGKILL)
    rc = run.wait(timeout=300)
    done = len(list(work.glob(spec.final)))
    assert done < spec.n_final, f"{stage} finished before the kill landed; make it slower through its config"
    log = (work / "run.out").read_text(errors="replace")
    if mode == "job":
        assert rc != 0 and "Error in rule" in log, log[-3000:]
    else:
        res = snakemake(work, "--unlock")
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = snakemake(work)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert checksums(work) == reference
    assert not list(work.rglob(".*.tmp*")), "a killed writer's temporary file was left behind"
    dry = snakemake(work, "-n")
    assert "Nothing to be done" in dry.stdout + dry.stderr
