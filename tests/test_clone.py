"""rehost clone at the command line: every engine pair, Chinook and a type-torture schema."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from rehost.cli import app
from rehost.db.connect import normalize_url
from tests.conftest import engines

runner = CliRunner()
PAIRS = [(s, t) for s in engines for t in engines]
PAIR_IDS = [f"{s}-to-{t}" for s, t in PAIRS]


def rehost(*args: str):
    return runner.invoke(app, list(args))


def clone_json(*args: str) -> dict:
    result = rehost("clone", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def engine(url: str) -> sa.Engine:
    return sa.create_engine(normalize_url(url), poolclass=NullPool)


def run_sql(url: str, *statements: str) -> None:
    eng = engine(url)
    try:
        with eng.begin() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        eng.dispose()


# --------------------------------------------------------------------- Chinook

CHINOOK_ROWS = 15607


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_chinook_clones_between_every_pair(chinook_url, make_db, src, dst):
    source = chinook_url(src)
    target = make_db(dst)
    report = clone_json(source, target)
    assert report["ok"] is True
    assert len(report["tables"]) == 11
    assert report["rows"] == CHINOOK_ROWS
    assert all(t["verified"] for t in report["tables"])
    # PostgreSQL's dump uses snake_case names, the others PascalCase.
    artist, artist_id, name, album = (
        ("artist", "artist_id", "name", "album")
        if src == "postgresql"
        else ("Artist", "ArtistId", "Name", "Album")
    )
    eng = engine(target)
    try:
        insp = sa.inspect(eng)
        assert insp.get_pk_constraint(artist)["constrained_columns"] == [artist_id]
        assert [fk["referred_table"] for fk in insp.get_foreign_keys(album)] == [artist]
        # The Chinook SQLite IDs are rowids: the target carries on after the highest.
        if src == "sqlite" or dst == "sqlite":
            q = eng.dialect.identifier_preparer.quote
            with eng.begin() as conn:
                conn.exec_driver_sql(f"INSERT INTO {q(artist)} ({q(name)}) VALUES ('New Artist')")
                new_id = conn.exec_driver_sql(
                    f"SELECT {q(artist_id)} FROM {q(artist)} WHERE {q(name)} = 'New Artist'"
                ).scalar_one()
            assert new_id == 276
    finally:
        eng.dispose()
    if src == "sqlite" or dst == "sqlite":
        result = rehost("clone", source, target, "--verify-only", "--json")
        assert result.exit_code == 1  # the new artist is only on the target
        again = json.loads(result.stdout)
        bad = [t for t in again["tables"] if not t["verified"]]
        assert [t["table"] for t in bad] == [artist]
        assert "276" in bad[0]["verify"]["first_difference"]


# ---------------------------------------------------------------- type torture

BIG = 9_223_372_036_854_775_807


def _torture_schema(kind: str) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        "parent",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
        sa.Column("boss_id", sa.Integer, sa.ForeignKey("parent.id")),
        sa.Column("fav_parent", sa.Integer),
        sa.Column("fav_pos", sa.Integer),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(
            ["fav_parent", "fav_pos"], ["child.parent_id", "child.pos"], use_alter=True
        ),
        sa.CheckConstraint("length(name) > 0", name="ck_parent_name"),
    )
    sa.Table(
        "child",
        md,
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="CASCADE")),
        sa.Column("pos", sa.Integer),
        sa.Column("label", sa.String(20), server_default="none"),
        sa.PrimaryKeyConstraint("parent_id", "pos"),
        sa.CheckConstraint("pos >= 0", name="ck_child_pos"),
    )
    sa.Table(
        "vals",
        md,
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("big", sa.BigInteger),
        sa.Column("num", sa.Numeric(12, 4)),
        sa.Column("money", sa.Numeric(15, 2)),
        sa.Column("f", sa.Double),
        sa.Column("f4", sa.REAL if kind != "sqlite" else sa.Float),
        sa.Column("flag", sa.Boolean),
        sa.Column("ts", sa.DateTime),
        sa.Column("tstz", sa.DateTime(timezone=True)),
        sa.Column("d", sa.Date),
        sa.Column("t", sa.Time),
        sa.Column("txt", sa.Text),
        sa.Column("emoji", sa.String(20)),
        sa.Column("bin", sa.LargeBinary),
        sa.Column("doc", sa.JSON),
        sa.Column("u", sa.Uuid),
    )
    sa.Table("log", md, sa.Column("msg", sa.Text), sa.Column("n", sa.Integer))  # no key at all
    sa.Index("ix_vals_d", md.tables["vals"].c.d)
    return md


def _torture_rows(kind: str) -> dict[str, list[dict]]:
    tz = dt.timezone(dt.timedelta(hours=2))
    vals = [
        dict(
            id=1,
            big=BIG,
            num=decimal.Decimal("12345678.1234"),
            money=decimal.Decimal("-0.01"),
            f=0.1,
            f4=1.5,
            flag=True,
            ts=dt.datetime(1901, 12, 13, 20, 45, 52, 123456),
            tstz=dt.datetime(2021, 3, 28, 1, 30, 0, 500000, tzinfo=tz),
            d=dt.date(1066, 10, 14),
            t=dt.time(23, 59, 59, 999999),
            txt="line\nbreak\ttab 'quote' \"dq\" back\\slash %s ?",
            emoji="😀𝄞 ñ ß",
            bin=bytes(range(256)),
            doc={"a": [1, 2.5, "x"], "b": {"c": None}, "é": True},
            u=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ),
        dict(
            id=2,
            big=-BIG - 1,
            num=decimal.Decimal("-0.0001"),
            money=decimal.Decimal("9999999999999.99"),
            f=-1e308,
            f4=-0.25,
            flag=False,
            ts=dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
            tstz=dt.datetime(1960, 1, 1, tzinfo=dt.UTC),
            d=dt.date(1969, 7, 20),
            t=dt.time(0, 0),
            txt="",
            emoji="",
            bin=b"",
            doc=[],
            u=uuid.UUID(int=0),
        ),
        {"id": 3, **{k: None for k in ("big", "num", "money", "f", "f4", "flag", "ts")}},
    ]
    for row in vals:
        for k in ("tstz", "d", "t", "txt", "emoji", "bin", "doc", "u"):
            row.setdefault(k, None)
    return {
        "parent": [
            dict(id=1, name="root", boss_id=None, fav_parent=None, fav_pos=None, active=True),
            dict(id=2, name="Ünïcode ☃", boss_id=1, fav_parent=None, fav_pos=None, active=False),
            dict(id=7, name="gap", boss_id=2, fav_parent=None, fav_pos=None, active=True),
        ],
        "child": [
            dict(parent_id=1, pos=0, label="a"),
            dict(parent_id=1, pos=1, label=None),
            dict(parent_id=2, pos=0, label="🙂"),
        ],
        "vals": vals,
        "log": [dict(msg="same", n=1), dict(msg="same", n=1), dict(msg=None, n=None)],
    }


def make_torture(url: str, kind: str) -> None:
    md = _torture_schema(kind)
    eng = engine(url)
    try:
        md.create_all(eng)
        rows = _torture_rows(kind)
        with eng.begin() as conn:
            for name in ("parent", "child", "vals", "log"):
                conn.execute(md.tables[name].insert(), rows[name])
            # The cycle: a parent's favourite child.
            conn.execute(
                md.tables["parent"].update().where(md.tables["parent"].c.id == 1),
                {"fav_parent": 2, "fav_pos": 0},
            )
    finally:
        eng.dispose()


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
def test_type_torture_survives_every_pair(make_db, src, dst):
    source = make_db(src)
    make_torture(source, src)
    target = make_db(dst)
    report = clone_json(source, target)
    assert report["ok"] is True, report
    rows = {t["table"]: t["rows"] for t in report["tables"]}
    assert rows == {"parent": 3, "child": 3, "vals": 3, "log": 3}
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    eng = engine(target)
    try:
        insp = sa.inspect(eng)
        assert insp.get_pk_constraint("child")["constrained_columns"] == ["parent_id", "pos"]
        fks = {
            (fk["referred_table"], tuple(fk["constrained_columns"]))
            for fk in insp.get_foreign_keys("parent")
        }
        assert fks == {("parent", ("boss_id",)), ("child", ("fav_parent", "fav_pos"))}
        checks = {c["name"] for c in insp.get_check_constraints("child")}
        if dst != "sqlite":  # SQLite reflects only named table-level checks it can parse
            assert "ck_child_pos" in checks
        with eng.begin() as conn:
            conn.exec_driver_sql("INSERT INTO parent (name) VALUES ('new')")
            assert conn.exec_driver_sql("SELECT id FROM parent WHERE name = 'new'").scalar() == 8
            row = conn.exec_driver_sql("SELECT big, emoji FROM vals WHERE id = 1").one()
            assert (int(row[0]), row[1]) == (BIG, "😀𝄞 ñ ß")
        with pytest.raises(sa.exc.DBAPIError), eng.begin() as conn:
            conn.exec_driver_sql("INSERT INTO child (parent_id, pos) VALUES (1, -5)")
    finally:
        eng.dispose()


# ------------------------------------------------------------ failing, refusing


def test_verify_names_table_and_key_of_a_corrupted_target(make_db):
    source = make_db("sqlite")
    make_torture(source, "sqlite")
    target = make_db("postgresql")
    clone_json(source, target)
    run_sql(
        target,
        "UPDATE child SET label = 'tampered' WHERE parent_id = 1 AND pos = 1",
        "UPDATE log SET n = 2 WHERE n = 1 AND ctid = (SELECT min(ctid) FROM log WHERE n = 1)",
    )
    result = rehost("clone", source, target, "--verify-only")
    assert result.exit_code == 1
    assert "Verification failed: child, log." in result.stdout
    report = json.loads(rehost("clone", source, target, "--verify-only", "--json").stdout)
    bad = {t["table"]: t["verify"] for t in report["tables"] if not t["verified"]}
    assert sorted(bad) == ["child", "log"]
    assert bad["child"]["first_difference"] == "child (parent_id=1, pos=1): label differs"
    assert bad["child"]["source_checksum"] != bad["child"]["target_checksum"]
    # Without a key, rows are compared as a multiset: a changed duplicate is found too.
    assert bad["log"]["source_rows"] == bad["log"]["target_rows"] == 3
    assert bad["log"]["first_difference"] is None


def test_postgres_to_postgres_verifies_in_the_database_and_still_names_the_key(make_db):
    source = make_db("postgresql")
    make_torture(source, "postgresql")
    target = make_db("postgresql")
    report = clone_json(source, target)
    assert {t["table"]: t["verify"]["method"] for t in report["tables"]} == dict.fromkeys(
        ("child", "log", "parent", "vals"), "database"
    )
    run_sql(
        target,
        "UPDATE vals SET f = 0.30000000000000004 WHERE id = 1",  # the last digit only
        "DELETE FROM parent WHERE id = 7",
        # Two rows swap a value: the same multiset of values per column.
        "UPDATE child SET label = CASE pos + parent_id WHEN 1 THEN '🙂' ELSE 'a' END WHERE pos = 0",
        "UPDATE log SET n = 2 WHERE n = 1 AND ctid = (SELECT min(ctid) FROM log WHERE n = 1)",
    )

    def problems() -> dict[str, dict]:
        result = rehost("clone", source, target, "--verify-only", "--json")
        assert result.exit_code == 1, result.output
        report = json.loads(result.stdout)
        return {t["table"]: t["verify"] for t in report["tables"] if not t["verified"]}

    bad = problems()
    assert sorted(bad) == ["child", "log", "parent", "vals"]
    assert bad["vals"]["first_difference"] == "vals (id=1): f differs"
    assert bad["parent"]["first_difference"] == "parent (id=7)"
    assert (bad["parent"]["source_rows"], bad["parent"]["target_rows"]) == (3, 2)
    assert bad["child"]["first_difference"] == "child (parent_id=1, pos=0): label differs"
    assert bad["log"]["first_difference"] is None
    # A key whose range arithmetic would overflow on the target: streamed instead.
    run_sql(target, "INSERT INTO vals (id) VALUES (-9223372036854775808)")
    bad = problems()
    assert bad["vals"]["first_difference"] == "vals (id=-9223372036854775808)"
    assert bad["vals"]["method"] == "streamed"


def test_non_empty_target_is_refused_and_replace_drops_only_its_tables(make_db):
    source = make_db("sqlite")
    make_torture(source, "sqlite")
    target = make_db("mariadb")
    run_sql(
        target,
        "CREATE TABLE keep_me (x INT)",
        "CREATE TABLE vals (x INT)",
        "INSERT INTO keep_me VALUES (1)",
    )
    eng = engine(target)
    result = rehost("clone", source, target)
    assert result.exit_code == 1
    assert "not empty" in result.output and "--replace" in result.output
    assert "parent" not in sa.inspect(eng).get_table_names()
    report = clone_json(source, target, "--replace")
    assert report["ok"] is True
    assert set(sa.inspect(eng).get_table_names()) == {"keep_me", "parent", "child", "vals", "log"}
    again = clone_json(source, target, "--replace", "--tables", "vals")
    assert [t["table"] for t in again["tables"]] == ["vals"]
    with eng.connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM keep_me").scalar() == 1
    eng.dispose()


@pytest.mark.parametrize("kind", engines)
def test_a_clone_into_its_own_source_is_refused(make_db, kind):
    source = make_db(kind)
    run_sql(source, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    u = sa.engine.make_url(source)
    if kind == "sqlite":
        same = f"sqlite:///{u.database.replace('/rh_', '/./rh_')}"
    else:
        host = "localhost" if u.host == "127.0.0.1" else u.host
        scheme = "postgres" if kind == "postgresql" else "mariadb"
        same = f"{scheme}://{u.username}@{host}:{u.port or (5432 if kind == 'postgresql' else 3306)}/{u.database}"
    assert same != source  # the same database, spelled otherwise
    for extra in ([], ["--replace"], ["--verify-only"]):
        result = rehost("clone", source, same, *extra)
        assert result.exit_code == 2 and "are the same database" in result.output, result.output
    with engine(source).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1


def test_postgres_array_and_enum_need_an_explicit_mapping(make_db):
    source = make_db("postgresql")
    run_sql(
        source,
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
        "CREATE TABLE t (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, tags int[], m mood,"
        " moods mood[])",
        "INSERT INTO t (tags, m, moods) VALUES ('{1,2,3}', 'ok', '{sad,happy}'), (NULL, NULL, NULL)",
    )
    target = make_db("sqlite")
    blocked = rehost("clone", source, target, "--json")
    assert blocked.exit_code == 1
    codes = {(f["subject"], f["code"]) for f in json.loads(blocked.stdout)["findings"]}
    assert codes == {(f"t.{c}", "clone-type-unmapped") for c in ("tags", "m", "moods")}
    assert sa.inspect(engine(target)).get_table_names() == []  # nothing was written
    maps = ["--map-type", "integer[]=JSON", "--map-type", "mood=TEXT", "--map-type", "mood[]=TEXT"]
    report = clone_json(source, target, *maps)
    assert report["ok"] is True
    with engine(target).connect() as conn:
        row = conn.exec_driver_sql("SELECT tags, m, moods FROM t WHERE id = 1").one()
        assert row == ("[1, 2, 3]", "ok", "{sad,happy}")
        conn.exec_driver_sql("INSERT INTO t (m) VALUES ('new')")
        assert conn.exec_driver_sql("SELECT max(id) FROM t").scalar() == 3
    # The same engine keeps them as they are.
    same = make_db("postgresql")
    assert clone_json(source, same)["ok"] is True
    with engine(same).connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT tags, m, pg_typeof(m)::text, moods::text FROM t WHERE id = 1"
        ).one()
        assert row == ([1, 2, 3], "ok", "mood", "{sad,happy}")


def test_mysql_zero_dates_become_null_with_a_warning(make_db):
    source = make_db("mariadb")
    run_sql(
        source,
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
        "CREATE TABLE z (id INT PRIMARY KEY, d DATE, ts DATETIME)",
        "INSERT INTO z VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '1950-01-02', NULL),"
        " (3, '2020-02-30', '0000-01-01 10:00:00')",
    )
    target = make_db("postgresql")
    report = clone_json(source, target)
    assert report["ok"] is True
    warned = {f["subject"] for f in report["findings"] if f["code"] == "clone-zero-date"}
    assert warned == {"z.d", "z.ts"}
    with engine(target).connect() as conn:
        rows = conn.exec_driver_sql("SELECT id, d, ts FROM z ORDER BY id").all()
    assert rows == [(1, None, None), (2, dt.date(1950, 1, 2), None), (3, None, None)]


def test_mariadb_text_lines_keep_escapes_nulls_and_floats(make_db):
    """MariaDB → PostgreSQL reads rows as COPY text lines built by MariaDB: every escape."""
    source = make_db("mariadb")
    tricky = ["a\\b", "tab\there", "line\nbreak", "cr\rlf", "\\N", "NULL", "", "😀 ñ"]
    run_sql(
        source,
        "CREATE TABLE s (id INT PRIMARY KEY, t VARCHAR(40), f DOUBLE, r FLOAT,"
        " d DECIMAL(30,10), b TINYINT(1), ts DATETIME(6)) DEFAULT CHARSET=utf8mb4",
        *(
            f"INSERT INTO s VALUES ({i}, '{v.replace(chr(92), chr(92) * 2)}', {i} / 7e300,"
            f" 0.1 * {i}, 12345678901234567890.0123456789, {i % 2}, '1901-02-03 04:05:06.000007')"
            for i, v in enumerate(tricky, 1)
        ),
        "INSERT INTO s VALUES (99, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    target = make_db("postgresql")
    report = clone_json(source, target)
    assert report["ok"] is True, report
    with engine(target).connect() as conn:
        texts = conn.exec_driver_sql("SELECT t FROM s ORDER BY id").scalars().all()
    assert texts == [*tricky, None]


def test_human_output_has_a_summary_table(chinook_sqlite_path, make_db, tmp_path):
    target = make_db("sqlite")
    result = rehost(
        "clone",
        f"sqlite:///{chinook_sqlite_path}",
        target,
        "--tables",
        "Artist,Album,Track",
        "--exclude",
        "Track",
    )
    assert result.exit_code == 0, result.output
    assert "Artist" in result.stdout and "Album" in result.stdout and "verified" in result.stdout
    assert "2 tables, 622 rows" in result.stdout
    assert "bytes" in result.stdout and "rows/s" in result.stdout


BYTE_PAIRS = [
    ("sqlite", "postgresql"),  # COPY text
    ("postgresql", "postgresql"),  # binary COPY piped
    ("sqlite", "mariadb"),  # multi-row INSERTs
    ("postgresql", "sqlite"),  # pages written
]


@pytest.mark.parametrize(("src", "dst"), BYTE_PAIRS, ids=[f"{s}-to-{t}" for s, t in BYTE_PAIRS])
def test_json_carries_the_bytes_each_table_moved(chinook_url, make_db, src, dst):
    source = chinook_url(src)
    first = clone_json(source, make_db(dst))
    # The same data moves the same bytes, one table at a time or several at once.
    jobs = "2" if dst != "sqlite" else "1"
    again = clone_json(source, make_db(dst), "--jobs", jobs)
    sizes = {t["table"]: t["bytes"] for t in first["tables"]}
    assert all(n > 0 for n in sizes.values()), sizes
    assert {t["table"]: t["bytes"] for t in again["tables"]} == sizes
    assert first["bytes"] == sum(sizes.values()) == again["bytes"]


@pytest.mark.parametrize("dst", ["postgresql", "mariadb", "sqlite"])
def test_resume_keeps_full_tables_and_reloads_the_rest(make_db, dst):
    source = make_db("sqlite")
    make_torture(source, "sqlite")
    target = make_db(dst)
    clone_json(source, target)
    # As if interrupted: one table never created, one half loaded, keys of both missing.
    run_sql(target, "DROP TABLE vals", "DELETE FROM log WHERE n IS NULL")
    refused = rehost("clone", source, target)
    assert refused.exit_code == 1 and "not empty" in refused.output
    report = clone_json(source, target, "--resume")
    assert report["ok"] is True
    kept = {t["table"]: t["kept"] for t in report["tables"]}
    assert kept == {"child": True, "log": False, "parent": True, "vals": False}
    assert not [f for f in report["findings"] if f["severity"] == "error"]
    eng = engine(target)
    try:
        assert [i["name"] for i in sa.inspect(eng).get_indexes("vals")] == ["ix_vals_d"]
        with eng.begin() as conn:
            conn.exec_driver_sql("INSERT INTO parent (name) VALUES ('after resume')")
            assert conn.exec_driver_sql("SELECT max(id) FROM parent").scalar() == 8
    finally:
        eng.dispose()


def test_mariadb_counters_and_case_insensitive_text_keys(make_db):
    source = make_db("mariadb")
    run_sql(
        source,
        "CREATE TABLE tag (name VARCHAR(50) PRIMARY KEY, n INT) COLLATE utf8mb4_unicode_ci",
        "INSERT INTO tag VALUES ('b', 1), ('A', 2), ('c', 3), ('Z', 4), ('😀', 5)",
        "CREATE TABLE item (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(50),"
        " FOREIGN KEY (tag) REFERENCES tag (name))",
        "INSERT INTO item (tag) VALUES ('A'), ('b'), ('c'), (NULL)",
        "DELETE FROM item WHERE id >= 3",  # the counter stays at 5: IDs 3 and 4 are spent
    )
    for dst in ("postgresql", "sqlite"):
        target = make_db(dst)
        report = clone_json(source, target)
        assert report["ok"] is True
        codes = {(f["subject"], f["code"]) for f in report["findings"]}
        assert ("item.id", "clone-type-narrowed") in codes  # BIGINT UNSIGNED → BIGINT
        with engine(target).begin() as conn:
            conn.exec_driver_sql("INSERT INTO item (tag) VALUES ('c')")
            assert conn.exec_driver_sql("SELECT max(id) FROM item").scalar() == 5


def test_sqlite_column_level_unique_and_check_and_untyped_column(make_db):
    """The shape Django gives SQLite tables: constraints written on the columns."""
    source = make_db("sqlite")
    run_sql(
        source,
        "CREATE TABLE auth_user (id integer NOT NULL PRIMARY KEY AUTOINCREMENT,"
        " username varchar(150) NOT NULL UNIQUE, age smallint unsigned NULL CHECK (age >= 0),"
        " note text CHECK (note <> ')'), anything)",
        "INSERT INTO auth_user VALUES (1, 'bob', 30, 'x', 'any'), (5, 'ann', NULL, NULL, 42)",
        "DELETE FROM auth_user WHERE id = 5",
    )
    for dst in ("postgresql", "mariadb"):
        target = make_db(dst)
        blocked = json.loads(rehost("clone", source, target, "--json").stdout)
        assert [f["subject"] for f in blocked["findings"]] == ["auth_user.anything"]
        assert clone_json(source, target, "--map-type", "untyped=TEXT")["ok"] is True
        eng = engine(target)
        try:
            insp = sa.inspect(eng)
            assert [u["column_names"] for u in insp.get_unique_constraints("auth_user")] == [
                ["username"]
            ]
            assert len(insp.get_check_constraints("auth_user")) == 2
            with eng.begin() as conn:  # ID 5 was handed out before: the next one is 6
                conn.exec_driver_sql("INSERT INTO auth_user (username) VALUES ('cy')")
                assert conn.exec_driver_sql("SELECT max(id) FROM auth_user").scalar() == 6
            with pytest.raises(sa.exc.DBAPIError), eng.begin() as conn:
                conn.exec_driver_sql("INSERT INTO auth_user (username) VALUES ('bob')")
        finally:
            eng.dispose()


# ----------------------------------------------------------------------- --jobs

JOB_PAIRS = [
    ("sqlite", "postgresql"),
    ("postgresql", "postgresql"),
    ("mariadb", "postgresql"),
    ("postgresql", "mariadb"),
]


@pytest.mark.parametrize(("src", "dst"), JOB_PAIRS, ids=[f"{s}-to-{t}" for s, t in JOB_PAIRS])
def test_jobs_clone_chinook_and_torture_with_verify(chinook_url, make_db, src, dst):
    report = clone_json(chinook_url(src), make_db(dst), "--jobs", "3")
    assert report["ok"] is True and report["rows"] == CHINOOK_ROWS
    notes = [f for f in report["findings"] if f["code"] == "clone-jobs"]
    assert len(notes) == (1 if src == "mariadb" else 0)  # MariaDB reads in one snapshot
    source = make_db(src)
    make_torture(source, src)
    target = make_db(dst)
    report = clone_json(source, target, "--jobs", "3")
    assert report["ok"] is True, report
    assert {t["table"]: t["rows"] for t in report["tables"]} == {
        "parent": 3,
        "child": 3,
        "vals": 3,
        "log": 3,
    }
    with engine(target).begin() as conn:
        conn.exec_driver_sql("INSERT INTO parent (name) VALUES ('new')")
        assert conn.exec_driver_sql("SELECT id FROM parent WHERE name = 'new'").scalar() == 8


def test_jobs_into_sqlite_use_one_writer_and_resume_works(make_db):
    source = make_db("postgresql")
    make_torture(source, "postgresql")
    target = make_db("sqlite")
    report = clone_json(source, target, "--jobs", "3")
    assert report["ok"] is True
    assert [f for f in report["findings"] if f["code"] == "clone-jobs"]
    # Resume with jobs (into PostgreSQL: really parallel).
    pg = make_db("postgresql")
    clone_json(source, pg)
    run_sql(pg, "DROP TABLE vals", "DELETE FROM log WHERE n IS NULL")
    report = clone_json(source, pg, "--resume", "--jobs", "2")
    assert report["ok"] is True
    kept = {t["table"]: t["kept"] for t in report["tables"]}
    assert kept == {"child": True, "log": False, "parent": True, "vals": False}


def test_postgres_workers_share_the_exported_snapshot(make_db, monkeypatch):
    from rehost.clone import io, run

    source = make_db("postgresql")
    make_torture(source, "postgresql")
    target = make_db("postgresql")
    joined: list[str] = []

    def join_late(engine, snapshot):
        # Another session commits new rows after the export, before the worker starts.
        run_sql(source, f"INSERT INTO log (msg, n) VALUES ('late {len(joined)}', 9)")
        joined.append(snapshot)
        return io.join_snapshot(engine, snapshot)

    monkeypatch.setattr(run, "join_snapshot", join_late)
    report = clone_json(source, target, "--jobs", "2")
    assert report["ok"] is True, report  # verify reads the same snapshot
    assert 1 <= len(joined) <= 2 and len(set(joined)) == 1 and joined[0]
    with engine(target).begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM log").scalar() == 3
    with engine(source).begin() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM log").scalar() == 3 + len(joined)


def test_copy_out_reads_rows_and_leaves_the_connection_usable_when_stopped(make_db):
    import psycopg

    from rehost.clone.io import copy_out

    url = make_db("postgresql")
    run_sql(url, "CREATE TABLE t (id int)", "INSERT INTO t SELECT generate_series(1, 1000)")
    eng = engine(url)
    try:
        with eng.connect() as conn:
            raw = conn.connection.dbapi_connection
            rows = [bytes(r) for r in copy_out(raw, "COPY t TO STDOUT")]
            assert len(rows) == 1000 and rows[0] == b"1\n"
            with pytest.raises(psycopg.Error, match="nope"):
                list(copy_out(raw, "COPY nope TO STDOUT"))
            raw.rollback()
            stopped = copy_out(raw, "COPY (SELECT * FROM t, t AS u) TO STDOUT")
            assert next(stopped).tobytes().count(b"\t") == 1
            stopped.close()  # cancels the COPY
            raw.rollback()
            assert raw.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    finally:
        eng.dispose()
