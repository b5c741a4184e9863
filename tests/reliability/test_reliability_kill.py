"""Kill -9 of a real Snakemake run part-way through a stage, then resume: the outputs equal an uninterrupted run's.

Each case starts from a copy of the finished micro study without one stage's outputs, asks Snakemake for
exactly those files, polls for the stage's first progress file (or first finished output) and kills there,
before the job ends, in one of two ways:

* ``group``: SIGKILL to the whole Snakemake process group, as a scheduler does at its time limit; then
  ``snakemake --unlock`` and a plain rerun;
* ``job``: SIGKILL to the stage job's Python process while Snakemake lives; Snakemake records the failure
  and exits non-zero; a plain rerun completes.

The rerun's outputs equal the reference run's byte for byte (checksums), so nothing partial was taken as
complete; every later job is a deterministic function of its inputs (test_reliability_runs.py), so the
tables are equal too (the ``tables`` stage checks them directly). Both kill modes run on every stage except
embedding (group kill only: its job kill would re-embed every slide once more), to keep the matrix within
its time budget (docs/reliability.md).
"""

from __future__ import annotations

import os
import shutil
import signal

import pytest
from micro import (
    STAGES,
    checksums,
    copy_study,
    job_processes,
    remove_outputs,
    snakemake,
    stage_targets,
    start,
    wait_for,
)

pytestmark = pytest.mark.reliability

CASES = [(s, m) for s in STAGES for m in ("group", "job") if m == "group" or s != "embedding"]


@pytest.mark.parametrize(("stage", "mode"), CASES)
def test_a_run_killed_mid_stage_resumes_to_the_same_outputs(micro_study, tmp_path, stage, mode):
    spec = STAGES[stage]
    targets = stage_targets(micro_study, stage)
    reference = checksums(micro_study, spec.outputs)
    work = copy_study(micro_study, tmp_path / "study")
    remove_outputs(work, stage)
    run = start(work, targets=targets)

    def ready():
        if not any(any(work.glob(g)) for g in spec.progress):
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
    assert not all((work / t).exists() for t in targets), f"{stage} ended before the kill; slow it through its config"
    log = (work / "run.out").read_text(errors="replace")
    if mode == "job":
        assert rc != 0 and "Error in rule" in log, log[-3000:]
    else:
        res = snakemake(work, "--unlock", targets=targets)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = snakemake(work, targets=targets)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert checksums(work, spec.outputs) == reference
    assert not list(work.rglob(".*.tmp*")), "a killed writer's temporary file was left behind"
    dry = snakemake(work, "-n", targets=targets)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    shutil.rmtree(work)  # 40 MB a case; kept when the test fails
