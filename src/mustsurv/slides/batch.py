"""Run one per-slide step over a batch of slides in one process, isolating failures per slide.

Per-job start-up (Python, torch, timm: 5-7 s on a 2-core machine) dwarfs the work on small slides, so the
workflow processes slides in batches (``slides.batch_slides`` per job). One slide's failure must not
cost the others their outputs: every slide is attempted, and a slide that fails is logged with its name
and gets *failure outputs* (zero patches, ``status = failed`` and the error in their attributes) written
by ``on_failure``. The batch job itself succeeds, so Snakemake keeps every finished slide; the cohort's
slide summary then stops the run naming the failed slides (or, with ``slides.skip_failed``, leaves them
out of their patients' bags and reports them). A full disk or quota (ENOSPC, EDQUOT) is no fault of the
slide: it fails the job, so the rerun after space returns embeds the slide instead of reading it as failed.
"""

from __future__ import annotations

import errno
import logging
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

log = logging.getLogger("mustsurv.slides")

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""Errors of the machine, not of a slide: they fail the job instead of being recorded as a failed slide."""


def run_batch(slide_ids: Sequence[str], step: Callable[[str], T], what: str,
              on_failure: Callable[[str, str], None]) -> tuple[dict[str, T], dict[str, str]]:
    """Call ``step(slide_id)`` for every slide of a batch, isolating failures per slide.

    An exception of one slide (``Exception``, not ``KeyboardInterrupt``) is logged with the slide's name
    and handed to ``on_failure(slide_id, message)``, which writes that slide's failure outputs; the
    remaining slides still run. An error inside ``on_failure`` propagates (the job then fails), and so
    does a full disk (:data:`DISK_FULL`).

    Args:
        slide_ids: the slides of the batch.
        step: the per-slide step, called with the slide's id.
        what: name of the step, for the log.
        on_failure: writes a failed slide's outputs, called with the slide's id and the error message.

    Returns:
        ``{slide_id: result}`` of the slides that succeeded and ``{slide_id: error message}`` of those that
        failed.
    """
    results: dict[str, T] = {}
    failures: dict[str, str] = {}
    for i, slide_id in enumerate(slide_ids, 1):
        try:
            results[slide_id] = step(slide_id)
        except Exception as exc:  # noqa: BLE001 - recorded per slide in its outputs
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                log.error("%s: %s stopped: %s; free space and rerun", slide_id, what, exc)
                raise
            failures[slide_id] = f"{type(exc).__name__}: {exc}"
            log.exception("%s: %s failed (%d/%d); writing it as a failed slide", slide_id, what, i, len(slide_ids))
            on_failure(slide_id, failures[slide_id])
    if failures:
        log.error("%s failed for %d of %d slide(s): %s", what, len(failures), len(slide_ids), ", ".join(failures))
    else:
        log.info("%s: %d slide(s) done", what, len(results))
    return results, failures
