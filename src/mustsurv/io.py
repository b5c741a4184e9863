"""Atomic file writing: every output is written to a temporary name and renamed when complete."""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failure inside the block removes the temporary file and leaves any existing ``path`` untouched,
    so an interrupted step never leaves a half-written output that Snakemake would take as finished. A
    process killed with SIGKILL cannot remove its temporary file: the next writer of ``path`` removes such
    leftovers (``.<name>.tmp<pid>``) first (only one job writes an output at a time).

    Args:
        path: the final output path; its parent folder is created.

    Yields:
        The temporary path (``.<name>.tmp<pid>`` in the same folder) to write to.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp*"):
        if stale.name[len(final.name) + 5:].isdigit():
            stale.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically.

    Args:
        path: output file.
        text: the whole content.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text)
