"""Checks that the database fixtures in conftest.py do what they promise.

The existence checks below deliberately do not reuse conftest code: they ask the
servers (or the file system) directly, so a broken fixture cannot hide itself.
"""

from __future__ import annotations

import json
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")
KINDS = ["sqlite", "postgresql", "mariadb"]

# Verified against Chinook_Sqlite.sqlite (Chinook 1.4.5).
CHINOOK_COUNTS = {
    "Album": 347,
    "Artist": 275,
    "Customer": 59,
    "Employee": 8,
    "Genre": 25,
    "Invoice": 412,
    "InvoiceLine": 2240,
    "MediaType": 5,
    "Playlist": 18,
    "PlaylistTrack": 8715,
    "Track": 3503,
}
CHINOOK_COLUMNS = {
    "Album": ["AlbumId", "Title", "ArtistId"],
    "Artist": ["ArtistId", "Name"],
    "Customer": [
        "CustomerId", "FirstName", "LastName", "Company", "Address", "City", "State",
        "Country", "PostalCode", "Phone", "Fax", "Email", "SupportRepId",
    ],
    "Employee": [
        "EmployeeId", "LastName", "FirstName", "Title", "ReportsTo", "BirthDate", "HireDate",
        "Address", "City", "State", "Country", "PostalCode", "Phone", "Fax", "Email",
    ],
    "Genre": ["GenreId", "Name"],
    "Invoice": [
        "InvoiceId", "CustomerId", "InvoiceDate", "BillingAddress", "BillingCity",
        "BillingState", "BillingCountry", "BillingPostalCode", "Total",
    ],
    "InvoiceLine": ["InvoiceLineId", "InvoiceId", "TrackId", "UnitPrice", "Quantity"],
    "MediaType": ["MediaTypeId", "Name"],
    "Playlist": ["PlaylistId", "Name"],
    "PlaylistTrack": ["PlaylistId", "TrackId"],
    "Track": [
        "TrackId", "Name", "AlbumId", "MediaTypeId", "GenreId", "Composer", "Milliseconds",
        "Bytes", "UnitPrice",
    ],
}  # fmt: skip


def pg_name(name: str) -> str:
    """PascalCase (SQLite/MariaDB dumps) -> snake_case (PostgreSQL dump)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def chinook_name(kind: str, name: str) -> str:
    return pg_name(name) if kind == "postgresql" else name


# ------------------------------------------------------------------ independent helpers


def database_exists(url: str) -> bool:
    """Ask the server (or file system) whether the database behind ``url`` exists."""
    u = make_url(url)
    name = u.database
    if u.get_backend_name() == "sqlite":
        return Path(name or "").exists()
    if u.get_backend_name() == "postgresql":
        admin, query = (
            u.set(database="postgres"),
            "SELECT count(*) FROM pg_database WHERE datname = :n",
        )
    else:
        # u.set(database=None) would mean "unchanged", hence "".
        admin, query = (
            u.set(database=""),
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n",
        )
    engine = sa.create_engine(admin, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query), {"n": name}).scalar_one() == 1
    finally:
        engine.dispose()


def run_inner(pytester: pytest.Pytester, conftest_text: str, test_text: str, *args: str):
    pytester.makeconftest(conftest_text)
    pytester.makepyfile(test_inner=test_text)
    # hypothesis' pytest plugin is not needed inside and costs ~1.5 s of imports.
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-rsfE", "-vv", *args
    )


# ------------------------------------------------------------------ make_db


def test_make_db_gives_empty_usable_database(make_db, engine_kind):
    url = make_db(engine_kind)
    other = make_db(engine_kind)
    assert url != other
    assert database_exists(url) and database_exists(other)

    engine = sa.create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
        md = sa.MetaData()
        t = sa.Table(
            "probe",
            md,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("label", sa.String(50)),
        )
        md.create_all(engine)
        with engine.begin() as conn:
            conn.execute(t.insert(), [{"id": 1, "label": "Ünïcødé ß"}])
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.c.label)).scalar_one() == "Ünïcødé ß"
        assert sa.inspect(engine).get_table_names() == ["probe"]
    finally:
        engine.dispose()

    # The second database is really separate and still empty.
    engine = sa.create_engine(other)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()

    if engine_kind == "postgresql":
        assert make_url(url).database.startswith("rh_")
    if engine_kind == "mariadb":
        engine = sa.create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            charset, collation = conn.execute(
                sa.text(
                    "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
                    " FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()"
                )
            ).one()
        engine.dispose()
        assert (charset, collation) == ("utf8mb4", "utf8mb4_unicode_ci")


def test_db_url_fixture(db_url, engine_kind):
    backend = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mysql"}[engine_kind]
    assert make_url(db_url).get_backend_name() == backend
    assert database_exists(db_url)


INNER_TEARDOWN_TEST = """
import json, os
import pytest
import sqlalchemy as sa

KEEP = []  # keeps connections (and their open transactions) alive into teardown

@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_leave_a_mess(make_db, kind):
    urls = [make_db(kind), make_db(kind)]
    with open(os.path.join(os.environ["RH_OUT"], kind + ".json"), "w") as fh:
        json.dump(urls, fh)
    for url in urls:
        engine = sa.create_engine(url)  # never disposed
        conn = engine.connect()
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.commit()
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))  # transaction left open
        KEEP.append((engine, conn))
    assert False, "deliberate failure"
