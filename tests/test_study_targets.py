"""The run's targets as the workflow's parse sees them (mustsurv.study.targets)."""

import os
import sys

from mustsurv.study import targets


def _no_targets_in_env(monkeypatch) -> None:
    """Remove MUSTSURV_TARGETS for the test and restore the environment afterwards (also when the code sets it)."""
    monkeypatch.setenv(targets.ENV, "")  # recorded first, so the undo removes whatever the test leaves
    monkeypatch.delenv(targets.ENV)


def test_the_first_parse_reads_the_command_line_and_hands_it_to_the_jobs(monkeypatch):
    _no_targets_in_env(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/snakemake", "--cores", "2", "dmml", "all"])
    assert targets.requested_targets() == ["dmml", "all"]
    # a job re-parsing the Snakefile (another command line) sees the planning run's targets
    monkeypatch.setattr(sys, "argv", ["/usr/bin/snakemake", "--target-jobs", "study_tables:"])
    assert targets.requested_targets() == ["dmml", "all"]


def test_a_parse_from_python_has_no_targets(monkeypatch):
    _no_targets_in_env(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest", "-q", "tests/test_x.py"])
    assert targets.requested_targets() == []
    assert targets.ENV not in os.environ


def test_the_tests_leave_no_targets_behind():
    """Later tests start snakemake subprocesses, which would read a leaked MUSTSURV_TARGETS."""
    assert targets.ENV not in os.environ
