"""The application's schema version, read from the migration tool's table."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from rehost.db.connect import quote
from rehost.errors import ProfileError
from rehost.profile.model import Profile


@dataclass(frozen=True)
class AppVersion:
    source: str  # where it was read: a table name, or "query"
    value: str  # what is compared between servers
    detail: str  # what is shown to a person

    def to_json(self) -> dict[str, str]:
        return {"source": self.source, "value": self.value, "detail": self.detail}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> AppVersion | None:
        if not d:
            return None
        return cls(d["source"], d["value"], d.get("detail", d["value"]))


def _digest(items: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:12]


def _rows(conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]


def detect(conn: Connection, profile: Profile, tables: set[str]) -> AppVersion | None:
    """Read the version from the profile's source or a well-known table; None if none."""
    q = lambda n: quote(conn.engine, n)  # noqa: E731
    src = profile.version
    if src is not None:
        try:
            if src.query:
                rows = _rows(conn, src.query)
                vals = [str(v) for r in rows for v in r]
                return AppVersion("query", "|".join(vals), ", ".join(vals) or "(no rows)")
            assert src.table
            if src.table not in tables:
                raise ProfileError(
                    f"The profile reads the version from table '{src.table}', which does not exist."
                )
            col = src.column
            if col:
                rows = _rows(conn, f"SELECT {q(col)} FROM {q(src.table)}")
                vals = sorted(str(r[0]) for r in rows)
                return AppVersion(src.table, "|".join(vals), ", ".join(vals))
        except sa.exc.DBAPIError as exc:
            raise ProfileError(
                f"The profile's version source failed: {str(exc.orig).strip()}"
            ) from None
        return _known(conn, src.table, q) or AppVersion(src.table, "", "(empty)")
    for name in (
        "alembic_version",
        "django_migrations",
        "schema_migrations",
        "flyway_schema_history",
        "__EFMigrationsHistory",
        "knex_migrations",
    ):
        if name in tables:
            return _known(conn, name, q)
    return None


def _known(conn: Connection, name: str, q: Any) -> AppVersion | None:
    if name == "alembic_version":
        vals = sorted(str(r[0]) for r in _rows(conn, f"SELECT version_num FROM {q(name)}"))
        return AppVersion(name, "|".join(vals), ", ".join(vals) or "(empty)")
    if name == "django_migrations":
        rows = _rows(conn, f"SELECT app, name FROM {q(name)}")
        items = [f"{a}.{n}" for a, n in rows]
        return AppVersion(
            name, _digest(items), f"{len(items)} migrations applied ({_digest(items)})"
        )
    if name == "schema_migrations":
        vals = sorted(str(r[0]) for r in _rows(conn, f"SELECT version FROM {q(name)}"))
        latest = vals[-1] if vals else "(empty)"
        return AppVersion(name, _digest(vals), f"{len(vals)} migrations, latest {latest}")
    if name == "flyway_schema_history":
        rows = _rows(
            conn,
            f"SELECT version FROM {q(name)} WHERE success = {'TRUE' if conn.engine.dialect.name == 'postgresql' else '1'} "
            "AND version IS NOT NULL",
        )
        vals = sorted(
            (str(r[0]) for r in rows),
            key=lambda v: [int(p) if p.isdigit() else p for p in v.replace("_", ".").split(".")],
        )
        latest = vals[-1] if vals else "(empty)"
        return AppVersion(name, latest, f"version {latest}")
    if name == "__EFMigrationsHistory":
        vals = sorted(str(r[0]) for r in _rows(conn, f"SELECT {q('MigrationId')} FROM {q(name)}"))
        latest = vals[-1] if vals else "(empty)"
        return AppVersion(name, latest, latest)
    if name == "knex_migrations":
        vals = sorted(str(r[0]) for r in _rows(conn, f"SELECT name FROM {q(name)}"))
        latest = vals[-1] if vals else "(empty)"
        return AppVersion(name, _digest(vals), f"{len(vals)} migrations, latest {latest}")
    return None
