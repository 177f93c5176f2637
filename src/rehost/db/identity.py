"""Whether two URLs name the same database, however they are spelled.

``sqlite:///app.db`` and ``sqlite:////srv/app/./app.db``, or
``postgresql://app@localhost/app`` and ``postgresql://admin@127.0.0.1:5432/app``,
are one database: a clone or an import from one into the other would write
into its own source (``clone --replace`` would drop the very tables it is
about to read). Each server is asked who it is instead of trusting the URLs:

* SQLite: the file's device and inode (its real path when it does not exist
  yet: then it is not the source, which does);
* PostgreSQL: the database's OID and name, and the server's start time (two
  clusters on one host differ in it);
* MariaDB/MySQL: the server's host name, port, data directory and socket, and
  the schema.
"""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

_QUERIES = {
    "postgresql": (
        "SELECT d.oid::text, current_database(), pg_postmaster_start_time()::text"
        " FROM pg_database d WHERE d.datname = current_database()"
    ),
    "mysql": "SELECT @@hostname, @@port, @@datadir, @@socket, DATABASE()",
}


def fingerprint(engine: Engine) -> tuple[Any, ...] | None:
    """Who this database is, as its server says; None when it cannot be told."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return ("sqlite-path", os.path.realpath(path))
        return ("sqlite", st.st_dev, st.st_ino)
    sql = _QUERIES.get(dialect)
    if sql is None:
        return None
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(sql).one()
    except sa.exc.DBAPIError:
        return None  # no privilege to ask: the URLs are compared instead
    return (dialect, *row)


def _spelled(engine: Engine) -> tuple[Any, ...]:
    url = engine.url
    host = url.host or "localhost"
    if host in ("localhost", "::1", "127.0.0.1"):
        host = "loopback"
    return (engine.dialect.name, host, url.port, url.database)


def same_database(a: Engine, b: Engine) -> bool:
    """True when ``a`` and ``b`` are one database (asked of the servers, else by URL)."""
    if a.dialect.name != b.dialect.name:
        return False
    fa, fb = fingerprint(a), fingerprint(b)
    if fa is not None and fb is not None:
        return fa == fb  # a SQLite file that does not exist yet is no existing one
    if a.dialect.name == "sqlite":
        return False  # in-memory databases are never shared
    return _spelled(a) == _spelled(b)
