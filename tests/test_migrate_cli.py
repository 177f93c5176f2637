"""Migrations at the command line: init → check → run → status → ack, resume, dry run, clone."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rehost
from rehost.cli import app
from rehost.migration import steps
from rehost.migration.codes import CODES

runner = CliRunner()
ENV = {"NO_COLOR": "1", "COLUMNS": "120"}


def rehost_cli(*args: str):
    return runner.invoke(app, list(args), env=ENV)


def ok(*args: str) -> str:
    result = rehost_cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def js(*args: str):
    return json.loads(ok(*args, "--json"))


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    ok("init", "--demo", str(tmp_path))
    return tmp_path / "rehost.yaml"


def statuses(plan: Path) -> dict[str, str]:
    st = js("status", "--plan", str(plan))
    out = {p["name"]: p["status"] for p in st["phases"]}
    out["migration"] = st["status"]
    return out


def attempts(plan: Path) -> dict[str, int]:
    st = js("status", "--plan", str(plan))
    return {s["id"]: s["attempts"] for p in st["phases"] for s in p["steps"]}


def test_init_check_dry_run_run_status_ack(demo: Path):
    plan = str(demo)
    refused = rehost_cli("init", str(demo.parent))
    assert refused.exit_code == 2 and "pass --force" in refused.output
    check = js("check", "--plan", plan)
    assert check["ok"] and not [f for f in check["findings"] if f["severity"] == "error"]
    assert "RH601" in {f["code"] for f in check["findings"]}
    assert "ok: no errors" in ok("check", "--plan", plan)

    dry = {s["id"]: s for s in js("run", "--dry-run", "--plan", plan)["steps"]}
    assert statuses(demo)["migration"] == "pending"  # a dry run changes no status
    assert not (demo.parent / "target-files").exists()
    real = js("run", "--plan", plan)
    assert real["status"] == "incomplete"
    done = {s["id"]: s for s in real["steps"]}
    imp, tr = "import:old.app>new.app", "transfer:old.uploads>new.uploads"
    assert dry[imp]["detail"]["totals"] == done[imp]["detail"]["totals"]
    assert dry[imp]["detail"]["totals"]["create"] > 0
    assert (
        dry[tr]["detail"]["counts"]
        == done[tr]["detail"]["counts"]
        == {
            "copied": 5,
            "directories created": 5,
        }
    )
    assert (demo.parent / "target-files" / "avatars" / "alice.png").exists()

    assert statuses(demo) == {
        "inventory": "succeeded",
        "validate": "succeeded",
        "export": "succeeded",
        "import": "incomplete",
        "clone": "skipped",
        "transfer": "succeeded",
        "verify": "succeeded",
        "migration": "incomplete",
    }
    text = ok("status", "--plan", plan)
    assert "INCOMPLETE" in text and "manual-2  Point the build agents" in text
    assert js("ack", "manual-1", "--plan", plan)["status"] == "incomplete"
    assert rehost_cli("ack", "manual-9", "--plan", plan).exit_code == 2
    assert "status: SUCCEEDED" in ok("ack", "manual-2", "--plan", plan)
    assert statuses(demo)["import"] == "succeeded"
    assert statuses(demo)["migration"] == "succeeded"

    again = js("run", "--plan", plan)
    assert {s["status"] for s in again["steps"]} == {"already done"}
    kinds = [e["kind"] for e in js("log", "--plan", plan)]
    assert kinds.count("acknowledged") == 2 and "dry-run" in kinds
    # the state never holds the bundle password or the applications' keys
    raw = (demo.parent / ".rehost" / "state.db").read_bytes()
    for secret in ("keys/bundle-password.txt", "keys/source-app.key"):
        value = (demo.parent / secret).read_text().strip().encode()
        assert value not in raw


def test_library_api(demo: Path):
    with rehost.Migration(demo) as m:
        assert m.validate().ok
        report = m.run(phase="inventory")
        assert [s["status"] for s in report.steps] == ["succeeded", "succeeded"]
        with pytest.raises(
            rehost.migration.core.PhaseOrder, match="validate, export:old.app>new.app not done"
        ):
            m.run(phase="import")
        assert m.status()["phases"][0]["status"] == "succeeded"


def test_a_failure_mid_phase_resumes_without_redoing_done_steps(demo, monkeypatch):
    plan = str(demo)
    real = steps.files_transfer

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(steps, "files_transfer", broken)
    result = rehost_cli("run", "--plan", plan)
    assert result.exit_code == 1
    assert "unexpected OSError: disk on fire" in result.output
    st = statuses(demo)
    assert st["import"] == "incomplete" and st["transfer"] == "failed"
    assert st["verify"] == "pending" and st["migration"] == "failed"
    assert "last error transfer:old.uploads>new.uploads: unexpected OSError" in ok(
        "status", "--plan", plan
    )

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(steps, "files_transfer", interrupted)
    result = rehost_cli("run", "--plan", plan)
    assert result.exit_code == 130 and "run again to resume" in result.output
    assert statuses(demo)["transfer"] == "failed"

    monkeypatch.setattr(steps, "files_transfer", real)
    rerun = js("run", "--plan", plan)
    assert [s["status"] for s in rerun["steps"][:5]] == ["already done"] * 5
    n = attempts(demo)
    assert n["export:old.app>new.app"] == n["import:old.app>new.app"] == 1
    assert n["transfer:old.uploads>new.uploads"] == 3
    assert statuses(demo)["transfer"] == "succeeded"


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from rehost.migration import steps

    class Killer:  # a progress sink and a transfer observer: kill -9 at the first news
        def start(self, *args): pass
        def finish(self): pass
        def advance(self, n=1): os.kill(os.getpid(), signal.SIGKILL)
        def action(self, *args): os.kill(os.getpid(), signal.SIGKILL)

    name = sys.argv.pop(1)
    real = getattr(steps, name)

    def killed(*args, **kwargs):
        kwargs["observer" if name == "files_transfer" else "progress"] = Killer()
        return real(*args, **kwargs)

    setattr(steps, name, killed)
    from rehost.cli import main
    sys.argv = ["rehost", *sys.argv[1:]]
    main()
    """
)


