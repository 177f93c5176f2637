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

from bisect import insort
from collections import defaultdict
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


def first_free(ready: list[Task], running: Iterable[Task]) -> Task | None:
    """The first of the ``ready`` tasks (kept in priority order) whose locks are free."""
    held = [t.locks for t in running]
    for task in ready:
        if not conflicts(held, task.locks):
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
    A task becomes ready when the last one it waits on ends (no rescans: a
    schema of thousands of tables schedules as fast as a small one).
    """
    keys = {t.key for t in tasks}
    unknown = {k for t in tasks for k in t.after} - keys
    if unknown:
        raise ValueError(f"tasks depend on unknown tasks: {sorted(unknown)}")
    left = {t.key: len(t.after) for t in tasks}  # what each still waits on
    dependents: dict[str, list[Task]] = defaultdict(list)
    for t in tasks:
        for k in t.after:
            dependents[k].append(t)
    ready = sorted((t for t in tasks if not t.after), key=_priority)
    running: dict[Future[Any], Task] = {}
    ended = 0
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix=name)
    try:
        while ended < len(tasks):
            while len(running) < jobs:
                task = first_free(ready, running.values())
                if task is None:
                    break
                ready.remove(task)
                running[pool.submit(task.run)] = task
            if not running:
                waiting = sorted(k for k, n in left.items() if n)
                raise ValueError(f"tasks wait on each other: {waiting}")
            if idle is not None:
                idle, call = None, idle
                call()
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                result = future.result()  # raises: the rest is dropped below
                ended += 1
                for d in dependents[task.key]:
                    left[d.key] -= 1
                    if not left[d.key]:
                        insort(ready, d, key=_priority)
                if on_done is not None:
                    on_done(task, result)
        if idle is not None:  # nothing to run at all
            idle()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _priority(task: Task) -> tuple[Any, ...]:
    return task.priority
