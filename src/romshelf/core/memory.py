"""Process-level memory tuning for the serving process."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("romshelf.memory")

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 * 1024 * 1024


def tune_malloc() -> None:
    """Pin glibc's mmap threshold at 8 MiB.

    glibc raises the threshold dynamically after a large block is freed, so the 19 MiB work area
    of each argon2 password check would afterwards come from the heap and stay resident for the
    life of the process (~20 MB per thread that ever checked a password). With a fixed threshold,
    blocks of 8 MiB and more are always mapped and returned to the OS on free, while ordinary I/O
    buffers (1-4 MiB) keep using the fast heap. No-op where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused")
