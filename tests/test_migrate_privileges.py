"""RH105: the target user lacks privileges a move needs (PostgreSQL), found by the checks
before anything is written."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.test_clone import run_sql
from tests.test_migrate_cli import _clone_plan, _edit, ok, rehost_cli


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
