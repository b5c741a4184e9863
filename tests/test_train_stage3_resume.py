"""Stage 3 killed with SIGKILL part-way resumes from its progress file and ends with the same weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _child(progress: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(HERE / "stage3_child.py"), str(progress), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _step(progress: Path) -> tuple[int, int]:
    state = torch.load(progress, weights_only=False)
    return state["index"], state["step"]


def test_a_killed_stage_3_resumes_to_the_same_weights(tmp_path):
    whole = _child(tmp_path / "a.progress", tmp_path / "a.pt")
    killed = _child(tmp_path / "b.progress", tmp_path / "b.pt")
    deadline = time.time() + 120
    while time.time() < deadline:  # kill after at least two checkpoints of the first diffusion model
        if (tmp_path / "b.progress").exists():
            try:
                index, step = _step(tmp_path / "b.progress")
            except Exception:  # noqa: BLE001 - the file is replaced atomically; retry on a torn read
                continue
            if index == 0 and step >= 50:
                break
        time.sleep(0.01)
    assert killed.poll() is None, "the child finished before it could be killed; slow it down"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "b.pt").exists()
    assert 50 <= _step(tmp_path / "b.progress")[1] < 600
    resumed = _child(tmp_path / "b.progress", tmp_path / "b.pt")
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read().decode()[-3000:]
    assert whole.wait(timeout=300) == 0, whole.stdout.read().decode()[-3000:]
    a, b = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
