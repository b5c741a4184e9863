"""Logging set-up shared by the workflow scripts: everything a step says goes to the rule's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def log_to_file(path: str | None, name: str = "mustsurv") -> logging.Logger:
    """Send the ``mustsurv`` logger (and Python warnings) to a file, and the error that ends the step too.

    The error (with its traceback) is written to the log as well as to stderr, so the log Snakemake points
    at after a failed job says why it failed.

    Args:
        path: the rule's log file; stderr when None.
        name: name of the logger to configure.

    Returns:
        The configured logger.
    """
    handler: logging.Handler
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("mustsurv")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").handlers[:] = [handler]
    previous = sys.excepthook

    def log_uncaught(kind, value, traceback) -> None:
        root.error("step failed: %s: %s", kind.__name__, value, exc_info=(kind, value, traceback))
        previous(kind, value, traceback)

    sys.excepthook = log_uncaught
    return logging.getLogger(name)
