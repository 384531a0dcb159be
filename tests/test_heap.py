"""Freed heap memory goes back to the system after a run (the demo's peak crept 400 MiB over 12 runs without it)."""

import ctypes
import sys
from pathlib import Path

import pytest

from engine.heap import _libc, release_freed_memory


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or _libc() is None, reason="glibc's malloc_trim only")
def test_freed_blocks_pinned_below_a_live_one_are_returned():
    """200 MiB of small blocks freed under one block still in use: free() alone cannot shrink the heap past the
    live block, so the pages stay resident until release_freed_memory hands them back."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = []
    for _ in range(200 * 1024):
        block = libc.malloc(1024)
        ctypes.memset(block, 1, 1024)  # touched, so resident
        blocks.append(block)
    pin = libc.malloc(1024)
    for block in blocks:
        libc.free(block)
    try:
        held = resident_mib()
        assert release_freed_memory() is True
        assert resident_mib() < held - 150, "the freed pages should have left the process"
    finally:
        libc.free(pin)
