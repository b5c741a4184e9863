"""The allocator setting returns freed multi-megabyte buffers to the operating system."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from mustsurv.allocator import release_large_buffers
    page = os.sysconf("SC_PAGE_SIZE")
    rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page / 2**20
    if sys.argv[1] == "fixed":
        assert release_large_buffers()
    base = rss()
    pins = []
    for _ in range(3):
        big = torch.ones(8_000_000); del big                               # 32 MB
        small = [torch.ones(2_000_000) for _ in range(10)]                 # 10 x 8 MB
        pins.append(torch.ones(65_536))  # 256 kB above them on the heap: free() cannot trim them away
        del small
    print(rss() - base)
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm") or sys.platform != "linux", reason="needs Linux")
def test_freed_buffers_leave_the_process_with_a_fixed_threshold() -> None:
    """Default glibc keeps the 8 MB buffers freed after a 32 MB one in its heap (80 MB or more resident, as
    long work leaves live small buffers above them); with the fixed threshold the process returns to its
    baseline. Each case runs in a fresh interpreter."""
    grown = {mode: float(subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                                        check=True).stdout.split()[-1]) for mode in ("default", "fixed")}
    assert grown["fixed"] < 10
    assert grown["default"] > 60