@pytest.mark.parametrize(
    ("function", "step"),
    [
        ("db_export", "export:old.app>new.app"),
        ("db_import", "import:old.app>new.app"),
        ("files_transfer", "transfer:old.uploads>new.uploads"),
    ],
)
def test_kill_9_mid_phase_then_resume(demo, function, step):
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, function, "run", "--plan", str(demo)],
        capture_output=True,
        env={**os.environ, **ENV},
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    st = js("status", "--plan", str(demo))
    state = {s["id"]: s["status"] for p in st["phases"] for s in p["steps"]}
    assert state[step] == "running"
    assert state["validate"] == "succeeded"
    resumed = js("run", "--plan", str(demo))
    assert resumed["status"] == "incomplete"  # verify passed: the target holds it all
    n = attempts(demo)
    assert n[step] == 2 and n["validate"] == 1


def test_check_errors_codes_and_acceptance(demo):
    plan = str(demo)
    target = sqlite3.connect(demo.parent / "target.db")
    target.execute("UPDATE alembic_version SET version_num = 'ffff0000'")
    target.commit()
    target.close()
    result = rehost_cli("check", "--plan", plan)
    assert result.exit_code == 1
    assert "RH103 version mismatch" in result.stdout and "1 error(s)" in result.stdout
    assert rehost_cli("check", "--plan", plan, "--accept", "RH103").exit_code == 2
    assert rehost_cli("check", "--plan", plan, "--accept", "RH999", "--reason", "x").exit_code == 2
    # validation stops a run until the error is accepted
    assert rehost_cli("run", "--plan", plan, "--phase", "inventory").exit_code == 0
    failed = rehost_cli("run", "--plan", plan)
    assert failed.exit_code == 1 and "Validation found errors: RH103" in failed.output
    accepted = js("check", "--plan", plan, "--accept", "RH103", "--reason", "same schema")
    assert accepted["ok"] and accepted["accepted"] == {"RH103": "same schema"}
    assert js("status", "--plan", plan)["accepted"] == {"RH103": "same schema"}
    run = rehost_cli("run", "--plan", plan)
    assert run.exit_code == 1 and "bundle comes from application version" in run.output

    (demo.parent / "source.db").unlink()
    (demo.parent / "keys" / "bundle-password.txt").unlink()
    codes = {
        f["code"]
        for f in json.loads(rehost_cli("check", "--plan", plan, "--json").stdout)["findings"]
    }
    assert "RH101" in codes


