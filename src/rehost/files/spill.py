"""A map and a list that move to a temporary SQLite file past a number of entries.

A tree of backups (rsnapshot, Time Machine-like copies, hard-linked build
caches) can hold millions of hard links. A transfer remembers each linked
file's first name, the later names to link once the walk is over, and the
target's inode of each first name; a verification and an inventory remember
the inodes they met. In plain dicts and lists that is memory in proportion to
the links; past :data:`IN_MEMORY` entries these move to a private temporary
SQLite file (deleted when closed), so memory stays flat however many links
there are.

Keys are stored as bytes: a bytes key as it is, a pair of 64-bit integers
(device, inode) packed, anything else pickled (deterministic for ints, bytes
and tuples of them), so a key's bytes find it again. Values are pickled.
"""

from __future__ import annotations

import pickle
import sqlite3
import struct
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

IN_MEMORY = 100_000  # entries kept in memory by each map or list before it spills
_MISSING = object()
K = TypeVar("K")
V = TypeVar("V")


def _db(schema: str) -> sqlite3.Connection:
    db = sqlite3.connect("", isolation_level=None)  # "": a temporary file, gone when closed
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(schema)
    return db


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


_PAIR = struct.Struct("<QQ")


def _key(key: Any) -> bytes:
    if key.__class__ is bytes:
        return b"b" + key  # type: ignore[no-any-return]
    if key.__class__ is tuple and len(key) == 2:
        try:
            return b"i" + _PAIR.pack(*key)
        except (struct.error, TypeError):
            pass
    return b"p" + _dump(key)


class SpillMap(Generic[K, V]):
    """``key → value`` with ``get``, ``in`` and assignment; new keys only (no deletes)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or IN_MEMORY
        self._mem: dict[K, V] = {}
        self._disk: sqlite3.Connection | None = None

    def __setitem__(self, key: K, value: V) -> None:
        self._mem[key] = value
        if len(self._mem) >= self.limit:
            if self._disk is None:
                self._disk = _db("CREATE TABLE m (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
            self._disk.execute("BEGIN")
            self._disk.executemany(  # in key order: appends to the B-tree, not page splits
                "INSERT OR REPLACE INTO m VALUES (?, ?)",
                sorted((_key(k), _dump(v)) for k, v in self._mem.items()),
            )
            self._disk.execute("COMMIT")
            self._mem.clear()

    def get(self, key: K, default: Any = None) -> Any:
        found = self._mem.get(key, _MISSING)
        if found is not _MISSING:
            return found
        if self._disk is None:
            return default
        row = self._disk.execute("SELECT v FROM m WHERE k = ?", (_key(key),)).fetchone()
        return default if row is None else pickle.loads(row[0])

    def __contains__(self, key: K) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __getitem__(self, key: K) -> V:
        found = self.get(key, _MISSING)
        if found is _MISSING:
            raise KeyError(key)
        return found  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        self._mem.clear()


class SpillList(Generic[V]):
    """Append, then iterate in order of appending."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or IN_MEMORY
        self._mem: list[V] = []
        self._disk: sqlite3.Connection | None = None

    def append(self, value: V) -> None:
        self._mem.append(value)
        if len(self._mem) >= self.limit:
            if self._disk is None:
                self._disk = _db("CREATE TABLE l (seq INTEGER PRIMARY KEY, v BLOB)")
            self._disk.execute("BEGIN")
            self._disk.executemany("INSERT INTO l (v) VALUES (?)", ((_dump(v),) for v in self._mem))
            self._disk.execute("COMMIT")
            self._mem.clear()

    def __iter__(self) -> Iterator[V]:
        if self._disk is not None:
            for (blob,) in self._disk.execute("SELECT v FROM l ORDER BY seq"):
                yield pickle.loads(blob)
        yield from self._mem

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        self._mem.clear()
