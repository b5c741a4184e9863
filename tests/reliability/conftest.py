"""Fixtures of the reliability matrix: the micro study (tests/reliability/micro.py), run once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from micro import COHORT, MICRO_CONFIG, copy_study, snakemake


@pytest.fixture(scope="session")
def micro_inputs(tmp_path_factory) -> Path:
    """A study folder holding the micro study's config and its generated demo inputs only."""
    work = tmp_path_factory.mktemp("micro_inputs")
    (work / "config").mkdir()
    (work / "config" / "config.yaml").write_text(MICRO_CONFIG)
    res = snakemake(work, "--until", "demo_tables", f"demo_slides_{COHORT}_b000", targets=())
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


@pytest.fixture(scope="session")
def micro_study(micro_inputs, tmp_path_factory) -> Path:
    """The micro study run to its tables with ``--cores 2`` (the uninterrupted reference); never modified."""
    work = copy_study(micro_inputs, tmp_path_factory.mktemp("micro") / "study")
    res = snakemake(work, cores=2)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work
