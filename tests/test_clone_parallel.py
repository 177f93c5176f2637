"""rehost clone --jobs: a big table copied in parts, keys and verification on the workers."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from rehost.clone import io, run
from rehost.clone.schedule import Task, conflicts, first_free, run_tasks
from tests.test_clone import clone_json, engine, rehost, run_sql

# ------------------------------------------------------------------ the schedule


def test_lock_modes_follow_postgresql():
    # Index builds share a table; a foreign key excludes them; reads pass all but ALTER.
    assert not conflicts([{"t": "share"}], {"t": "share"})
    assert conflicts([{"t": "share"}], {"t": "write"})
    assert conflicts([{"t": "write"}], {"t": "write"})
    assert not conflicts([{"t": "write"}], {"t": "read"})
    assert conflicts([{"t": "excl"}], {"t": "read"})
    assert not conflicts([{"t": "copy"}], {"t": "copy"})
    assert not conflicts([{"a": "excl"}], {"b": "excl"})


def test_first_free_skips_what_would_block():
    a = Task("a", lambda: None, locks={"t": "excl"})
    c = Task("c", lambda: None, locks={"t": "read"}, priority=(2,))
    d = Task("d", lambda: None, locks={"u": "share"}, priority=(3,))
    assert first_free([c, d], [a]) is d  # c waits for a's lock
    assert first_free([c, d], []) is c


def test_run_tasks_keeps_dependencies_and_locks_and_raises_the_first_failure():
    log: list[str] = []
    busy: dict[str, int] = {}
    guard = threading.Lock()

    def step(name: str, table: str) -> str:
        with guard:
            assert not busy.get(table), f"{name} ran while {table} was locked"
            busy[table] = 1
            log.append(f"+{name}")
        time.sleep(0.02)
        with guard:
            busy[table] = 0
            log.append(f"-{name}")
        return name

    tasks = [
        Task("copy a", lambda: step("copy a", "a"), locks={"a": "excl"}, priority=(0,)),
        Task("copy b", lambda: step("copy b", "b"), locks={"b": "excl"}, priority=(0,)),
        Task("pk a", lambda: step("pk a", "a"), {"copy a"}, {"a": "excl"}, (1,)),
        Task("pk b", lambda: step("pk b", "b"), {"copy b"}, {"b": "excl"}, (1,)),
        Task("fk", lambda: step("fk", "a"), {"pk a", "pk b"}, {"a": "write", "b": "write"}, (2,)),
    ]
    done: list[str] = []
    idle: list[int] = []
    run_tasks(tasks, 3, lambda t, v: done.append(v), idle=lambda: idle.append(1))
    assert sorted(done) == sorted(t.key for t in tasks) and idle == [1]
    assert log.index("+fk") > max(log.index("-pk a"), log.index("-pk b"))
    assert log.index("+pk a") > log.index("-copy a")

    def boom() -> None:
        raise RuntimeError("copy failed")

    later: list[str] = []
    failing = [
        Task("x", boom, priority=(0,)),
        Task("y", lambda: later.append("y"), {"x"}),
    ]
    with pytest.raises(RuntimeError, match="copy failed"):
        run_tasks(failing, 2)
    assert later == []  # what depended on the failed task never ran
    with pytest.raises(ValueError, match="unknown"):
        run_tasks([Task("z", lambda: None, {"nope"})], 1)
    with pytest.raises(ValueError, match="wait on each other"):
        run_tasks([Task("p", lambda: None, {"q"}), Task("q", lambda: None, {"p"})], 1)


def test_run_tasks_schedules_thousands_of_tables_without_rescanning():
    """Copy, key, then a foreign key to the previous table, for 3,000 tables."""
    order: list[str] = []
    tasks = []
    for i in range(3000):
        tasks.append(Task(f"copy {i}", lambda i=i: order.append(f"copy {i}"), priority=(0, i)))
        tasks.append(Task(f"key {i}", lambda: None, {f"copy {i}"}, {str(i): "excl"}, (1, i)))
        if i:
            after = {f"key {i}", f"key {i - 1}"}
            locks = {str(i): "write", str(i - 1): "write"}
            tasks.append(Task(f"fk {i}", lambda: None, after, locks, (2, i)))
    ended: list[str] = []
    t0 = time.perf_counter()
    run_tasks(tasks, 2, lambda t, v: ended.append(t.key))
    assert time.perf_counter() - t0 < 60  # about a second; quadratic would take minutes
    assert len(ended) == len(tasks) and len(order) == 3000
    position = {k: i for i, k in enumerate(ended)}
    assert all(position[f"fk {i}"] > position[f"key {i - 1}"] for i in range(1, 3000))


def test_ctid_parts_cover_every_page_once():
    assert io.ctid_parts(10, 2) == ["ctid < '(5,0)'::tid", "ctid >= '(5,0)'::tid"]
    three = io.ctid_parts(100, 3)
    assert three[0] == "ctid < '(33,0)'::tid"
    assert three[1] == "ctid >= '(33,0)'::tid AND ctid < '(66,0)'::tid"
    assert three[2] == "ctid >= '(66,0)'::tid"  # open-ended: pages added later


# ------------------------------------------------------------- split copies, end to end


def make_big(url: str) -> None:
    """Two tables, one of many pages (rows moved about by updates and deletes), an FK."""
    run_sql(
        url,
        "CREATE TABLE kind (id int PRIMARY KEY, label text UNIQUE)",
        "INSERT INTO kind SELECT g, 'k' || g FROM generate_series(1, 5) g",
        "CREATE TABLE item (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " kind int NOT NULL REFERENCES kind (id), note text, at timestamptz)",
        "CREATE INDEX item_kind_at ON item (kind, at)",
        "INSERT INTO item (kind, note, at) SELECT 1 + mod(g, 5), repeat('x', mod(g, 300)),"
        " '2020-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 6000) g",
        "DELETE FROM item WHERE mod(id, 7) = 0",
        "UPDATE item SET note = 'moved' WHERE mod(id, 11) = 0",  # new versions on later pages
        "ANALYZE item",
    )


def fingerprint(url: str) -> tuple:
    eng = engine(url)
    try:
        with eng.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM item t"
            ).one()
            keys = sorted(
                conn.exec_driver_sql(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE connamespace = 'public'::regnamespace"
                ).all()
            )
            indexes = sorted(
                conn.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
                ).all()
            )
        return tuple(rows), keys, indexes
    finally:
        eng.dispose()


def test_big_table_split_over_workers_gives_identical_data(make_db, monkeypatch):
    source = make_db("postgresql")
    make_big(source)
    target = make_db("postgresql")
    parts: list[str | None] = []
    pipe = run.pipe_postgres

    def spy(*args, **kwargs):
        parts.append(kwargs.get("where"))
        return pipe(*args, **kwargs)

    monkeypatch.setattr(run, "SPLIT_MIN_PAGES", 1)
    monkeypatch.setattr(run, "pipe_postgres", spy)
    report = clone_json(source, target, "--jobs", "3")
    assert report["ok"] is True, report
    split = [w for w in parts if w and "ctid" in w]
    assert len(split) == 3, parts  # item in three parts (kind is too small to split)
    rows = {t["table"]: t["rows"] for t in report["tables"]}
    assert rows == {"kind": 5, "item": 6000 - 6000 // 7}
    assert all(t["verify"]["ok"] for t in report["tables"])
    assert fingerprint(target) == fingerprint(source)
    with engine(target).begin() as conn:  # the identity continues after the highest ID
        new = conn.exec_driver_sql("INSERT INTO item (kind) VALUES (1) RETURNING id").scalar()
        assert new == 6001


def test_resume_after_a_split_copy_was_killed(make_db, monkeypatch):
    source = make_db("postgresql")
    make_big(source)
    target = make_db("postgresql")
    monkeypatch.setattr(run, "SPLIT_MIN_PAGES", 1)
    pipe = run.pipe_postgres
    first_done = threading.Event()

    def killed(*args, **kwargs):
        where = kwargs.get("where") or ""
        if where.startswith("ctid >="):  # a later part dies once the first is committed
            first_done.wait(30)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        try:
            return pipe(*args, **kwargs)
        finally:
            if where.startswith("ctid <"):
                first_done.set()

    monkeypatch.setattr(run, "pipe_postgres", killed)
    failed = rehost("clone", source, target, "--jobs", "2")
    assert failed.exit_code == 1 and "refused rows of table item" in failed.output
    with engine(target).begin() as conn:
        partial = conn.exec_driver_sql("SELECT count(*) FROM item").scalar()
    assert 0 < partial < 6000 - 6000 // 7  # the first part stayed, committed

    monkeypatch.setattr(run, "pipe_postgres", pipe)
    report = clone_json(source, target, "--resume", "--jobs", "2")
    assert report["ok"] is True, report
    item = next(t for t in report["tables"] if t["table"] == "item")
    assert item["kept"] is False and item["rows"] == 6000 - 6000 // 7
    assert fingerprint(target) == fingerprint(source)


def test_parallel_keys_report_a_foreign_key_the_rows_break(make_db):
    """A refused key on a worker is a finding naming the table; the rest still runs."""
    source = make_db("postgresql")
    run_sql(
        source,
        "CREATE TABLE parent (id int PRIMARY KEY)",
        "CREATE TABLE child (id int PRIMARY KEY, parent int)",
        "INSERT INTO parent VALUES (1)",
        "INSERT INTO child VALUES (1, 1), (2, 99)",
        "ALTER TABLE child ADD CONSTRAINT child_parent_fkey FOREIGN KEY (parent)"
        " REFERENCES parent (id) NOT VALID",
    )
    target = make_db("postgresql")
    result = rehost("clone", source, target, "--jobs", "2", "--json")
    assert result.exit_code == 1
    report = __import__("json").loads(result.stdout)
    refused = [f for f in report["findings"] if f["code"] == "clone-constraint-failed"]
    assert [f["subject"] for f in refused] == ["child"]
    assert "child_parent_fkey" in refused[0]["message"]
    assert all(t["verify"]["ok"] for t in report["tables"])  # the rows themselves are equal
    eng = engine(target)
    try:
        with eng.connect() as conn:
            keys = {r[0] for r in conn.exec_driver_sql("SELECT conname FROM pg_constraint")}
        assert {"parent_pkey", "child_pkey"} <= keys and "child_parent_fkey" not in keys
    finally:
        eng.dispose()
