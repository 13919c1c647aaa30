"""Budgets of what requests hold at once (decoded pixels, request bodies): past the limit, 503 ``queue_full``."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from service.errors import queue_full


class Budget:
    """Units (decoded pixels, body bytes) held at once over all requests: taking more than would fit in ``limit``
    is refused with ``queue_full`` before the memory is used, so memory follows the budget whatever the requests."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        # Taken in the CPU pool's threads, given back there or on the event loop.
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def hold(self) -> Hold:
        return Hold(self)

    def take(self, hold: Hold, units: int) -> None:
        with self._lock:
            # A released hold belongs to a request that has been answered or cancelled while its work was still
            # queued (a decode in the pool): that work must not take units nobody would give back.
            if hold.released or self._used + units > self.limit:
                raise queue_full()
            self._used += units
            hold.units += units

    def release(self, hold: Hold) -> None:
        with self._lock:
            self._used -= hold.units
            hold.units = 0
            hold.released = True


@dataclass
class Hold:
    """The units one request (or image) holds in a :class:`Budget`; once released it takes no more."""

    budget: Budget
    units: int = 0
    released: bool = False

    def take(self, units: int) -> None:
        self.budget.take(self, units)

    def release(self) -> None:
        self.budget.release(self)
