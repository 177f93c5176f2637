"""RH105: the target user lacks privileges a move needs (PostgreSQL, MariaDB), found by the
checks before anything is written."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.test_clone import run_sql
from tests.test_migrate_cli import _clone_plan, _edit, js, ok, rehost_cli


@pytest.fixture
def pg_target(make_db) -> Iterator[tuple[str, str]]:
    """(admin URL, URL of a new role without privileges) on one new database."""
    admin = make_db("postgresql")
    role = "rh_user_" + secrets.token_hex(4)
    run_sql(admin, f"CREATE ROLE {role} LOGIN")
    yield admin, make_url(admin).set(username=role).render_as_string(hide_password=False)
    run_sql(admin, f"DROP OWNED BY {role}")  # its grants in this database
    run_sql(admin, f"DROP ROLE {role}")


def _rh105(plan: Path) -> list[dict]:
    result = rehost_cli("check", "--plan", str(plan), "--json")
    assert result.stdout, result.output
    found = [f for f in json.loads(result.stdout)["findings"] if f["code"] == "RH105"]
    assert result.exit_code == (1 if found else 0), result.stdout
    return found


def test_bundle_target_user_without_privileges(tmp_path, pg_target):
    admin, user = pg_target
    ok("init", "--demo", str(tmp_path))
    ok("clone", f"sqlite:///{tmp_path / 'target.db'}", admin)  # the tables belong to the admin
    plan = tmp_path / "rehost.yaml"
    _edit(plan, 'app: {url: "sqlite:///target.db"}', f'app: {{url: "{user}"}}')
    found = _rh105(plan)
    messages = " ".join(f["message"] for f in found)
    assert "may not create tables in schema public (for the ledger table" in messages
    assert "lacks privileges the import needs: DELETE, INSERT, SELECT, UPDATE on" in messages
    assert ", projects," in messages
    assert all(f["subject"] == "new.app" for f in found)

    role = make_url(user).username
    run_sql(admin, f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    create, sequences = (f["message"] for f in _rh105(plan))
    assert "may not create tables" in create  # for the ledger's table
    # the clone made identity columns: inserts need their sequences
    assert "needs: USAGE on the ID sequences of " in sequences and "projects" in sequences
    _edit(plan, "    on_conflict: overwrite\n", "    on_conflict: overwrite\n    ledger: false\n")
    assert [f["message"] for f in _rh105(plan)] == [sequences]
    run_sql(admin, f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}")
    assert _rh105(plan) == []


def test_clone_target_user_may_not_create_tables(tmp_path, pg_target):
    admin, user = pg_target
    ok("init", "--demo", str(tmp_path))
    plan = tmp_path / "rehost.yaml"
    _clone_plan(plan, user)
    [found] = _rh105(plan)
    assert "may not create tables in schema public (to clone into)" in found["message"]
    run_sql(admin, f"GRANT CREATE ON SCHEMA public TO {make_url(user).username}")
    assert _rh105(plan) == []


# ------------------------------------------------------------------------- MariaDB


MariaUser = tuple[str, str, Callable[[str], None]]


@pytest.fixture
def maria_target(make_db) -> Iterator[MariaUser]:
    yield from maria_user(make_db)


def maria_user(make_db) -> Iterator[MariaUser]:
    """(admin URL, URL of a new user without privileges, grant(PRIVILEGES ON WHAT)) on one
    new database; the user exists for '%' and 'localhost' (a server that resolves
    127.0.0.1 to localhost matches the latter) with the same grants."""
    admin = make_db("mariadb")
    user, password = "rh_t_" + secrets.token_hex(4), secrets.token_hex(8)
    hosts = (f"'{user}'@'%%'", f"'{user}'@'localhost'")  # %% for the driver's formatting
    run_sql(admin, *(f"CREATE USER {h} IDENTIFIED BY '{password}'" for h in hosts))

    def grant(what: str) -> None:
        run_sql(admin, *(f"GRANT {what} TO {h}" for h in hosts))

    try:
        url = make_url(admin).set(username=user, password=password)
        yield admin, url.render_as_string(hide_password=False), grant
    finally:
        run_sql(admin, *(f"DROP USER IF EXISTS {h}" for h in hosts))


def test_mariadb_bundle_target_user_without_privileges(tmp_path, maria_target):
    admin, user, grant = maria_target
    db = make_url(admin).database
    ok("init", "--demo", str(tmp_path))
    ok("clone", f"sqlite:///{tmp_path / 'target.db'}", admin)
    plan = tmp_path / "rehost.yaml"
    _edit(plan, 'app: {url: "sqlite:///target.db"}', f'app: {{url: "{user}"}}')
    grant(f"SELECT ON `{db}`.*")  # without any privilege on it, no connecting to it
    create, tables = (f["message"] for f in _rh105(plan))
    assert f"may not create tables in database {db} (for the ledger table" in create
    assert "lacks privileges the import needs: INSERT, UPDATE, DELETE on " in tables
    assert ", projects, rehost_ledger," in tables

    grant(f"INSERT ON `{db}`.*")
    grant(f"UPDATE, DELETE ON `{db}`.`projects`")  # one table's grant
    [create, tables] = (f["message"] for f in _rh105(plan))
    assert "UPDATE, DELETE on " in tables and "projects" not in tables
    grant(f"UPDATE, DELETE ON `{db}`.*")
    [found] = _rh105(plan)
    assert "may not create tables" in found["message"]  # the ledger's table only
    _edit(plan, "    on_conflict: overwrite\n", "    on_conflict: overwrite\n    ledger: false\n")
    assert _rh105(plan) == []
    _edit(plan, "    ledger: false\n", "")
    grant(f"CREATE ON `{db}`.`rehost_ledger`")
    assert _rh105(plan) == []


def test_mariadb_clone_target_user_privileges_one_by_one(tmp_path, maria_target):
    admin, user, grant = maria_target
    db = make_url(admin).database
    ok("init", "--demo", str(tmp_path))
    plan = tmp_path / "rehost.yaml"
    _clone_plan(plan, user)
    grant(f"SELECT ON `{db}`.*")  # without any privilege on it, no connecting to it
    [found] = _rh105(plan)
    assert found["message"].endswith(
        f"lacks privileges on database {db} the clone needs: CREATE, DROP, ALTER, INDEX, INSERT."
    )
    grant(f"CREATE, DROP ON `{db}`.*")
    [found] = _rh105(plan)
    assert found["message"].endswith("the clone needs: ALTER, INDEX, INSERT.")
    grant(f"ALTER, INDEX, INSERT ON `{db}`.*")
    assert _rh105(plan) == []
    # and these are enough: the clone runs as that user
    assert js("run", "--plan", str(plan))["status"] in ("succeeded", "incomplete")
