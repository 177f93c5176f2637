"""The demo application's databases: schema shape, data integrity, secrets, determinism."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken

from rehost import demo_app
from rehost.profile.model import parse_profile

TABLES = {
    "alembic_version",
    "users",
    "teams",
    "team_members",
    "environments",
    "projects",
    "steps",
    "step_environments",
    "variable_sets",
    "variables",
    "api_keys",
    "deployments",
    "sessions",
}


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return demo_app.generate_key(), demo_app.generate_key()


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory, keys: tuple[str, str]) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("demo")
    source, target = d / "source.db", d / "target.db"
    demo_app.create_source(source, keys[0])
    demo_app.create_target(target, keys[1])
    return source, target


def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def src(dbs: tuple[Path, Path]) -> Iterator[sqlite3.Connection]:
    yield from _connect(dbs[0])


@pytest.fixture
def tgt(dbs: tuple[Path, Path]) -> Iterator[sqlite3.Connection]:
    yield from _connect(dbs[1])


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _column(conn: sqlite3.Connection, sql: str) -> set[Any]:
    return {r[0] for r in conn.execute(sql).fetchall()}


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in sorted(_tables(conn))
        }
    finally:
        conn.close()


def _fks(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, str]]:
    """(from column, referenced table, on delete) for each foreign key, in declaration order."""
    rows = conn.execute(f"PRAGMA foreign_key_list({table})").fetchall()
    # id, seq, table, from, to, on_update, on_delete, match; ids count down from the last declared
    return [(r[3], r[2], r[6]) for r in sorted(rows, key=lambda r: -r[0])]


def test_both_have_every_table(src: sqlite3.Connection, tgt: sqlite3.Connection) -> None:
    assert _tables(src) == TABLES
    assert _tables(tgt) == TABLES


@pytest.mark.parametrize(
    ("table", "at_least"),
    [
        ("users", 8),
        ("teams", 3),
        ("team_members", 8),
        ("environments", 4),
        ("projects", 4),
        ("steps", 12),
        ("step_environments", 4),
        ("variable_sets", 3),
        ("variables", 9),
        ("api_keys", 3),
        ("deployments", 18),
        ("sessions", 2),
        ("alembic_version", 1),
    ],
)
def test_source_row_counts(src: sqlite3.Connection, table: str, at_least: int) -> None:
    assert _count(src, table) >= at_least


def test_target_row_counts(tgt: sqlite3.Connection) -> None:
    for table in (
        "users",
        "teams",
        "team_members",
        "projects",
        "steps",
        "variables",
        "deployments",
    ):
        assert _count(tgt, table) >= 2, table


def test_source_content(src: sqlite3.Connection) -> None:
    assert _column(src, "SELECT name FROM projects") == {
        "web-app",
        "api",
        "billing",
        "data-pipeline",
    }
    assert _column(src, "SELECT name FROM teams") == {"Platform", "Web", "Data"}
    assert _column(src, "SELECT name FROM environments") == {
        "Development",
        "Test",
        "Staging",
        "Production",
    }
    steps_per_project = src.execute("SELECT count(*) FROM steps GROUP BY project_id").fetchall()
    assert all(3 <= n <= 6 for (n,) in steps_per_project) and len(steps_per_project) == 4
    vars_per_set = src.execute("SELECT count(*) FROM variables GROUP BY variable_set_id").fetchall()
    assert all(3 <= n <= 5 for (n,) in vars_per_set) and len(vars_per_set) == 3
    # Every user has a default team; everyone but the top has a manager.
    assert _count(src, "users WHERE default_team_id IS NULL") == 0
    assert _count(src, "users WHERE manager_id IS NULL") == 1


@pytest.mark.parametrize("which", [0, 1])
def test_foreign_keys_hold(dbs: tuple[Path, Path], which: int) -> None:
    for conn in _connect(dbs[which]):
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_version_is_the_same(src: sqlite3.Connection, tgt: sqlite3.Connection) -> None:
    sql = "SELECT version_num FROM alembic_version"
    assert _column(src, sql) == _column(tgt, sql) == {demo_app.ALEMBIC_VERSION}
    assert demo_app.ALEMBIC_VERSION == "3f9a1c2b7d10"


def test_schema_has_cycle_self_reference_and_ownership(src: sqlite3.Connection) -> None:
    users, teams = _fks(src, "users"), _fks(src, "teams")
    assert ("manager_id", "users", "NO ACTION") in users  # self-reference
    assert ("default_team_id", "teams", "NO ACTION") in users  # users -> teams ...
    assert ("lead_user_id", "users", "NO ACTION") in teams  # ... -> users: a cycle
    # team_members cascades from both parents; teams is declared first (the owner).
    assert _fks(src, "team_members") == [
        ("team_id", "teams", "CASCADE"),
        ("user_id", "users", "CASCADE"),
    ]
    assert _fks(src, "steps") == [("project_id", "projects", "CASCADE")]
    assert _fks(src, "step_environments") == [
        ("step_id", "steps", "CASCADE"),
        ("environment_id", "environments", "NO ACTION"),
    ]
    assert ("variable_set_id", "variable_sets", "CASCADE") in _fks(src, "variables")
    assert ("user_id", "users", "CASCADE") in _fks(src, "api_keys")
    # Deployments are history: referenced, not owned.
    assert all(on_delete == "NO ACTION" for _, _, on_delete in _fks(src, "deployments"))


def test_natural_keys_are_unique_constraints(src: sqlite3.Connection) -> None:
    def uniques(table: str) -> set[tuple[str, ...]]:
        out = set()
        for _, name, unique, _origin, _partial in src.execute(f"PRAGMA index_list({table})"):
            if unique:
                cols = src.execute(f"PRAGMA index_info({name})").fetchall()
                out.add(tuple(c[2] for c in cols))
        return out

    assert ("username",) in uniques("users")
    assert ("team_id", "user_id") in uniques("team_members")
    assert ("project_id", "position") in uniques("steps")
    assert ("variable_set_id", "name", "scope") in uniques("variables")
    assert ("user_id", "label") in uniques("api_keys")
    assert ("project_id", "environment_id", "release_version") in uniques("deployments")


@pytest.mark.parametrize("which", [0, 1])
def test_sensitive_values_are_encrypted_with_the_servers_key(
    dbs: tuple[Path, Path], keys: tuple[str, str], which: int
) -> None:
    for conn in _connect(dbs[which]):
        rows = conn.execute(
            "SELECT name, value, is_sensitive, secret_value FROM variables"
        ).fetchall()
    sensitive = [r for r in rows if r[2]]
    plain = [r for r in rows if not r[2]]
    assert len(sensitive) >= 2 and plain
    own, other = Fernet(keys[which]), Fernet(keys[1 - which])
    for name, value, _, token in sensitive:
        assert value is None, name
        assert token.startswith("gAAAAA")  # a Fernet token, not plaintext
        secret = own.decrypt(token).decode()
        assert secret and secret not in token
        with pytest.raises(InvalidToken):
            other.decrypt(token)
    for name, value, _, token in plain:
        assert token is None and value is not None, name


def test_known_secret_decrypts(src: sqlite3.Connection, keys: tuple[str, str]) -> None:
    token = src.execute(
        "SELECT secret_value FROM variables WHERE name = 'DatabasePassword' AND scope = 'Production'"
    ).fetchone()[0]
    assert Fernet(keys[0]).decrypt(token) == b"prod-Xk9#mQ2v!Lw8"


def test_variable_scope_matches_environment(src: sqlite3.Connection) -> None:
    rows = src.execute(
        "SELECT v.scope, e.name FROM variables v LEFT JOIN environments e ON e.id = v.environment_id"
    ).fetchall()
    for scope, env_name in rows:
        assert scope == (env_name or "")


def test_create_source_is_deterministic(tmp_path: Path) -> None:
    key = demo_app.generate_key()
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    demo_app.create_source(a, key)
    demo_app.create_source(b, key)
    assert _dump(a) == _dump(b)
    c, d = tmp_path / "c.db", tmp_path / "d.db"
    demo_app.create_target(c, key)
    demo_app.create_target(d, key)
    assert _dump(c) == _dump(d)


def test_names_overlap_under_other_ids(src: sqlite3.Connection, tgt: sqlite3.Connection) -> None:
    def ids(conn: sqlite3.Connection, table: str, column: str) -> dict[str, int]:
        return dict(conn.execute(f"SELECT {column}, id FROM {table}").fetchall())

    for table, column, shared in [
        ("users", "username", {"alice", "bob"}),
        ("teams", "name", {"Platform"}),
        ("environments", "name", {"Development", "Production"}),
        ("projects", "name", {"api"}),
        ("variable_sets", "name", {"API Settings"}),
    ]:
        s, t = ids(src, table, column), ids(tgt, table, column)
        assert set(s) & set(t) == shared, table
        if table != "environments":
            assert set(t) - set(s), f"target {table} should also hold names of its own"
        for name in shared:
            assert s[name] != t[name], (table, name)
    # The same username, another person's details.
    sql = "SELECT display_name FROM users WHERE username = 'alice'"
    assert src.execute(sql).fetchone() != tgt.execute(sql).fetchone()
    # The target's api has other steps.
    steps = "SELECT s.position, s.name FROM steps s JOIN projects p ON p.id = s.project_id WHERE p.name = 'api'"
    assert set(src.execute(steps).fetchall()) != set(tgt.execute(steps).fetchall())


def test_create_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "exists.db"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        demo_app.create_source(path, demo_app.generate_key())
    with pytest.raises(FileExistsError):
        demo_app.create_target(path, demo_app.generate_key())
    assert path.read_bytes() == b"keep me"


def test_profile_parses() -> None:
    profile = parse_profile(demo_app.DEMO_PROFILE_YAML, "demo profile")
    assert profile.exclude == ["sessions"]
    assert profile.entities["team_members"].merge == "union"
    assert profile.entities["variables"].secrets == ["secret_value"]
    assert profile.secrets.cipher == "fernet"
    assert profile.secrets.source_key == "env:DEMO_SOURCE_APP_KEY"
    assert profile.secrets.target_key == "env:DEMO_TARGET_APP_KEY"
    assert len(profile.manual_steps) == 2


def test_generate_key_is_a_fernet_key() -> None:
    key = demo_app.generate_key()
    assert isinstance(key, str)
    Fernet(key)
    assert key != demo_app.generate_key()


def test_rehost_infers_the_intended_model(dbs: tuple[Path, Path]) -> None:
    """What rehost sees through SQLAlchemy: cascades, owners and natural keys as designed."""
    from sqlalchemy import create_engine

    from rehost.db.schema import reflect
    from rehost.profile.resolve import resolve

    engine = create_engine(f"sqlite:///{dbs[0]}")
    try:
        model = resolve(reflect(engine), parse_profile(demo_app.DEMO_PROFILE_YAML))
    finally:
        engine.dispose()
    owners = {name: ent.owner for name, ent in model.entities.items()}
    assert owners == {
        "users": None,
        "teams": None,
        "team_members": "team_id",
        "environments": None,
        "projects": None,
        "steps": "project_id",
        "step_environments": "step_id",
        "variable_sets": None,
        "variables": "variable_set_id",
        "api_keys": "user_id",
        "deployments": None,
    }
    assert "sessions" in model.excluded and "sessions" not in model.entities
    keys = {name: ent.key for name, ent in model.entities.items()}
    assert keys["users"] == ("username",)
    assert keys["variables"] == ("variable_set_id", "name", "scope")
    assert keys["deployments"] == ("project_id", "environment_id", "release_version")
    assert model.entities["team_members"].merge == "union"
    assert set(model.entities["variables"].secrets) == {"secret_value"}
