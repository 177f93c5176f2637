"""Stopping a transfer cleanly (Ctrl-C, or a library caller's request).

A ``KeyboardInterrupt`` raised at an arbitrary point of the main thread can land
while a thread pool or a future holds one of its locks, and the pool's shutdown
then waits forever. So a transfer is stopped cooperatively instead: a request
sets an event; the main loop stops handing out work, queued copies are
cancelled, and copies in flight stop at their next buffer (their temporary
files are removed). Everything already renamed into place is complete; the
next run sends the rest.

:func:`on_sigint` turns Ctrl-C into such a request for the duration of a
command; a second Ctrl-C ends the process at once (safe too: files are only
ever renamed into place whole, and the next run removes temporary files).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

_requested = threading.Event()


class Interrupted(Exception):
    """A stop was requested; files already in place are complete."""

    def __init__(self) -> None:
        super().__init__("interrupted")


def request() -> None:
    """Ask the running transfer to stop (thread-safe, idempotent)."""
    _requested.set()


def clear() -> None:
    _requested.clear()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise :class:`Interrupted` when a stop was requested."""
    if _requested.is_set():
        raise Interrupted()


@contextmanager
def on_sigint(on_first: Callable[[], None]) -> Iterator[None]:
    """While inside, the first Ctrl-C (or SIGTERM) requests a stop and calls
    ``on_first``; a second one exits with status 130 immediately."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if _requested.is_set():
            sys.stderr.flush()
            os._exit(130)
        request()
        on_first()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    clear()
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        clear()
