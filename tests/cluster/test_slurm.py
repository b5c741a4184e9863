"""The workflow on a real SLURM cluster through profiles/slurm, against a local run of the same study.

Needs a running SLURM (``sudo bash tests/cluster/slurm_up.sh`` brings up a single-node one) and
``MUSTSURV_SLURM=1``; ``.ci/run`` does both. The tiny test study (``.test/config``) is run twice in
temporary working directories — locally, and with ``--workflow-profile profiles/slurm`` — each bounded
by ``timeout -k``. The cluster run must have submitted its jobs with ``sbatch`` (SLURM job ids in the
Snakemake log, completed in SLURM's job-completion log where the cluster keeps one), and both runs must
produce the same files with byte-identical tables.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mustsurv.study import layout

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
# What both runs build: the study's Table 2.
TARGET = layout.study_table("table2.csv")
# Seconds allowed per run (override with MUSTSURV_SLURM_TIMEOUT); SIGKILL 30 s after SIGTERM.
LIMIT_S = int(os.environ.get("MUSTSURV_SLURM_TIMEOUT", "1200"))
# Cores of the test node: caps threads and the width of group jobs (the profile's `cores` is sized for
# real cluster nodes).
CORES = 2
# Compared byte for byte; other files (HDF5, figures, checkpoints) must exist in both runs, and HDF5
# files must hold equal datasets and attributes.
TABLE_SUFFIXES = {".csv", ".tsv", ".json", ".geojson", ".maf"}

pytestmark = pytest.mark.skipif(
    os.environ.get("MUSTSURV_SLURM") != "1",
    reason="SLURM cluster test: bring up SLURM (sudo bash tests/cluster/slurm_up.sh) and set MUSTSURV_SLURM=1",
)

JOBID = re.compile(r"SLURM jobid (\d+)")
SBATCH = re.compile(r"sbatch call: (sbatch .*)")


def _command(work: Path, *args: str, limit: int = LIMIT_S) -> list[str]:
    return ["timeout", "-k", "30", str(limit), sys.executable, "-m", "snakemake",
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), *args]


def _start(work: Path, *args: str) -> subprocess.Popen:
    """Snakemake on ``work`` in the background, bounded by ``timeout -k 30 LIMIT_S``; output to files beside it."""
    with open(work.parent / f"{work.name}.stdout", "w") as out, open(work.parent / f"{work.name}.stderr", "w") as err:
        return subprocess.Popen(_command(work, *args), cwd=work, stdout=out, stderr=err, text=True)


def _finish(proc: subprocess.Popen, work: Path) -> subprocess.CompletedProcess:
    """Wait for a run from `_start`; after a timeout, unlock its working directory."""
    proc.wait()
    out = (work.parent / f"{work.name}.stdout").read_text(errors="replace")
    err = (work.parent / f"{work.name}.stderr").read_text(errors="replace")
    if proc.returncode in (124, 137):
        subprocess.run(_command(work, "--unlock", limit=300), cwd=work, capture_output=True, text=True)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _tail(res: subprocess.CompletedProcess, n: int = 6000) -> str:
    return f"exit {res.returncode}\n--- stdout ---\n{res.stdout[-n:]}\n--- stderr ---\n{res.stderr[-n:]}"


def _study(tmp_path_factory, name: str) -> Path:
    work = tmp_path_factory.mktemp(name)
    shutil.copytree(REPO / ".test" / "config", work / "config")
    return work


def _log_text(res: subprocess.CompletedProcess, work: Path) -> str:
    """Everything the run logged: its output and the run's log under .snakemake/log."""
    text = res.stdout + res.stderr
    for log in (work / ".snakemake" / "log").glob("*.snakemake.log"):
        text += log.read_text(errors="replace")
    return text


def _slurm_job_ids(res: subprocess.CompletedProcess, work: Path) -> list[str]:
    """SLURM job ids the executor reported."""
    return sorted(set(JOBID.findall(_log_text(res, work))), key=int)


def _sbatch_calls(res: subprocess.CompletedProcess) -> list[str]:
    """The sbatch command lines the executor ran (logged with --verbose)."""
    return SBATCH.findall(res.stdout + res.stderr)


def _completion_log() -> Path | None:
    """SLURM's job-completion log file, when the cluster writes one (JobCompType=jobcomp/filetxt)."""
    out = subprocess.run(["timeout", "20", "scontrol", "show", "config"], capture_output=True, text=True).stdout
    conf = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", out, flags=re.M))
    if conf.get("JobCompType") != "jobcomp/filetxt" or not conf.get("JobCompLoc"):
        return None
    path = Path(conf["JobCompLoc"])
    return path if path.is_file() else None


def _outputs(work: Path) -> set[Path]:
    """Relative paths of every file under results/ and resources/demo/."""
    files = set()
    for top in ("results", "resources/demo"):
        files |= {p.relative_to(work) for p in (work / top).rglob("*") if p.is_file()}
    return files


