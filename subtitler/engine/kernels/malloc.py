"""Keep freed large blocks in the heap (Linux, glibc).

glibc serves blocks above its mmap threshold (at most 32 MB) with fresh mmaps and
unmaps them on free, so every new array that large page-faults all of its memory
in again. The encoder makes several arrays of 54 MB per layer (tiny's attention
scores); MLX's element-wise ops on them ran several times slower than on reused
memory. Raising the thresholds lets ``free`` keep the blocks
for the next window. ``SUBTITLER_MALLOC=0`` leaves glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20  # blocks up to this size come from the heap
TRIM_THRESHOLD = 512 << 20  # free memory at the heap top kept for reuse

_done = False


def keep_freed_blocks() -> bool:
    """Set glibc's thresholds once; True when they were set."""
    global _done
    if (
        _done
        or not sys.platform.startswith("linux")
        or os.environ.get("SUBTITLER_MALLOC", "").lower() in ("0", "off")
    ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _done = ok
    return ok


def give_back_freed() -> None:
    """Return the heap's free memory to the system (``malloc_trim``): after a model load,
    whose file and conversions are freed at once, the thresholds above would keep them."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
