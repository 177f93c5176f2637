"""Verify a clone: row counts and per-table content checksums, compared on both sides.

Streamed: both tables are read in primary-key order (text keys by code point,
the same on every engine) and every value is turned into a canonical text form
(see rehost.clone.values), so the checksums agree across engines exactly
when the content does. Comparing row by row while streaming also names the
first key that differs. Tables without a primary key are compared as a
multiset (order-independent sum of row hashes).

In the databases, whenever PostgreSQL or MariaDB is on a side: per key range
(up to 1,024 ranges of an integer primary key, or the whole table), a row
count and a sum of 64- or 60-bit row hashes, computed on both sides at once.
Equal sums mean equal content (a collision is a 1 in 2^60 chance per range);
a range whose sums differ is then streamed and compared as above, which is
exact and names the first differing key — so a checksum difference that is
not a content difference costs time, never a wrong verdict.

* PostgreSQL to PostgreSQL with identical column types: the hash of each
  row's typed values (``hash_record_extended``).
* Other pairs: the MD5 of each row's text (rehost.clone.rowtext), written in
  SQL by PostgreSQL and MariaDB and in Python for SQLite (one read of the
  table, concurrent with the other server's query). Columns of a type without
  a common exact text (single-precision floats, times, JSON, UUIDs, zoned
  timestamps into a naive column …) are compared by streaming just them with
  the key, after the sums; a table whose key is not all hashable, or without a
  key and with such a column, is streamed whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from rehost.clone import rowtext
from rehost.clone.io import stream
from rehost.clone.plan import ClonePlan, ColumnPlan, TablePlan
from rehost.clone.values import ZeroDates, canonical, converter, source_fix

_NULL = "\x00"
_SAME = {("uuid", "text"), ("text", "uuid")}


@dataclass
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str
    first_diff: str | None = None
    method: str = "streamed"  # or "database": checksums computed by the servers
    streamed_columns: list[str] = field(default_factory=list)  # with "database": compared streamed

    @property
    def ok(self) -> bool:
        return (
            self.first_diff is None
            and self.source_rows == self.target_rows
            and self.source_sum == self.target_sum
        )

    def problem(self) -> str:
        if self.ok:
            return ""
        parts = []
        if self.source_rows != self.target_rows:
            parts.append(f"{self.source_rows} rows in the source, {self.target_rows} in the target")
        if self.first_diff:
            parts.append(f"first difference at {self.first_diff}")
        elif self.source_sum != self.target_sum:
            parts.append("content checksums differ")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "ok": self.ok,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
            "source_checksum": self.source_sum,
            "target_checksum": self.target_sum,
            "first_difference": self.first_diff,
            "method": self.method,
            "streamed_columns": self.streamed_columns,
        }


def _encoders(
    c: ColumnPlan, source: str, target: str, table: str
) -> tuple[Callable[[Any], str], Callable[[Any], str]]:
    m = c.mapped
    fix = source_fix(source, target, m.src_kind, f"{table}.{c.name}", ZeroDates())
    tgt = canonical(m.kind, scale=m.scale, float4=m.float4, fixed=m.fixed)
    if m.src_kind == m.kind or (m.src_kind, m.kind) in _SAME:
        src = canonical(m.src_kind, scale=m.scale, float4=m.float4, fixed=m.fixed)
    else:
        conv = converter(m.src_kind, m.kind, source, target, m.scale)
        src = tgt if conv is None else _then(conv, tgt)
    if fix is not None:
        inner = src

        def src_fixed(v: Any) -> str:
            v = fix(v)
            return _NULL if v is None else inner(v)

        return src_fixed, tgt
    return src, tgt


def _then(first: Callable[[Any], Any], second: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda v: second(first(v))


Batch = tuple[list[str], list[tuple[Any, ...]]]
Where = Callable[[Connection], str]  # a WHERE condition in a side's SQL


def _batches(
    conn: Connection,
    tp: TablePlan,
    encoders: list[Callable[[Any], str]],
    text_pk: set[str],
    where: Where | None = None,
) -> Iterator[Batch]:
    """(canonical row texts, raw rows), batch by batch, in key order."""
    cond = where(conn) if where else None
    for rows in stream(conn, tp.name, tp.column_names, tp.pk, text_pk=text_pk, where=cond):
        columns = [
            [_NULL if v is None else enc(v) for v in [r[i] for r in rows]]
            for i, enc in enumerate(encoders)
        ]
        yield ["\x1f".join(t) for t in zip(*columns, strict=True)], rows


def _key(tp: TablePlan, row: tuple[Any, ...], encoders: list[Callable[[Any], str]]) -> tuple:
    """A row's key, comparable the way the engines ordered it (integers as numbers)."""
    names = tp.column_names
    out: list[Any] = []
    for c in tp.pk:
        i = names.index(c)
        if tp.columns[i].mapped.kind == "int":
            try:
                out.append(int(row[i]))
                continue
            except (TypeError, ValueError):
                pass
        out.append(encoders[i](row[i]))
    return tuple(out)