def test_check_lists_codes_and_share_problems(demo):
    listing = ok("check", "--codes")
    assert "RH201  error    duplicate natural key" in listing
    text = demo.read_text().replace("{url: source-files}", "{url: no-such-folder}")
    demo.write_text(
        text.replace(
            '      app: {url: "sqlite:///target.db"}\n',
            '      app: {url: "sqlite:///target.db"}\n      two: {url: "sqlite:///two.db"}\n',
        )
    )
    found = json.loads(rehost_cli("check", "--plan", str(demo), "--json").stdout)["findings"]
    assert ("RH501", "old.uploads") in {(f["code"], f["subject"]) for f in found}


def test_plan_errors_name_the_line(tmp_path):
    plan = tmp_path / "rehost.yaml"
    plan.write_text(
        "name: x\nsources: {}\ntargets: {}\ndatabases:\n  - {from: a.b, to: c.d, methd: clone}\n"
    )
    result = rehost_cli("status", "--plan", str(plan))
    assert result.exit_code == 1
    assert "line 5: databases[0].methd: Extra inputs are not permitted" in result.output
    missing = rehost_cli("run", "--plan", str(tmp_path / "none.yaml"))
    assert missing.exit_code == 1 and "rehost init" in missing.output


def test_clone_method_sqlite_to_postgresql(demo, make_db):
    url = make_db("postgresql").replace("postgres@", "postgres:s3cret-pw@")
    _clone_plan(demo, url)
    assert js("check", "--plan", str(demo))["ok"]
    dry = {s["id"]: s for s in js("run", "--dry-run", "--plan", str(demo))["steps"]}
    real = js("run", "--plan", str(demo))
    assert real["status"] == "succeeded", real
    done = {s["id"]: s for s in real["steps"]}
    step = "clone:old.app>new.app"
    assert dry[step]["detail"]["rows"] == done[step]["detail"]["rows"] > 90
    assert statuses(demo)["verify"] == "succeeded"
    assert statuses(demo)["export"] == "skipped"
    check = rehost_cli("check", "--plan", str(demo), "--json")  # now the target is not empty
    assert check.exit_code == 1
    assert "RH320" in {f["code"] for f in json.loads(check.stdout)["findings"]}
    assert b"s3cret-pw" not in (demo.parent / ".rehost" / "state.db").read_bytes()


def test_clone_method_across_engines_with_a_view_needs_skip_objects(demo, make_db):
    with sqlite3.connect(demo.parent / "source.db") as db:
        db.execute("CREATE VIEW project_names AS SELECT name FROM projects")
    _clone_plan(demo, make_db("postgresql"))
    check = rehost_cli("check", "--plan", str(demo), "--json")
    assert check.exit_code == 1
    found = {f["code"]: f for f in json.loads(check.stdout)["findings"]}
    assert found["RH313"]["severity"] == "error" and "project_names" in found["RH313"]["subject"]
    _edit(demo, "    method: clone\n", "    method: clone\n    skip_objects: [views]\n")
    found = {f["code"]: f for f in js("check", "--plan", str(demo))["findings"]}
    assert "RH313" not in found and found["RH314"]["severity"] == "warning"
    assert js("run", "--plan", str(demo))["status"] == "succeeded"


def test_every_migration_command_and_option_is_in_the_readme():
    import click
    import typer.main

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    reference = readme.split("## Command reference", 1)[1]
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    for name in ("init", "check", "run", "status", "log", "ack", "cutover"):
        assert f"`rehost {name}" in reference, name
        for param in group.commands[name].params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in readme, f"{name}: {opt}"