def _h5_content(path: Path) -> dict:
    """{name: array} of every dataset and {name@attr: value} of every attribute of an HDF5 file."""
    content: dict = {}

    def visit(name, obj):
        for key, value in obj.attrs.items():
            content[f"{name}@{key}"] = np.asarray(value)
        if isinstance(obj, h5py.Dataset):
            content[name] = obj[()]

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return content


def _same_h5(a: Path, b: Path) -> bool:
    ca, cb = _h5_content(a), _h5_content(b)
    return ca.keys() == cb.keys() and all(np.array_equal(ca[k], cb[k]) for k in ca)


@pytest.fixture(scope="module")
def cluster():
    """Fail (not skip) when MUSTSURV_SLURM=1 but no SLURM answers: the run was asked for explicitly."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        pytest.fail("MUSTSURV_SLURM=1 but sbatch/squeue are not installed; run tests/cluster/slurm_up.sh")
    res = subprocess.run(["timeout", "20", "sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.strip():
        pytest.fail(f"MUSTSURV_SLURM=1 but sinfo does not answer ({res.stderr.strip()}); run slurm_up.sh")


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """(local workdir, slurm workdir, slurm result, slurm wall seconds) of the tiny study.

    The runs go one after the other (the node has 2 cores; side by side they starve each other).
    """
    local, remote = _study(tmp_path_factory, "local"), _study(tmp_path_factory, "slurm")
    res_local = _finish(_start(local, "--cores", str(CORES), TARGET), local)
    start = time.monotonic()
    proc_remote = _start(remote, "--workflow-profile", str(PROFILE), "--cores", str(CORES), "--verbose", TARGET)
    res = _finish(proc_remote, remote)
    wall = time.monotonic() - start
    if res.returncode != 0:
        ids = _slurm_job_ids(res, remote)
        if ids:  # a timed-out or failed run may leave jobs queued: cancel exactly those
            subprocess.run(["timeout", "30", "scancel", *ids], capture_output=True)
        pytest.fail(f"SLURM run failed after {wall:.0f} s\n" + _tail(res))
    assert res_local.returncode == 0, "local run failed\n" + _tail(res_local)
    return local, remote, res, wall


def test_jobs_went_through_sbatch(runs):
    local, remote, res, wall = runs
    ids = _slurm_job_ids(res, remote)
    assert ids, "no SLURM job id in the Snakemake log: nothing was submitted with sbatch\n" + _tail(res)
    comp = _completion_log()
    if comp is not None:
        records = {}
        for line in comp.read_text(errors="replace").splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "JobId" in fields:
                records[fields["JobId"]] = fields
        missing = [i for i in ids if i not in records]
        assert not missing, f"jobs {missing} are not in SLURM's completion log {comp}"
        failed = {i: records[i].get("JobState") for i in ids if records[i].get("JobState") != "COMPLETED"}
        assert not failed, f"SLURM jobs did not complete: {failed}"
    # Per-slide jobs were grouped: fewer SLURM jobs than Snakemake jobs.
    n_rule_jobs = len(re.findall(r"^\s*jobid: \d+", res.stdout + res.stderr, flags=re.M))
    print(f"\nSLURM run: {len(ids)} sbatch jobs for {n_rule_jobs} Snakemake jobs, {wall:.0f} s wall")
    if n_rule_jobs:
        assert len(ids) < n_rule_jobs, "per-slide jobs were not grouped"


def test_gpu_rules_request_a_gpu(runs):
    """The embedding jobs were submitted with --gpus (the profile's mapping of `resources: gpu=1`)."""
    local, remote, res, wall = runs
    calls = _sbatch_calls(res)
    assert calls, "no sbatch call in the verbose log\n" + _tail(res)
    embed = [c for c in calls if "slides_embed" in c or "slide_embed" in c]
    if not embed:
        pytest.skip("no GPU rule ran in this study")
    assert all(re.search(r"--gpus[= ]1\b", c) for c in embed), "an embedding job asked for no GPU:\n" + embed[0]
    # The tiny study trains on the CPU (training.gpu: 0), so no other job asks for a GPU.
    others = [c for c in calls if c not in embed]
    assert not any("--gpus" in c for c in others), "a CPU job asked for a GPU"


def test_outputs_equal_a_local_run(runs):
    local, remote, res, wall = runs
    files_local, files_remote = _outputs(local), _outputs(remote)
    assert files_local, "the local run wrote nothing under results/ or resources/demo/"
    assert files_local == files_remote, (
        f"only local: {sorted(map(str, files_local - files_remote))[:20]}; "
        f"only SLURM: {sorted(map(str, files_remote - files_local))[:20]}")
    differ = []
    for rel in sorted(files_local):
        a, b = local / rel, remote / rel
        if rel.suffix in TABLE_SUFFIXES or rel.parts[:2] == ("resources", "demo"):
            if a.read_bytes() != b.read_bytes():
                differ.append(str(rel))
        elif rel.suffix == ".h5" and not _same_h5(a, b):
            differ.append(str(rel))
    assert not differ, f"{len(differ)} files differ between the local and the SLURM run: {differ[:20]}"
