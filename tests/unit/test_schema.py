"""Reflection details that differ between engines and drivers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rehost.db.connect import open_engine
from rehost.db.schema import reflect
from rehost.profile.model import Profile
from rehost.profile.resolve import resolve


def _db(tmp_path: Path, ddl: str) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(ddl)
    conn.close()
    return f"sqlite:///{path}"


def test_sqlite_column_level_on_delete_cascade_is_seen(tmp_path: Path) -> None:
    url = _db(
        tmp_path,
        """
        CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            UNIQUE (project_id, position)
        );
        """,
    )
    engine = open_engine(url)
    try:
        (fk,) = reflect(engine).tables["steps"].fks
        assert fk.ondelete == "CASCADE"
        model = resolve(reflect(engine), Profile())
        assert model.entities["steps"].owner == "project_id"
    finally:
        engine.dispose()


def test_foreign_keys_come_in_column_order(tmp_path: Path) -> None:
    url = _db(
        tmp_path,
        """
        CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE b (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE c (
            id INTEGER PRIMARY KEY,
            first_id INTEGER NOT NULL REFERENCES a(id) ON DELETE CASCADE,
            second_id INTEGER NOT NULL,
            FOREIGN KEY (second_id) REFERENCES b(id) ON DELETE CASCADE
        );
        """,
    )
    engine = open_engine(url)
    try:
        fks = reflect(engine).tables["c"].fks
        assert [fk.columns for fk in fks] == [("first_id",), ("second_id",)]
        assert [fk.ondelete for fk in fks] == ["CASCADE", "CASCADE"]
        assert resolve(reflect(engine), Profile()).entities["c"].owner == "first_id"
    finally:
        engine.dispose()
