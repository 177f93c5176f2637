"""Shared pytest fixtures: throw-away databases on SQLite, PostgreSQL and MariaDB.

Servers (fixed, as on the development machine and in CI):

* PostgreSQL on 127.0.0.1:5432, user ``postgres``, trust authentication;
* MariaDB on 127.0.0.1:3306, user ``root``, empty password.

A test that needs a server that is not reachable is skipped, except when the
environment has ``CI=true``: then it fails, so CI never goes green by skipping.

Fixtures:

* ``make_db(kind) -> str``: URL of a brand-new empty database, dropped at teardown;
* ``engine_kind``: parametrized over ``engines`` (ids sqlite/postgresql/mariadb);
* ``db_url``: ``make_db(engine_kind)``;
* ``chinook_url(kind) -> str``: a fresh database of that kind loaded with Chinook;
* ``chinook_sqlite_path``: the original Chinook SQLite file (read only!).

The Chinook files live in ``<repo>/../shared/datasets/chinook``; set
``REHOST_DATASETS`` to another ``datasets`` directory (the one holding ``chinook/``)
to override.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

engines = ["sqlite", "postgresql", "mariadb"]

PG_HOST = "127.0.0.1"
PG_PORT = 5432
MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306

PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres"
MARIADB_ADMIN_URL = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/?charset=utf8mb4"

CONNECT_TIMEOUT = 3  # seconds, for the reachability probe and admin connections
DB_PREFIX = "rh_"

_SERVER_LABEL = {
    "postgresql": f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}",
    "mariadb": f"MariaDB is not reachable on {MARIADB_HOST}:{MARIADB_PORT}",
}


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def _check_kind(kind: str) -> None:
    if kind not in engines:
        raise ValueError(f"unknown database kind {kind!r}; expected one of {engines}")


def _admin_engine(kind: str) -> sa.Engine:
    """A pool-less AUTOCOMMIT engine on the server's maintenance database."""
    if kind == "postgresql":
        return sa.create_engine(
            PG_ADMIN_URL,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
    if kind == "mariadb":
        return sa.create_engine(
            MARIADB_ADMIN_URL,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
    raise ValueError(f"no server for {kind!r}")


# --------------------------------------------------------------------------- servers


@functools.cache
def _probe(kind: str) -> tuple[bool, str]:
    """(reachable, version or error text); connects at most once per session."""
    _check_kind(kind)
    if kind == "sqlite":
        import sqlite3

        return True, f"SQLite {sqlite3.sqlite_version}"
    engine = _admin_engine(kind)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version()")).scalar_one()
        return True, str(version)
    except Exception as exc:  # any failure means "not usable"
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return False, detail[0] if detail else type(exc).__name__
    finally:
        engine.dispose()


def server_available(kind: str) -> bool:
    """True when the server for ``kind`` accepts connections (SQLite: always)."""
    return _probe(kind)[0]


def require_server(kind: str) -> None:
    """Skip the current test if the server is down; fail instead under CI=true."""
    ok, detail = _probe(kind)
    if ok:
        return
    reason = f"{_SERVER_LABEL[kind]}: {detail}"
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: a missing server is an error, not a skip)")
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for kind in engines:
        ok, detail = _probe(kind)
        if kind == "sqlite":
            lines.append(f"rehost db sqlite: {detail}")
        elif ok:
            where = (
                f"{PG_HOST}:{PG_PORT}" if kind == "postgresql" else f"{MARIADB_HOST}:{MARIADB_PORT}"
            )
            lines.append(f"rehost db {kind}: found on {where}: {detail.split(' on ')[0]}")
        else:
            what = "tests fail (CI=true)" if _in_ci() else "tests skipped"
            lines.append(f"rehost db {kind}: NOT FOUND, {what}: {_SERVER_LABEL[kind]}: {detail}")
    return lines


# --------------------------------------------------------------------------- make_db


class DatabaseFactory:
    """Creates empty databases on demand; :meth:`close` drops every one of them."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._admin: dict[str, sa.Engine] = {}
        self.created: list[tuple[str, str]] = []  # (kind, url), in creation order

    def _engine(self, kind: str) -> sa.Engine:
        if kind not in self._admin:
            self._admin[kind] = _admin_engine(kind)
        return self._admin[kind]

    def __call__(self, kind: str) -> str:
        _check_kind(kind)
        require_server(kind)
        name = DB_PREFIX + secrets.token_hex(8)
        if kind == "sqlite":
            path = self._tmp_path / f"{name}.db"
            path.touch()  # a zero-byte file is a valid, empty SQLite database
            url = f"sqlite:///{path}"
        elif kind == "postgresql":
            with self._engine(kind).connect() as conn:
                conn.exec_driver_sql(
                    f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"
                )
            url = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"
        else:
            with self._engine(kind).connect() as conn:
                conn.exec_driver_sql(
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            url = f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}?charset=utf8mb4"
        self.created.append((kind, url))
        return url

    def _drop(self, kind: str, url: str) -> None:
        if kind == "sqlite":
            path = Path(make_url(url).database or "")
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        name = make_url(url).database
        assert name and name.startswith(DB_PREFIX), name  # never drop anything else
        with self._engine(kind).connect() as conn:
            if kind == "postgresql":
                # Connections the test left open (undisposed engines, open
                # transactions) would make a plain DROP DATABASE fail.
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                force = " WITH (FORCE)" if (conn.dialect.server_version_info or ()) >= (13,) else ""
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"{force}')
            else:
                # A leftover connection holding a metadata lock would block DROP.
                conn.exec_driver_sql("SET SESSION lock_wait_timeout = 30")
                ids = conn.execute(
                    sa.text(
                        "SELECT ID FROM information_schema.PROCESSLIST"
                        " WHERE DB = :n AND ID <> CONNECTION_ID()"
                    ),
                    {"n": name},
                ).scalars()
                for thread_id in list(ids):
                    with contextlib.suppress(sa.exc.DBAPIError):  # may be gone already
                        conn.exec_driver_sql(f"KILL CONNECTION {int(thread_id)}")
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")

    def close(self) -> None:
        """Drop all databases created so far (newest first), then dispose engines."""
        errors: list[str] = []
        while self.created:
            kind, url = self.created.pop()
            try:
                self._drop(kind, url)
            except Exception as exc:  # keep dropping the others
                errors.append(f"{kind} {url}: {exc}")
        for engine in self._admin.values():
            engine.dispose()
        self._admin.clear()
        if errors:
            raise RuntimeError("could not drop test database(s):\n" + "\n".join(errors))


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``make_db(kind) -> url``: a new empty database, dropped at teardown."""
    factory = DatabaseFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(params=engines, ids=engines)
def engine_kind(request: pytest.FixtureRequest) -> str:
    """One of "sqlite", "postgresql", "mariadb"; skips (CI: fails) if its server is down."""
    kind: str = request.param
    require_server(kind)
    return kind


@pytest.fixture
def db_url(make_db: Callable[[str], str], engine_kind: str) -> str:
    return make_db(engine_kind)


# --------------------------------------------------------------------------- Chinook


def datasets_dir() -> Path:
    override = os.environ.get("REHOST_DATASETS")
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def chinook_dir() -> Path:
    path = datasets_dir() / "chinook"
    if not (path / "Chinook_Sqlite.sqlite").is_file():
        reason = f"Chinook dataset not found in {path} (set REHOST_DATASETS)"
        if _in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# Statements that would leave the test's own database: (DROP|CREATE) DATABASE,
# MySQL's USE and psql meta-commands such as "\c chinook;".
_LEAVE_DB_RE = re.compile(
    r"^[ \t]*(?:(?:DROP|CREATE)[ \t]+DATABASE\b[^;\n]*;|USE[ \t]+[^;\n]*;|\\[^\n]*)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


@functools.cache
def _chinook_script(path: Path) -> str:
    """The dump as text, without statements that switch or (re)create databases."""
    raw = path.read_bytes()
    # The shipped files are plain UTF-8 without BOM; accept a BOM, but refuse
    # anything that is not UTF-8 rather than loading mojibake.
    text = raw.decode("utf-8-sig")
    text = _LEAVE_DB_RE.sub("", text)
    # Anything database-level still there would load Chinook into another database.
    leftover = re.search(
        r"^[ \t]*(?:(?:DROP|CREATE)\s+DATABASE\b|USE\s)[^;\n]*;|^[ \t]*\\",
        text,
        re.IGNORECASE | re.MULTILINE,
    )
    if leftover:
        raise RuntimeError(f"{path.name}: cannot strip {leftover.group(0)!r} from the dump")
    return text


def _load_postgresql(url: str, script: str) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            # No parameters: psycopg uses the simple query protocol, which runs
            # the whole multi-statement script in one round trip (and one
            # implicit transaction).
            cur.execute(script)
            cur.close()
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


def _load_mariadb(url: str, script: str) -> None:
    from pymysql.constants import CLIENT  # type: ignore[import-untyped]

    engine = sa.create_engine(
        url, poolclass=NullPool, connect_args={"client_flag": CLIENT.MULTI_STATEMENTS}
    )
    try:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            # The dump is written for standard SQL string literals: track names
            # such as N'Cavalleria Rusticana \ Act \ Intermezzo Sinfonico' contain
            # a literal backslash, which MariaDB would otherwise eat as an escape.
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            cur.execute(script)  # no args: PyMySQL does no %-interpolation
            while cur.nextset():  # errors of later statements surface here
                pass
            cur.close()
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


@pytest.fixture
def chinook_sqlite_path() -> Path:
    """The original Chinook SQLite file. Read only: copy it before writing."""
    return chinook_dir() / "Chinook_Sqlite.sqlite"


@pytest.fixture
def chinook_url(make_db: Callable[[str], str], tmp_path: Path) -> Callable[[str], str]:
    """``chinook_url(kind) -> url``: a fresh database of that kind loaded with Chinook.

    Names follow the dumps: SQLite and MariaDB use PascalCase (``Artist.ArtistId``,
    ``InvoiceLine``), PostgreSQL snake_case (``artist.artist_id``, ``invoice_line``).
    """

    def load(kind: str) -> str:
        _check_kind(kind)
        require_server(kind)
        source = chinook_dir()
        if kind == "sqlite":
            path = tmp_path / f"chinook_{secrets.token_hex(4)}.sqlite"
            shutil.copyfile(source / "Chinook_Sqlite.sqlite", path)
            path.chmod(0o644)
            return f"sqlite:///{path}"
        url = make_db(kind)
        if kind == "postgresql":
            _load_postgresql(url, _chinook_script(source / "Chinook_PostgreSql.sql"))
        else:
            _load_mariadb(url, _chinook_script(source / "Chinook_MySql.sql"))
        return url

    return load
