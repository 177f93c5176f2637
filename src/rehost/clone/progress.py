"""Clone progress: rows and bytes per table, an overall ETA, and the arithmetic behind it.

The loaders report per block or batch (``advance(rows, nbytes)``), never per
row. A sink that knows about tables (``TableSink``) gets the totals up front
and each table's progress; a plain ``Progress`` sink gets one bar per table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rehost.progress import Progress


@dataclass(frozen=True)
class Estimate:
    """Where the whole copy stands: done and total rows, bytes so far, rate, time left."""

    rows: int
    total: int
    nbytes: int
    elapsed: float
    rows_per_s: float | None
    bytes_per_s: float | None
    eta: float | None  # seconds left; None until there is a rate to go by

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.rows / self.total)


def estimate(rows: int, total: int, nbytes: int, elapsed: float, kept: int = 0) -> Estimate:
    """The overall rate and ETA from the rows done of all tables (pure arithmetic).

    Rows are what the source counted up front, so they are the measure of
    what is left; bytes only have a rate (their total is known at the end).
    The ETA is the rows left at the average rate so far; with no rows or no
    time yet there is no rate, and no ETA. Rows beyond the total (the source
    grew) leave nothing to wait for. ``kept``: rows among ``rows`` that were
    done without being copied (tables ``--resume`` kept): they count as done
    but not toward the rate, which would otherwise promise the rest as fast.
    """
    moved = rows - min(kept, rows)
    if elapsed <= 0 or moved <= 0:
        return Estimate(rows, total, nbytes, max(0.0, elapsed), None, None, None)
    rate = moved / elapsed
    left = max(0, total - rows)
    return Estimate(rows, total, nbytes, elapsed, rate, nbytes / elapsed, left / rate)


def rate(amount: int, seconds: float) -> float | None:
    """``amount`` per second, or None when no time was measured (a kept or empty table)."""
    return amount / seconds if seconds > 0 and amount > 0 else None


@runtime_checkable
class TableSink(Protocol):
    """A progress sink that shows tables: told the totals, then each table's rows and bytes."""

    def tables(self, totals: dict[str, int]) -> None: ...
    def table_start(self, name: str) -> None: ...
    def table_advance(self, name: str, rows: int, nbytes: int) -> None: ...
    def table_done(self, name: str, rows: int | None, nbytes: int) -> None:
        """The table's final counts; ``rows`` None when its copy failed (counts as they were)."""


class Tracker:
    """Counts rows and bytes per table for the result, and passes them on to the sink.

    Safe to call from worker threads (``--jobs``): one lock around the sink.
    """

    def __init__(self, sink: Progress, totals: dict[str, int]) -> None:
        self.sink = sink
        self.table_sink = sink if isinstance(sink, TableSink) else None
        self.totals = totals
        self.bytes: dict[str, int] = {}
        self.lock = threading.Lock()
        if self.table_sink is not None:
            self.table_sink.tables(totals)

    def begin(self, name: str, *, parallel: bool = False) -> Callable[..., None]:
        """The ``advance(rows, nbytes=0)`` callback for one table's loader."""
        self.bytes[name] = 0
        table_sink = self.table_sink
        with self.lock:
            if table_sink is not None:
                table_sink.table_start(name)
            elif not parallel:
                self.sink.start(f"copy {name}", self.totals.get(name))
        counts = self.bytes
        lock = self.lock
        sink = self.sink

        def advance(rows: int = 1, nbytes: int = 0) -> None:
            with lock:
                counts[name] += nbytes
                if table_sink is not None:
                    table_sink.table_advance(name, rows, nbytes)
                else:
                    sink.advance(rows)

        return advance

    def end(self, name: str, rows: int | None, *, parallel: bool = False) -> None:
        """The table's copy is over: ``rows`` loaded, or None when it failed."""
        with self.lock:
            if self.table_sink is not None:
                self.table_sink.table_done(name, rows, self.bytes.get(name, 0))
            elif not parallel:
                self.sink.finish()

    def skip(self, name: str, rows: int) -> None:
        """A table an interrupted clone loaded in full (``--resume``): done, nothing moved."""
        with self.lock:
            if self.table_sink is not None:
                self.table_sink.table_done(name, rows, 0)