def _describe(tp: TablePlan, key: tuple[Any, ...]) -> str:
    return f"{tp.name} (" + ", ".join(f"{c}={v!r}" for c, v in zip(tp.pk, key, strict=True)) + ")"


def verify_table(
    src: Connection,
    tgt: Connection,
    tp: TablePlan,
    source: str,
    target: str,
    known: Sums | None = None,
) -> TableCheck:
    """Compare one table on both sides; the source is read in the caller's snapshot.

    ``known``: the source's sums, from ``source_sums``.
    """
    if source == target == "postgresql" and tp.same_types:
        check = _in_database(src, tgt, tp, known)
    elif in_database(source, target):
        check = _across(src, tgt, tp, source, target, known)
    else:
        check = None
    return check if check is not None else _streamed(src, tgt, tp, source, target)


def _streamed(
    src: Connection,
    tgt: Connection,
    tp: TablePlan,
    source: str,
    target: str,
    where: Where | None = None,
) -> TableCheck:
    """Both sides streamed in key order (only the rows ``where`` picks) and compared."""
    pairs = [_encoders(c, source, target, tp.name) for c in tp.columns]
    src_enc, tgt_enc = [p[0] for p in pairs], [p[1] for p in pairs]
    text_pk = {c.name for c in tp.columns if c.name in tp.pk and c.mapped.kind in ("text", "uuid")}
    left = _batches(src, tp, src_enc, text_pk, where)
    right = _batches(tgt, tp, tgt_enc, text_pk, where)
    if not tp.pk:
        n1, s1 = _multiset(left)
        n2, s2 = _multiset(right)
        return TableCheck(tp.name, n1, n2, s1, s2)
    h1, h2 = hashlib.sha256(), hashlib.sha256()
    n1 = n2 = 0
    first: str | None = None
    empty: Batch = ([], [])
    while True:
        a = next(left, None)
        b = next(right, None)
        if a is None and b is None:
            break
        a, b = a or empty, b or empty
        for h, texts in ((h1, a[0]), (h2, b[0])):
            if texts:
                h.update(("\x1e".join(texts) + "\x1e").encode("utf-8", "surrogatepass"))
        n1 += len(a[0])
        n2 += len(b[0])
        if first is None and a[0] != b[0]:
            i = next(
                i
                for i in range(max(len(a[0]), len(b[0])))
                if i >= len(a[0]) or i >= len(b[0]) or a[0][i] != b[0][i]
            )
            ka = _key(tp, a[1][i], src_enc) if i < len(a[0]) else None
            kb = _key(tp, b[1][i], tgt_enc) if i < len(b[0]) else None
            first = _describe(tp, _first_key(ka, kb))
            if ka is not None and ka == kb:  # the same row, other values: say which
                left_values = a[0][i].split("\x1f")
                right_values = b[0][i].split("\x1f")
                differ = [
                    c
                    for c, x, y in zip(tp.column_names, left_values, right_values, strict=False)
                    if x != y
                ]
                first += (
                    f": {', '.join(differ)} differ" if len(differ) > 1 else f": {differ[0]} differs"
                )
    return TableCheck(tp.name, n1, n2, h1.hexdigest(), h2.hexdigest(), first)


