"""Hand freed large CPU buffers back to the operating system (glibc's malloc).

glibc serves a large allocation with its own mmap and unmaps it on free, but after the first such free it
raises its mmap threshold to that size (up to 32 MB), so the next buffers of a few to 32 MB come from the
heap, where freed memory stays resident. Training MUST on a 200k-patch bag allocates and frees thousands
of such buffers (one attention head's N x landmarks kernels, 25 MB each); the heap then holds about a
gigabyte more than is alive (4.2 vs 5.3 GB peak in ``benchmarks/must_bag_scaling.py``). A fixed threshold
keeps every buffer of 1 MB or more in its own mapping. Elsewhere (macOS, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameter of glibc's malloc.h


def release_large_buffers(threshold_bytes: int = 1 << 20) -> bool:
    """Fix glibc's mmap threshold so large freed buffers go back to the operating system.

    Args:
        threshold_bytes: allocations of at least this many bytes get their own mapping (default 1 MB).

    Returns:
        True when the threshold was applied, False where the C library is not glibc (no ``mallopt``).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    applied = bool(mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)))
    log.debug("malloc mmap threshold %d bytes: %s", threshold_bytes, "set" if applied else "unchanged")
    return applied
