"""The state store in PostgreSQL (a team's shared store): the plan's options.state or
--state; the same migration seen from another plan folder; no secret in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.test_migrate_cli import js, ok, rehost_cli


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    ok("init", "--demo", str(tmp_path / "alice"))
    return tmp_path / "alice" / "rehost.yaml"


def _state_text(url: str) -> str:
    """Everything the store's tables hold, as one text."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'rehost'"
            ).scalars()
            out = []
            for t in sorted(tables):
                rows = conn.exec_driver_sql(f'SELECT * FROM rehost."{t}"').fetchall()
                out += [repr(tuple(r)) for r in rows]
            return "\n".join(out)
    finally:
        engine.dispose()


def test_state_in_postgresql_shared_by_two_plan_folders(demo, make_db, monkeypatch, tmp_path):
    url = make_db("postgresql").replace("postgres@", "postgres:team-pw@")
    monkeypatch.setenv("REHOST_STATE_URL", url)
    text = demo.read_text().replace(
        "  state_dir: .rehost\n", "  state_dir: .rehost\n  state: env:REHOST_STATE_URL\n"
    )
    demo.write_text(text)
    assert js("run", "--plan", str(demo))["status"] == "incomplete"
    assert not (demo.parent / ".rehost" / "state.db").exists()
    st = js("status", "--plan", str(demo))
    assert st["state"].startswith("postgresql") and "team-pw" not in st["state"]

    # a teammate's copy of the plan, without options.state: --state names the store
    bob = tmp_path / "bob"
    bob.mkdir()
    (bob / "rehost.yaml").write_text(text.replace("  state: env:REHOST_STATE_URL\n", ""))
    theirs = js("status", "--plan", str(bob / "rehost.yaml"), "--state", url)
    assert theirs["status"] == "incomplete"
    assert theirs["phases"] == st["phases"]
    ok("ack", "manual-1", "--plan", str(bob / "rehost.yaml"), "--state", url)
    assert js("ack", "manual-2", "--plan", str(demo))["status"] == "succeeded"
    log = js("log", "--plan", str(bob / "rehost.yaml"), "--state", url)
    assert [e["kind"] for e in log].count("acknowledged") == 2
    assert not (bob / ".rehost" / "state.db").exists()

    stored = _state_text(url)
    assert "import:old.app>new.app" in stored
    for secret in ("team-pw", (demo.parent / "keys" / "bundle-password.txt").read_text().strip()):
        assert secret not in stored


def test_state_store_errors_are_clear(demo):
    bad = rehost_cli(
        "status", "--plan", str(demo), "--state", "postgresql://nobody:pw@127.0.0.1:1/x"
    )
    assert bad.exit_code == 2 and "Cannot open the state store" in bad.output
    assert "pw@" not in bad.output
    other = rehost_cli("status", "--plan", str(demo), "--state", "mysql://a@b/c")
    assert other.exit_code == 2 and "neither a postgresql:// URL nor a file" in other.output
    # a file elsewhere is an SQLite store
    assert js("status", "--plan", str(demo), "--state", "elsewhere.db")["status"] == "pending"
    assert (demo.parent / "elsewhere.db").exists()


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_one_run_at_a_time(demo, make_db, store):
    import rehost

    state = make_db("postgresql") if store == "postgresql" else None
    args = ["--plan", str(demo)] + (["--state", state] if state else [])
    with rehost.Migration(demo, state=state) as other, other.store.lock("run"):
        busy = rehost_cli("run", *args)
        assert busy.exit_code == 1 and "in progress elsewhere" in busy.output
        assert rehost_cli("cutover", "--force", "--reason", "x", *args).exit_code == 1
        assert js("run", "--dry-run", *args)["status"] == "preview"  # reads only
        assert js("status", *args)["status"] == "pending"
    assert js("run", *args)["status"] == "incomplete"