def _first_key(a: tuple | None, b: tuple | None) -> tuple:
    """The smaller key of two rows that differ: the row one side lacks, or both differ at."""
    if a is None or b is None:
        key = a if b is None else b
        assert key is not None
        return key
    try:
        return a if a <= b else b
    except TypeError:
        return a


def _multiset(batches: Iterator[Batch]) -> tuple[int, str]:
    total = 0
    n = 0
    for texts, _ in batches:
        for text in texts:
            total += int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
        n += len(texts)
    return n, format(total % (1 << 256), "064x")


# ------------------------------------------------- checksums computed by the servers

BUCKETS = 1024
_SAFE = 1 << 62  # key bounds whose arithmetic cannot overflow a bigint
# Type output that depends on session settings: the same on both sides.
_PG_SETTINGS = (
    "SET extra_float_digits = 1",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'postgres'",
    "SET bytea_output = 'hex'",
    "SET TIME ZONE 'UTC'",
)
# Types whose hash function tells exactly the values apart that differ (so not
# floats: -0 = 0; not numeric: 1.0 = 1.00; not intervals: 1 day = 24 hours; not
# enums: hashed by OID, which differs per database), hashed as they are; any
# other column is hashed in its text form.
_HASHED_AS_IS = (
    sa.Integer,
    sa.Boolean,
    sa.Date,
    sa.DateTime,
    sa.Time,
    sa.LargeBinary,
    sa.Uuid,
    postgresql.JSONB,
)

Buckets = dict[int, tuple[int, str]]  # key range → (rows, checksum)


@dataclass
class Sums:
    """One side's checksums of a table: per key range, or (``bounds`` None) the whole table."""

    buckets: Buckets
    bounds: tuple[int, int] | None = None  # (lowest key, range width)
    fields: tuple[str, ...] = ()  # the columns hashed (across engines)


def _int_key(tp: TablePlan) -> str | None:
    """The primary key's column when it is a single integer column, else None."""
    if len(tp.pk) != 1:
        return None
    col = tp.columns[tp.column_names.index(tp.pk[0])]
    return col.name if isinstance(col.src.type, sa.Integer) else None


def row_hash(conn: Connection, tp: TablePlan) -> str:
    """SQL for a 64-bit hash of a row, the same on two servers for the same content.

    PostgreSQL 14 on: ``hash_record_extended`` over the columns (text ones in
    the "C" collation, types without an exact hash as text), through
    ``hashint8extended`` — record hashes combine columns linearly, so a plain
    sum of them would not see two rows swap a value. Before 14: the hash of the
    row's text form.
    """
    q = conn.dialect.identifier_preparer.quote_identifier
    if (conn.dialect.server_version_info or (0,)) < (14,):
        row = ", ".join(q(c) for c in tp.column_names)
        return f"hashtextextended(ROW({row})::text, 0)"
    parts = []
    for c in tp.columns:
        t = c.src.type
        if isinstance(t, sa.Enum | postgresql.DOMAIN | postgresql.CITEXT):
            parts.append(f"{q(c.name)}::text")
        elif isinstance(t, sa.String) and not isinstance(t, sa.JSON):
            parts.append(f'{q(c.name)} COLLATE "C"')
        elif isinstance(t, _HASHED_AS_IS) and not isinstance(t, sa.ARRAY):
            parts.append(q(c.name))
        else:
            parts.append(f"{q(c.name)}::text")
    return f"hashint8extended(hash_record_extended(ROW({', '.join(parts)}), 0), 0)"


def _pg_sums(conn: Connection, tp: TablePlan, bucket: str | None) -> Buckets:
    q = conn.dialect.identifier_preparer.quote_identifier
    sums = f"count(*), coalesce(sum({row_hash(conn, tp)}), 0)::text"
    if bucket is None:
        sql = f"SELECT 0, {sums} FROM {q(tp.name)}"
    else:
        sql = f"SELECT {bucket}, {sums} FROM {q(tp.name)} GROUP BY 1"
    return {int(b): (int(n), str(s)) for b, n, s in conn.exec_driver_sql(sql)}


