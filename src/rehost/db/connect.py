"""Opening databases from URLs, with errors a user can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.exc import ProgrammingError as SAProgrammingError

from rehost.errors import ConnectionFailed, UsageError

# Short schemes users type, mapped to the driver rehost ships with.
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "mariadb+pymysql": "mysql+pymysql",
}


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, so the rest of the code branches on facts, not names."""

    name: str
    # PostgreSQL: identity/serial columns hand out IDs through sequences.
    sequences: bool
    # Row-value comparisons such as (a, b) > (1, 2) for keyset pagination.
    row_values: bool
    # Largest number of bound parameters one statement may carry.
    max_params: int


CAPABILITIES = {
    "sqlite": Capabilities("sqlite", sequences=False, row_values=True, max_params=32000),
    "postgresql": Capabilities("postgresql", sequences=True, row_values=True, max_params=60000),
    "mysql": Capabilities("mysql", sequences=False, row_values=True, max_params=60000),
}


def normalize_url(text: str) -> URL:
    """Parse a database URL, filling in rehost's driver for bare schemes."""
    if not isinstance(text, str) or "://" not in text:
        raise UsageError(
            f"'{text}' is not a database URL. Use sqlite:///path/app.db, "
            "postgresql://user@host/dbname or mysql://user@host/dbname."
        )
    scheme, rest = text.split("://", 1)
    scheme = _DRIVERS.get(scheme.lower(), scheme)
    try:
        url = make_url(f"{scheme}://{rest}")
    except ArgumentError as exc:
        raise UsageError(f"'{redact(text)}' is not a valid database URL: {exc}") from None
    if url.get_backend_name() == "mysql" and "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})
    return url


def redact(text: str | URL) -> str:
    """A URL for messages: the password is never shown."""
    if isinstance(text, URL):
        return text.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def open_engine(text: str, *, must_exist: bool = True) -> Engine:
    """Create an engine and check the database answers."""
    url = normalize_url(text)
    backend = url.get_backend_name()
    if backend not in CAPABILITIES:
        raise UsageError(
            f"rehost does not support '{backend}' databases ({redact(url)}). "
            "Supported: sqlite, postgresql, mysql/mariadb."
        )
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        path = url.database
        if must_exist and path and path != ":memory:":
            import os

            if not os.path.exists(path):
                raise ConnectionFailed(
                    f"SQLite database {path} does not exist. Check the path in {redact(url)}."
                )
    try:
        engine = sa.create_engine(url, **kwargs)
    except NoSuchModuleError as exc:
        raise UsageError(f"No driver for {redact(url)}: {exc}") from None
    except ArgumentError as exc:
        raise UsageError(f"Invalid database URL {redact(url)}: {exc}") from None
    if backend == "sqlite":
        _sqlite_pragmas(engine)
    elif backend == "postgresql":
        _postgres_json_as_text(engine)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (OperationalError, SAProgrammingError) as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConnectionFailed(
            f"Cannot connect to {redact(url)}: {reason}. Check the host, port, database "
            "name and credentials, and that the server is running."
        ) from None
    return engine


def _postgres_json_as_text(engine: Engine) -> None:
    """Read json/jsonb as text, as the other drivers do.

    psycopg decodes JSON itself, which makes a JSON string value such as "0"
    indistinguishable from text holding the document 0; rows are read with
    plain SQL, so every engine then hands rehost the same thing: JSON text.
    """
    from psycopg.types.string import TextLoader

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        for name in ("json", "jsonb"):
            dbapi_conn.adapters.register_loader(name, TextLoader)


def _sqlite_pragmas(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let rehost control transactions itself (BEGIN … COMMIT), and enforce FKs.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")


def capabilities(engine: Engine) -> Capabilities:
    return CAPABILITIES[engine.dialect.name]


def placeholder(engine: Engine) -> str:
    """The DB-API parameter marker for this driver."""
    return "?" if engine.dialect.paramstyle in ("qmark", "numeric") else "%s"


def quote(engine: Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote_identifier(name)
