"""Give freed heap memory back to the operating system after a large decode.

glibc keeps freed memory of large short-lived buffers (a decoded 16 MP snapshot is 48 MB, its resize
copies more) in the process's arenas; after a burst of large pictures the service then holds hundreds
of megabytes while idle. ``malloc_trim(0)`` returns what is free at the top of each arena. It is a
no-op where the C library has no such call (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Pixels of a decoded picture above which it is worth trimming afterwards (a 1080p frame is 2 MP).
LARGE_DECODE_PIXELS = 4_000_000


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> bool:
    """Ask the C library to return free heap memory to the OS; whether it could be asked."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