def _projects(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM projects")}
    finally:
        conn.close()


def test_split_one_source_into_two_targets_by_only(demo):
    root = demo.parent
    (root / "second.db").write_bytes((root / "target.db").read_bytes())
    text = demo.read_text().replace(
        '      app: {url: "sqlite:///target.db"}\n',
        '      app: {url: "sqlite:///target.db"}\n      second: {url: "sqlite:///second.db"}\n',
    )
    text = text.replace(
        "    # only: [projects=web-app]\n",
        "    only: [projects=web-app]\n"
        "  - {from: old.app, to: new.second, profile: profile.yaml, only: [projects=billing]}\n",
    )
    demo.write_text(text)
    before = _projects(root / "target.db")
    assert js("run", "--plan", str(demo))["status"] == "incomplete"
    assert _projects(root / "target.db") - before == {"web-app"}
    assert _projects(root / "second.db") - before == {"billing"}
    st = js("status", "--plan", str(demo))
    # the manual steps are shared by both imports: one acknowledgement settles both
    assert [m["steps"] for m in st["manual_steps"]][0] == [
        "import:old.app>new.app",
        "import:old.app>new.second",
    ]
    ok("ack", "manual-1", "--plan", str(demo))
    assert js("ack", "manual-2", "--plan", str(demo))["status"] == "succeeded"


def test_share_exclude_in_the_plan_applies_to_transfer_and_verify(demo):
    root = demo.parent
    (root / "source-files" / "scratch.tmp").write_text("not moved")
    (root / "source-files" / "avatars" / "cache").mkdir()
    (root / "source-files" / "avatars" / "cache" / "x.png").write_bytes(b"\x89PNG")
    text = demo.read_text().replace(
        "    # exclude: [cache/, '*.tmp']\n", "    exclude: [cache/, '*.tmp']\n"
    )
    assert "    exclude: [cache/, '*.tmp']\n" in text
    demo.write_text(text)
    assert js("run", "--plan", str(demo))["status"] == "incomplete"  # manual steps remain
    assert statuses(demo)["verify"] == "succeeded"
    target = root / "target-files"
    assert (target / "README.txt").exists()
    assert not (target / "scratch.tmp").exists()
    assert not (target / "avatars" / "cache").exists()


def test_consolidate_two_source_servers_into_one_target(demo):
    root = demo.parent
    other = root / "other.db"
    other.write_bytes((root / "source.db").read_bytes())
    conn = sqlite3.connect(other)
    conn.execute("UPDATE projects SET name = 'reports' WHERE name = 'billing'")
    conn.commit()
    conn.close()
    text = demo.read_text().replace(
        "# The servers data moves to.\n",
        '  other:\n    databases:\n      app: {url: "sqlite:///other.db"}\n\n'
        "# The servers data moves to.\n",
    )
    text = text.replace(
        "    # only: [projects=web-app]\n",
        "  - {from: other.app, to: new.app, profile: profile.yaml, on_conflict: overwrite}\n",
    )
    demo.write_text(text)
    rep = js("run", "--plan", str(demo))
    assert rep["status"] == "incomplete"
    assert {"web-app", "billing", "reports", "api"} <= _projects(root / "target.db")
    ids = [s["id"] for s in rep["steps"]]
    assert ids.index("import:old.app>new.app") < ids.index("import:other.app>new.app")
    assert "inventory:db:other.app" in ids


def test_dry_run_of_one_phase_uses_a_fresh_bundle(demo):
    plan = str(demo)
    first = js("run", "--dry-run", "--plan", plan)["steps"][4]["detail"]["totals"]
    conn = sqlite3.connect(demo.parent / "source.db")
    conn.execute("INSERT INTO environments (name, sort_order) VALUES ('Disaster Recovery', 9)")
    conn.commit()
    conn.close()
    dry = js("run", "--dry-run", "--phase", "import", "--plan", plan)["steps"]
    assert [s["id"] for s in dry] == ["import:old.app>new.app"]
    assert dry[0]["detail"]["totals"]["create"] == first["create"] + 1
    assert js("run", "--plan", plan)["steps"][4]["detail"]["totals"] == dry[0]["detail"]["totals"]


def _edit(plan: Path, old: str, new: str) -> None:
    text = plan.read_text()
    assert old in text
    plan.write_text(text.replace(old, new))


def _missing_target(plan: Path) -> None:
    (plan.parent / "target.db").unlink()


def _no_password(plan: Path) -> None:
    _edit(plan, "  password: file:keys/bundle-password.txt\n", "")


def _wrong_source_key(plan: Path) -> None:
    (plan.parent / "keys" / "source-app.key").write_text(rehost.demo_app.generate_key())


def _no_source_key(plan: Path) -> None:
    (plan.parent / "keys" / "source-app.key").unlink()


def _no_target_key(plan: Path) -> None:
    (plan.parent / "keys" / "target-app.key").unlink()


def _duplicate_key(plan: Path) -> None:
    _edit(plan.parent / "profile.yaml", "entities:\n", "entities:\n  deployments: {key: [state]}\n")


def _target_share_not_writable(plan: Path) -> None:
    _edit(plan, "uploads: {url: target-files}", "uploads: {url: rehost.yaml/files}")


def _no_space(plan: Path) -> None:
    import rehost.migration.core as core

    core.free_bytes = lambda path: 10  # the test restores it (monkeypatch)


def _link_out(plan: Path) -> None:
    (plan.parent / "source-files" / "hosts").symlink_to("/etc/hosts")


def _unreadable_file(plan: Path) -> None:
    (plan.parent / "source-files" / "README.txt").chmod(0)


def _unknown_owner(plan: Path) -> None:
    os.chown(plan.parent / "source-files" / "README.txt", 54321, 54321)


def _two_shares_one_target(plan: Path) -> None:
    _edit(
        plan,
        "      uploads: {url: source-files}\n",
        "      uploads: {url: source-files}\n      more: {url: source-files}\n",
    )
    _edit(
        plan,
        "    verify_content: true\n",
        "    verify_content: true\n  - {from: old.more, to: new.uploads}\n",
    )


def _target_sql(plan: Path, *statements: str) -> None:
    conn = sqlite3.connect(plan.parent / "target.db")
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def _table_missing_on_target(plan: Path) -> None:
    _target_sql(plan, "DROP TABLE api_keys")


def _column_missing_on_target(plan: Path) -> None:
    _target_sql(plan, "ALTER TABLE projects DROP COLUMN description")


def _target_environments_differ(plan: Path) -> None:
    _target_sql(
        plan,
        "ALTER TABLE environments RENAME TO environments_old",
        "CREATE TABLE environments (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
        "sort_order TIMESTAMP NOT NULL, use_guided_failure BOOLEAN NOT NULL DEFAULT 0, "
        "region TEXT NOT NULL)",
    )


def _dangling_reference(plan: Path) -> None:
    conn = sqlite3.connect(plan.parent / "source.db")  # foreign keys are off by default
    conn.execute("UPDATE deployments SET environment_id = 999 WHERE id = 1")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("code", "subject", "change"),
    [
        ("RH102", "new.app", _missing_target),
        ("RH211", "old.app: deployments.environment_id", _dangling_reference),
        ("RH201", "old.app: deployments", _duplicate_key),
        ("RH215", "new.app: deployments", _duplicate_key),
        ("RH212", "new.app: api_keys", _table_missing_on_target),
        ("RH213", "new.app: projects", _column_missing_on_target),
        ("RH214", "new.app: environments", _target_environments_differ),
        ("RH312", "new.app: environments.sort_order", _target_environments_differ),
        ("RH401", "old.app: variables.secret_value", _wrong_source_key),
        ("RH402", "old.app: secrets", _no_source_key),
        ("RH403", "old.app>new.app", _no_password),
        ("RH404", "new.app", _no_target_key),
        ("RH502", "new.uploads", _target_share_not_writable),
        ("RH503", "new.uploads", _no_space),
        ("RH505", "old.uploads", _link_out),
        ("RH504", "old.uploads", _unreadable_file),
        ("RH506", "new.uploads", _unknown_owner),
        ("RH602", "new.uploads", _two_shares_one_target),
    ],
)
def test_each_check_is_triggered(demo, monkeypatch, code, subject, change):
    import rehost.migration.core as core

    monkeypatch.setattr(core, "free_bytes", core.free_bytes)
    if code == "RH506" and os.geteuid() != 0:
        pytest.skip("giving a file to an unknown owner needs root")
    if code == "RH504" and os.geteuid() == 0:
        pytest.skip("root reads every file")
    change(demo)
    result = rehost_cli("check", "--plan", str(demo), "--json")
    found = {(f["code"], f["subject"]): f for f in json.loads(result.stdout)["findings"]}
    assert (code, subject) in found, sorted(found)
    assert found[code, subject]["severity"] == CODES[code].severity
    errors = any(f["severity"] == "error" for f in found.values())
    assert result.exit_code == (1 if errors else 0)


