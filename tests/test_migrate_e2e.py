"""End to end at the command line: the demo application moved SQLite → PostgreSQL, its
uploads local → S3 and local → SFTP; rehearsal, a run killed with SIGKILL and
resumed, manual steps, drift found by the ledger, and cutover.

The S3 (moto) and SFTP (asyncssh) servers are the ones tests/test_files_remote.py
starts on loopback.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.test_files_remote import (
    PASSWORD,
    S3Server,
    SFTPServer,
    _env,
    bucket,
    s3_server,
    sftp,
)
from tests.test_migrate_cli import ENV, js, ok, rehost_cli

# fixtures, imported to be used here (_env: the AWS and SFTP settings, autouse)
__all__ = ["_env", "bucket", "s3_server", "sftp"]

REPO = Path(__file__).resolve().parents[1]
IMPORT = "import:old.app>new.app"


def _plan(root: Path, pg: str, s3: S3Server, bucket: str, sftp: SFTPServer) -> Path:
    plan = root / "rehost.yaml"
    text = plan.read_text()
    targets = f"""targets:
  new:
    databases:
      app: {{url: "{pg}"}}
    shares:
      s3:
        url: s3://{bucket}/uploads
        s3_endpoint_url: {s3.endpoint}
      sftp:
        url: {sftp.url("uploads")}
        sftp_known_hosts: {sftp.known_hosts}
        sftp_password: env:REHOST_SFTP_PASSWORD
"""
    start, end = text.index("targets:\n"), text.index("# Which database goes where")
    text = text[:start] + targets + "\n" + text[end:]
    start, end = text.index("shares:\n  - from"), text.index("# 'rehost cutover'")
    shares = (
        "shares:\n  - {from: old.uploads, to: new.s3, verify_content: true}\n"
        "  - {from: old.uploads, to: new.sftp, verify_content: true}\n\n"
    )
    text = text[:start] + shares + text[end:]
    text += """
cutover:
  freeze:
    - {builtin: read_only, database: old.app}
  switch:
    - {run: "echo 'database: new.app' > app.conf", undo: "rm app.conf"}
