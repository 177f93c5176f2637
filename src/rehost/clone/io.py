"""Reading the source in one snapshot, and the fastest bulk write each engine has.

* source: one connection, one REPEATABLE READ (PostgreSQL, MariaDB: with a
  consistent snapshot) or deferred (SQLite) read-only transaction for the
  whole clone and its verification; with ``--jobs`` PostgreSQL workers join
  that transaction's exported snapshot; rows streamed with a server-side cursor
  in primary-key order, so memory stays flat whatever the table size;
* PostgreSQL target: ``COPY … FROM STDIN`` through psycopg's ``cursor.copy()``
  (text rows from Python values; PostgreSQL to PostgreSQL with identical
  types pipes ``COPY TO STDOUT (FORMAT binary)`` straight into it);
* MariaDB source, PostgreSQL target, plain column types: MariaDB builds each
  row's COPY text line (``CONCAT_WS``), so PyMySQL decodes one string a row;
* MariaDB target: PyMySQL ``executemany``, which sends one multi-row
  ``INSERT … VALUES (…), (…)`` per up to 16 MB, with key checks off;
* SQLite target: ``executemany`` in one transaction per table, with
  ``journal_mode=OFF`` and ``synchronous=OFF`` while loading.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import itertools
import queue
import select
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.copy import LibpqWriter
from sqlalchemy.engine import Connection, Engine

BATCH = 5000
MYSQL_STMT_BYTES = 16 * 1024 * 1024


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def _order_by(conn: Connection, pk: Sequence[str], text_columns: set[str]) -> str:
    """ORDER BY the key; text compared by code point on every engine (for verify)."""
    parts = []
    for c in pk:
        q = _quote(conn, c)
        if c in text_columns:
            if conn.dialect.name == "postgresql":
                q = f'{q} COLLATE "C"'
            elif conn.dialect.name == "mysql":
                q = f"CONVERT({q} USING utf8mb4) COLLATE utf8mb4_bin"
        parts.append(q)
    return ", ".join(parts)


def stream(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    pk: Sequence[str],
    *,
    text_pk: set[str] | None = None,
    batch: int = BATCH,
    where: str | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """All rows of a table (or those ``where`` says) in key order, in batches, server-side."""
    cols = ", ".join(_quote(conn, c) for c in columns)
    sql = f"SELECT {cols} FROM {_quote(conn, table)}"
    if where:
        sql += f" WHERE {where}"
    if pk:
        sql += f" ORDER BY {_order_by(conn, pk, text_pk or set())}"
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        cur = raw.cursor(name=f"rehost_{next(_cursor_ids)}")  # server-side
        cur.itersize = batch
    elif conn.dialect.name == "mysql":
        import pymysql.cursors  # type: ignore[import-untyped]

        cur = raw.cursor(pymysql.cursors.SSCursor)  # unbuffered
    else:
        cur = raw.cursor()
    try:
        cur.execute(sql)
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                return
            yield rows
    finally:
        with contextlib.suppress(Exception):  # the connection may be gone (Ctrl-C)
            cur.close()


_cursor_ids = itertools.count(1)


def open_snapshot(engine: Engine) -> Connection:
    """A read-only connection whose reads all see the same moment of the source."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        conn = engine.connect()
        conn.begin()
        return conn
    conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    if dialect == "postgresql":
        conn.begin()
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
    else:
        conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        conn.commit()
        conn.begin()
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    return conn


def export_snapshot(conn: Connection) -> str | None:
    """PostgreSQL: the id other sessions can join this snapshot by (None elsewhere)."""
    if conn.dialect.name != "postgresql":
        return None
    return str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())


def join_snapshot(engine: Engine, snapshot: str | None) -> Connection:
    """A worker's source connection: PostgreSQL joins the exported snapshot.

    SQLite gets its own deferred read transaction (the same data only while no
    one writes the file); MariaDB cannot share a snapshot, so the clone reads it
    through one connection (see ``clone``) and never calls this for it.
    """
    if engine.dialect.name != "postgresql" or snapshot is None:
        return open_snapshot(engine)
    conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    conn.begin()
    # Must come before any query of the transaction.
    conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.exec_driver_sql("SET TIME ZONE 'UTC'")
    return conn


