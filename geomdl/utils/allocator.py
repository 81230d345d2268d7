"""Keep freed memory in the process heap (glibc ``mallopt``) for training loops on the CPU.

PyTorch's CPU allocator hands every tensor to ``malloc``. With glibc's defaults, blocks of a few MB
(message tensors ``[E, O, C]`` of graph networks) are returned to the kernel when freed and
page-faulted back in (zero-filled) when the next step allocates them again: for PONITA on 3BPA that
is ~20 000 page faults and ~25 % of the CPU time of a training step. :func:`keep_freed_memory` raises
the mmap threshold to its maximum (32 MiB) and switches off heap trimming, so freed blocks are reused.
The cost: the process keeps its peak heap size until it exits. No effect (returns ``False``) on
non-glibc platforms.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
_MAX_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit on 64-bit (HEAP_MAX_SIZE / 2)
_MAX_C_INT = 2**31 - 1  # mallopt's value is a C int


def keep_freed_memory(top_pad: int = 64 * 1024 * 1024) -> bool:
    """Tune glibc malloc for repeated large allocations; returns whether it took effect.

    Args:
        top_pad: bytes requested from the kernel beyond each heap extension (default 64 MiB), at most
            ``2**31 - 1`` (``mallopt`` takes a C ``int``: a larger value would be silently truncated).
    """
    if isinstance(top_pad, bool) or not isinstance(top_pad, int) or not 0 <= top_pad <= _MAX_C_INT:
        raise ValueError(f"top_pad must be an int of bytes in [0, 2**31 - 1], got {top_pad!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, _MAX_MMAP_THRESHOLD) == 1
    ok &= mallopt(M_TRIM_THRESHOLD, _MAX_C_INT) == 1
    ok &= mallopt(M_TOP_PAD, top_pad) == 1
    return bool(ok)


__all__ = ["keep_freed_memory"]
