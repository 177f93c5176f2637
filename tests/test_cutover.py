"""Cutover: freeze, final delta, verify, switch, record; resume, refusal, rollback."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import rehost
from rehost.cli.migrate import _stage_summary
from rehost.migration import PlanError, parse_plan
from tests.test_clone import run_sql
from tests.test_migrate_cli import ENV, js, ok
from tests.test_migrate_cli import rehost_cli as cli
from tests.test_migrate_privileges import MariaUser, maria_user

CUTOVER = """
cutover:
  freeze:
    - {builtin: read_only, database: old.app}
    - {run: "echo frozen >> freezes.txt"}
  switch:
    - {run: "echo 'database: new.app' > app.conf && echo repointed", undo: "rm app.conf"}
"""


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    ok("init", "--demo", str(tmp_path))
    plan = tmp_path / "rehost.yaml"
    plan.write_text(plan.read_text() + CUTOVER)
    return plan


def _ran_and_acked(plan: Path) -> None:
    assert js("run", "--plan", str(plan))["status"] == "incomplete"
    ok("ack", "manual-1", "--plan", str(plan))
    ok("ack", "manual-2", "--plan", str(plan))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cutover_freeze_switch_status_rerun_rollback(demo: Path):
    plan, root = str(demo), demo.parent
    source = root / "source.db"
    refused = cli("cutover", "--plan", plan)
    assert refused.exit_code == 2 and "the migration is PENDING" in refused.output
    assert js("run", "--plan", plan)["status"] == "incomplete"
    refused = cli("cutover", "--plan", plan)
    assert refused.exit_code == 2
    assert "manual steps not acknowledged: manual-1, manual-2" in refused.output
    ok("ack", "manual-1", "--plan", plan)
    ok("ack", "manual-2", "--plan", plan)

    dry = ok("cutover", "--dry-run", "--plan", plan)
    assert "read_only old.app" in dry and "export + import old.app>new.app" in dry
    assert not (root / "freezes.txt").exists() and _mode(source) & stat.S_IWUSR

    before, mode = hashlib.sha256(source.read_bytes()).hexdigest(), _mode(source)
    text = ok("cutover", "--plan", plan)
    assert "cutover: SUCCEEDED" in text
    assert _mode(source) == mode & ~0o222  # frozen: read-only, intact
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    assert (root / "app.conf").read_text() == "database: new.app\n"
    st = js("status", "--plan", plan)["cutover"]
    assert st["status"] == "succeeded"
    assert [s["id"] for s in st["stages"]] == ["freeze", "delta", "verify", "switch", "record"]
    record = st["stages"][-1]["detail"]
    assert record["plan_hash"] == hashlib.sha256(demo.read_bytes()).hexdigest()
    assert st["history"][0]["kind"] == "cutover" and st["history"][0]["who"]
    assert "SUCCEEDED  switch" in ok("status", "--plan", plan)
    log = " ".join(e["message"] for e in js("log", "--plan", plan))
    assert "exited 0: repointed" in log  # hook output is in the log

    again = js("cutover", "--plan", plan)
    assert again["status"] == "already done"
    assert (root / "freezes.txt").read_text() == "frozen\n"

    assert cli("cutover", "--rollback", "--plan", plan).exit_code == 2  # needs a reason
    undone = ok("cutover", "--rollback", "--reason", "DNS not ready", "--plan", plan)
    assert f"mode {mode:o} restored" in undone and "ran 'rm app.conf'" in undone
    assert _mode(source) == mode and not (root / "app.conf").exists()
    st = js("status", "--plan", plan)["cutover"]
    assert st["status"] == "rolled back"
    assert st["history"][-1]["kind"] == "rollback"
    assert st["history"][-1]["reason"] == "DNS not ready"
    assert cli("cutover", "--rollback", "--reason", "x", "--plan", plan).exit_code == 2


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from rehost.migration import steps

    class Killer:  # a transfer observer: kill -9 at the first file
        def action(self, *args): os.kill(os.getpid(), signal.SIGKILL)

    real = steps.files_transfer

    def killed(*args, **kwargs):
        return real(*args, observer=Killer(), **kwargs)

    steps.files_transfer = killed
    from rehost.cli import main
    sys.argv = ["rehost", *sys.argv[1:]]
    main()
    """
)


