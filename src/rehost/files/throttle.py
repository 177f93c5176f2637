"""``--bwlimit``: the bytes a transfer sends per second, over all its copies at once.

A token bucket: each copy loop calls :func:`take` with the bytes it just moved
(one buffer, at most 1 MiB) and sleeps off any debt, so the average over the
run stays at the rate however many threads copy (a capped local → local
transfer copies in threads, not in worker processes). Idle time earns at most
half a second of credit, so a pause is not followed by a burst.

The rate is written as rsync and rclone take it: a number of KiB per second,
or with a unit, ``B``, ``K``, ``M``, ``G`` (1024-based): ``500K``, ``10M``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from rehost.errors import UsageError
from rehost.files import interrupt

_UNITS = {"": 1024, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([BKMG]?)(?:i?B)?(?:/s)?\s*", re.IGNORECASE)
CREDIT_SECONDS = 0.5  # the most an idle spell lets through at once afterwards
_NAP = 0.2  # longest single sleep, so an interruption is seen soon


def parse_rate(text: str) -> float:
    """``--bwlimit`` text → bytes per second (> 0)."""
    m = _RATE.fullmatch(text)
    if m is None:
        raise UsageError(
            f"--bwlimit {text!r}: give a rate such as 500K or 10M (bytes per second, "
            "1024-based; a plain number is KiB/s)."
        )
    rate = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if rate < 1:
        raise UsageError(f"--bwlimit {text!r}: the rate must be at least 1 byte per second.")
    return rate


class Limiter:
    """At most ``rate`` bytes per second through :meth:`take`, from any number of threads."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        self._credit = 0.0  # bytes that may go now (negative: owed)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        """Account for ``n`` bytes just moved; sleep until the rate allows them."""
        with self._lock:
            now = self._clock()
            cap = self.rate * CREDIT_SECONDS
            self._credit = min(cap, self._credit + (now - self._last) * self.rate) - n
            self._last = now
            wait = -self._credit / self.rate if self._credit < 0 else 0.0
        while wait > 0:  # in naps, outside the lock: other threads book their own bytes
            interrupt.check()
            nap = min(wait, _NAP)
            self._sleep(nap)
            wait -= nap


_limit: Limiter | None = None


def set_limit(rate: float | None) -> None:
    """Limit this process's copies to ``rate`` bytes per second (None: no limit)."""
    global _limit
    _limit = Limiter(rate) if rate else None


def take(n: int) -> None:
    """Called by the copy loops with each buffer's bytes."""
    if _limit is not None:
        _limit.take(n)