def _both(
    src: Connection, tgt: Connection, tp: TablePlan, bucket: str | None
) -> tuple[Buckets, Buckets]:
    """The sums on both servers at once (each side is one scan)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehost-verify") as pool:
        right = pool.submit(_pg_sums, tgt, tp, bucket)
        left = _pg_sums(src, tp, bucket)
        return left, right.result()


def in_database(source: str, target: str) -> bool:
    """True when checksums are computed per key range (PostgreSQL or MariaDB on a side).

    The servers compute them in SQL; a SQLite side is read once by rehost.
    """
    return source != "sqlite" or target != "sqlite"


def _usable(conn: Connection) -> bool:
    return (conn.dialect.server_version_info or (0,)) >= (11,)  # hashtextextended()


def _settings(conn: Connection) -> None:
    for sql in _PG_SETTINGS:
        conn.exec_driver_sql(sql)


def source_sums(src: Connection, plan: ClonePlan) -> dict[str, Sums]:
    """The source side of the sums, ahead of time (say, while the target builds keys)."""
    if not in_database(plan.source, plan.target):
        return {}
    if plan.source == plan.target == "postgresql":
        if not _usable(src):
            return {}
        _settings(src)
        return {
            name: Sums(_pg_sums(src, tp, None)) for name, tp in plan.tables.items() if tp.same_types
        }
    out: dict[str, Sums] = {}
    for name, tp in plan.tables.items():
        layout = _layout(tp, plan.source, plan.target)
        if layout is None or not _ready(src):
            continue
        try:
            bounds = _bounds(src, tp, layout)
        except _Unranged:
            continue
        sums = _side(src, tp, layout, bounds, plan.source, plan.target, "source")
        if sums is not None:
            out[name] = sums
    return out


def _in_database(
    src: Connection, tgt: Connection, tp: TablePlan, known: Sums | None = None
) -> TableCheck | None:
    """Same-engine PostgreSQL: compare sums of row hashes; stream only the ranges that differ.

    First one sum per table; if they differ and the key is a single integer
    column, sums per key range, and the ranges that differ are streamed. None
    when the servers cannot tell (the caller streams the whole table).
    """
    if not (_usable(src) and _usable(tgt)):
        return None
    try:
        for conn in (src, tgt):
            _settings(conn)
        if known is not None and known.bounds is None:
            left, right = known.buckets, _pg_sums(tgt, tp, None)
        else:
            left, right = _both(src, tgt, tp, None)
        if left == right:
            n, total = left.get(0, (0, "0"))
            return TableCheck(tp.name, n, n, total, total, method="database")
        key = _int_key(tp)
        if key is None:
            return None  # one range: the whole table is streamed
        try:
            bounds = _key_range(src, tp.name, key)
        except _Unranged:
            return None
        if bounds is None:
            return None
        lo, width = bounds
        q = src.dialect.identifier_preparer.quote_identifier
        left, right = _both(src, tgt, tp, f"({q(key)}::bigint - {lo}) / {width}")
    except sa.exc.DBAPIError:
        # e.g. a corrupted target key outside bigint arithmetic: stream instead. The
        # source only ran the same queries on keys within its own bounds.
        tgt.rollback()
        return None
    try:
        first = _resolve(src, tgt, tp, "postgresql", "postgresql", (key, lo, width), left, right)
    except _Unranged:
        return None
    return TableCheck(
        tp.name,
        sum(n for n, _ in left.values()),
        sum(n for n, _ in right.values()),
        _digest(left),
        _digest(right),
        first,
        method="database",
    )


def _resolve(
    src: Connection,
    tgt: Connection,
    tp: TablePlan,
    source: str,
    target: str,
    ranges: tuple[str, int, int],
    left: Buckets,
    right: Buckets,
) -> str | None:
    """Stream the key ranges whose sums differ, in key order: the first difference, or None.

    A range that streams equal gets that exact checksum on both sides. Raises
    _Unranged when a range streams other rows than its sums counted.
    """
    key, lo, width = ranges
    for b in sorted(b for b in left.keys() | right.keys() if left.get(b) != right.get(b)):
        if b > 0:
            low, high = f">= {lo + b * width}", f"< {lo + (b + 1) * width}"
        elif b == 0:  # integer division truncates toward zero: 0 spans both sides of lo
            low, high = f"> {lo - width}", f"< {lo + width}"
        else:
            low, high = f"> {lo + (b - 1) * width}", f"<= {lo + b * width}"

        def where(conn: Connection, low: str = low, high: str = high) -> str:
            k = conn.dialect.identifier_preparer.quote_identifier(key)
            return f"{k} {low} AND {k} {high}"

        part = _streamed(src, tgt, tp, source, target, where)
        counted = (left.get(b, (0, ""))[0], right.get(b, (0, ""))[0])
        if (part.source_rows, part.target_rows) != counted:
            raise _Unranged(tp.name)  # the range did not pick the rows summed: stream all
        if part.ok:  # the same rows after all: this range's exact checksum, on both sides
            left[b] = right[b] = (part.source_rows, part.source_sum)
        elif part.first_diff:
            return part.first_diff
    return None


def _digest(sums: Buckets) -> str:
    text = "".join(f"{b}:{n}:{s}\n" for b, (n, s) in sorted(sums.items()))
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------ across engines (rowtext)


@dataclass(frozen=True)
class _Field:
    name: str
    family: str
    scale: int | None
    fixed: bool


def _layout(tp: TablePlan, source: str, target: str) -> tuple[_Field, ...] | None:
    """The columns both sides hash, or None when the table is streamed whole."""
    fields = []
    for c in tp.columns:
        fam = rowtext.family(c.mapped)
        if fam is not None and rowtext.fits(c.src.type, source, c.mapped.src_kind, c.mapped):
            fields.append(_Field(c.name, fam, c.mapped.scale, c.mapped.fixed))
    return _complete(tp, fields)


def _complete(tp: TablePlan, fields: list[_Field]) -> tuple[_Field, ...] | None:
    """``fields``, when they hold every key column (the rest is streamed per key); without
    a key, every column."""
    names = {f.name for f in fields}
    if not fields or not set(tp.pk) <= names or (not tp.pk and len(fields) < len(tp.columns)):
        return None
    return tuple(fields)


def _on_target(
    tgt: Connection, tp: TablePlan, layout: tuple[_Field, ...], target: str
) -> tuple[_Field, ...] | None:
    """The layout's columns whose type on the target is the one the plan made.

    (A target cloned by another tool, checked with --verify-only, may differ.)
    """
    actual = {c["name"]: c["type"] for c in sa.inspect(tgt).get_columns(tp.name)}
    by_name = {c.name: c for c in tp.columns}
    return _complete(
        tp,
        [
            f
            for f in layout
            if f.name in actual
            and rowtext.fits(
                actual[f.name], target, by_name[f.name].mapped.kind, by_name[f.name].mapped
            )
        ],
    )


def _ready(conn: Connection) -> bool:
    """PostgreSQL 12 on (shortest float output), UTF-8 (md5 of the text's bytes)."""
    if conn.dialect.name == "sqlite":
        return True
    if conn.dialect.name == "postgresql":
        if (conn.dialect.server_version_info or (0,)) < (12,):
            return False
        return str(conn.exec_driver_sql("SHOW server_encoding").scalar()).upper() == "UTF8"
    return conn.dialect.name == "mysql"


class _Unranged(Exception):
    """The key's values do not allow range arithmetic: the table is streamed."""


def _bounds(conn: Connection, tp: TablePlan, layout: tuple[_Field, ...]) -> tuple[int, int] | None:
    """(lowest key, range width) for a single integer key; None: the table is one range."""
    key = _int_key(tp)
    if key is None or next(f for f in layout if f.name == key).family != "int":
        return None
    return _key_range(conn, tp.name, key)


def _key_range(conn: Connection, table: str, key: str) -> tuple[int, int] | None:
    """(lowest key, width of each of the BUCKETS ranges) of an integer key; None for
    an empty table; _Unranged when its values do not allow the range arithmetic."""
    q = conn.dialect.identifier_preparer.quote_identifier
    lo_hi = conn.exec_driver_sql(f"SELECT min({q(key)}), max({q(key)}) FROM {q(table)}").one()
    if lo_hi[0] is None:
        return None
    if not all(isinstance(v, int) for v in lo_hi) or not -_SAFE < lo_hi[0] <= lo_hi[1] < _SAFE:
        raise _Unranged(table)
    lo, hi = int(lo_hi[0]), int(lo_hi[1])
    return lo, max(1, -(-(hi - lo + 1) // BUCKETS))


def _side(
    conn: Connection,
    tp: TablePlan,
    layout: tuple[_Field, ...],
    bounds: tuple[int, int] | None,
    source: str,
    target: str,
    side: str,
) -> Sums | None:
    """One side's sums: in SQL on PostgreSQL and MariaDB, in one pass here for SQLite.

    None when they cannot be had (a key outside the range arithmetic, a value
    the engine refuses to write): the caller streams.
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        buckets = _python_sums(conn, tp, layout, bounds)
    else:
        buckets = _sql_sums(
            conn,
            tp,
            layout,
            bounds,
            zero_dates=side == "source" and source == "mysql" and target != "mysql",
        )
    if buckets is None:
        return None
    return Sums(buckets, bounds, tuple(f.name for f in layout))


def _sql_sums(
    conn: Connection,
    tp: TablePlan,
    layout: tuple[_Field, ...],
    bounds: tuple[int, int] | None,
    *,
    zero_dates: bool,
) -> Buckets | None:
    dialect = conn.dialect.name
    q = conn.dialect.identifier_preparer.quote_identifier
    fields = [
        rowtext.sql_field(dialect, q(f.name), f.family, fixed=f.fixed, zero_dates=zero_dates)
        for f in layout
    ]
    h = rowtext.sql_hash(dialect, fields)
    t = q(tp.name)
    key = q(_int_key(tp) or "")
    bucket = "0" if bounds is None else rowtext.sql_bucket(dialect, key, *bounds)
    sums = f"count(*), COALESCE(sum({h}), 0)"
    sql = [f"SELECT {bucket}, {sums} FROM {t}" + (" GROUP BY 1" if bounds else "")]
    if dialect == "mysql" and bounds is not None:
        # MariaDB groups a million rows through a temporary table (a third of the time):
        # one primary-key range read per range instead, the keys outside them grouped.
        lo, width = bounds
        sql = [
            f"SELECT {b}, {sums} FROM {t} WHERE {key} >= {lo + b * width}"
            f" AND {key} < {lo + (b + 1) * width}"
            for b in range(BUCKETS)
        ]
        sql.append(
            f"SELECT {bucket}, {sums} FROM {t}"
            f" WHERE {key} < {lo} OR {key} >= {lo + BUCKETS * width} GROUP BY 1"
        )
    raw: Any = conn.connection.dbapi_connection
    savepoint = dialect == "postgresql"  # an error must not end the source's snapshot
    out: dict[int, tuple[int, int]] = {}
    cur = raw.cursor()
    try:
        if savepoint:
            cur.execute("SAVEPOINT rehost_sums")
        if dialect == "postgresql":
            for setting in _PG_SETTINGS:
                cur.execute(setting)
        for statement in sql:
            cur.execute(statement)
            for b, n, total in cur.fetchall():
                if n:  # ranges without rows are left out, as GROUP BY does
                    before = out.get(int(b), (0, 0))
                    out[int(b)] = (before[0] + int(n), before[1] + int(total))
        if savepoint:
            cur.execute("RELEASE SAVEPOINT rehost_sums")
    except conn.dialect.dbapi.Error:  # type: ignore[union-attr]
        if savepoint:
            cur.execute("ROLLBACK TO SAVEPOINT rehost_sums")
        return None
    finally:
        cur.close()
    if bounds is None:
        out.setdefault(0, (0, 0))
    return {b: (n, str(total)) for b, (n, total) in out.items()}


def _python_sums(
    conn: Connection,
    tp: TablePlan,
    layout: tuple[_Field, ...],
    bounds: tuple[int, int] | None,
) -> Buckets | None:
    """SQLite's side: each row's text written and hashed here, in one read of the table.

    (SQLite building the texts in SQL measured no faster than these formatters.)
    """
    q = conn.dialect.identifier_preparer.quote_identifier
    fmts = [rowtext.py_field(f.family, scale=f.scale, fixed=f.fixed) for f in layout]
    key = q(_int_key(tp) or "") if bounds is not None else "0"
    counts: dict[int, int] = {}
    sums: dict[int, int] = {}
    md5 = hashlib.md5
    join = ",".join
    raw: Any = conn.connection.dbapi_connection
    cur = raw.cursor()
    try:
        cur.execute(f"SELECT {key}, {', '.join(q(f.name) for f in layout)} FROM {q(tp.name)}")
        while rows := cur.fetchmany(BATCH_ROWS):
            columns = list(zip(*rows, strict=True))
            texts = map(
                join,
                zip(
                    *[list(map(f, c)) for f, c in zip(fmts, columns[1:], strict=True)], strict=True
                ),
            )
            hashes = [
                int.from_bytes(md5(t.encode(), usedforsecurity=False).digest()[:8]) >> 4
                for t in texts
            ]
            if bounds is None:
                counts[0] = counts.get(0, 0) + len(hashes)
                sums[0] = sums.get(0, 0) + sum(hashes)
                continue
            lo, width = bounds
            for k, h in zip(columns[0], hashes, strict=True):
                b = (k - lo) // width if k >= lo else -((lo - k) // width)  # toward zero, as SQL
                counts[b] = counts.get(b, 0) + 1
                sums[b] = sums.get(b, 0) + h
    except (TypeError, UnicodeError):  # a key that is no integer, text that is no UTF-8
        return None
    finally:
        cur.close()
    if bounds is None:
        counts.setdefault(0, 0)
        sums.setdefault(0, 0)
    return {b: (n, str(sums[b])) for b, n in counts.items()}


BATCH_ROWS = 10_000


def _across(
    src: Connection,
    tgt: Connection,
    tp: TablePlan,
    source: str,
    target: str,
    known: Sums | None = None,
) -> TableCheck | None:
    """Across engines: sums of row-text hashes per key range, both sides at once.

    Ranges whose sums differ are streamed and compared exactly; columns without
    a common text form are then streamed with the key. None: stream it all.
    """
    layout = _layout(tp, source, target)
    if layout is None or not (_ready(src) and _ready(tgt)):
        return None
    layout = _on_target(tgt, tp, layout, target)
    tgt.rollback()
    if layout is None:
        return None
    names = tuple(f.name for f in layout)
    if known is not None and known.fields == names:
        bounds = known.bounds
        left_sums: Sums | None = known
        right_sums = _side(tgt, tp, layout, known.bounds, source, target, "target")
    else:
        try:
            bounds = _bounds(src, tp, layout)
        except _Unranged:
            return None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehost-verify") as pool:
            later = pool.submit(_side, tgt, tp, layout, bounds, source, target, "target")
            left_sums = _side(src, tp, layout, bounds, source, target, "source")
            right_sums = later.result()
    if left_sums is None or right_sums is None:
        tgt.rollback()
        return None
    left, right = dict(left_sums.buckets), dict(right_sums.buckets)
    first = None
    if left != right:
        if bounds is None:
            return None  # one range: the whole table is streamed
        try:
            first = _resolve(
                src, tgt, tp, source, target, (_int_key(tp) or "", *bounds), left, right
            )
        except _Unranged:
            return None
    rest = [c for c in tp.columns if c.name not in names]
    s1, s2 = _digest(left), _digest(right)
    if first is None and rest:
        keys = [c for c in tp.columns if c.name in tp.pk]
        narrow = dataclasses.replace(tp, columns=keys + rest)
        part = _streamed(src, tgt, narrow, source, target)
        first = part.first_diff
        s1 = hashlib.sha256((s1 + part.source_sum).encode()).hexdigest()
        s2 = hashlib.sha256((s2 + part.target_sum).encode()).hexdigest()
    return TableCheck(
        tp.name,
        sum(n for n, _ in left.values()),
        sum(n for n, _ in right.values()),
        s1,
        s2,
        first,
        method="database",
        streamed_columns=[c.name for c in rest],
    )
