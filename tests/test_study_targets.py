"""The run's targets as the workflow's parse sees them (mustsurv.study.targets)."""

import sys

from mustsurv.study import targets


def test_the_first_parse_reads_the_command_line_and_hands_it_to_the_jobs(monkeypatch):
    monkeypatch.delenv(targets.ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/snakemake", "--cores", "2", "dmml", "all"])
    assert targets.requested_targets() == ["dmml", "all"]
    # a job re-parsing the Snakefile (another command line) sees the planning run's targets
    monkeypatch.setattr(sys, "argv", ["/usr/bin/snakemake", "--target-jobs", "study_tables:"])
    assert targets.requested_targets() == ["dmml", "all"]


def test_a_parse_from_python_has_no_targets(monkeypatch):
    monkeypatch.delenv(targets.ENV, raising=False)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest", "-q", "tests/test_x.py"])
    assert targets.requested_targets() == []
    assert targets.ENV not in __import__("os").environ