def test_kill_9_in_the_delta_then_resume_without_freezing_again(demo: Path):
    plan, root = str(demo), demo.parent
    _ran_and_acked(demo)
    (root / "source-files" / "new-upload.txt").write_text("written before the freeze\n")
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, "cutover", "--plan", plan],
        capture_output=True,
        env={**os.environ, **ENV},
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    stages = {s["id"]: s for s in js("status", "--plan", plan)["cutover"]["stages"]}
    assert stages["freeze"]["status"] == "succeeded"
    assert stages["delta"]["status"] == "running"
    assert "import:old.app>new.app" in stages["delta"]["detail"]["results"]

    resumed = js("cutover", "--plan", plan)
    assert resumed["status"] == "succeeded"
    assert [s["status"] for s in resumed["stages"]][:2] == ["already done", "succeeded"]
    assert (root / "freezes.txt").read_text() == "frozen\n"  # the hook ran once
    assert (root / "target-files" / "new-upload.txt").exists()
    stages = {s["id"]: s for s in js("status", "--plan", plan)["cutover"]["stages"]}
    assert stages["freeze"]["attempts"] == 1 and stages["delta"]["attempts"] == 2


def test_force_needs_a_reason_and_is_recorded(demo: Path):
    plan = str(demo)
    assert cli("cutover", "--force", "--plan", plan).exit_code == 2
    with rehost.Migration(demo) as m:
        with pytest.raises(rehost.migration.cutover.CutoverRefused, match="PENDING"):
            m.cutover()
        assert m.cutover(dry_run=True).status == "preview"
        assert m.cutover_status()["status"] == "pending"


def _insert(url: str) -> None:
    eng = sa.create_engine(url)  # a new connection each time
    try:
        with eng.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    finally:
        eng.dispose()


def test_postgresql_source_frozen_with_default_transaction_read_only(tmp_path, make_db):
    url = make_db("postgresql")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id int)")
    engine.dispose()
    plan = tmp_path / "rehost.yaml"
    plan.write_text(
        "name: pg\nsources:\n  old:\n    databases:\n      app: {url: '" + url + "'}\n"
        "targets: {}\ncutover:\n  freeze:\n    - {builtin: read_only, database: old.app}\n"
    )

    with rehost.Migration(plan) as m:
        rep = m.cutover(force_reason="no moves: the source is only frozen")
        assert rep.status == "succeeded", rep.stages
        with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
            _insert(url)
        m.rollback("testing the rollback")
        _insert(url)
        assert m.cutover_status()["history"][0]["reason"] == "no moves: the source is only frozen"


def test_cutover_plan_errors_name_the_line():
    base = "name: x\nsources:\n  old:\n    databases:\n      app: {url: 'sqlite:///a.db'}\n"
    base += "targets: {}\n"
    plan = parse_plan(base + "cutover:\n  switch:\n    - {run: 'true', timeout: 5}\n")
    assert plan.cutover.switch[0].timeout == 5
    with pytest.raises(PlanError, match=r"line 9: cutover.freeze\[0\].database: 'old.db'"):
        parse_plan(base + "cutover:\n  freeze:\n    - {builtin: read_only, database: old.db}\n")
    with pytest.raises(PlanError, match="line 8: cutover.swich"):
        parse_plan(base + "cutover:\n  swich: []\n")