"""
    plan.write_text(text)
    return plan


def _pg(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.exec_driver_sql(sql)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def _step_status() -> dict[str, str]:
    st = js("status")
    return {s["id"]: s["status"] for p in st["phases"] for s in p["steps"]} | {
        "migration": st["status"]
    }


def test_demo_sqlite_to_postgresql_s3_and_sftp_rehearse_run_kill_resume_cutover(
    tmp_path, make_db, sftp, s3_server, bucket, monkeypatch
):
    root = tmp_path / "move"
    ok("init", "--demo", str(root))
    pg = make_db("postgresql").replace("postgres@", "postgres:s3cret-pw@")
    # the new server: the demo's target application (with its own records), on PostgreSQL
    ok("clone", f"sqlite:///{root / 'target.db'}", pg)
    _plan(root, pg, s3_server, bucket, sftp)
    monkeypatch.chdir(root)
    projects = "SELECT name, description FROM projects ORDER BY name"
    before = _pg(pg, projects)

    # rehearsal: the checks, then a dry run that writes nothing anywhere
    check = js("check")
    assert check["ok"], [f for f in check["findings"] if f["severity"] == "error"]
    dry = js("run", "--dry-run")
    assert dry["status"] == "preview", dry
    dry_steps = {s["id"]: s for s in dry["steps"]}
    assert dry_steps[IMPORT]["detail"]["totals"]["create"] > 0
    assert _pg(pg, projects) == before
    assert s3_server.objects(bucket) == {}
    assert not (sftp.root / "uploads").exists()
    assert _step_status()["migration"] == "pending"

    # the real run, killed (SIGKILL) once the import committed but before it was recorded
    proc = subprocess.run(
        [sys.executable, "-m", "rehost", "run"],
        cwd=root,
        capture_output=True,
        env={**os.environ, **ENV, "REHOST_TEST_KILL": f"after:{IMPORT}"},
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    state = _step_status()
    assert state[IMPORT] == "running" and state["validate"] == "succeeded"
    assert state["transfer:old.uploads>new.s3"] == "pending"
    resumed = js("run")
    assert resumed["status"] == "incomplete", resumed
    done = {s["id"]: s for s in resumed["steps"]}
    assert done["export:old.app>new.app"]["status"] == "already done"
    # the import had committed: resuming it changes nothing
    totals = done[IMPORT]["detail"]["totals"]
    assert totals["create"] == totals["update"] == totals["delete"] == 0
    for share in ("s3", "sftp"):
        assert (
            done[f"transfer:old.uploads>new.{share}"]["detail"]["counts"]
            == (dry_steps[f"transfer:old.uploads>new.{share}"]["detail"]["counts"])
        )
    assert ("web-app",) in {(r[0],) for r in _pg(pg, projects)}
    assert "uploads/avatars/alice.png" in s3_server.objects(bucket)
    alice = (root / "source-files" / "avatars" / "alice.png").read_bytes()
    assert (sftp.root / "uploads" / "avatars" / "alice.png").read_bytes() == alice

    # INCOMPLETE until the manual steps are acknowledged; no cutover before
    text = ok("status")
    assert "INCOMPLETE" in text and "manual-1" in text and "manual-2" in text
    assert rehost_cli("cutover").exit_code == 2
    ok("ack", "manual-1")
    assert js("ack", "manual-2")["status"] == "succeeded"

    # someone edits, on the new server, a record the import wrote: found, listed, stopped
    _pg(pg, "UPDATE projects SET description = 'edited on the new server' WHERE name = 'web-app'")
    (root / "source-files" / "late-upload.txt").write_text("uploaded before the freeze\n")
    cut = rehost_cli("cutover", "--json")
    assert cut.exit_code == 1
    stages = {s["id"]: s for s in json.loads(cut.stdout)["stages"]}
    assert stages["freeze"]["status"] == "succeeded"
    assert stages["delta"]["status"] == "failed"
    assert "projects 'web-app'" in stages["delta"]["error"]
    assert not stat.S_IMODE((root / "source.db").stat().st_mode) & 0o222  # frozen
    rerun = rehost_cli("run", "--phase", "import", "--rerun")
    assert rerun.exit_code == 1 and "changed in the target since" in rerun.output
    assert "projects 'web-app' (id" in rerun.output
    assert ("web-app", "edited on the new server") in _pg(pg, projects)
    forced = js("run", "--phase", "import", "--rerun", "--force")
    assert forced["status"] == "succeeded", forced
    assert ("web-app", "edited on the new server") not in _pg(pg, projects)

    # the cutover resumes at the delta: the late upload reaches both stores
    cut = js("cutover")
    assert cut["status"] == "succeeded", cut
    assert [s["status"] for s in cut["stages"]][0] == "already done"
    assert "uploads/late-upload.txt" in s3_server.objects(bucket)
    assert (sftp.root / "uploads" / "late-upload.txt").exists()
    assert (root / "app.conf").read_text() == "database: new.app\n"
    assert js("status")["cutover"]["status"] == "succeeded"

    # no secret in the state: neither the database's, nor SFTP's, nor the bundle's
    raw = b"".join(p.read_bytes() for p in (root / ".rehost").glob("state.db*"))
    for secret in (b"s3cret-pw", PASSWORD.encode(), b"correct horse battery staple"):
        assert secret not in raw


def test_check_finds_unreachable_remote_targets(tmp_path, sftp, s3_server, monkeypatch):
    root = tmp_path / "move"
    ok("init", "--demo", str(root))
    _plan(root, "sqlite:///target.db", s3_server, "no-such-bucket", sftp)
    monkeypatch.setenv("REHOST_SFTP_PASSWORD", "not the password")
    result = rehost_cli("check", "--plan", str(root / "rehost.yaml"), "--json")
    assert result.exit_code == 1
    found = {
        f["subject"]: f["message"]
        for f in json.loads(result.stdout)["findings"]
        if f["code"] == "RH502"
    }
    assert "bucket 'no-such-bucket' does not exist" in found["new.s3"]
    assert "Permission denied for user rehost" in found["new.sftp"]
