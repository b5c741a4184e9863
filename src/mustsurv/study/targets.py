"""The targets a snakemake run was asked for, as the workflow's parse sees them.

Snakemake hands a Snakefile its targets only after parsing it, but the `dmml` target changes the study
(DMML's rows join the tables), so the parse reads them itself.
"""

from __future__ import annotations

import os
import sys

ENV = "MUSTSURV_TARGETS"
"""Where the first parse leaves the run's targets for its jobs."""


def requested_targets() -> list[str]:
    """The targets on this snakemake command line.

    The first parse (the main snakemake process) reads them from its command line and leaves them in
    ``MUSTSURV_TARGETS``, which its jobs inherit (local jobs, and SLURM jobs: sbatch exports the environment),
    so a job that re-parses the Snakefile sees the same study as the run that planned it.

    Returns:
        The targets (empty: the default target, or the Snakefile parsed from Python rather than by snakemake).
    """
    if ENV in os.environ:
        return os.environ[ENV].split()
    if "snakemake" not in sys.argv[0]:  # parsed from Python (e.g. a test), not by a snakemake command
        return []
    from snakemake.cli import get_argument_parser

    try:
        targets = get_argument_parser().parse_known_args(sys.argv[1:])[0].targets or []
    except SystemExit:  # a command line its parser does not accept
        return []
    os.environ[ENV] = " ".join(targets)
    return list(targets)
