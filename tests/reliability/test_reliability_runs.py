"""Whole runs of the micro study: byte-identical with 1 or 2 cores, a second Snakemake refused by the lock, and a
full disk while writing features or a checkpoint (fault injected into the job's writer)."""

from __future__ import annotations

import os
import shutil

import pytest
from micro import (
    STAGES,
    checksums,
    copy_study,
    remove_outputs,
    snakemake,
    stage_targets,
    start,
    wait_for,
)

pytestmark = pytest.mark.reliability

EVERY_RESULT = ("results/**/*",)

# Fault injection: a sitecustomize on the jobs' PYTHONPATH makes one writer of one script fail with ENOSPC,
# as a full disk would (a checkpoint half-written first). Product code is not touched.
SITECUSTOMIZE = """\
import errno, os, sys
_fault = os.environ.get("MICRO_FAULT")
if _fault == "features" and any(a.endswith("slides_embed.py") for a in sys.argv):
    import h5py

    def _full(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device (injected)")

    h5py.Dataset.__setitem__ = _full
elif _fault == "checkpoint" and any(a.endswith("must_train.py") for a in sys.argv):
    import torch

    _save = torch.save

    def _half_then_full(obj, f, *args, **kwargs):
        _save(obj, f, *args, **kwargs)
        os.truncate(f, os.path.getsize(f) // 2)
        raise OSError(errno.ENOSPC, "No space left on device (injected)")

    torch.save = _half_then_full
"""


def test_runs_with_1_and_2_cores_are_byte_identical(micro_inputs, micro_study, tmp_path):
    """A second clean run, from the same generated inputs with ``--cores 1``, writes every result file
    (features, checkpoints, predictions, tables) byte for byte as the reference run with ``--cores 2``; each
    job's thread count comes from the config, not from ``--cores``."""
    work = copy_study(micro_inputs, tmp_path / "study")
    res = snakemake(work, cores=1)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    ours, reference = checksums(work, EVERY_RESULT), checksums(micro_study, EVERY_RESULT)
    assert len(reference) > 50 and ours.keys() == reference.keys()
    assert [p for p in reference if ours[p] != reference[p]] == []
    embed_log = next(work.glob("logs/slides/*/features/*/*.log")).read_text()
    assert "(2 torch threads" in embed_log  # `slides.threads: 2`, not the 1 of --cores 1
    shutil.rmtree(work)


def test_a_second_snakemake_is_refused_by_the_lock_and_the_first_finishes(micro_study, tmp_path):
    work = copy_study(micro_study, tmp_path / "study")
    reference = checksums(work)
    remove_outputs(work, "tables")
    first = start(work)
    wait_for(lambda: any((work / ".snakemake" / "locks").glob("*")), first, "the first run's lock")
    second = snakemake(work)
    out = second.stdout + second.stderr
    assert second.returncode != 0 and "LockException" in out and "--unlock" in out, out[-3000:]
    assert first.wait(timeout=600) == 0, (work / "run.out").read_text()[-4000:]
    assert checksums(work) == reference
    shutil.rmtree(work)


@pytest.mark.parametrize("fault", ["features", "checkpoint"])
def test_a_full_disk_fails_the_job_leaves_no_final_file_and_the_rerun_completes(micro_study, tmp_path, fault):
    work = copy_study(micro_study, tmp_path / "study")
    stage = {"features": "embedding", "checkpoint": "stage1"}[fault]
    final, targets = STAGES[stage].outputs[0], stage_targets(micro_study, stage)
    reference = checksums(work, STAGES[stage].outputs)
    remove_outputs(work, stage)
    before = checksums(work, EVERY_RESULT)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "MICRO_FAULT": fault,
           "PYTHONPATH": os.pathsep.join([str(inject), *filter(None, [os.environ.get("PYTHONPATH")])])}
    full = snakemake(work, env=env, targets=targets)
    out = full.stdout + full.stderr
    assert full.returncode != 0, out[-3000:]
    logs = "".join(p.read_text(errors="replace") for p in work.glob("logs/**/*.log"))
    assert "No space left on device (injected)" in logs
    assert not list(work.glob(final)), "a file was left at its final name"
    assert not list(work.glob(f"{final}.progress")) and not list(work.rglob(".*.tmp*"))
    after = checksums(work, EVERY_RESULT)
    assert [p for p in before if after.get(p) != before[p]] == [], "a finished output was lost or changed"
    res = snakemake(work, targets=targets)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert checksums(work, STAGES[stage].outputs) == reference
    shutil.rmtree(work)
