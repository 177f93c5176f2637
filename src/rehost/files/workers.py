"""Local → local copies in worker processes, handed out in batches.

On a tree of small files the per-file work (open, read, hash, write, metadata,
rename) is mostly system calls wrapped in a little Python; threads share one
interpreter lock, so they contend rather than overlap (measured: 4 threads were
slower than 1 on 50,000 small files). Forked worker processes each copy a whole
batch of files (up to :data:`BATCH_FILES` files or :data:`BATCH_BYTES` bytes; a
large file goes alone), so the main process only walks, plans and records, and
the hand-over costs one message per batch, not per file.

Workers only copy: every decision, the manifest and the report stay in the main
process. A worker stops at its next buffer on Ctrl-C (the terminal signals the
whole process group); the main process cancels the batches not yet started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from rehost.files import interrupt, local
from rehost.files.local import FileChanged, Placed, copy_file
from rehost.files.plan import Wanted
from rehost.files.walk import describe

BATCH_FILES = 64
BATCH_BYTES = 1 << 20
BATCHES_PER_WORKER = 2  # in flight at once: one copying, one waiting


def copy_error(exc: OSError | FileChanged) -> str:
    """What a failed copy reports, in words."""
    if isinstance(exc, FileChanged):
        return f"{exc} (tried twice); run again when it is quiet"
    return describe(exc)


def copy_batch(
    src_root: bytes, dst_root: bytes, items: list[tuple[bytes, Wanted]]
) -> list[Placed | str]:
    """Copy each file (in a worker): what was placed, or why it failed. On a stop, the
    results so far (the files after them were not touched)."""
    results: list[Placed | str] = []
    for rel, wanted in items:
        if interrupt.requested():
            break
        try:
            results.append(copy_file(src_root, dst_root, rel, wanted))
        except (OSError, FileChanged) as exc:
            results.append(copy_error(exc))
    return results


_PR_SET_PDEATHSIG = 1


def _worker_started(parent: int) -> None:
    """In each worker: Ctrl-C or SIGTERM stops the copy in hand at its next buffer;
    the main process's death (kill -9) kills the worker at once, as if it were a
    thread, so nothing is written after it."""

    def stop(signum: int, frame: FrameType | None) -> None:
        interrupt.request()

    interrupt.clear()
    os.umask(0)  # files are created with their final mode (see local.exact_create_mode)
    local.exact_create_mode = True
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, stop)
    with contextlib.suppress(OSError, AttributeError):  # Linux; elsewhere workers end with the pool
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # died before the line above
        os._exit(1)


@dataclass
class _Pending:
    items: list[Any] = field(default_factory=list)  # the caller's, handed back by drain
    jobs: list[tuple[bytes, Wanted]] = field(default_factory=list)
    nbytes: int = 0


class ProcessCopies:
    """Batches copies for ``workers`` forked processes; results come back through
    ``drain`` on the calling thread as (item, Placed or error message, or None when
    the batch was lost with the reason)."""

    def __init__(self, src_root: bytes, dst_root: bytes, workers: int) -> None:
        self.src_root, self.dst_root, self.workers = src_root, dst_root, workers
        self.pool: Any = None  # a ProcessPoolExecutor once there is something to copy
        self.pending = _Pending()
        self.window = threading.BoundedSemaphore(workers * BATCHES_PER_WORKER)
        self.done: queue.SimpleQueue[tuple[Future[list[Placed | str]], list[Any]]] = (
            queue.SimpleQueue()
        )
        self.in_flight: set[Future[list[Placed | str]]] = set()

    def add(self, item: Any, rel: bytes, size: int, wanted: Wanted) -> None:
        self.pending.items.append(item)
        self.pending.jobs.append((rel, wanted))
        self.pending.nbytes += size
        if len(self.pending.items) >= BATCH_FILES or self.pending.nbytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending.items:
            return
        if self.pool is None:
            import multiprocessing  # here: a command that copies nothing does not pay for it
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_worker_started,
                initargs=(os.getpid(),),
            )
        batch, self.pending = self.pending, _Pending()
        self.window.acquire()
        fut: Future[list[Placed | str]]
        try:
            fut = self.pool.submit(copy_batch, self.src_root, self.dst_root, batch.jobs)
        except RuntimeError:  # BrokenProcessPool: a worker died (killed, out of memory)
            fut = Future()  # the batches it held are reported failed; the rest copy here
            fut.set_result(copy_batch(self.src_root, self.dst_root, batch.jobs))
        items = batch.items
        self.in_flight.add(fut)

        def finished(f: Future[list[Placed | str]]) -> None:
            self.window.release()
            self.done.put((f, items))

        fut.add_done_callback(finished)

    def drain(self, record: Callable[[Any, Placed | str], None], *, stopping: bool = False) -> None:
        """Hand each finished copy to ``record``; lost batches as an error message."""
        while True:
            try:
                fut, items = self.done.get_nowait()
            except queue.Empty:
                return
            self.in_flight.discard(fut)
            if fut.cancelled() or (stopping and isinstance(fut.exception(), interrupt.Interrupted)):
                continue
            exc = fut.exception()
            if isinstance(exc, interrupt.Interrupted):
                raise exc
            if exc is not None:
                for item in items:
                    record(item, f"copy worker failed ({exc}); run again to finish")
                continue
            for item, result in zip(items, fut.result(), strict=False):  # short if stopped
                record(item, result)

    def close(self, record: Callable[[Any, Placed | str], None], *, stopping: bool) -> None:
        """Send what is pending (unless stopping), wait for the workers, drain. A stop
        requested meanwhile reaches the workers (they end their file at the next
        buffer, removing its temporary file) and raises :class:`Interrupted`."""
        if not stopping and not interrupt.requested():
            self.flush()
        if self.pool is None:
            return
        stopped = stopping
        try:
            while self.in_flight:
                if not stopped and interrupt.requested():
                    stopped = True
                if stopped:
                    self._stop_workers()
                wait(list(self.in_flight), timeout=0.05, return_when=FIRST_COMPLETED)
                self.drain(record, stopping=stopped)
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.drain(record, stopping=stopped)
        if stopped and not stopping:
            raise interrupt.Interrupted()

    def _stop_workers(self) -> None:
        for fut in list(self.in_flight):
            fut.cancel()  # those not started
        processes = getattr(self.pool, "_processes", None) or {}
        for proc in list(processes.values()):
            with contextlib.suppress(OSError, AttributeError, TypeError):
                os.kill(proc.pid, signal.SIGINT)  # in flight: stop at the next buffer


def worker_count(jobs: int) -> int:
    """Processes for ``--jobs``: no more than there are CPUs to run them."""
    return max(1, min(jobs, os.cpu_count() or 1))
