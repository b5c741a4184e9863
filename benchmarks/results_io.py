"""Writing a benchmark's result: the measurements plus the machine they were taken on, as JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_result(result: dict[str, Any], out: str | Path) -> None:
    """Add the CPU count, load average, platform and torch version to ``result``, write it to ``out``
    (parents created) and print it."""
    import torch

    result = {**result, "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
              "platform": platform.platform(), "torch": torch.__version__}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
