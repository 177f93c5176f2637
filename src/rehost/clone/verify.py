"""Verify a clone: row counts and per-table content checksums, compared on both sides.

Both tables are streamed in primary-key order (text keys by code point, the
same on every engine) and every value is turned into a canonical text form
(see rehost.clone.values), so the checksums agree across engines exactly
when the content does. Comparing row by row while streaming also names the
first key that differs. Tables without a primary key are compared as a
multiset (order-independent sum of row hashes).

PostgreSQL to PostgreSQL with identical column types, the servers do the
work instead: per key range (up to 1,024 ranges of an integer primary key, or
the whole table), a row count and the sum of a 64-bit hash of each row's
text form, computed on both sides at once. Equal sums mean equal content (a
collision is a 1 in 2^64 chance per range); a range whose sums differ is then
streamed and compared as above, which is exact and names the first differing
key — so a checksum difference that is not a content difference (say, another
hash function on another platform) costs time, never a wrong verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

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


def _batches(
    conn: Connection,
    tp: TablePlan,
    encoders: list[Callable[[Any], str]],
    text_pk: set[str],
    where: str | None = None,
) -> Iterator[Batch]:
    """(canonical row texts, raw rows), batch by batch, in key order."""
    for rows in stream(conn, tp.name, tp.column_names, tp.pk, text_pk=text_pk, where=where):
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

    ``known``: the source's whole-table sums, from ``source_sums``.
    """
    if in_database(source, target) and tp.same_types:
        check = _in_database(src, tgt, tp, known)
        if check is not None:
            return check
    return _streamed(src, tgt, tp, source, target)


def _streamed(
    src: Connection,
    tgt: Connection,
    tp: TablePlan,
    source: str,
    target: str,
    where: str | None = None,
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

Sums = dict[int, tuple[int, str]]  # bucket → (rows, checksum)


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


def _pg_sums(conn: Connection, tp: TablePlan, bucket: str | None) -> Sums:
    q = conn.dialect.identifier_preparer.quote_identifier
    sums = f"count(*), coalesce(sum({row_hash(conn, tp)}), 0)::text"
    if bucket is None:
        sql = f"SELECT 0, {sums} FROM {q(tp.name)}"
    else:
        sql = f"SELECT {bucket}, {sums} FROM {q(tp.name)} GROUP BY 1"
    return {int(b): (int(n), str(s)) for b, n, s in conn.exec_driver_sql(sql)}


def _both(src: Connection, tgt: Connection, tp: TablePlan, bucket: str | None) -> tuple[Sums, Sums]:
    """The sums on both servers at once (each side is one scan)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rehost-verify") as pool:
        right = pool.submit(_pg_sums, tgt, tp, bucket)
        left = _pg_sums(src, tp, bucket)
        return left, right.result()


def in_database(source: str, target: str) -> bool:
    """True when the servers compute the checksums (for tables with identical types)."""
    return source == target == "postgresql"


def _usable(conn: Connection) -> bool:
    return (conn.dialect.server_version_info or (0,)) >= (11,)  # hashtextextended()


def _settings(conn: Connection) -> None:
    for sql in _PG_SETTINGS:
        conn.exec_driver_sql(sql)


def source_sums(src: Connection, plan: ClonePlan) -> dict[str, Sums]:
    """The source side of the whole-table sums, ahead of time (say, while keys are built)."""
    if not in_database(plan.source, plan.target) or not _usable(src):
        return {}
    _settings(src)
    return {name: _pg_sums(src, tp, None) for name, tp in plan.tables.items() if tp.same_types}


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
        if known is not None:
            left, right = known, _pg_sums(tgt, tp, None)
        else:
            left, right = _both(src, tgt, tp, None)
        if left == right:
            n, total = left.get(0, (0, "0"))
            return TableCheck(tp.name, n, n, total, total, method="database")
        key = _int_key(tp)
        q = src.dialect.identifier_preparer.quote_identifier
        if key is None:
            return None  # one range: the whole table is streamed
        lo_hi = src.exec_driver_sql(f"SELECT min({q(key)}), max({q(key)}) FROM {q(tp.name)}").one()
        if lo_hi[0] is None or not -_SAFE < lo_hi[0] <= lo_hi[1] < _SAFE:
            return None
        lo, hi = int(lo_hi[0]), int(lo_hi[1])
        width = max(1, -(-(hi - lo + 1) // BUCKETS))
        left, right = _both(src, tgt, tp, f"({q(key)}::bigint - {lo}) / {width}")
    except sa.exc.DBAPIError:
        # e.g. a corrupted target key outside bigint arithmetic: stream instead. The
        # source only ran the same queries on keys within its own bounds.
        tgt.rollback()
        return None
    first: str | None = None
    for b in sorted(b for b in left.keys() | right.keys() if left.get(b) != right.get(b)):
        if b > 0:
            where = f"{q(key)} >= {lo + b * width} AND {q(key)} < {lo + (b + 1) * width}"
        elif b == 0:  # integer division truncates toward zero: 0 spans both sides of lo
            where = f"{q(key)} > {lo - width} AND {q(key)} < {lo + width}"
        else:
            where = f"{q(key)} > {lo + (b - 1) * width} AND {q(key)} <= {lo + b * width}"
        part = _streamed(src, tgt, tp, "postgresql", "postgresql", where)
        if part.ok:  # the same rows after all: this range's exact checksum, on both sides
            left[b] = right[b] = (part.source_rows, part.source_sum)
        elif part.first_diff:
            first = part.first_diff
            break
    return TableCheck(
        tp.name,
        sum(n for n, _ in left.values()),
        sum(n for n, _ in right.values()),
        _digest(left),
        _digest(right),
        first,
        method="database",
    )


def _digest(sums: Sums) -> str:
    text = "".join(f"{b}:{n}:{s}\n" for b, (n, s) in sorted(sums.items()))
    return hashlib.sha256(text.encode()).hexdigest()