def table_sizes(conn: Connection, tables: Sequence[str]) -> dict[str, tuple[int | None, int]]:
    """PostgreSQL: per table, the planner's row estimate (None if never counted) and its pages.

    Free to ask (no scan): the estimate is for progress and planning only,
    never for a decision about data. Other engines: an empty dict.
    """
    if conn.dialect.name != "postgresql" or not tables:
        return {}
    rows = conn.exec_driver_sql(
        "SELECT n, c.reltuples::bigint,"
        " pg_relation_size(c.oid) / current_setting('block_size')::bigint"
        " FROM unnest(%(names)s::text[]) AS n"
        " JOIN pg_class c ON c.oid = to_regclass(quote_ident(n))",
        {"names": list(tables)},
    )
    return {str(n): (int(r) if r is not None and r >= 0 else None, int(p)) for n, r, p in rows}


def ctid_parts(pages: int, parts: int) -> list[str]:
    """WHERE clauses that split a PostgreSQL table into ``parts`` runs of pages (by ``ctid``).

    Every row version lives at one ctid, so in one snapshot the parts hold
    each visible row exactly once, whatever the keys; the last part is
    open-ended (pages added since the size was read hold no row of the
    snapshot, or rows the snapshot cannot see). PostgreSQL 14 on reads each
    part with a TID range scan: only its own pages.
    """
    bounds = [pages * i // parts for i in range(1, parts)]
    lows: list[int | None] = [None, *bounds]
    highs: list[int | None] = [*bounds, None]
    out = []
    for lo, hi in zip(lows, highs, strict=True):
        cond = []
        if lo is not None:
            cond.append(f"ctid >= '({lo},0)'::tid")
        if hi is not None:
            cond.append(f"ctid < '({hi},0)'::tid")
        out.append(" AND ".join(cond))
    return out


def session_setup(conn: Connection) -> None:
    """Target session settings: UTC, and MariaDB strict with literal zero IDs."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TIME ZONE 'UTC'")
    elif conn.dialect.name == "mysql":
        conn.exec_driver_sql(
            "SET SESSION time_zone = '+00:00', "
            "sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'"
        )


# -------------------------------------------------------------------- writers


def write_rows(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    batches: Iterator[list[tuple[Any, ...]]],
    advance: Any,
    *,
    freeze: bool = False,
) -> int:
    """Bulk-insert every batch into the target table and commit; returns the row count.

    ``advance(rows, nbytes)`` is called once per batch with the bytes that batch
    added to what the loader sends or writes: COPY text (PostgreSQL), INSERT
    value literals (MariaDB), database pages filled (SQLite). Counted per buffer or
    batch, never per row.

    ``freeze`` (PostgreSQL): the table was just created and nothing references
    it, so it may be truncated and loaded with ``COPY … FREEZE``.
    """
    dialect = conn.dialect.name
    raw: Any = conn.connection.dbapi_connection
    t = _quote(conn, table)
    cols = ", ".join(_quote(conn, c) for c in columns)
    total = 0
    if dialect == "postgresql":
        with raw.cursor() as cur:
            writer = _CountingWriter(cur)
            with _copy_into(cur, t, cols, "text", freeze, writer) as copy:
                write_row = copy.write_row
                sent = 0
                for rows in batches:
                    for row in rows:
                        write_row(row)
                    total += len(rows)
                    advance(len(rows), writer.nbytes - sent)
                    sent = writer.nbytes
            advance(0, writer.nbytes - sent)  # the last buffer goes out when the COPY ends
        raw.commit()
        return total
    if dialect == "mysql":
        return _mysql_insert(raw, f"INSERT INTO {t} ({cols}) VALUES ", batches, advance)
    sql = f"INSERT INTO {t} ({cols}) VALUES ({', '.join(['?'] * len(columns))})"
    raw.execute("BEGIN")
    try:
        page = int(raw.execute("PRAGMA page_size").fetchone()[0])
        # The pages in use, less the root pages CREATE TABLE gave the table and its keys
        # (which its first rows fill): counted once per batch.
        roots = raw.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = ? AND rootpage > 0", (table,)
        ).fetchone()[0]
        pages = _sqlite_pages(raw) - int(roots)
        for rows in batches:
            raw.executemany(sql, rows)
            total += len(rows)
            now = _sqlite_pages(raw)
            advance(len(rows), (now - pages) * page)
            pages = now
        raw.execute("COMMIT")
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    return total


def _sqlite_pages(raw: Any) -> int:
    """The pages of a SQLite database in use (not on its free list)."""
    count = raw.execute("PRAGMA page_count").fetchone()[0]
    return int(count) - int(raw.execute("PRAGMA freelist_count").fetchone()[0])


def _mysql_insert(
    raw: Any, head: str, batches: Iterator[list[tuple[Any, ...]]], advance: Any
) -> int:
    """Multi-row INSERTs of up to 16 MB, literals written column by column.

    What PyMySQL's executemany does, minus its per-value dispatch: 2-3x faster.
    The bytes reported are the characters of the row literals, per batch.
    """
    cur = raw.cursor()
    cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
    cur.execute("SELECT @@max_allowed_packet")
    packet = min(MYSQL_STMT_BYTES, int(cur.fetchone()[0]) - 64 * 1024)
    limit = max(256 * 1024, packet // 4)  # characters: up to 4 bytes each in utf8mb4
    literal = raw.literal
    literals = _mysql_literals()
    total = 0
    try:
        parts: list[str] = []
        size = sent = 0
        for rows in batches:
            columns = [
                [_mysql_literal(v, literal, literals) for v in [r[i] for r in rows]]
                for i in range(len(rows[0]))
            ]
            before = size + sent
            for values in zip(*columns, strict=True):
                text = "(" + ",".join(values) + ")"
                if parts and size + len(text) > limit:
                    cur.execute(head + ",".join(parts))
                    parts, sent, size = [], sent + size, 0
                parts.append(text)
                size += len(text) + 1
            total += len(rows)
            advance(len(rows), size + sent - before)
        if parts:
            cur.execute(head + ",".join(parts))
        raw.commit()
    finally:
        cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
        cur.close()
    return total


def _quote_iso(v: Any) -> str:
    return "'" + v.isoformat() + "'"


def _mysql_literals() -> dict[type, Any]:
    """Python type → its MariaDB literal (PyMySQL's escaping, imported only for MariaDB)."""
    from pymysql.converters import (  # type: ignore[import-untyped]
        escape_bytes_prefixed,
        escape_string,
    )

    def quote_text(v: str) -> str:
        return "'" + escape_string(v) + "'"

    return {
        int: str,
        bool: lambda v: "1" if v else "0",
        float: repr,
        decimal.Decimal: str,
        str: quote_text,
        bytes: escape_bytes_prefixed,
        dt.datetime: _quote_iso,
        dt.date: _quote_iso,
        dt.time: _quote_iso,
    }


def _mysql_literal(v: Any, fallback: Any, literals: dict[type, Any]) -> str:
    if v is None:
        return "NULL"
    fn = literals.get(v.__class__)
    return fn(v) if fn is not None else fallback(v)


PIPE_BLOCK = 1 << 20


def copy_out(raw: Any, sql: str) -> Iterator[Any]:
    """The rows of ``COPY … TO STDOUT`` on a psycopg connection, read through libpq directly.

    psycopg's ``Copy`` reads one row per call too, through its generator and
    wait machinery: about 1.5 µs of Python per row, three times this loop's
    cost, which on a 2M-row table is 2-3 s of CPU. Waits (``select``) release
    the GIL, so worker threads still overlap. An interruption cancels the
    COPY and leaves the connection usable (in its aborted transaction).
    """
    pg = raw.pgconn
    with raw.lock:
        pg.send_query(sql.encode())
        _wait_result(pg)
        res = pg.get_result()
        if res is None or res.status != pq.ExecStatus.COPY_OUT:
            _drain(pg)
            raise psycopg.OperationalError(_message(pg, res))
        get = pg.get_copy_data
        try:
            while True:
                n, data = get(1)
                if n > 0:
                    yield data
                elif n == 0:
                    select.select([pg.socket], [], [])
                    pg.consume_input()
                else:
                    break
        except BaseException:
            with contextlib.suppress(Exception):
                pg.get_cancel().cancel()
                while (n := get(1)[0]) >= 0:  # what was sent before the cancel
                    if n == 0:
                        select.select([pg.socket], [], [], 1.0)
                        pg.consume_input()
            _drain(pg)
            raise
        failed = _drain(pg)
        if failed is not None:
            raise psycopg.OperationalError(failed)


def _wait_result(pg: Any) -> None:
    while True:
        pg.consume_input()
        if not pg.is_busy():
            return
        select.select([pg.socket], [], [])


def _message(pg: Any, res: Any) -> str:
    text = res.error_message if res is not None else b""
    return (text or pg.error_message or b"COPY failed").decode("utf-8", "replace").strip()


def _drain(pg: Any) -> str | None:
    """Collect the remaining results of the query; the first error's message, if any."""
    failed = None
    while True:
        _wait_result(pg)
        res = pg.get_result()
        if res is None:
            return failed
        if failed is None and res.status == pq.ExecStatus.FATAL_ERROR:
            failed = _message(pg, res)


class _CountingWriter(LibpqWriter):
    """psycopg's COPY writer, counting the bytes it sends (one call per ~32 KB buffer)."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        self.nbytes = 0

    def write(self, data: Any) -> None:
        self.nbytes += len(data)
        super().write(data)


def _copy_into(cur: Any, t: str, cols: str, fmt: str, freeze: bool, writer: Any = None) -> Any:
    """``COPY … FROM STDIN`` on a PostgreSQL target; with ``freeze`` the rows are written frozen.

    FREEZE needs the table emptied in the same transaction: a table the clone
    just created (nothing references it yet) is truncated first. Frozen rows
    need no hint-bit writes on the first read, which the key builds and the
    verification that follow would otherwise pay for.
    """
    if freeze:
        cur.execute(f"TRUNCATE {t}")
    options = ", ".join([*([f"FORMAT {fmt}"] if fmt != "text" else []), *(["FREEZE"] * freeze)])
    sql = f"COPY {t} ({cols}) FROM STDIN" + (f" ({options})" if options else "")
    return cur.copy(sql, writer=writer)


PIPE_QUEUE = 8  # blocks read ahead of the target: memory stays about 10 MB


def _pump(chunks: Iterator[Any], write: Any, advance: Any) -> int:
    """Rows gathered into ~1 MB blocks, which a thread sends while this one reads on.

    Returns the messages read (one per row; the first also carries the
    header). ``advance(rows, nbytes)`` is called once per block. If sending fails the thread drops the rest, so reading never
    waits on a full queue, and the error is raised here.
    """
    blocks: queue.Queue[bytearray | None] = queue.Queue(maxsize=PIPE_QUEUE)
    failed: list[BaseException] = []

    def send() -> None:
        while (block := blocks.get()) is not None:
            if not failed:
                try:
                    write(block)
                except BaseException as exc:  # raised in the reading thread below
                    failed.append(exc)

    sender = threading.Thread(target=send, name="rehost-copy-in", daemon=True)
    sender.start()
    rows = 0
    try:
        block = bytearray()
        for n, chunk in enumerate(chunks, 1):
            block += chunk
            if len(block) >= PIPE_BLOCK:
                blocks.put(block)
                advance(n - rows, len(block))
                block = bytearray()
                rows = n
                if failed:
                    break
        if block and not failed:
            blocks.put(block)
            advance(0, len(block))
    finally:
        blocks.put(None)
        sender.join()
    if failed:
        raise failed[0]
    return rows


def pipe_postgres(
    source: Connection,
    target: Connection,
    table: str,
    columns: Sequence[str],
    advance: Any,
    *,
    freeze: bool = False,
    where: str | None = None,
) -> int:
    """PostgreSQL to PostgreSQL with identical types: binary COPY out, straight in.

    libpq hands out one row per read; they are passed on in blocks of about
    1 MB, which saves a call into the target connection per row, by a
    second thread, so reading the source and writing the target overlap.
    ``where``: only these rows (one part of a table split over several workers).
    """
    src: Any = source.connection.dbapi_connection
    tgt: Any = target.connection.dbapi_connection
    t = _quote(source, table)
    cols = ", ".join(_quote(source, c) for c in columns)
    select = f"SELECT {cols} FROM {t}" + (f" WHERE {where}" if where else "")
    out = copy_out(src, f"COPY ({select}) TO STDOUT (FORMAT binary)")
    # Closed on the way out whatever happens: it holds the source connection's lock.
    with contextlib.closing(out), tgt.cursor() as tcur:
        with _copy_into(tcur, t, cols, "binary", freeze) as into:
            rows = _pump(out, into.write, advance)
        total = int(tcur.rowcount)
    tgt.commit()
    advance(max(0, total - rows))
    return total


class LoadPragmas:
    """SQLite: no journal, no fsync and no foreign-key checks while loading; restored after."""

    def __init__(self, conn: Connection) -> None:
        self.raw: Any = conn.connection.dbapi_connection
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> LoadPragmas:
        for name in ("journal_mode", "synchronous"):
            self.saved[name] = self.raw.execute(f"PRAGMA {name}").fetchone()[0]
        self.raw.execute("PRAGMA foreign_keys = OFF")
        self.raw.execute("PRAGMA journal_mode = OFF")
        self.raw.execute("PRAGMA synchronous = OFF")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.raw.execute(f"PRAGMA journal_mode = {self.saved['journal_mode']}")
        self.raw.execute(f"PRAGMA synchronous = {int(self.saved['synchronous'])}")
        self.raw.execute("PRAGMA foreign_keys = ON")


# ------------------------------------------------------------------ sequences


def last_id(conn: Connection, table: str, column: str) -> int | None:
    """The highest ID a sequence of the source already handed out (deleted rows included)."""
    dialect = conn.dialect.name
    q = _quote(conn, table)
    highest = conn.exec_driver_sql(f"SELECT MAX({_quote(conn, column)}) FROM {q}").scalar()
    counter: int | None = None
    if dialect == "postgresql":
        seq = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%(t)s, %(c)s)", {"t": q, "c": column}
        ).scalar()
        if seq:
            last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
            counter = int(last) if called else int(last) - 1
    elif dialect == "mysql":
        nxt = conn.exec_driver_sql(
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        ).scalar()
        counter = int(nxt) - 1 if nxt else None
    else:
        try:
            seq = conn.exec_driver_sql(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
            ).scalar()
            counter = int(seq) if seq is not None else None
        except Exception:  # no AUTOINCREMENT table anywhere: no sqlite_sequence
            counter = None
    values = [int(v) for v in (highest, counter) if v is not None]
    return max(values) if values else None


def set_next_id(conn: Connection, table: str, column: str, last: int | None, strict: bool) -> None:
    """Make the target's next generated ID ``last + 1`` (or its start when empty)."""
    dialect = conn.dialect.name
    q = _quote(conn, table)
    if dialect == "postgresql":
        seq = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%(t)s, %(c)s)", {"t": q, "c": column}
        ).scalar()
        if seq and last is not None:
            conn.exec_driver_sql("SELECT setval(%(s)s, %(v)s, true)", {"s": seq, "v": last})
    elif dialect == "mysql":
        if last is not None:
            conn.exec_driver_sql(f"ALTER TABLE {q} AUTO_INCREMENT = {int(last) + 1}")
    elif strict and last is not None:
        conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, int(last))
        )


