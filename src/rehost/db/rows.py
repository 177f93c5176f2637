"""Streamed, batched row access in plain SQL (values stay as the driver gives them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy.engine import Connection

BATCH = 2000
IN_CHUNK = 900


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class Sql:
    """SQL text for one connection's dialect: quoting and parameter markers."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        dialect = conn.engine.dialect
        self.dialect = dialect.name
        self._q = dialect.identifier_preparer.quote_identifier
        self.mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"

    def q(self, name: str) -> str:
        return self._q(name)

    def cols(self, names: Iterable[str]) -> str:
        return ", ".join(self._q(n) for n in names)

    def marks(self, n: int) -> str:
        return ", ".join([self.mark] * n)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        if params is None:
            return self.conn.exec_driver_sql(sql)
        return self.conn.exec_driver_sql(sql, tuple(params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.conn.exec_driver_sql(sql, rows)

    # ------------------------------------------------------------- reading

    def scan(
        self, table: str, columns: Sequence[str], pk: Sequence[str], batch: int = BATCH
    ) -> Iterator[list[tuple[Any, ...]]]:
        """All rows in primary-key order, in batches, by keyset pagination."""
        cols = self.cols(columns)
        t = self.q(table)
        if not pk:
            order = self.cols(columns)
            res = self.conn.execution_options(stream_results=True).exec_driver_sql(
                f"SELECT {cols} FROM {t} ORDER BY {order}"
            )
            while True:
                rows = res.fetchmany(batch)
                if not rows:
                    break
                yield [tuple(r) for r in rows]
            return
        idx = [list(columns).index(c) for c in pk]
        order = self.cols(pk)
        last: tuple[Any, ...] | None = None
        while True:
            if last is None:
                sql = f"SELECT {cols} FROM {t} ORDER BY {order} LIMIT {batch}"
                rows = self.execute(sql).fetchall()
            else:
                if len(pk) == 1:
                    cond = f"{self.q(pk[0])} > {self.mark}"
                else:
                    cond = f"({order}) > ({self.marks(len(pk))})"
                sql = f"SELECT {cols} FROM {t} WHERE {cond} ORDER BY {order} LIMIT {batch}"
                rows = self.execute(sql, last).fetchall()
            if not rows:
                return
            out = [tuple(r) for r in rows]
            yield out
            if len(out) < batch:
                return
            last = tuple(out[-1][i] for i in idx)

    def where_in(
        self,
        table: str,
        columns: Sequence[str],
        column: str,
        values: Iterable[Any],
        order: Sequence[str] = (),
    ) -> Iterator[tuple[Any, ...]]:
        """Rows whose ``column`` is one of ``values`` (chunked IN lists)."""
        vals = sorted({v for v in values if v is not None}, key=_sort_key)
        cols = self.cols(columns)
        t = self.q(table)
        ob = f" ORDER BY {self.cols(order)}" if order else ""
        for chunk in _chunks(vals, IN_CHUNK):
            sql = f"SELECT {cols} FROM {t} WHERE {self.q(column)} IN ({self.marks(len(chunk))}){ob}"
            for r in self.execute(sql, chunk).fetchall():
                yield tuple(r)

    def where_keys(
        self,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        values: Iterable[tuple[Any, ...]],
        types: Sequence[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Rows whose ``key`` columns equal one of the tuples in ``values``.

        Written as ``(a = ? AND b = ?) OR …`` so that every engine can answer it
        from a composite index on the key (each term is one index lookup); on
        PostgreSQL, given the key columns' SQL ``types``, as a join with unnest().
        """
        cols = self.cols(columns)
        t = self.q(table)
        qk = [self.q(c) for c in key]
        per_chunk = max(1, IN_CHUNK // max(1, len(key)))
        vals = list(set(values))  # lookups into a dict: any order will do
        if self.dialect == "postgresql" and types is not None:
            # One array per key column, joined back into rows: one plan, any size,
            # where a long OR list costs PostgreSQL more to plan than to run.
            full = [tup for tup in vals if None not in tup]
            vals = [tup for tup in vals if None in tup]
            names = ", ".join(f"k{i}" for i in range(len(key)))
            arrays = ", ".join(f"{self.mark}::{ty}[]" for ty in types)
            on = " AND ".join(f"{t}.{c} = k.k{i}" for i, c in enumerate(qk))
            sel = ", ".join(f"{t}.{self.q(c)}" for c in columns)
            for chunk in _chunks(full, 10_000):
                sql = f"SELECT {sel} FROM {t} JOIN unnest({arrays}) AS k({names}) ON {on}"
                arrays_in = [[tup[i] for tup in chunk] for i in range(len(key))]
                for r in self.execute(sql, arrays_in).fetchall():
                    yield tuple(r)
        for chunk in _chunks(vals, per_chunk):
            terms: list[str] = []
            params: list[Any] = []
            for tup in chunk:
                parts = []
                for col, v in zip(qk, tup, strict=True):
                    if v is None:
                        parts.append(f"{col} IS NULL")
                    else:
                        parts.append(f"{col} = {self.mark}")
                        params.append(v)
                terms.append("(" + " AND ".join(parts) + ")")
            sql = f"SELECT {cols} FROM {t} WHERE " + " OR ".join(terms)
            for r in self.execute(sql, params).fetchall():
                yield tuple(r)

    def count(self, table: str) -> int:
        return int(self.execute(f"SELECT COUNT(*) FROM {self.q(table)}").scalar_one())


def _sort_key(v: Any) -> tuple[str, Any]:
    return (type(v).__name__, v)