def _clone_plan(demo: Path, url: str) -> None:
    _edit(demo, 'app: {url: "sqlite:///target.db"}', f'app: {{url: "{url}"}}')
    _edit(
        demo,
        "    method: bundle\n    profile: profile.yaml\n    on_conflict: overwrite\n",
        "    method: clone\n",
    )


def test_kill_9_mid_clone_then_resume_replaces_the_half_copy(demo):
    _clone_plan(demo, "sqlite:///clone.db")
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, "db_clone", "run", "--plan", str(demo)],
        capture_output=True,
        env={**os.environ, **ENV},
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert (demo.parent / "clone.db").exists()
    resumed = js("run", "--plan", str(demo))
    assert resumed["status"] == "succeeded", resumed
    assert attempts(demo)["clone:old.app>new.app"] == 2
    assert _projects(demo.parent / "clone.db") == _projects(demo.parent / "source.db")


def test_validate_without_source_checks_the_plan(demo, monkeypatch):
    plan = str(demo)
    assert js("validate", "--plan", plan) == js("check", "--plan", plan)
    monkeypatch.chdir(demo.parent)  # rehost.yaml here is the default plan
    assert "ok: no errors" in ok("validate")
    target = sqlite3.connect(demo.parent / "target.db")
    target.execute("UPDATE alembic_version SET version_num = 'ffff0000'")
    target.commit()
    target.close()
    failed = rehost_cli("validate")
    assert failed.exit_code == 1 and "RH103 version mismatch" in failed.stdout
    accepted = js("validate", "--accept", "RH103", "--reason", "same schema")
    assert accepted["ok"] and accepted["accepted"] == {"RH103": "same schema"}
    elsewhere = rehost_cli("validate", "--state", "other-state.db", "--json")
    assert elsewhere.exit_code == 1  # another store: the error is not accepted there
    assert json.loads(elsewhere.stdout)["accepted"] == {}
    assert rehost_cli("validate", "--target", "sqlite:///x.db").exit_code == 2
    source = f"sqlite:///{demo.parent / 'source.db'}"
    assert rehost_cli("validate", source, "--accept", "RH103", "--reason", "x").exit_code == 2
    assert "plan" not in json.loads(ok("validate", source, "--json"))


