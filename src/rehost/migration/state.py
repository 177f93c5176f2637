"""The state store: an SQLite file (``.rehost/state.db`` beside the plan), or the
schema ``rehost`` of a PostgreSQL database that a team shares.

Every change is committed at once, so a crash loses at most the step that was
running. Nothing here holds a secret: every text passes through :func:`scrub`.
The SQL is written once for both engines (``ON CONFLICT``; ``?`` marks become
``%s`` on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rehost.db.connect import redact
from rehost.errors import RehostError

STATUSES = ("pending", "running", "succeeded", "failed", "incomplete", "skipped")

# What a run step and a cutover stage record alike.
STEP_COLUMNS = """\
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    finished_at TEXT,
    seconds {real},
    last_error TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS migrations (
    id {serial},
    name TEXT NOT NULL UNIQUE,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS steps (
    migration_id INTEGER NOT NULL REFERENCES migrations (id),
    id TEXT NOT NULL,
    phase TEXT NOT NULL,
    position INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
{step_columns}    PRIMARY KEY (migration_id, id)
);
CREATE TABLE IF NOT EXISTS events (
    seq {serial},
    migration_id INTEGER NOT NULL REFERENCES migrations (id),
    at TEXT NOT NULL,
    step TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accepted_findings (
    migration_id INTEGER NOT NULL REFERENCES migrations (id),
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    PRIMARY KEY (migration_id, code)
);
CREATE TABLE IF NOT EXISTS manual_steps (
    migration_id INTEGER NOT NULL REFERENCES migrations (id),
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    steps TEXT NOT NULL DEFAULT '[]',
    acknowledged_at TEXT,
    PRIMARY KEY (migration_id, id)
);
CREATE TABLE IF NOT EXISTS cutover_stages (
    migration_id INTEGER NOT NULL REFERENCES migrations (id),
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
{step_columns}    PRIMARY KEY (migration_id, id)
);
CREATE TABLE IF NOT EXISTS cutover_history (
    seq {serial},
    migration_id INTEGER NOT NULL REFERENCES migrations (id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    who TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
""".replace("{step_columns}", STEP_COLUMNS)

# Column types that differ: an auto-numbered key, a float.
_TYPES = {
    "sqlite": {"{serial}": "INTEGER PRIMARY KEY AUTOINCREMENT", "{real}": "REAL"},
    "postgresql": {"{serial}": "BIGSERIAL PRIMARY KEY", "{real}": "DOUBLE PRECISION"},
}
PG_SCHEMA = "rehost"


def is_database_url(spec: str) -> bool:
    return spec.startswith(("postgresql:", "postgresql+", "postgres:"))


class _Connection:
    """An autocommit connection to either engine, with one ``execute``."""

    def __init__(self, where: Path | str) -> None:
        if isinstance(where, str):
            import psycopg
            from sqlalchemy.engine import make_url

            from rehost.errors import UsageError

            url = make_url(where).set(drivername="postgresql")
            self.engine = "postgresql"
            try:
                self.raw: Any = psycopg.connect(
                    url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10
                )
                self.raw.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
                self.raw.execute(f"SET search_path TO {PG_SCHEMA}")
                self.raw.execute(self._script())
            except psycopg.Error as exc:  # e.g. no right to create the schema or its tables
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc)
                raise UsageError(f"Cannot open the state store {redact(where)}: {reason}") from None
        else:
            where.parent.mkdir(parents=True, exist_ok=True)
            self.raw = sqlite3.connect(where, isolation_level=None)
            self.engine = "sqlite"
            self.raw.execute("PRAGMA journal_mode=WAL")
            self.raw.executescript(self._script())

    def _script(self) -> str:
        script = SCHEMA
        for mark, text in _TYPES[self.engine].items():
            script = script.replace(mark, text)
        return script

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        if self.engine == "postgresql":
            sql = sql.replace("?", "%s")
        return self.raw.execute(sql, params)

    def close(self) -> None:
        self.raw.close()


class Busy(RehostError):
    """Someone else is running or cutting over the same migration."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Step:
    id: str
    phase: str
    position: int
    status: str = "pending"
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    last_error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """Its work is done (manual steps may remain): a re-run skips it."""
        return self.status in ("succeeded", "incomplete", "skipped")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "last_error": self.last_error,
            "detail": self.detail,
        }


class StateStore:
    """One migration's persisted state: in an SQLite file (a path), or in a PostgreSQL
    database (a ``postgresql://`` URL; tables in its schema ``rehost``)."""

    def __init__(
        self, where: Path | str, name: str, plan: str, secrets: Iterable[str] = ()
    ) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        # autocommit: every statement is durable when it returns
        self.db = _Connection(where)
        self.path: Path | str = where if isinstance(where, Path) else redact(where)
        self.db.execute(
            "INSERT INTO migrations (name, plan, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (name, plan, now()),
        )
        self.id: int = self.db.execute(
            "SELECT id FROM migrations WHERE name = ?", (name,)
        ).fetchone()[0]

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def lock(self, what: str) -> Iterator[None]:
        """Hold this migration's lock while ``what`` (a run, a cutover) changes it, so
        that two people sharing the store cannot run it at once. A crashed holder
        releases it: a PostgreSQL session's advisory lock ends with its connection,
        a file lock with its process."""
        if self.db.engine == "postgresql":
            digest = hashlib.sha256(f"rehost migration {self.id}".encode()).digest()
            key = int.from_bytes(digest[:8], "big", signed=True)
            held = not self.db.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0]
            release: Callable[[], Any] = lambda: self.db.execute(  # noqa: E731
                "SELECT pg_advisory_unlock(?)", (key,)
            )
        else:
            import fcntl

            f = open(f"{self.path}.lock", "w")  # noqa: SIM115 (held until released)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                f.close()
                held = True
            release = f.close  # closing the file releases its lock
        if held:
            raise Busy(
                f"Cannot start this {what}: a run, cutover or rollback of the same "
                f"migration is in progress elsewhere (its state store {self.path} is "
                "locked). Wait for it to end; 'rehost status' shows where it is."
            )
        try:
            yield
        finally:
            release()

    def scrub(self, text: str) -> str:
        """``text`` without passwords in URLs or any of the plan's secret values."""
        text = redact(text)
        for s in self._secrets:
            text = text.replace(s, "***")
        return text

    # ------------------------------------------------------------- steps

    def sync_steps(self, wanted: list[tuple[str, str, str]]) -> None:
        """Make the steps those of the plan: (id, phase, fingerprint), in order.

        A step whose configuration changed (another fingerprint) starts over.
        """
        have = {
            r[0]: r[1]
            for r in self.db.execute(
                "SELECT id, fingerprint FROM steps WHERE migration_id = ?", (self.id,)
            )
        }
        for pos, (sid, phase, fp) in enumerate(wanted):
            if sid not in have:
                self.db.execute(
                    "INSERT INTO steps (migration_id, id, phase, position, fingerprint) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (self.id, sid, phase, pos, fp),
                )
            elif have[sid] != fp:
                self.db.execute(
                    "UPDATE steps SET fingerprint = ?, position = ?, status = 'pending', "
                    "detail = '{}', last_error = NULL WHERE migration_id = ? AND id = ?",
                    (fp, pos, self.id, sid),
                )
                self.event(sid, "reset", "the plan changed for this step: it will run again")
            else:
                self.db.execute(
                    "UPDATE steps SET position = ? WHERE migration_id = ? AND id = ?",
                    (pos, self.id, sid),
                )
        gone = set(have) - {w[0] for w in wanted}
        for sid in gone:
            self.db.execute("DELETE FROM steps WHERE migration_id = ? AND id = ?", (self.id, sid))

    def steps(self) -> list[Step]:
        rows = self.db.execute(
            "SELECT id, phase, position, status, attempts, started_at, finished_at, seconds, "
            "last_error, detail FROM steps WHERE migration_id = ? ORDER BY position",
            (self.id,),
        ).fetchall()
        return [Step(*r[:9], detail=json.loads(r[9])) for r in rows]  # type: ignore[misc]

    def step(self, sid: str) -> Step:
        return next(s for s in self.steps() if s.id == sid)

    def start(self, sid: str) -> None:
        self.db.execute(
            "UPDATE steps SET status = 'running', attempts = attempts + 1, started_at = ?, "
            "finished_at = NULL, seconds = NULL WHERE migration_id = ? AND id = ?",
            (now(), self.id, sid),
        )
        self.event(sid, "started", f"{sid} started")

    def finish(
        self,
        sid: str,
        status: str,
        seconds: float,
        *,
        detail: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        assert status in STATUSES
        error = self.scrub(error) if error else None
        merged = {**self.step(sid).detail, **(detail or {})}
        self.db.execute(
            "UPDATE steps SET status = ?, finished_at = ?, seconds = ?, last_error = ?, "
            "detail = ? WHERE migration_id = ? AND id = ?",
            (
                status,
                now(),
                seconds,
                error,
                self.scrub(json.dumps(merged, sort_keys=True, default=str)),
                self.id,
                sid,
            ),
        )
        self.event(
            sid, status, f"{sid} {status} in {seconds:.2f} s" + (f": {error}" if error else "")
        )

    def update_detail(self, sid: str, detail: dict[str, Any]) -> None:
        merged = {**self.step(sid).detail, **detail}
        self.db.execute(
            "UPDATE steps SET detail = ? WHERE migration_id = ? AND id = ?",
            (self.scrub(json.dumps(merged, sort_keys=True)), self.id, sid),
        )

    def set_status(self, sid: str, status: str) -> None:
        self.db.execute(
            "UPDATE steps SET status = ? WHERE migration_id = ? AND id = ?", (status, self.id, sid)
        )

    # ------------------------------------------------------------- events

    def event(self, step: str | None, kind: str, message: str) -> None:
        self.db.execute(
            "INSERT INTO events (migration_id, at, step, kind, message) VALUES (?, ?, ?, ?, ?)",
            (self.id, now(), step, kind, self.scrub(message)),
        )

    def events(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT seq, at, step, kind, message FROM events WHERE migration_id = ? ORDER BY seq",
            (self.id,),
        )
        return [dict(zip(("seq", "at", "step", "kind", "message"), r, strict=True)) for r in rows]

    # ---------------------------------------------------- accepted findings

    def accept(self, code: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO accepted_findings (migration_id, code, reason, accepted_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (migration_id, code) DO UPDATE SET "
            "reason = excluded.reason, accepted_at = excluded.accepted_at",
            (self.id, code, self.scrub(reason), now()),
        )
        self.event(None, "accepted", f"{code} accepted: {reason}")

    def accepted(self) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT code, reason FROM accepted_findings WHERE migration_id = ? ORDER BY code",
            (self.id,),
        )
        return dict(rows.fetchall())

    # ------------------------------------------------------- manual steps

    def add_manual_steps(self, texts: list[str], step: str) -> None:
        """Record the manual steps an import named (one id per distinct text)."""
        rows = self.db.execute(
            "SELECT id, text, steps FROM manual_steps WHERE migration_id = ?", (self.id,)
        ).fetchall()
        by_text = {r[1]: (r[0], json.loads(r[2])) for r in rows}
        n = len(rows)
        for text in texts:
            text = self.scrub(text)
            if text in by_text:
                mid, steps = by_text[text]
                if step not in steps:
                    self.db.execute(
                        "UPDATE manual_steps SET steps = ? WHERE migration_id = ? AND id = ?",
                        (json.dumps([*steps, step]), self.id, mid),
                    )
                continue
            n += 1
            self.db.execute(
                "INSERT INTO manual_steps (migration_id, id, text, steps) VALUES (?, ?, ?, ?)",
                (self.id, f"manual-{n}", text, json.dumps([step])),
            )
            by_text[text] = (f"manual-{n}", [step])

    def manual_steps(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, text, steps, acknowledged_at FROM manual_steps WHERE migration_id = ? "
            "ORDER BY CAST(substr(id, 8) AS INTEGER)",
            (self.id,),
        )
        return [
            {"id": r[0], "text": r[1], "steps": json.loads(r[2]), "acknowledged_at": r[3]}
            for r in rows
        ]

    def acknowledge(self, mid: str) -> None:
        self.db.execute(
            "UPDATE manual_steps SET acknowledged_at = ? WHERE migration_id = ? AND id = ?",
            (now(), self.id, mid),
        )
        self.event(None, "acknowledged", f"{mid} acknowledged")

    # ------------------------------------------------------------ cutover

    def cutover_stages(self, names: Iterable[str]) -> list[Step]:
        """The cutover's stages in order (created pending the first time)."""
        for pos, name in enumerate(names):
            self.db.execute(
                "INSERT INTO cutover_stages (migration_id, id, position) VALUES (?, ?, ?) "
                "ON CONFLICT (migration_id, id) DO NOTHING",
                (self.id, name, pos),
            )
        rows = self.db.execute(
            "SELECT id, 'cutover', position, status, attempts, started_at, finished_at, seconds, "
            "last_error, detail FROM cutover_stages WHERE migration_id = ? ORDER BY position",
            (self.id,),
        ).fetchall()
        return [Step(*r[:9], detail=json.loads(r[9])) for r in rows]  # type: ignore[misc]

    def stage_start(self, sid: str) -> None:
        self.db.execute(
            "UPDATE cutover_stages SET status = 'running', attempts = attempts + 1, "
            "started_at = ?, finished_at = NULL, seconds = NULL, last_error = NULL "
            "WHERE migration_id = ? AND id = ?",
            (now(), self.id, sid),
        )
        self.event(f"cutover:{sid}", "started", f"cutover stage {sid} started")

    def stage_detail(self, sid: str, detail: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE cutover_stages SET detail = ? WHERE migration_id = ? AND id = ?",
            (self.scrub(json.dumps(detail, sort_keys=True, default=str)), self.id, sid),
        )

    def stage_finish(self, sid: str, status: str, seconds: float, error: str | None) -> None:
        error = self.scrub(error) if error else None
        self.db.execute(
            "UPDATE cutover_stages SET status = ?, finished_at = ?, seconds = ?, last_error = ? "
            "WHERE migration_id = ? AND id = ?",
            (status, now(), seconds, error, self.id, sid),
        )
        self.event(
            f"cutover:{sid}",
            status,
            f"cutover stage {sid} {status} in {seconds:.2f} s" + (f": {error}" if error else ""),
        )

    def reset_cutover(self) -> None:
        self.db.execute("DELETE FROM cutover_stages WHERE migration_id = ?", (self.id,))

    def add_history(
        self, kind: str, who: str, plan_hash: str, reason: str | None, detail: dict[str, Any]
    ) -> None:
        self.db.execute(
            "INSERT INTO cutover_history (migration_id, at, kind, who, plan_hash, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                self.id,
                now(),
                kind,
                who,
                plan_hash,
                self.scrub(reason) if reason else None,
                self.scrub(json.dumps(detail, sort_keys=True, default=str)),
            ),
        )

    def history(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT at, kind, who, plan_hash, reason, detail FROM cutover_history "
            "WHERE migration_id = ? ORDER BY seq",
            (self.id,),
        )
        keys = ("at", "kind", "who", "plan_hash", "reason")
        return [{**dict(zip(keys, r[:5], strict=True)), **json.loads(r[5])} for r in rows]