def test_kill_9_in_freeze_and_switch_then_resume(demo: Path):
    """Killed as each stage's hooks are done but before the stage's end is recorded."""
    plan, root = str(demo), demo.parent
    _ran_and_acked(demo)
    for point in ("after:cutover:freeze", "after:cutover:switch"):
        proc = subprocess.run(
            [sys.executable, "-m", "rehost", "cutover", "--plan", plan],
            capture_output=True,
            env={**os.environ, **ENV, "REHOST_TEST_KILL": point},
            timeout=120,
        )
        assert proc.returncode == -9, (point, proc.stderr)
        stages = {s["id"]: s["status"] for s in js("status", "--plan", plan)["cutover"]["stages"]}
        assert stages[point.rsplit(":", 1)[1]] == "running"
    assert js("cutover", "--plan", plan)["status"] == "succeeded"
    assert (root / "freezes.txt").read_text() == "frozen\n"  # each hook ran once
    assert (root / "app.conf").read_text() == "database: new.app\n"
    stages = {s["id"]: s for s in js("status", "--plan", plan)["cutover"]["stages"]}
    assert stages["freeze"]["attempts"] == stages["switch"]["attempts"] == 2
    assert stages["delta"]["attempts"] == stages["verify"]["attempts"] == 1
    log = [e["message"] for e in js("log", "--plan", plan)]
    assert sum("exited 0: repointed" in m for m in log) == 1


@pytest.fixture
def maria_target(make_db) -> Iterator[MariaUser]:
    yield from maria_user(make_db)


def _global_read_only(admin: str) -> bool:
    eng = sa.create_engine(admin)
    try:
        with eng.connect() as conn:
            return bool(conn.exec_driver_sql("SELECT @@GLOBAL.read_only").scalar_one())
    finally:
        eng.dispose()


def test_mariadb_source_frozen_with_global_read_only(tmp_path, maria_target):
    """SET GLOBAL read_only is server-wide: the frozen window is kept short, and read_only
    is set back to OFF whatever happens (other tests share the server)."""
    admin, user, grant = maria_target
    db = make_url(admin).database
    run_sql(admin, "CREATE TABLE t (id int)")
    grant(f"INSERT ON `{db}`.*")  # a plain user: root bypasses read_only
    plan = tmp_path / "rehost.yaml"
    plan.write_text(
        "name: maria\nsources:\n  old:\n    databases:\n"
        f"      app: {{url: '{admin}'}}\n      plain: {{url: '{user}'}}\n"
        "targets: {}\ncutover:\n  freeze:\n    - {builtin: read_only, database: old.app}\n"
    )
    assert not _global_read_only(admin), "the server is read-only before the test"
    with rehost.Migration(plan) as m:
        preview = m.cutover(dry_run=True).stages[0]["actions"]
        assert preview == ["read_only old.app (SET GLOBAL read_only: the whole server)"]
        try:
            rep = m.cutover(force_reason="no moves: the source is only frozen")
            assert rep.status == "succeeded", rep.stages
            with pytest.raises(sa.exc.DBAPIError, match="read-only"):
                _insert(user)
            assert m.rollback("testing the rollback")["undone"] == [
                "old.app: the server's read_only restored to OFF"
            ]
            assert not _global_read_only(admin)
            _insert(user)
            # already ON before the freeze: the rollback leaves it ON
            run_sql(admin, "SET GLOBAL read_only = ON")
            again = m.cutover(force_reason="again")
            assert again.status == "succeeded"
            assert "ON before the freeze: left ON" in m.rollback("again")["undone"][0]
            assert _global_read_only(admin)
        finally:
            run_sql(admin, "SET GLOBAL read_only = OFF")
        frozen = m.cutover_status()["history"][0]
        assert frozen["kind"] == "cutover" and frozen["reason"].startswith("no moves")
    # what 'rehost cutover' prints for the freeze
    assert _stage_summary(rep.stages[0]["detail"]).endswith("(server-wide read_only, was OFF)")
    assert _stage_summary(again.stages[0]["detail"]).endswith("(server-wide read_only, was ON)")

    # a user without READ_ONLY ADMIN (or SUPER): the freeze fails and says what it needs
    plan.write_text(plan.read_text().replace("database: old.app}", "database: old.plain}"))
    with rehost.Migration(plan) as m:
        rep = m.cutover(force_reason="a plain user")
        assert rep.status == "failed"
        assert "needs the READ_ONLY ADMIN or SUPER privilege" in rep.stages[0]["error"]
    assert not _global_read_only(admin)
