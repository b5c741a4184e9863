"""profiles/slurm without a cluster: it parses, names only rules that exist, and maps resources as documented.

Snakemake silently ignores `groups:` / `set-resources:` / `set-threads:` entries for unknown rules, so
a renamed rule would quietly lose its grouping or its GPU request on the cluster; this test catches it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yte

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
ENV_VARS = ("MUSTSURV_SLURM_PARTITION", "MUSTSURV_SLURM_ACCOUNT")


def _profile(monkeypatch, **env: str) -> dict:
    """The profile as Snakemake reads it (YTE template evaluated) under the given environment."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with open(PROFILE / "config.yaml") as f:
        return yte.process_yaml(f, require_use_yte=True)


def _rules() -> set[str]:
    """Names of every rule and checkpoint defined in the Snakefile and workflow/rules/*.smk."""
    names = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        names |= set(re.findall(r"^(?:rule|checkpoint) (\w+):", path.read_text(), flags=re.M))
    return names


def test_profile_names_only_existing_rules(monkeypatch):
    prof = _profile(monkeypatch)
    named = set(prof["groups"]) | set(prof.get("set-resources", {})) | set(prof.get("set-threads", {}))
    unknown = named - _rules()
    assert not unknown, f"profiles/slurm/config.yaml names rules that do not exist: {sorted(unknown)}"
    assert set(prof["group-components"]) <= set(prof["groups"].values())


def test_partition_and_account_come_from_the_environment(monkeypatch):
    prof = _profile(monkeypatch)
    assert prof["executor"] == "slurm" and prof["slurm-status-command"] == "squeue"
    assert "slurm_partition" not in prof["default-resources"]   # unset: the cluster's default partition
    assert "slurm_account" not in prof["default-resources"]
    prof = _profile(monkeypatch, MUSTSURV_SLURM_PARTITION="all", MUSTSURV_SLURM_ACCOUNT="0042")
    # Quoted, so that names like `all` or `0042` stay strings when Snakemake evaluates the resource.
    assert prof["default-resources"]["slurm_partition"] == "'all'"
    assert prof["default-resources"]["slurm_account"] == "'0042'"


def test_dry_run_maps_resources(monkeypatch, tmp_path):
    """A dry run with the profile: embedding batches ask for a GPU in the partition that
    `slides.embed_resources` names; other jobs use the default partition and no GPU."""
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")
    cfg = tmp_path / "config" / "config.yaml"
    cfg.write_text(cfg.read_text() + "\nslides:\n  batch_slides: 8\n"
                   "  embed_resources: {gpu: 1, mem_mb: 16000, runtime: 60, slurm_partition: gpu-a100}\n")
    monkeypatch.setenv("MUSTSURV_SLURM_PARTITION", "all")
    monkeypatch.delenv("MUSTSURV_SLURM_ACCOUNT", raising=False)
    res = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "-n",
                          "--directory", str(tmp_path), "--workflow-profile", str(PROFILE)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    jobs = [(m.group(1), r.group(1)) for block in re.split(r"\n\s*\n", out)
            if (m := re.search(r"^\s*(?:local)?rule (\w+):", block, flags=re.M))
            and (r := re.search(r"^\s+resources: (.*)$", block, flags=re.M))]
    assert jobs, out[-4000:]
    embed = [r for rule, r in jobs if rule.startswith("slides_embed_")]
    # 27 slides of the tiny study in batches of 8: four GPU jobs.
    assert len(embed) == 4
    assert all("gpu=1" in r and "slurm_partition=gpu-a100" in r and "mem_mb=16000" in r for r in embed)
    others = [(rule, r) for rule, r in jobs if not rule.startswith("slides_embed_")]
    assert others and all("slurm_partition=all" in r and "gpu=1" not in r for rule, r in others), others
    # The per-cohort steps after the slides are one group job.
    assert "cohort" in re.findall(r"Group job (\w+)", out)