# ------------------------------------------- MariaDB → PostgreSQL: COPY text lines

# (source kind, target kind) pairs whose MariaDB text is what PostgreSQL's COPY
# takes for the value, as the row-by-row path would send it.
_MYSQL_TEXT_PAIRS = {
    ("int", "int"),
    ("int", "decimal"),
    ("decimal", "decimal"),
    ("bool", "bool"),
    ("float", "float"),  # the same text PyMySQL would parse: the same double
    ("text", "text"),
    ("date", "date"),
    ("datetime", "datetime"),
}


def mysql_copy_lines(kinds: Sequence[tuple[str, str]]) -> bool:
    """True when every column's (source, target) kind can be read as COPY text from MariaDB."""
    return all(pair in _MYSQL_TEXT_PAIRS for pair in kinds)


def _mysql_char(code: int) -> str:
    return f"CHAR({code} USING utf8mb4)"  # whatever the session's backslash rules


_BS = _mysql_char(92)
_TAB = _mysql_char(9)


def _mysql_bad_date(q: str) -> str:
    """A date Python cannot hold (what PyMySQL returns as text): zero, year 0, 30 February."""
    return (
        f"({q} IS NOT NULL AND ({q} + INTERVAL 0 DAY IS NULL"
        f" OR YEAR({q}) = 0 OR MONTH({q}) = 0 OR DAYOFMONTH({q}) = 0))"
    )


