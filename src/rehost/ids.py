"""Handing out new IDs on the target, in bulk, inside the import transaction."""

from __future__ import annotations

from typing import Any

from rehost.db.rows import Sql


class IdAllocator:
    """Allocates IDs for new records: from the column's sequence on PostgreSQL, else
    above the highest ID in the table (the table is locked for the transaction)."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        self._next: dict[str, int] = {}
        self._seq: dict[str, str | None] = {}

    def sequence(self, table: str, column: str) -> str | None:
        if table not in self._seq:
            seq = None
            if self.sql.dialect == "postgresql":
                seq = self.sql.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", (self.sql.q(table), column)
                ).scalar()
            self._seq[table] = seq
        return self._seq[table]

    def allocate(self, table: str, column: str, n: int) -> list[Any]:
        if n <= 0:
            return []
        seq = self.sequence(table, column)
        if seq:
            rows = self.sql.execute(
                "SELECT nextval(%s) FROM generate_series(1, %s)", (seq, n)
            ).fetchall()
            return [r[0] for r in rows]
        if table not in self._next:
            t, c = self.sql.q(table), self.sql.q(column)
            if self.sql.dialect == "postgresql":
                self.sql.execute(f"LOCK TABLE {t} IN EXCLUSIVE MODE")
                top = self.sql.execute(f"SELECT COALESCE(MAX({c}), 0) FROM {t}").scalar()
            elif self.sql.dialect == "mysql":
                top = self.sql.execute(f"SELECT COALESCE(MAX({c}), 0) FROM {t} FOR UPDATE").scalar()
            else:
                top = self.sql.execute(f"SELECT COALESCE(MAX({c}), 0) FROM {t}").scalar()
                has_seq = self.sql.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_sequence'"
                ).fetchone()
                if has_seq:
                    s = self.sql.execute(
                        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
                    ).scalar()
                    if s is not None:
                        top = max(int(top), int(s))
            self._next[table] = int(top) + 1
        start = self._next[table]
        self._next[table] = start + n
        return list(range(start, start + n))
