"""Kill -9 of a real Snakemake run part-way through a stage, then resume: the tables equal an uninterrupted run's.

Each case starts from a copy of the finished micro study with one stage's outputs and everything after it
removed, so Snakemake runs from that stage on, as in a first run. The test polls for the stage's first
progress file (or first finished output) and kills there, before the stage's job ends, in one of two ways:

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

import pytest
from micro import (
    STAGES,
    checksums,
    copy_study,
    job_processes,
    remove_outputs,
    snakemake,
    start,
    wait_for,
)

pytestmark = pytest.mark.reliability

CASES = [(s, m) for s in STAGES for m in ("group", "job") if m == "group" or s not in ("embedding", "stage2")]


@pytest.mark.parametrize(("stage", "mode"), CASES)
def test_a_run_killed_mid_stage_resumes_to_the_same_tables(micro_study, tmp_path, stage, mode):
    spec = STAGES[stage]
    work = copy_study(micro_study, tmp_path / "study")
    reference = checksums(micro_study)
    remove_outputs(work, stage)
    run = start(work)

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
