"""Shared fixtures: paths of the repository and of the read-only reference data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_data() -> Path:
    """Folder of the real reference data; tests that need it skip where it is absent."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"reference data not found at {data} (it lives beside the repository as ../shared)")
    return data


@pytest.fixture
def torch_one_thread():
    """Run a test with one torch thread (tiny models are slower with several threads on a shared CPU)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
