"""Running a clone's steps on N worker threads: dependencies, table locks, priorities.

``--jobs`` clones as ``pg_restore -j`` restores: the copies (a big table in
several parts), then each table's keys and indexes as soon as its rows are
in, its foreign keys once both tables have their keys, and (PostgreSQL to
PostgreSQL) its verification — whatever is ready, on whichever worker is free.

Two steps that would block each other on the target's table locks are never
run at once, so no worker sits waiting on a lock and no two steps deadlock
(two foreign keys between the same tables, taken in opposite order). The
modes are PostgreSQL's, as the statements take them:

* ``read``  — SELECT (verification sums): ACCESS SHARE;
* ``copy``  — COPY into the table: ROW EXCLUSIVE;
* ``share`` — CREATE INDEX: SHARE;
* ``write`` — ADD FOREIGN KEY, on both tables: SHARE ROW EXCLUSIVE;
* ``excl``  — ADD PRIMARY KEY / UNIQUE, TRUNCATE (a frozen load): ACCESS EXCLUSIVE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

# Which modes each mode conflicts with (PostgreSQL's table-level lock matrix).
_CONFLICTS: dict[str, frozenset[str]] = {
    "read": frozenset({"excl"}),
    "copy": frozenset({"share", "write", "excl"}),
    "share": frozenset({"copy", "write", "excl"}),
    "write": frozenset({"copy", "share", "write", "excl"}),
    "excl": frozenset({"read", "copy", "share", "write", "excl"}),
}


@dataclass(eq=False)
class Task:
    """One step: ``run()`` on a worker thread once every task in ``after`` has ended."""

    key: str
    run: Callable[[], Any]
    after: set[str] = field(default_factory=set)
    locks: dict[str, str] = field(default_factory=dict)  # table → mode
    priority: tuple[Any, ...] = ()  # smaller first among the ready ones


def conflicts(held: Iterable[dict[str, str]], wanted: dict[str, str]) -> bool:
    """True when ``wanted`` locks clash with any of the ``held`` lock sets."""
    for locks in held:
        for table, mode in wanted.items():
            other = locks.get(table)
            if other is not None and other in _CONFLICTS[mode]:
                return True
    return False


def next_ready(waiting: list[Task], finished: set[str], running: Iterable[Task]) -> Task | None:
    """The first waiting task (by priority) whose dependencies ended and locks are free."""
    held = [t.locks for t in running]
    for task in sorted(waiting, key=lambda t: t.priority):
        if task.after <= finished and not conflicts(held, task.locks):
            return task
    return None


def run_tasks(
    tasks: list[Task],
    jobs: int,
    on_done: Callable[[Task, Any], None] | None = None,
    *,
    name: str = "rehost-clone",
    idle: Callable[[], None] | None = None,
) -> None:
    """Run every task on up to ``jobs`` threads; raise the first task's exception.

    ``on_done(task, result)`` runs in the calling thread as each task ends.
    ``idle()`` runs once in the calling thread after the first tasks are
    started (work for the caller's own connections meanwhile). On a failure
    the tasks not started are dropped and those running are waited for.
    """
    keys = {t.key for t in tasks}
    unknown = {k for t in tasks for k in t.after} - keys
    if unknown:
        raise ValueError(f"tasks depend on unknown tasks: {sorted(unknown)}")
    waiting = list(tasks)
    finished: set[str] = set()
    running: dict[Future[Any], Task] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=name)
    try:
        while waiting or running:
            while len(running) < jobs:
                task = next_ready(waiting, finished, running.values())
                if task is None:
                    break
                waiting.remove(task)
                running[pool.submit(task.run)] = task
            if not running:
                raise ValueError(f"tasks wait on each other: {[t.key for t in waiting]}")
            if idle is not None:
                idle, call = None, idle
                call()
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                result = future.result()  # raises: the rest is dropped below
                finished.add(task.key)
                if on_done is not None:
                    on_done(task, result)
        if idle is not None:  # nothing to run at all
            idle()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