"""


def test_make_db_drops_databases_after_failed_test(pytester, tmp_path, monkeypatch):
    """Failing tests that leave open connections behind: their databases must be gone.

    One inner pytest run covers all three kinds (a subprocess costs seconds).
    A kind whose server is down is skipped by the inner run, as it would be here.
    """
    monkeypatch.setenv("RH_OUT", str(tmp_path))
    result = run_inner(pytester, CONFTEST.read_text(encoding="utf-8"), INNER_TEARDOWN_TEST)
    outcomes = result.parseoutcomes()
    assert "error" not in outcomes and "errors" not in outcomes, result.stdout.str()
    ran = sorted(p.stem for p in tmp_path.glob("*.json"))
    assert "sqlite" in ran
    assert outcomes.get("failed") == len(ran), result.stdout.str()
    for kind in KINDS:
        if kind in ran:
            result.stdout.fnmatch_lines(
                [f"FAILED test_inner.py::test_leave_a_mess?{kind}? - *deliberate failure*"]
            )
        else:
            result.stdout.fnmatch_lines([f"SKIPPED *{kind}*not reachable*"])
    for kind in ran:
        urls = json.loads((tmp_path / f"{kind}.json").read_text())
        assert len(urls) == 2 and urls[0] != urls[1]
        for url in urls:
            assert not database_exists(url), f"{url} still exists after teardown"


INNER_SERVER_TEST = """
import pytest

def test_local(make_db, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    make_db("postgresql")

def test_ci(make_db, monkeypatch):
    monkeypatch.setenv("CI", "true")
    make_db("postgresql")
"""


def test_unreachable_server_skips_locally_and_fails_in_ci(pytester):
    text = CONFTEST.read_text(encoding="utf-8")
    assert "PG_PORT = 5432\n" in text
    text = text.replace("PG_PORT = 5432\n", "PG_PORT = 1\n")  # nothing listens there
    result = run_inner(pytester, text, INNER_SERVER_TEST)
    result.assert_outcomes(skipped=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*rehost db postgresql: NOT FOUND*PostgreSQL is not reachable on 127.0.0.1:1: *",
            "SKIPPED * PostgreSQL is not reachable on 127.0.0.1:1: *",
            "FAILED test_inner.py::test_ci - *PostgreSQL is not reachable on 127.0.0.1:1: *CI=true*",
        ],
        consecutive=False,
    )


# ------------------------------------------------------------------ Chinook


def test_chinook_sqlite_path_is_the_original(chinook_sqlite_path):
    assert chinook_sqlite_path.name == "Chinook_Sqlite.sqlite"
    con = sqlite3.connect(f"file:{chinook_sqlite_path}?mode=ro", uri=True)
    try:
        counts = {
            t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in CHINOOK_COUNTS
        }
    finally:
        con.close()
    assert counts == CHINOOK_COUNTS


def _source_rows(sqlite_path: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_chinook_url_loads_full_dataset(chinook_url, chinook_sqlite_path, engine_kind):
    url = chinook_url(engine_kind)
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        n = chinook_name
        expected_tables = {n(engine_kind, t) for t in CHINOOK_COUNTS}
        assert set(insp.get_table_names()) == expected_tables
        for table, columns in CHINOOK_COLUMNS.items():
            got = [c["name"] for c in insp.get_columns(n(engine_kind, table))]
            assert got == [n(engine_kind, c) for c in columns], table

        q = engine.dialect.identifier_preparer.quote
        with engine.connect() as conn:
            counts = {
                table: conn.execute(
                    sa.text(f"SELECT count(*) FROM {q(n(engine_kind, table))}")
                ).scalar_one()
                for table in CHINOOK_COUNTS
            }
            assert counts == CHINOOK_COUNTS

            # Text survives byte for byte (non-ASCII, quotes, backslashes).
            track = sa.table(
                n(engine_kind, "Track"),
                *(sa.column(n(engine_kind, c)) for c in ("TrackId", "Name", "Composer")),
            )
            got_tracks = conn.execute(sa.select(track).order_by(track.c[0])).all()
            invoice = sa.table(
                n(engine_kind, "Invoice"),
                *(
                    sa.column(n(engine_kind, c))
                    for c in ("InvoiceId", "InvoiceDate", "BillingAddress", "Total")
                ),
            )
            got_invoices = conn.execute(sa.select(invoice).order_by(invoice.c[0])).all()
    finally:
        engine.dispose()

    want_tracks = _source_rows(
        chinook_sqlite_path, "SELECT TrackId, Name, Composer FROM Track ORDER BY TrackId"
    )
    assert [tuple(r) for r in got_tracks] == want_tracks
    assert any("\\" in name for _, name, _ in want_tracks)  # the case MariaDB would mangle

    want_invoices = _source_rows(
        chinook_sqlite_path,
        "SELECT InvoiceId, InvoiceDate, BillingAddress, Total FROM Invoice ORDER BY InvoiceId",
    )
    cent = Decimal("0.01")
    normalized = [(i, str(d), a, Decimal(str(t)).quantize(cent)) for i, d, a, t in got_invoices]
    assert normalized == [(i, d, a, Decimal(str(t)).quantize(cent)) for i, d, a, t in want_invoices]


def test_chinook_sqlite_copy_is_independent(chinook_url, chinook_sqlite_path):
    url = chinook_url("sqlite")
    copy = Path(make_url(url).database)
    assert copy != chinook_sqlite_path and copy.exists()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text('DELETE FROM "PlaylistTrack"'))
    finally:
        engine.dispose()
    assert _source_rows(chinook_sqlite_path, "SELECT count(*) FROM PlaylistTrack") == [(8715,)]
