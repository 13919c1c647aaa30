"""Giving memory back to the system after bursts of large requests (glibc's allocator; elsewhere a no-op).

Request bodies (up to ``max_body_bytes``) and decoded images are allocations of many megabytes. glibc serves an
allocation that large with its own mapping, unmapped when freed, but raises that threshold to the size of each
such block freed (up to 32 MiB), so after the first large request the next ones come from the arenas of the
threads that made them, and a burst leaves the arenas grown: an idle process sat at 2.4x its size after warm-up.
A fixed threshold keeps every large block a mapping of its own, and ``malloc_trim`` once the service is idle
returns what the arenas kept of the small ones.

Fixing the mmap threshold also fixes glibc's trim threshold, at 128 KiB: every free at the top of an arena then
returned the memory at once, and the next request faulted it in again (an HD photo's pixels and canvas: 2-3 ms a
request). A larger trim threshold keeps that much free at the top of each arena while the service is busy; the
idle trim gives it back.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks of at least this many bytes get a mapping of their own, given back when freed: the near-limit bodies and
# the large photos' pixels. Smaller ones (an HD photo's pixels and canvas, about 6 MB each) stay in the arenas,
# where they are reused: mapped afresh, each request paid their page faults (README, "Limits and security").
MMAP_THRESHOLD = 8 * 1024 * 1024
# Free memory an arena keeps at its top while the service is busy, until the idle trim: an HD request's blocks
# under MMAP_THRESHOLD (its pixels, their copy, its canvas) with room to spare. 32 MiB left more behind after
# bursts (README, "Limits and security").
TRIM_THRESHOLD = 12 * 1024 * 1024
# How long the service must have been idle before the arenas are trimmed (a trim walks every arena).
TRIM_AFTER_IDLE_S = 1.0


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _glibc()


def map_large_blocks() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD` and its trim threshold at :data:`TRIM_THRESHOLD` (call
    once at start); False where it cannot."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        _LIBC.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def trim() -> None:
    """Return the free memory at the top of every glibc arena to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class IdleTrim:
    """Calls :func:`trim` once nothing has been busy for :data:`TRIM_AFTER_IDLE_S` (event-loop thread only)."""

    def __init__(self, delay_s: float = TRIM_AFTER_IDLE_S) -> None:
        self._delay_s = delay_s
        self._pending: asyncio.TimerHandle | None = None

    def busy(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def idle(self) -> None:
        self.busy()
        self._pending = asyncio.get_running_loop().call_later(self._delay_s, self._trim)

    def _trim(self) -> None:
        self._pending = None
        trim()
