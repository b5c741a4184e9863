"""The rule's log file says why a step failed: the uncaught error and its traceback are written to it."""

from __future__ import annotations

import subprocess
import sys


def test_the_error_that_ends_a_step_is_in_its_log(tmp_path):
    log = tmp_path / "step.log"
    code = ("from mustsurv.logging_utils import log_to_file\n"
            f"log_to_file({str(log)!r}).info('started')\n"
            "raise OSError(28, 'No space left on device')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "No space left on device" in res.stderr  # stderr as before
    text = log.read_text()
    assert "started" in text and "step failed: OSError: [Errno 28] No space left on device" in text
    assert "Traceback" in text
