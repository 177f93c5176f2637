"""``clone()``: reflect, map, create, load, add keys, reset sequences, verify."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.schema import AddConstraint, CreateIndex

from rehost.checks.findings import Finding
from rehost.clone import ddl
from rehost.clone.io import (
    LoadPragmas,
    ctid_parts,
    export_snapshot,
    join_snapshot,
    last_id,
    mysql_copy_lines,
    mysql_zero_dates,
    open_snapshot,
    pipe_mysql_text,
    pipe_postgres,
    session_setup,
    set_next_id,
    stream,
    table_sizes,
    write_rows,
)
from rehost.clone.objects import (
    SrcObject,
    creation_order,
    mentions,
    parse_skip,
    reflect_objects,
    retry_all,
)
from rehost.clone.plan import ClonePlan, TablePlan, plan_clone
from rehost.clone.progress import Tracker
from rehost.clone.reflect import reflect_tables
from rehost.clone.schedule import Task, run_tasks
from rehost.clone.types import parse_overrides
from rehost.clone.values import ZeroDates, converter, source_fix
from rehost.clone.verify import Sums, TableCheck, in_database, source_sums, verify_table
from rehost.db.connect import open_engine, redact
from rehost.db.identity import same_database
from rehost.errors import RehostError, UsageError
from rehost.progress import NoProgress, Progress

MAX_JOBS = 8
MAINTENANCE_KB = 512 * 1024  # PostgreSQL target: maintenance_work_mem for the key builds
MAINTENANCE_TOTAL_KB = 2 * 1024 * 1024  # … for all the builds that run at once (--jobs)
# --jobs, PostgreSQL → PostgreSQL: a table bigger than its share of the work (the
# pages of all tables over the workers) is copied in parts on several workers, each
# part at least this many pages (64 MB of 8 kB pages). Needs PostgreSQL 14 (TID range scans).
SPLIT_MIN_PAGES = 8192
COUNT_BELOW = 100_000  # rows: a table estimated smaller is counted exactly (it is cheap)


class CloneBlocked(RehostError):
    """The source has something the target cannot hold faithfully; nothing was written."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        lines = [f"  {f.subject}: {f.message} Fix: {f.fix}" for f in findings]
        super().__init__(
            f"The clone cannot carry {len(findings)} column(s), constraint(s) or schema "
            "object(s) over faithfully, so nothing was written:\n" + "\n".join(lines)
        )


class TargetNotEmpty(RehostError):
    """The target already has tables."""


class CloneFailed(RehostError):
    """The target refused part of the clone."""


@dataclass
class TableResult:
    name: str
    rows: int = 0
    seconds: float = 0.0
    check: TableCheck | None = None
    bytes: int = 0  # what the loader sent or wrote (see io.write_rows); 0 when kept
    kept: bool = False  # --resume: already loaded by the interrupted run
    verify_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "kept": self.kept,
            "verify_seconds": round(self.verify_seconds, 3),
            "verified": None if self.check is None else self.check.ok,
            "verify": None if self.check is None else self.check.to_json(),
        }


