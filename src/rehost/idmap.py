"""Source → target IDs of one entity type, in memory up to a limit, then on disk.

An import remaps every reference through these maps, so they hold one entry per
record of every referenced type. Past ``limit`` entries the map moves to a
temporary SQLite file (deleted on close), which keeps an import's memory flat
however large its tables are.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from typing import Any

_MISSING = object()
DEFAULT_LIMIT = 250_000  # entries kept in memory before the map moves to disk


class IdMap:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or DEFAULT_LIMIT
        self._mem: dict[Any, Any] = {}
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None

    def __setitem__(self, src: Any, tgt: Any) -> None:
        self._mem[src] = tgt
        if len(self._mem) >= self.limit:
            self._spill()

    def get(self, src: Any, default: Any = None) -> Any:
        got = self._mem.get(src, _MISSING)
        if got is not _MISSING:
            return got
        if self._db is None or not isinstance(src, int):
            return default
        row = self._db.execute("SELECT t FROM m WHERE s = ?", (src,)).fetchone()
        return default if row is None else _decode(row[0])

    def __len__(self) -> int:
        on_disk = self._db.execute("SELECT COUNT(*) FROM m").fetchone()[0] if self._db else 0
        return len(self._mem) + on_disk

    def _spill(self) -> None:
        # Only integer source IDs go to disk (IDs are integer surrogate keys).
        ints = {s: t for s, t in self._mem.items() if isinstance(s, int)}
        if not ints:
            return
        if self._db is None:
            fd, self._path = tempfile.mkstemp(prefix="rehost-idmap-", suffix=".sqlite")
            os.close(fd)
            self._db = sqlite3.connect(self._path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("CREATE TABLE m (s INTEGER PRIMARY KEY, t)")
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT OR REPLACE INTO m VALUES (?, ?)", ((s, _encode(t)) for s, t in ints.items())
        )
        self._db.execute("COMMIT")
        self._mem = {s: t for s, t in self._mem.items() if not isinstance(s, int)}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            self._path = None

    def __del__(self) -> None:
        self.close()


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, int):
        return value
    return "j:" + json.dumps(value, default=str)


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("j:"):
        got = json.loads(value[2:])
        return tuple(got) if isinstance(got, list) else got
    return value
