"""The manifest: what rehost wrote to a target, with each file's content hash.

A SQLite file in the state directory (not in the user's tree). Default:
``$XDG_STATE_HOME/rehost/files/<hash of the target>/manifest.sqlite``
(``~/.local/state/…``), one per target, so re-runs and ``verify`` find it from
any working directory; ``--state DIR`` puts it elsewhere.

A record is trusted only while the target file still has the recorded size,
mtime, ctime and inode: any write to the file (even one that restores the
mtime) changes its ctime, so a stale hash is never used. Rows are committed in
batches; a run killed before a commit only loses hashes, never correctness.

Content hashes are BLAKE3 (:data:`DIGEST`), named in the ``meta`` table
(``digest``). A manifest whose hashes are of another algorithm — one written by
an older rehost has a ``sha256`` column — keeps its records (an S3 target's
mtime and mode still come from them) but not its hashes: read-only, they are
ignored; opened for writing, the table is rebuilt with no hashes, which later
copies and ``--checksum`` runs record again.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rehost.errors import RehostError
from rehost.files.entry import Entry
from rehost.files.local import DIGEST

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  path BLOB PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  ino INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  digest TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = "path, size, mtime_ns, ctime_ns, ino, mode"

COMMIT_EVERY_ROWS = 2000
COMMIT_EVERY_SECONDS = 2.0


def default_state_dir(target_root: bytes) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local/state")
    key = hashlib.sha256(os.path.abspath(target_root)).hexdigest()[:16]
    return Path(base) / "rehost" / "files" / key


@dataclass(frozen=True)
class Record:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    mode: int
    digest: str | None  # None: not known (recorded by another algorithm, or not yet)

    def matches(self, dst: Entry) -> bool:
        """True while the target file is exactly as it was when this was recorded."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.ino) == (
            dst.size,
            dst.mtime_ns,
            dst.ctime_ns,
            dst.ino,
        )


class Manifest:
    """Records per relative path; use from one thread."""

    def __init__(self, db: sqlite3.Connection | None, *, path: Path | None) -> None:
        self._db = db
        self.path = path
        self._pending = 0
        self._rows: list[tuple[bytes, int, int, int, int, int, str]] = []  # not yet written
        self._last_commit = time.monotonic()
        self._select = select_sql(db) if db is not None else ""

    @classmethod
    def open(cls, state_dir: Path, target_root: bytes, *, readonly: bool = False) -> Manifest:
        """The manifest in ``state_dir``; read-only opens an absent one as empty."""
        path = state_dir / "manifest.sqlite"
        if readonly:
            if not path.exists():
                return cls(None, path=path)
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            return cls(db, path=path)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path)
            db.execute("PRAGMA journal_mode=WAL")
        except (OSError, sqlite3.Error) as exc:
            raise RehostError(
                f"cannot use the state directory {state_dir}: {exc}; "
                "give a writable one with --state DIR."
            ) from exc
        db.execute("PRAGMA synchronous=NORMAL")
        _migrate(db)
        db.executescript(SCHEMA)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('digest', ?)", (DIGEST,))
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('target', ?)",
            (os.fsdecode(os.path.abspath(target_root)),),
        )
        db.commit()
        return cls(db, path=path)

    def get(self, rel: bytes) -> Record | None:
        if self._db is None:
            return None
        self._flush()
        row = self._db.execute(self._select, (rel,)).fetchone()
        return Record(*row) if row else None

    def hash_for(self, dst: Entry) -> str | None:
        """The recorded content hash of a target file, if the record still describes it."""
        rec = self.get(dst.rel)
        return rec.digest if rec is not None and rec.matches(dst) else None

    def put(self, dst: Entry, digest: str) -> None:
        self._rows.append(
            (dst.rel, dst.size, dst.mtime_ns, dst.ctime_ns, dst.ino, dst.mode, digest)
        )
        self._tick()

    def settle(self, seen: Iterable[tuple[bytes, int, int, int]]) -> None:
        """Fill in the ctime (an S3 object's LastModified) of records written without
        one (0), from (rel, size, ctime_ns, ino) seen in a listing, where size and ino
        (the ETag) are still the recorded ones."""
        if self._db is None:
            return
        self._flush()
        self._db.executemany(
            "UPDATE files SET ctime_ns = ? WHERE path = ? AND ctime_ns = 0 AND size = ? "
            "AND ino = ?",
            ((ctime_ns, rel, size, ino) for rel, size, ctime_ns, ino in seen),
        )
        self.commit()

    def forget(self, rel: bytes) -> None:
        """Drop ``rel`` and everything under it (it was removed from the target)."""
        assert self._db is not None
        self.commit()
        self._db.execute(
            "DELETE FROM files WHERE path = ? OR substr(path, 1, ?) = ?",
            (rel, len(rel) + 1, rel + b"/"),
        )
        self._tick()

    def _tick(self) -> None:
        self._pending += 1
        now = time.monotonic()
        if self._pending >= COMMIT_EVERY_ROWS or now - self._last_commit >= COMMIT_EVERY_SECONDS:
            self.commit()

    def _flush(self) -> None:
        if self._db is not None and self._rows:
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", self._rows
            )
            self._rows.clear()

    def commit(self) -> None:
        if self._db is not None:
            self._flush()
            self._db.commit()
        self._pending = 0
        self._last_commit = time.monotonic()

    def close(self) -> None:
        if self._db is not None:
            self.commit()
            self._db.close()
            self._db = None


def select_sql(db: sqlite3.Connection) -> str:
    """The query for one record by path: its hash column only when the manifest's
    hashes are :data:`DIGEST` ones, else NULL (an older manifest opened read-only)."""
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
        named = db.execute("SELECT value FROM meta WHERE key = 'digest'").fetchone()
    except sqlite3.Error:
        columns, named = set(), None
    digest = "digest" if "digest" in columns and named == (DIGEST,) else "NULL"
    return f"SELECT {_COLUMNS.removeprefix('path, ')}, {digest} FROM files WHERE path = ?"


def _migrate(db: sqlite3.Connection) -> None:
    """Make a manifest of another hash algorithm one of :data:`DIGEST` with no hashes
    known: its records (size, times, inode, mode) are kept, its hashes dropped."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
    if not columns:
        return
    named = None
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        named = db.execute("SELECT value FROM meta WHERE key = 'digest'").fetchone()
    if "digest" in columns and named == (DIGEST,):
        return
    db.execute("BEGIN")  # all or nothing
    db.execute("ALTER TABLE files RENAME TO files_before")
    db.execute(SCHEMA.split(";")[0])
    db.execute(f"INSERT INTO files ({_COLUMNS}, digest) SELECT {_COLUMNS}, NULL FROM files_before")
    db.execute("DROP TABLE files_before")
    db.commit()