@dataclass
class CloneResult:
    source: str
    target: str
    source_engine: str
    target_engine: str
    verify_only: bool = False
    tables: list[TableResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    # views, triggers, routines …: (object, status) with status created, kept (--resume,
    # already there), failed, or present (--verify-only: on both sides)
    objects: list[tuple[SrcObject, str]] = field(default_factory=list)
    not_cloned: list[SrcObject] = field(default_factory=list)  # --skip-objects

    @property
    def ok(self) -> bool:
        return all(t.check is not None and t.check.ok for t in self.tables) and not any(
            f.severity == "error" for f in self.findings
        )

    @property
    def mismatches(self) -> list[TableCheck]:
        return [t.check for t in self.tables if t.check is not None and not t.check.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "source_engine": self.source_engine,
            "target_engine": self.target_engine,
            "verify_only": self.verify_only,
            "ok": self.ok,
            "rows": sum(t.rows for t in self.tables),
            "bytes": sum(t.bytes for t in self.tables),
            "seconds": round(self.seconds, 3),
            "tables": [t.to_json() for t in self.tables],
            "objects": [{**o.to_json(), "status": status} for o, status in self.objects],
            "not_cloned": [o.to_json() for o in self.not_cloned],
            "findings": [f.to_json() for f in self.findings],
        }


def _select(names: list[str], tables: list[str] | None, exclude: list[str]) -> list[str]:
    known = set(names)
    unknown = [t for t in [*(tables or []), *exclude] if t not in known]
    if unknown:
        raise UsageError(
            f"No table named {', '.join(unknown)} in the source. Tables: {', '.join(names)}."
        )
    chosen = [n for n in names if (tables is None or n in tables) and n not in exclude]
    if not chosen:
        raise UsageError("Nothing to clone: the selection leaves no table.")
    return chosen


def prepare(
    source: Engine,
    target_dialect: str,
    *,
    tables: list[str] | None = None,
    exclude: list[str] | None = None,
    map_types: list[str] | None = None,
    skip_objects: list[str] | None = None,
) -> ClonePlan:
    """Reflect the source and plan the target; no writes anywhere.

    ``skip_objects``: categories of views, triggers, routines … to leave out
    (``views``, ``triggers``, ``routines``, ``sequences`` or ``all``).
    """
    try:
        skip = parse_skip(skip_objects or [])
    except ValueError as exc:
        raise UsageError(f"{exc}.") from None
    everything = sorted(sa.inspect(source).get_table_names())
    names = _select(everything, tables, exclude or [])
    # rehost's import ledger belongs to that database, not to its data: not cloned
    # unless asked for by name.
    names = [n for n in names if n != "rehost_ledger" or (tables and n in tables)]
    reflected = reflect_tables(source, names)
    with source.connect() as conn:
        objects = reflect_objects(conn)
    return plan_clone(
        reflected,
        source.dialect.name,
        target_dialect,
        parse_overrides(map_types or []),
        objects=objects,
        skip=skip,
        left_out=set(everything) - set(names),
    )


def clone(
    source: str,
    target: str,
    *,
    tables: list[str] | None = None,
    exclude: list[str] | None = None,
    map_types: list[str] | None = None,
    skip_objects: list[str] | None = None,
    replace: bool = False,
    resume: bool = False,
    verify_only: bool = False,
    jobs: int = 1,
    progress: Progress | None = None,
) -> CloneResult:
    """Copy a whole database (schema, rows, sequences) into an empty target, then verify.

    With ``verify_only`` nothing is written: the target's tables are compared
    with the source's. With ``resume`` an interrupted clone carries on: tables
    the target already holds in full are kept, the others (re)loaded, and keys
    that exist are not added again. Raises CloneBlocked (nothing written) when
    a type has no faithful mapping or a view, trigger or routine would have to
    cross engines (unless ``skip_objects`` leaves it out), TargetNotEmpty when
    the target has tables. Views, triggers, routines … are created last, once
    the rows and keys are in.

    ``jobs`` > 1 copies that many tables at once, each worker with its own
    source and target connections. PostgreSQL workers join the snapshot the
    coordinating transaction exports; SQLite workers each read in their own
    transaction (consistent only while nothing writes the source). A MariaDB
    source cannot share a snapshot, and a SQLite target takes one writer: both
    copy one table at a time, with an info finding saying so.
    """
    if jobs < 1:
        raise UsageError("--jobs takes a number of 1 or more.")
    if resume and (replace or verify_only):
        raise UsageError(
            "--resume carries on an interrupted clone: not with --replace or --verify-only."
        )
    bar = progress or NoProgress()
    started = time.perf_counter()
    src_engine = open_engine(source)
    tgt_engine = open_engine(target, must_exist=verify_only)
    try:
        if same_database(src_engine, tgt_engine):
            raise UsageError(
                f"{redact(source)} and {redact(target)} are the same database: a clone would "
                "write into its own source (--replace would drop its tables). Give another "
                "target."
            )
        plan = prepare(
            src_engine,
            tgt_engine.dialect.name,
            tables=tables,
            exclude=exclude,
            map_types=map_types,
            skip_objects=skip_objects,
        )
        if verify_only:
            _objects_not_compared(plan)
        if plan.errors:
            raise CloneBlocked(plan.errors)
        result = CloneResult(
            source=redact(source),
            target=redact(target),
            source_engine=plan.source,
            target_engine=plan.target,
            verify_only=verify_only,
            findings=list(plan.findings),
            not_cloned=list(plan.not_cloned),
        )
        jobs = _effective_jobs(jobs, plan, result, verify_only)
        existing = set(sa.inspect(tgt_engine).get_table_names())
        if verify_only:
            missing = [n for n in plan.tables if n not in existing]
            if missing:
                raise CloneFailed(
                    f"The target {redact(target)} has no table {', '.join(missing)}: "
                    "there is no finished clone to verify. Run rehost clone without --verify-only."
                )
        else:
            if not resume:
                _make_room(tgt_engine, plan, existing, replace, target)
        snap = open_snapshot(src_engine)
        try:
            snapshot = export_snapshot(snap) if jobs > 1 else None
            with tgt_engine.connect() as tconn:
                session_setup(tconn)
                tconn.commit()
                if not verify_only:
                    kept = existing & set(plan.tables) if resume else set()
                    workers = _Workers(src_engine, tgt_engine, snapshot, jobs)
                    known = _load(snap, tconn, plan, result, bar, kept, workers)
                    _create_objects(snap, tconn, plan, result, bar, resume)
                else:
                    result.tables = [TableResult(n) for n in plan.tables]
                    known = {}
                    _compare_objects(tconn, plan, result)
                _verify(snap, tconn, plan, result, bar, known)
        finally:
            snap.rollback()
            snap.close()
        result.seconds = time.perf_counter() - started
        return result
    finally:
        src_engine.dispose()
        tgt_engine.dispose()


def _effective_jobs(jobs: int, plan: ClonePlan, result: CloneResult, verify_only: bool) -> int:
    """The number of tables copied at once: 1 where the engines cannot do more safely."""
    if jobs == 1 or verify_only:
        return 1
    why = ""
    if plan.source == "mysql":
        why = (
            "a MariaDB/MySQL snapshot cannot be shared between connections, and the "
            "source is read in one snapshot: tables are copied one at a time"
        )
    elif plan.target == "sqlite":
        why = "SQLite takes one writer at a time: tables are copied one at a time"
    if why:
        result.findings.append(Finding("clone-jobs", "info", "--jobs", why))
        return 1
    if len(plan.tables) == 1 and plan.source != "postgresql":
        return 1  # nothing to share out: one table, which only PostgreSQL splits
    # Each worker holds a source and a target connection: stay within the pools.
    return min(jobs, MAX_JOBS)


class _Workers:
    """Where the parallel copy gets its connections (one pair per worker thread)."""

    def __init__(self, source: Engine, target: Engine, snapshot: str | None, jobs: int) -> None:
        self.source, self.target, self.snapshot, self.jobs = source, target, snapshot, jobs


def _make_room(
    engine: Engine, plan: ClonePlan, existing: set[str], replace: bool, url: str
) -> None:
    ours = sorted(n for n in plan.tables if n in existing)
    if replace:
        _drop_objects(engine, plan)
        if ours:
            with engine.connect() as conn:
                if plan.target == "sqlite":
                    raw: Any = conn.connection.dbapi_connection
                    raw.execute("PRAGMA foreign_keys = OFF")
                    try:
                        for n in ours:
                            raw.execute(f"DROP TABLE {conn.dialect.identifier_preparer.quote(n)}")
                    finally:
                        raw.execute("PRAGMA foreign_keys = ON")
                else:
                    ddl.drop_tables(conn, ours, plan.target, ddl.enum_names(plan))
                    conn.commit()
        return
    if existing:
        shown = ", ".join(sorted(existing)[:8]) + (" …" if len(existing) > 8 else "")
        raise TargetNotEmpty(
            f"The target {redact(url)} is not empty (tables: {shown}). A clone writes only into "
            "an empty database: create a new one, or pass --replace to drop the tables this "
            "clone creates (and only those)."
        )


def _batches(
    conn: Connection, tp: TablePlan, plan: ClonePlan, zero: ZeroDates
) -> Iterator[list[tuple[Any, ...]]]:
    """Source rows converted for the target, batch by batch (column by column: fewer calls)."""
    steps: list[tuple[int, list[Any]]] = []
    for i, c in enumerate(tp.columns):
        m = c.mapped
        fix = source_fix(plan.source, plan.target, m.src_kind, f"{tp.name}.{c.name}", zero)
        conv = converter(m.src_kind, m.kind, plan.source, plan.target, m.scale)
        chain = [f for f in (fix, conv) if f is not None]
        if chain:
            steps.append((i, chain))
    for rows in stream(conn, tp.name, tp.column_names, tp.pk):
        if not steps:
            yield rows
            continue
        columns: list[Any] = list(zip(*rows, strict=True))
        for i, chain in steps:
            values = columns[i]
            for fn in chain:
                values = [None if v is None else fn(v) for v in values]
            columns[i] = values
        yield list(zip(*columns, strict=True))


def _count(conn: Connection, table: str) -> int:
    q = conn.dialect.identifier_preparer.quote_identifier(table)
    return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {q}").scalar_one())


def _load(
    snap: Connection,
    tconn: Connection,
    plan: ClonePlan,
    result: CloneResult,
    bar: Progress,
    existing: set[str],
    workers: _Workers,
) -> dict[str, Sums]:
    """Create the tables (but those of an interrupted clone, in ``existing``), load, add keys.

    Returns the source side of the in-database verification where it was
    computed meanwhile (table → sums).
    """
    schema = ddl.build(plan)
    with tconn.begin():
        ddl.create_tables(tconn, schema, plan, skip=existing)
    zero = ZeroDates()
    sizes = table_sizes(snap, list(plan.tables))
    totals = _totals(snap, plan, sizes, existing)
    if workers.jobs > 1:
        _load_parallel(
            snap, tconn, schema, plan, result, bar, existing, workers, zero, totals, sizes
        )
        if plan.target == "postgresql":  # keys, sequences (and PG → PG verify) done meanwhile
            _zero_date_findings(zero, result)
            return {}
    else:
        pragmas = LoadPragmas(tconn) if plan.target == "sqlite" else None
        if pragmas:
            pragmas.__enter__()
        try:
            tracker = Tracker(bar, totals)
            for name, tp in plan.tables.items():
                total = totals[name]
                if name in existing and _resumed(tconn, name, total):
                    result.tables.append(TableResult(name, total, kept=True))
                    tracker.skip(name, total)
                    continue
                advance = tracker.begin(name)
                done: TableResult | None = None
                try:
                    fresh = name not in existing
                    done = _copy(snap, tconn, tp, plan, zero, advance, freeze=fresh)
                    done.bytes = tracker.bytes[name]
                    result.tables.append(done)
                finally:
                    tracker.end(name, done.rows if done else None)
        finally:
            if pragmas:
                pragmas.__exit__(None, None, None)
    _zero_date_findings(zero, result)
    done = _key_names(tconn, existing)
    if not in_database(plan.source, plan.target):
        _after_load(tconn, schema, plan, result, bar, done=done)
        _sequences(snap, tconn, plan)
        return {}
    # PostgreSQL → PostgreSQL: the source's verification sums are computed while the
    # target builds its keys (the source connection is idle then; sequences first).
    _sequences(snap, tconn, plan)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehost-sums") as pool:
        known = pool.submit(source_sums, snap, plan)
        _after_load(tconn, schema, plan, result, bar, done=done)
        return known.result()


def _zero_date_findings(zero: ZeroDates, result: CloneResult) -> None:
    for subject, n in sorted(zero.counts.items()):
        result.findings.append(
            Finding(
                "clone-zero-date",
                "warning",
                subject,
                f"{n} MySQL zero date(s) such as 0000-00-00 have no equivalent: made NULL",
            )
        )


def _totals(
    snap: Connection,
    plan: ClonePlan,
    sizes: dict[str, tuple[int | None, int]],
    existing: set[str],
) -> dict[str, int]:
    """Source rows per table, for progress and the order of the copies.

    A big PostgreSQL table is taken at the planner's estimate (a count would
    scan it before the copy starts); the rows copied and verified are counted
    anyway. Exact where a decision depends on it: the tables ``--resume``
    finds (loaded in full or not), and small or never-analyzed tables.
    """
    totals = {}
    for name in plan.tables:
        estimate = sizes.get(name, (None, 0))[0]
        if name in existing or estimate is None or estimate < COUNT_BELOW:
            totals[name] = _count(snap, name)
        else:
            totals[name] = estimate
    return totals


def _copy(
    sconn: Connection,
    tconn: Connection,
    tp: TablePlan,
    plan: ClonePlan,
    zero: ZeroDates,
    advance: Callable[..., Any],
    *,
    freeze: bool = False,
    where: str | None = None,
) -> TableResult:
    """One table's rows (or those ``where`` picks) from source to target, committed.

    ``freeze``: the table was created by this run (not kept from an interrupted
    one), so nothing references it yet and PostgreSQL may load it frozen.
    ``where`` (one part of a split table) only on the PostgreSQL → PostgreSQL pipe.
    """
    name = tp.name
    t0 = time.perf_counter()
    try:
        kinds = [(c.mapped.src_kind, c.mapped.kind) for c in tp.columns]
        if tp.same_types and plan.target == "postgresql":
            rows = pipe_postgres(
                sconn, tconn, name, tp.column_names, advance, freeze=freeze, where=where
            )
        elif plan.source == "mysql" and plan.target == "postgresql" and mysql_copy_lines(kinds):
            cols = [(c.name, c.mapped.kind) for c in tp.columns]
            rows = pipe_mysql_text(sconn, tconn, name, cols, tp.pk, advance, freeze=freeze)
            dates = [c.name for c in tp.columns if c.mapped.kind in ("date", "datetime")]
            for col, n in zip(dates, mysql_zero_dates(sconn, name, dates), strict=True):
                if n:
                    subject = f"{name}.{col}"
                    zero.counts[subject] = zero.counts.get(subject, 0) + n
        else:
            rows = write_rows(
                tconn,
                name,
                tp.column_names,
                _batches(sconn, tp, plan, zero),
                advance,
                freeze=freeze,
            )
    except sa.exc.DBAPIError as exc:
        raise CloneFailed(_refused(name, exc, "load")) from None
    except Exception as exc:  # driver errors outside SQLAlchemy's wrapping
        if type(exc).__module__.split(".")[0] in ("psycopg", "pymysql", "sqlite3"):
            raise CloneFailed(_refused(name, exc, "load")) from None
        raise
    return TableResult(name, rows, time.perf_counter() - t0)


def _split(
    snap: Connection, plan: ClonePlan, sizes: dict[str, tuple[int | None, int]], jobs: int
) -> dict[str, list[str]]:
    """Tables copied in parts by several workers: name → the WHERE clause of each part.

    Only the PostgreSQL → PostgreSQL pipe (the others are bound by Python,
    which parts would not share), from PostgreSQL 14 (a part reads only its
    pages), and only a table bigger than its share of all the pages: parts of
    at least ``SPLIT_MIN_PAGES``, at most one per worker. Parts are committed
    on their own: they are not loaded frozen, and an interrupted table is
    reloaded whole by ``--resume``.
    """
    if plan.source != "postgresql" or plan.target != "postgresql":
        return {}
    if (snap.dialect.server_version_info or (0,)) < (14,):
        return {}
    pages = {n: sizes[n][1] for n, tp in plan.tables.items() if n in sizes and tp.same_types}
    share = max(SPLIT_MIN_PAGES, -(-sum(pages.values()) // jobs))
    parts = {n: min(jobs, -(-p // share)) for n, p in pages.items()}
    return {n: ctid_parts(pages[n], k) for n, k in parts.items() if k > 1}


@dataclass
class _Parts:
    """A table's copy while its parts run: rows so far, parts left, its progress callback."""

    parts: int
    rows: int = 0
    started: float = 0.0
    advance: Callable[..., Any] | None = None
    failed: bool = False


def _load_parallel(
    snap: Connection,
    tconn: Connection,
    schema: ddl.TargetSchema,
    plan: ClonePlan,
    result: CloneResult,
    bar: Progress,
    existing: set[str],
    workers: _Workers,
    zero: ZeroDates,
    totals: dict[str, int],
    sizes: dict[str, tuple[int | None, int]],
) -> None:
    """``--jobs``: every step on a pool of workers, as soon as it can run (see ``schedule``).

    Copies first, biggest first, a big PostgreSQL table in parts on several
    workers; into a PostgreSQL target each table's keys and indexes as soon
    as its rows are in, its foreign keys once both tables have their keys;
    PostgreSQL → PostgreSQL each table's verification once all copies are
    done and its keys built. Each worker has its own target connection and,
    when it reads, its own source connection in the exported snapshot. The
    sequences are set meanwhile on the caller's connections. Fills
    ``result.tables`` (and ``check`` where verified).
    """
    lock = threading.Lock()
    local = threading.local()
    opened: list[Connection] = []
    tracker = Tracker(bar, totals)
    postgres = plan.target == "postgresql"
    checked = plan.source == plan.target == "postgresql"  # workers share the snapshot

    def source() -> Connection:
        if not hasattr(local, "source"):
            conn = join_snapshot(workers.source, workers.snapshot)
            with lock:
                opened.append(conn)
            local.source = conn
        conn: Connection = local.source
        return conn

    def target() -> Connection:
        if not hasattr(local, "target"):
            conn = workers.target.connect()
            with lock:
                opened.append(conn)
            session_setup(conn)
            conn.commit()
            local.target = conn
        conn: Connection = local.target
        return conn

    results: dict[str, TableResult] = {}
    for name in plan.tables:
        if name in existing and _resumed(tconn, name, totals[name]):
            tracker.skip(name, totals[name])
            results[name] = TableResult(name, totals[name], kept=True)

    split = _split(snap, plan, sizes, workers.jobs)
    order = sorted(plan.tables, key=lambda n: (-sizes.get(n, (None, 0))[1], -totals[n]))
    rank = {name: i for i, name in enumerate(order)}
    tasks: list[Task] = []
    copies: dict[str, set[str]] = {}
    states: dict[str, _Parts] = {}

    def copy(name: str, where: str | None, freeze: bool) -> int:
        sconn, tc = source(), target()
        state = states[name]
        with lock:
            if state.advance is None:
                state.started = time.perf_counter()
                state.advance = tracker.begin(name, parallel=True)
        try:
            done = _copy(
                sconn, tc, plan.tables[name], plan, zero, state.advance, freeze=freeze, where=where
            )
        except BaseException:
            with lock:
                if not state.failed:
                    state.failed = True
                    tracker.end(name, None, parallel=True)
            raise
        return done.rows

    for name in order:
        if name in results:
            continue
        parts: list[str | None] = [*split.get(name, [])] or [None]
        freeze = name not in existing and len(parts) == 1
        states[name] = _Parts(len(parts))
        copies[name] = set()
        for i, where in enumerate(parts):
            key = f"copy {name} {i}"
            copies[name].add(key)
            tasks.append(
                Task(
                    key,
                    lambda n=name, w=where, f=freeze: copy(n, w, f),
                    locks={name: "excl" if freeze else "copy"},
                    priority=(0, rank[name], i),
                )
            )
    all_copies = {key for keys in copies.values() for key in keys}

    steps: list[tuple[str, Any]] = []
    if postgres:
        steps = _pending(schema, plan, _key_names(tconn, existing))
    keys: dict[str, set[str]] = {name: set() for name in plan.tables}
    kb = _maintenance_kb(tconn, workers.jobs) if steps else None

    def build(table: str, element: Any) -> Finding | None:
        tc = target()
        if kb is not None and not getattr(local, "maintenance", False):
            tc.exec_driver_sql(f"SET maintenance_work_mem = '{kb}kB'")
            tc.commit()
            local.maintenance = True
        return _add(tc, table, element)

    fks = []
    for i, (table, element) in enumerate(steps):
        key = f"key {table} {i}"
        ref = _referenced(element)
        if ref is not None:
            fks.append((key, table, ref, element))
            continue
        keys[table].add(key)
        mode = "share" if isinstance(element, CreateIndex) else "excl"
        tasks.append(
            Task(
                key,
                lambda t=table, e=element: build(t, e),
                after=set(copies.get(table, ())),
                locks={table: mode},
                priority=(1, rank[table], i),
            )
        )
    for key, table, ref, element in fks:
        tasks.append(
            Task(
                key,
                lambda t=table, e=element: build(t, e),
                after={
                    *copies.get(table, ()),
                    *copies.get(ref, ()),
                    *keys[table],
                    *keys.get(ref, ()),
                },
                locks={table: "write", ref: "write"},
                priority=(2, rank[table], key),
            )
        )

    sums: dict[str, tuple[Any, float]] = {}  # table → (the source's sums, seconds)

    def source_side(name: str) -> tuple[Any, float]:
        t0 = time.perf_counter()
        one = dataclasses.replace(plan, tables={name: plan.tables[name]})
        return source_sums(source(), one).get(name), time.perf_counter() - t0

    def check(name: str) -> tuple[TableCheck, float]:
        sconn, tc = source(), target()
        known, spent = sums.get(name, (None, 0.0))
        t0 = time.perf_counter()
        outcome = verify_table(sconn, tc, plan.tables[name], plan.source, plan.target, known)
        tc.rollback()
        return outcome, spent + time.perf_counter() - t0

    if checked:
        for name, tp in plan.tables.items():
            if tp.same_types:  # the source's side needs no target: while keys are built
                tasks.append(
                    Task(
                        f"sums {name}",
                        lambda n=name: source_side(n),
                        after=set(all_copies),
                        priority=(1, rank[name], -1),
                    )
                )
            tasks.append(
                Task(
                    f"verify {name}",
                    lambda n=name: check(n),
                    after={*all_copies, *keys[name], *([f"sums {name}"] if tp.same_types else [])},
                    locks={name: "read"},
                    priority=(3, rank[name]),
                )
            )

    later = len(tasks) - len(all_copies)  # steps after the copies (progress)
    copying = len(all_copies)
    ended = 0
    if tracker.table_sink is None and copying:
        bar.start(f"copy {len(copies)} tables, {workers.jobs} at a time", sum(totals.values()))

    def phase() -> None:
        if tracker.table_sink is None:
            bar.finish()
        if later:
            what = "keys, indexes, foreign keys" + (", verify" if checked else "")
            bar.start(what, later)
            bar.advance(ended)

    def on_done(task: Task, value: Any) -> None:
        nonlocal copying, ended
        kind, name = task.key.split(" ")[:2]
        if kind == "copy":
            state = states[name]
            state.rows += value
            state.parts -= 1
            if state.parts == 0:
                tracker.end(name, state.rows, parallel=True)
                results[name] = TableResult(
                    name,
                    state.rows,
                    time.perf_counter() - state.started,
                    bytes=tracker.bytes[name],
                )
            copying -= 1
            if copying == 0:
                phase()
            return
        ended += 1
        if copying == 0:
            bar.advance()
        if kind == "key" and value is not None:
            result.findings.append(value)
        elif kind == "sums":
            sums[name] = value
        elif kind == "verify":
            outcome, seconds = value
            entry = results.setdefault(name, TableResult(name))
            entry.check, entry.verify_seconds = outcome, seconds
            if not entry.rows:
                entry.rows = outcome.target_rows

    def meanwhile() -> None:
        if postgres:  # no table lock: the copies are not held up
            _sequences(snap, tconn, plan)

    try:
        if not copying:
            phase()
        run_tasks(tasks, workers.jobs, on_done, idle=meanwhile)
    finally:
        if later or tracker.table_sink is None:
            bar.finish()
        for conn in opened:
            with contextlib.suppress(Exception):
                conn.rollback()
                conn.close()
    result.tables.extend(results[name] for name in plan.tables)


def _referenced(element: Any) -> str | None:
    """The table a foreign key step references (None for any other step)."""
    fk = getattr(element, "element", None)
    if isinstance(element, AddConstraint) and isinstance(fk, sa.ForeignKeyConstraint):
        return str(fk.referred_table.name)
    return None


def _resumed(tconn: Connection, table: str, total: int) -> bool:
    """True when an interrupted clone loaded this table in full; else it is emptied."""
    q = tconn.dialect.identifier_preparer.quote_identifier(table)
    full = _count(tconn, table) == total
    if not full:
        tconn.exec_driver_sql(f"DELETE FROM {q}")
    tconn.commit()
    return full


def _key_names(tconn: Connection, tables: set[str]) -> set[tuple[str, str]]:
    """(table, name) of the keys, indexes and foreign keys these target tables have."""
    if not tables:
        return set()
    insp = sa.inspect(tconn.engine)
    names: set[tuple[str, str]] = set()
    for t in tables:
        found = [
            insp.get_pk_constraint(t).get("name"),
            *(u.get("name") for u in insp.get_unique_constraints(t)),
            *(i.get("name") for i in insp.get_indexes(t)),
            *(f.get("name") for f in insp.get_foreign_keys(t)),
        ]
        names.update((t, n.lower()) for n in found if n)
    return names


def _pending(
    schema: ddl.TargetSchema, plan: ClonePlan, done: set[tuple[str, str]]
) -> list[tuple[str, Any]]:
    """The keys, indexes and foreign keys to add: all but those ``done`` (``--resume``)."""
    return [
        (table, element)
        for table, element in ddl.after_load(schema, plan)
        if (table, str(getattr(getattr(element, "element", None), "name", "")).lower()) not in done
    ]


def _maintenance_kb(tconn: Connection, jobs: int) -> int | None:
    """PostgreSQL: the maintenance_work_mem to set for key builds (None: keep the server's).

    Index builds sort in memory up to this much (per build; only what they
    need), up to ``MAINTENANCE_TOTAL_KB`` for the builds that run at once.
    """
    kb = tconn.exec_driver_sql(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'"
    ).scalar()
    tconn.commit()
    wanted = min(MAINTENANCE_KB, MAINTENANCE_TOTAL_KB // jobs)
    return wanted if kb is not None and int(kb) < wanted else None


def _add(tconn: Connection, table: str, element: Any) -> Finding | None:
    """Run one key/index/foreign-key step; a refusal is a finding, not a failure."""
    try:
        with tconn.begin():
            tconn.execute(element)
    except sa.exc.DBAPIError as exc:
        return Finding(
            "clone-constraint-failed",
            "error",
            table,
            _refused(table, exc, "constraint"),
            fix="fix the rows in the source, then clone again with --replace",
        )
    return None


def _after_load(
    tconn: Connection,
    schema: ddl.TargetSchema,
    plan: ClonePlan,
    result: CloneResult,
    bar: Progress,
    done: set[tuple[str, str]],
) -> None:
    steps = _pending(schema, plan, done)
    bar.start("keys, indexes, foreign keys", len(steps))
    if plan.target == "postgresql":
        kb = _maintenance_kb(tconn, 1)
        if kb is not None:
            tconn.exec_driver_sql(f"SET maintenance_work_mem = '{kb}kB'")
            tconn.commit()
    if plan.target == "mysql":
        tconn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        tconn.commit()
    try:
        for table, element in steps:
            refused = _add(tconn, table, element)
            if refused is not None:
                result.findings.append(refused)
            bar.advance()
    finally:
        if plan.target == "mysql":
            tconn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
            tconn.commit()
        bar.finish()


def _sequences(snap: Connection, tconn: Connection, plan: ClonePlan) -> None:
    with tconn.begin():
        for name, tp in plan.tables.items():
            col = tp.autoinc
            if col is None:
                continue
            last = last_id(snap, name, col.name)
            strict = plan.target == "sqlite" and (
                tp.src.sqlite_autoincrement or plan.source != "sqlite"
            )
            set_next_id(tconn, name, col.name, last, strict)


def _verify(
    snap: Connection,
    tconn: Connection,
    plan: ClonePlan,
    result: CloneResult,
    bar: Progress,
    known: dict[str, Sums],
) -> None:
    by_name = {t.name: t for t in result.tables}
    for name, tp in plan.tables.items():
        if name in by_name and by_name[name].check is not None:
            continue  # verified by a worker already (--jobs)
        bar.start(f"verify {name}", None)
        t0 = time.perf_counter()
        try:
            check = verify_table(snap, tconn, tp, plan.source, plan.target, known.get(name))
            tconn.rollback()
        finally:
            bar.finish()
        entry = by_name.setdefault(name, TableResult(name))
        entry.check = check
        entry.verify_seconds = time.perf_counter() - t0
        if not entry.rows:
            entry.rows = check.target_rows


def _reason(exc: Exception) -> str:
    """The server's message, first line only."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _refused(table: str, exc: Exception, what: str) -> str:
    reason = _reason(exc)
    if what == "load":
        return (
            f"The target refused rows of table {table}: {reason}. Tables loaded so far stay; "
            "fix the cause and run again with --replace."
        )
    return f"Could not add a key, index or foreign key on {table}: {reason}"


# ------------------------------------------------- views, triggers, routines …


def _run(conn: Connection, statements: tuple[str, ...]) -> str | None:
    """Run the statements in one transaction: None when done, else the server's message."""
    try:
        with conn.begin():
            for sql in statements:
                conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError as exc:
        return _reason(exc)
    return None


def _object_keys(conn: Connection) -> set[tuple[str, str, str]]:
    """(kind, name, table) of the views, triggers, routines … a database has."""
    keys = {o.key for o in reflect_objects(conn)}
    conn.rollback()
    return keys


def _drop_objects(engine: Engine, plan: ClonePlan) -> None:
    """``--replace``: drop the objects this clone creates (they may hold its tables)."""
    if not plan.objects:
        return
    wanted = {o.key for o in plan.objects}
    with engine.connect() as conn:
        present = [o for o in reflect_objects(conn) if o.key in wanted]
        conn.rollback()
        # Dependents first: the creation order reversed, retried while it helps.
        order = list(reversed(creation_order(present)))
        failed = retry_all(order, lambda o: _run(conn, (o.drop,)))
    if failed:
        lines = [f"  {o.subject}: {message}" for o, message in failed.items()]
        raise CloneFailed("--replace could not drop what this clone creates:\n" + "\n".join(lines))


def _create_objects(
    snap: Connection,
    tconn: Connection,
    plan: ClonePlan,
    result: CloneResult,
    bar: Progress,
    resume: bool,
) -> None:
    """Create the views, triggers, routines … once rows, keys and foreign keys are in.

    Triggers therefore never fire during the load. Whatever fails for want of
    another object is retried (see ``retry_all``); what still fails is a
    finding: a warning when it uses a table the selection leaves out, else an
    error. ``resume``: those the target has already are kept.
    """
    if not plan.objects:
        return
    tconn.commit()
    present = _object_keys(tconn) if resume else set()
    todo = []
    for obj in creation_order(plan.objects):
        if obj.key in present:
            result.objects.append((obj, "kept"))
        else:
            todo.append(obj)
    if not todo:
        return
    before, restore = _object_session(tconn, plan.target)
    bar.start("views, triggers, routines", len(todo))

    def create(obj: SrcObject) -> str | None:
        message = _run(tconn, (*before, *obj.sql))
        if message is None:
            bar.advance()
        return message

    try:
        failed = retry_all(todo, create)
        if plan.target == "sqlite":
            made = [o for o in todo if o not in failed]
            failed.update(_sqlite_broken_views(snap, tconn, made))
    finally:
        _run(tconn, restore)
        bar.finish()
    # A view on a view on a table left out fails for the same reason as the first one.
    outside = set(plan.left_out)
    growing = True
    while growing:
        more = {o.name for o in failed if o.name not in outside and _uses(o, outside)}
        outside |= more
        growing = bool(more)
    for obj in todo:
        message = failed.get(obj)
        result.objects.append((obj, "failed" if message else "created"))
        finding = _object_finding(obj, message, _uses(obj, outside))
        if finding is not None:
            result.findings.append(finding)


def _object_finding(obj: SrcObject, message: str | None, uses: list[str]) -> Finding | None:
    """What to report about an object: created (``message`` None) or refused by the target.

    ``uses``: the tables (or failed objects) it mentions that the target does not have.
    """
    if message is not None and not uses:
        return Finding(
            "clone-object-failed",
            "error",
            obj.subject,
            f"the target refused it: {message}",
            fix="create it by hand on the target, or fix the cause and clone again with --replace",
        )
    if not uses:
        return None
    names = ", ".join(uses)
    return Finding(
        "clone-object-outside",
        "warning",
        obj.subject,
        f"created, but it mentions {names}, which this clone leaves out: it may fail when used"
        if message is None
        else f"not created: {message} (it uses {names}, which this clone does not create)",
        fix="clone those tables too, or recreate it by hand on the target",
    )


def _uses(obj: SrcObject, names: set[str]) -> list[str]:
    return mentions(" ".join(obj.sql), names - {obj.name})


def _object_session(tconn: Connection, target: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Session settings for creating objects: (statements before each object, to restore).

    PostgreSQL: function bodies are not checked at creation (as pg_restore
    does), so a SQL function may use a view created after it. MariaDB: each
    routine and trigger sets the sql_mode it was created with; every object
    starts from the session's own.
    """
    if target == "postgresql":
        tconn.exec_driver_sql("SET check_function_bodies = off")
        tconn.commit()
        return (), ("RESET check_function_bodies",)
    if target == "mysql":
        mode = str(tconn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one())
        tconn.commit()
        own = ("SET SESSION sql_mode = '" + mode.replace("'", "''") + "'",)
        return own, own
    return (), ()


def _sqlite_broken_views(
    snap: Connection, tconn: Connection, created: list[SrcObject]
) -> dict[SrcObject, str]:
    """SQLite checks a view's tables only when it is read: drop those the clone broke.

    A view that reads on the source but not on the target (a table the
    selection leaves out) is dropped and reported; one that fails on the
    source too (a function only the application registers, say) stays as it is.
    """

    def unreadable(conn: Connection, name: str) -> str | None:
        q = conn.dialect.identifier_preparer.quote
        try:
            conn.exec_driver_sql(f"SELECT * FROM {q(name)} LIMIT 0").fetchall()
        except sa.exc.DBAPIError as exc:
            return _reason(exc)
        return None

    broken: dict[SrcObject, str] = {}
    for obj in created:
        if obj.kind != "view":
            continue
        message = unreadable(tconn, obj.name)
        tconn.rollback()
        if message is not None and unreadable(snap, obj.name) is None:
            broken[obj] = message
    for obj in broken:
        _run(tconn, (obj.drop,))
    return broken


def _compare_objects(tconn: Connection, plan: ClonePlan, result: CloneResult) -> None:
    """``--verify-only``, same engine: every object the clone creates must be on the target."""
    if not plan.objects:
        return
    present = _object_keys(tconn)
    for obj in creation_order(plan.objects):
        if obj.key in present:
            result.objects.append((obj, "present"))
            continue
        result.objects.append((obj, "missing"))
        result.findings.append(
            Finding(
                "clone-object-missing",
                "error",
                obj.subject,
                "the source has it, the target does not",
                fix="create it on the target (rehost clone --resume creates the missing ones)",
            )
        )


def _objects_not_compared(plan: ClonePlan) -> None:
    """``--verify-only`` across engines: objects are not compared (nor a reason to stop)."""
    crossing = [f for f in plan.findings if f.code == "clone-object-engine"]
    if not crossing:
        return
    plan.findings = [f for f in plan.findings if f.code != "clone-object-engine"]
    plan.findings.append(
        Finding(
            "clone-objects-not-compared",
            "info",
            "views, triggers, routines",
            f"{len(crossing)} object(s) of the source are written in {plan.source} SQL: "
            "across engines they are not compared",
        )
    )
