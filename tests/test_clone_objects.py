"""rehost clone and the source's views, triggers and routines, on real servers.

Same engine they are recreated after the rows (so triggers never fire during
the load) and work on the target; across engines they stop the clone before
anything is written, unless --skip-objects leaves them out.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import engines
from tests.test_clone import clone_json, engine, rehost, run_sql

TABLES = {
    "sqlite": [
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, shout TEXT)",
        "CREATE TABLE tag (id INTEGER PRIMARY KEY, item_id INTEGER REFERENCES item (id))",
    ],
    "postgresql": [
        "CREATE TABLE item (id integer PRIMARY KEY, name text NOT NULL, shout text)",
        "CREATE TABLE tag (id integer PRIMARY KEY, item_id integer REFERENCES item (id))",
    ],
    "mariadb": [
        "CREATE TABLE item (id int PRIMARY KEY, name varchar(40) NOT NULL, shout varchar(40))",
        "CREATE TABLE tag (id int PRIMARY KEY, item_id int REFERENCES item (id))",
    ],
}
# A trigger that fills item.shout, a view, a view on that view and one on that
# (all_long: MariaDB lists views by name, so it comes first and must wait for
# the others), routines (PostgreSQL and MariaDB) and a view on tag (left out
# with --exclude tag).
OBJECTS = {
    "sqlite": [
        "CREATE TRIGGER item_shout AFTER INSERT ON item BEGIN"
        " UPDATE item SET shout = upper(new.name) WHERE id = new.id; END",
        "CREATE VIEW item_names AS SELECT id, name FROM item",
        "CREATE VIEW long_names AS SELECT name FROM item_names WHERE length(name) > 3",
        "CREATE VIEW tagged AS SELECT item_id FROM tag",
        "CREATE VIEW all_long AS SELECT * FROM long_names",
        "CREATE TRIGGER tag_check BEFORE INSERT ON tag BEGIN SELECT 1; END",
    ],
    "postgresql": [
        "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN NEW.shout := upper(NEW.name); RETURN NEW; END $$",
        "CREATE TRIGGER item_shout BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION shout()",
        "CREATE FUNCTION twice(x integer) RETURNS integer LANGUAGE sql AS $$ SELECT 2 * x $$",
        "CREATE VIEW item_names AS SELECT id, name FROM item",
        "CREATE VIEW long_names AS SELECT name FROM item_names WHERE length(name) > 3",
        "CREATE VIEW tagged AS SELECT item_id FROM tag",
        "CREATE VIEW all_long AS SELECT * FROM long_names",
        "CREATE MATERIALIZED VIEW item_count AS SELECT count(*) AS n FROM item",
        # A SQL function on a view (created before the views on the target), and a
        # sequence no column owns, already used on the source.
        "CREATE FUNCTION long_count() RETURNS bigint LANGUAGE sql"
        " AS $$ SELECT count(*) FROM long_names $$",
        "CREATE SEQUENCE ticket START 100",
        "SELECT nextval('ticket')",
        "CREATE PROCEDURE add_item(n text) LANGUAGE sql"
        " AS $$ INSERT INTO item (id, name) VALUES (5, n) $$",
    ],
    "mariadb": [
        "CREATE TRIGGER item_shout BEFORE INSERT ON item FOR EACH ROW"
        " SET NEW.shout = upper(NEW.name)",
        "CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN 2 * x",
        "CREATE PROCEDURE add_item(n varchar(40)) INSERT INTO item (id, name) VALUES (5, n)",
        "CREATE EVENT nightly_purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM item WHERE id < 0",
        "CREATE VIEW item_names AS SELECT id, name FROM item",
        "CREATE VIEW long_names AS SELECT name FROM item_names WHERE char_length(name) > 3",
        "CREATE VIEW tagged AS SELECT item_id FROM tag",
        "CREATE VIEW all_long AS SELECT * FROM long_names",
    ],
}
# Rows go in with the trigger in place; item 2's shout is then changed by hand,
# so a trigger firing during the load would show as a difference.
ROWS = [
    "INSERT INTO item (id, name) VALUES (1, 'apple'), (2, 'fig'), (3, 'banana')",
    "UPDATE item SET shout = 'custom' WHERE id = 2",
    "INSERT INTO tag (id, item_id) VALUES (1, 1)",
]
CREATED = {
    "sqlite": {
        ("trigger", "item_shout"),
        ("view", "item_names"),
        ("view", "long_names"),
        ("view", "tagged"),
        ("view", "all_long"),
        ("trigger", "tag_check"),
    },
    "postgresql": {
        ("function", "shout()"),
        ("trigger", "item_shout"),
        ("function", "twice(x integer)"),
        ("view", "item_names"),
        ("view", "long_names"),
        ("view", "tagged"),
        ("view", "all_long"),
        ("materialized view", "item_count"),
        ("function", "long_count()"),
        ("sequence", "ticket"),
        ("procedure", "add_item(IN n text)"),
    },
    "mariadb": {
        ("trigger", "item_shout"),
        ("function", "twice"),
        ("procedure", "add_item"),
        ("event", "nightly_purge"),
        ("view", "item_names"),
        ("view", "long_names"),
        ("view", "tagged"),
        ("view", "all_long"),
    },
}


def rows(url: str, sql: str) -> list[tuple]:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql).fetchall()]
    finally:
        eng.dispose()


def table_names(url: str) -> list[str]:
    eng = engine(url)
    try:
        return sa.inspect(eng).get_table_names()
    finally:
        eng.dispose()


def source_db(make_db, kind: str) -> str:
    url = make_db(kind)
    run_sql(url, *TABLES[kind], *OBJECTS[kind], *ROWS)
    return url


def created(report: dict, status: str = "created") -> set[tuple[str, str]]:
    return {(o["kind"], o["name"]) for o in report["objects"] if o["status"] == status}


@pytest.mark.parametrize("kind", engines)
def test_same_engine_recreates_views_triggers_and_functions(make_db, kind):
    source, target = source_db(make_db, kind), make_db(kind)
    report = clone_json(source, target)
    assert report["ok"] is True
    assert created(report) == CREATED[kind]
    assert report["not_cloned"] == []
    # No trigger fired during the load: item 2 kept the value set by hand.
    assert rows(target, "SELECT id, shout FROM item ORDER BY id") == [
        (1, "APPLE"),
        (2, "custom"),
        (3, "BANANA"),
    ]
    # The view on a view returns what it returns on the source.
    query = "SELECT name FROM all_long ORDER BY name"
    assert rows(target, query) == rows(source, query) == [("apple",), ("banana",)]
    # The trigger works on the target.
    run_sql(target, "INSERT INTO item (id, name) VALUES (4, 'kiwi')")
    assert rows(target, "SELECT shout FROM item WHERE id = 4") == [("KIWI",)]
    if kind != "sqlite":
        assert rows(target, "SELECT twice(21)") == [(42,)]
        run_sql(target, "CALL add_item('plum')")
        assert rows(target, "SELECT shout FROM item WHERE id = 5") == [("PLUM",)]
    if kind == "postgresql":  # filled from the rows once they were in
        assert rows(target, "SELECT n FROM item_count") == [(3,)]
        assert rows(target, "SELECT long_count(), nextval('ticket')") == [
            (4, 101)
        ]  # kiwi and plum included


@pytest.mark.parametrize(
    ("src", "dst"), [("sqlite", "postgresql"), ("postgresql", "mariadb"), ("mariadb", "sqlite")]
)
def test_across_engines_objects_stop_the_clone_unless_skipped(make_db, src, dst):
    source, target = source_db(make_db, src), make_db(dst)
    refused = rehost("clone", source, target)
    assert refused.exit_code == 1
    assert "view long_names" in refused.output
    assert "trigger item_shout on item" in refused.output
    assert "--skip-objects" in refused.output
    assert table_names(target) == []

    partly = rehost("clone", source, target, "--skip-objects", "views", "--json")
    assert partly.exit_code == 1
    assert table_names(target) == []
    codes = {(f["code"], f["subject"]) for f in json.loads(partly.stdout)["findings"]}
    assert ("clone-object-engine", "trigger item_shout on item") in codes
    assert not any(subject.startswith("view ") for _, subject in codes)  # views are skipped

    report = clone_json(source, target, "--skip-objects", "views,triggers", "--skip-objects", "all")
    assert report["ok"] is True
    assert report["objects"] == []
    left = {(o["kind"], o["name"]) for o in report["not_cloned"]}
    assert left == CREATED[src]
    skipped = [f for f in report["findings"] if f["code"] == "clone-object-skipped"]
    assert len(skipped) == len(left)
    assert all(f["severity"] == "warning" for f in skipped)
    assert "recreate by hand on the target" in skipped[0]["message"]
    assert sorted(table_names(target)) == ["item", "tag"]
    # Verifying compares the tables; objects across engines are not compared.
    verified = clone_json(source, target, "--verify-only")
    assert verified["ok"] is True
    assert [f["code"] for f in verified["findings"]] == ["clone-objects-not-compared"]


def test_unknown_skip_objects_value_is_refused(make_db):
    source, target = source_db(make_db, "sqlite"), make_db("sqlite")
    result = rehost("clone", source, target, "--skip-objects", "views,tables")
    assert result.exit_code != 0
    assert "--skip-objects takes" in result.output
    assert table_names(target) == []


def test_sqlite_view_that_reads_on_neither_side_is_kept_as_it_is(make_db):
    source, target = source_db(make_db, "sqlite"), make_db("sqlite")
    # A function the application registers, unknown to rehost: fails on the source too.
    run_sql(source, "CREATE VIEW app_only AS SELECT app_slug(name) FROM item")
    report = clone_json(source, target)
    assert ("view", "app_only") in created(report)
    assert rows(target, "SELECT name FROM sqlite_master WHERE name = 'app_only'") == [("app_only",)]


def test_skip_objects_same_engine_leaves_triggers_out(make_db):
    source, target = source_db(make_db, "sqlite"), make_db("sqlite")
    report = clone_json(source, target, "--skip-objects", "triggers")
    assert {(o["kind"], o["name"]) for o in report["not_cloned"]} == {
        ("trigger", "item_shout"),
        ("trigger", "tag_check"),
    }
    assert created(report) == {k for k in CREATED["sqlite"] if k[0] == "view"}
    run_sql(target, "INSERT INTO item (id, name) VALUES (4, 'kiwi')")
    assert rows(target, "SELECT shout FROM item WHERE id = 4") == [(None,)]


@pytest.mark.parametrize("kind", engines)
def test_excluded_table_takes_its_trigger_and_its_views_are_warnings(make_db, kind):
    source, target = source_db(make_db, kind), make_db(kind)
    report = clone_json(source, target, "--exclude", "tag")
    assert report["ok"] is True
    assert ("view", "tagged") not in created(report)
    assert ("view", "long_names") in created(report)
    findings = {f["subject"]: f for f in report["findings"]}
    assert findings["view tagged"]["code"] == "clone-object-outside"
    assert findings["view tagged"]["severity"] == "warning"
    assert "tag" in findings["view tagged"]["message"]
    if kind == "sqlite":
        assert findings["trigger tag_check on tag"]["severity"] == "info"
    assert table_names(target) == ["item"]


@pytest.mark.parametrize("kind", engines)
def test_replace_drops_the_views_it_recreates(make_db, kind):
    source, target = source_db(make_db, kind), make_db(kind)
    clone_json(source, target)
    run_sql(target, "INSERT INTO item (id, name) VALUES (9, 'extra')")
    refused = rehost("clone", source, target)
    assert refused.exit_code == 1
    report = clone_json(source, target, "--replace")
    assert report["ok"] is True
    assert created(report) == CREATED[kind]
    assert rows(target, "SELECT count(*) FROM item_names") == [(3,)]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_verify_only_notices_a_dropped_view_and_resume_recreates_it(make_db, kind):
    source, target = source_db(make_db, kind), make_db(kind)
    clone_json(source, target)
    run_sql(target, "DROP VIEW all_long")
    result = rehost("clone", source, target, "--verify-only", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert all(t["verified"] for t in report["tables"])
    missing = [f for f in report["findings"] if f["code"] == "clone-object-missing"]
    assert [(f["severity"], f["subject"]) for f in missing] == [("error", "view all_long")]

    report = clone_json(source, target, "--resume")
    assert created(report) == {("view", "all_long")}
    assert created(report, "kept") == CREATED[kind] - {("view", "all_long")}
    again = clone_json(source, target, "--verify-only")
    assert again["ok"] is True
    assert created(again, "present") == CREATED[kind]