def test_a_later_import_stops_on_records_changed_in_the_target(demo):
    plan = str(demo)
    assert js("run", "--plan", plan)["status"] == "incomplete"
    conn = sqlite3.connect(demo.parent / "target.db")
    assert conn.execute("SELECT COUNT(*) FROM rehost_ledger").fetchone()[0] > 0
    conn.execute("UPDATE environments SET sort_order = 42 WHERE name = 'Staging'")
    conn.commit()
    conn.close()
    dry = js("run", "--dry-run", "--phase", "import", "--plan", plan)["steps"][0]
    assert dry["detail"]["changed_in_target"] == "1"
    stopped = rehost_cli("run", "--phase", "import", "--rerun", "--plan", plan)
    assert stopped.exit_code == 1
    assert "1 record(s) rehost wrote earlier were changed in the target since" in stopped.output
    assert "environments 'Staging'" in stopped.output
    assert statuses(demo)["import"] == "failed"
    assert _sort_order(demo.parent / "target.db", "Staging") == 42
    assert js("run", "--plan", plan, "--force")["status"] == "incomplete"
    assert _sort_order(demo.parent / "target.db", "Staging") != 42
    assert attempts(demo)["import:old.app>new.app"] == 3
    assert "forced" in [e["kind"] for e in js("log", "--plan", plan)]


def _sort_order(db: Path, name: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT sort_order FROM environments WHERE name = ?", (name,)
        ).fetchone()[0]
    finally:
        conn.close()


def test_kill_9_in_inventory_validate_and_verify_then_resume(demo):
    """The phases the test above does not kill mid-step, killed at a step's start or end
    (REHOST_TEST_KILL), each run resuming the one before."""
    for point in (
        "before:inventory:db:old.app",
        "after:validate",
        "before:verify:share:old.uploads>new.uploads",
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "rehost", "run", "--plan", str(demo)],
            capture_output=True,
            env={**os.environ, **ENV, "REHOST_TEST_KILL": point},
            timeout=120,
        )
        assert proc.returncode == -9, (point, proc.stderr)
        step = point.split(":", 1)[1]
        st = js("status", "--plan", str(demo))
        assert {s["id"]: s["status"] for p in st["phases"] for s in p["steps"]}[step] == "running"
    assert js("run", "--plan", str(demo))["status"] == "incomplete"
    n = attempts(demo)
    assert n["inventory:db:old.app"] == n["validate"] == 2
    assert n["verify:share:old.uploads>new.uploads"] == 2
    assert n["import:old.app>new.app"] == n["verify:db:old.app>new.app"] == 1
