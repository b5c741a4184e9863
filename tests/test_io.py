"""Atomic writing: a failure keeps the old file; a killed writer's temporary file is removed by the next one."""

from __future__ import annotations

import pytest

from mustsurv.io import atomic_path, write_text_atomic


def test_a_failed_write_keeps_the_finished_file_and_leaves_no_temporary(tmp_path):
    out = tmp_path / "table.tsv"
    write_text_atomic(out, "finished\n")
    with pytest.raises(OSError, match="disk full"), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise OSError("disk full")
    assert out.read_text() == "finished\n" and sorted(p.name for p in tmp_path.iterdir()) == ["table.tsv"]


def test_the_next_writer_removes_a_killed_writers_temporary_file(tmp_path):
    out = tmp_path / "model.pt"
    stale = tmp_path / ".model.pt.tmp4242"  # left by a writer killed with SIGKILL
    other = tmp_path / ".model.pt.progress.tmp4242"  # another output's: not ours to remove
    stale.write_bytes(b"partial")
    other.write_bytes(b"partial")
    write_text_atomic(out, "done")
    assert out.read_text() == "done" and not stale.exists() and other.exists()