def _mysql_copy_expr(q: str, kind: str) -> str:
    """One column as COPY text: escaped, ``\\N`` for NULL and for zero dates."""
    if kind == "text":
        value = f"CONVERT({q} USING utf8mb4)"
        for code, letter in ((92, _BS), (9, "'t'"), (10, "'n'"), (13, "'r'")):
            value = f"REPLACE({value}, {_mysql_char(code)}, CONCAT({_BS}, {letter}))"
    elif kind in ("date", "datetime"):
        value = f"IF({_mysql_bad_date(q)}, NULL, {q})"
    else:
        value = q
    return f"IFNULL({value}, CONCAT({_BS}, 'N'))"


def mysql_zero_dates(conn: Connection, table: str, columns: Sequence[str]) -> list[int]:
    """Per date column, how many zero (or part-zero) dates the table has: one scan."""
    if not columns:
        return []
    sums = ", ".join(
        f"COALESCE(SUM({_mysql_bad_date(q)}), 0)" for q in (_quote(conn, c) for c in columns)
    )
    row = conn.exec_driver_sql(f"SELECT {sums} FROM {_quote(conn, table)}").one()
    return [int(v) for v in row]


def pipe_mysql_text(
    source: Connection,
    target: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    pk: Sequence[str],
    advance: Any,
    *,
    freeze: bool = False,
) -> int:
    """MariaDB → PostgreSQL: MariaDB writes each row's COPY text line, sent on in batches.

    PyMySQL decodes one string per row instead of one Python value per
    column (its decoding is pure Python), and nothing is converted here.
    ``columns`` are (name, target kind) pairs that ``mysql_copy_lines`` accepted.
    """
    line = ", ".join(_mysql_copy_expr(_quote(source, c), kind) for c, kind in columns)
    sql = f"SELECT CONCAT_WS({_TAB}, {line}) FROM {_quote(source, table)}"
    if pk:
        sql += f" ORDER BY {_order_by(source, pk, set())}"
    import pymysql.cursors

    src: Any = source.connection.dbapi_connection
    tgt: Any = target.connection.dbapi_connection
    t = _quote(target, table)
    cols = ", ".join(_quote(target, c) for c, _ in columns)
    total = 0
    cur = src.cursor(pymysql.cursors.SSCursor)
    try:
        cur.execute(sql)
        with tgt.cursor() as tcur, _copy_into(tcur, t, cols, "text", freeze) as copy:
            while rows := cur.fetchmany(BATCH):
                data = "\n".join([r[0] for r in rows]).encode() + b"\n"
                copy.write(data)
                total += len(rows)
                advance(len(rows), len(data))
        tgt.commit()
    finally:
        with contextlib.suppress(Exception):
            cur.close()
    return total
