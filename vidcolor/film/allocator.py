"""Keep large freed buffers for reuse (glibc).

Every frame allocates and frees tensors of many megabytes. By default glibc serves blocks
that large with fresh ``mmap`` calls and returns them to the system on free, so each frame
pays for the kernel zero-filling the same pages again: at 1080p that system time was larger
than the colorization itself (BENCHMARKS.md). Raising the mmap and trim thresholds keeps
the freed memory in the heap for the next frame; the peak stays what one batch needs.

The decoding and encoding threads would each get heaps (arenas) of their own, which the
high trim threshold then never shrinks: peak memory crept up with the length of a film.
Two arenas are enough for a pipeline of three threads and keep it flat (BENCHMARKS.md, 8).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
_LIMIT = 1 << 30  # glibc caps the mmap threshold at 32 MiB on 64-bit unless set this way


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for a streaming workload; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_THRESHOLD, _LIMIT) and mallopt(M_TRIM_THRESHOLD, _LIMIT) and mallopt(M_TOP_PAD, 64 << 20)
    return bool(ok and mallopt(M_ARENA_MAX, 2))
