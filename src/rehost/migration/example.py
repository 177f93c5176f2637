"""`rehost init`: an example plan for the demo application, and (with ``--demo``)
the demo's databases, keys and files beside it so the plan runs as it is."""

from __future__ import annotations

from pathlib import Path

from rehost.errors import UsageError
from rehost.migration.plan import PLAN_FILE, parse_plan

EXAMPLE_PLAN = """\
# rehost migration plan. Paths are relative to this file.
# Check it with 'rehost check', rehearse with 'rehost run --dry-run', then
# 'rehost run'; 'rehost status' shows where it is, 'rehost log' what happened.
name: demo
version: 1

# The servers data moves from: named databases (SQLAlchemy URLs; env:VAR reads
# the URL from the environment, so passwords stay out of this file) and named
# shares (a local path, sftp://user@host/path or s3://bucket/prefix).
sources:
  old:
    databases:
      app: {url: "sqlite:///source.db"}
    shares:
      uploads: {url: source-files}

# The servers data moves to.
targets:
  new:
    databases:
      app: {url: "sqlite:///target.db"}
    shares:
      uploads: {url: target-files}
      # A share on SFTP or S3 takes its connection settings here (secrets as
      # env:VAR or file:PATH; S3 credentials from the usual AWS variables):
      # media: {url: "s3://bucket/uploads", s3_endpoint_url: "http://minio:9000"}
      # files: {url: "sftp://rehost@files:22/srv/uploads", sftp_known_hosts: keys/known_hosts,
      #         sftp_password: env:SFTP_PASSWORD}

# Which database goes where, and how:
#   method: bundle  export by natural key and import into a target that may
#                   already hold data (records are matched by name); 'only'
#                   picks records (ENTITY=KEY) with everything they need.
#   method: clone   copy the whole database into an empty target, then verify;
#                   'exclude' leaves tables out, 'map_type' (['mood=TEXT']) and
#                   'skip_objects' ([views, triggers, routines]) are the choices
#                   'rehost check' asks for across engines.
databases:
  - from: old.app
    to: new.app
    method: bundle
    profile: profile.yaml
    on_conflict: overwrite
    # only: [projects=web-app]
    # ledger: true  (the default) hashes what is written in the target's
    # rehost_ledger table: a later import (the cutover's, 'rehost run --rerun')
    # stops on records changed there since, unless 'rehost run --force'.

# Which share goes where. 'checksum' compares content, not just size and time;
# 'verify_content' hashes both sides in the verify phase; 'exclude' leaves out
# paths on both sides (patterns as for 'rehost files transfer --exclude');
# 'bwlimit' caps the transfer's rate (500K, 10M …).
shares:
  - from: old.uploads
    to: new.uploads
    verify_content: true
    # exclude: [cache/, '*.tmp']
    # bwlimit: 20M

# 'rehost cutover' (after a run that succeeded): freeze the source, re-run the
# moves as a final delta, verify, then the switch hooks; 'rehost cutover
# --rollback' undoes the freeze. Hooks are shell commands run here (timeout:
# seconds, default 300; undo: run by --rollback).
cutover:
  freeze:
    # SQLite: the database file made read-only (chmod a-w); PostgreSQL:
    # default_transaction_read_only; MariaDB/MySQL: read_only (server-wide).
    - {builtin: read_only, database: old.app}
    # - {run: "systemctl stop demo-app", undo: "systemctl start demo-app"}
  # switch:
  #   - {run: "sed -i s/old-db/new-db/ /etc/demo/app.conf", timeout: 30}

options:
  # Bundles hold secrets encrypted under this password: env:VAR or file:PATH.
  password: file:keys/bundle-password.txt
  # State (phases, steps, events; never secrets) lives in this folder.
  state_dir: .rehost
  # Or in a PostgreSQL database a team shares (or give --state URL):
  # state: env:REHOST_STATE_URL
"""

DEMO_FILES = {
    "README.txt": b"Uploads of the demo deployment server.\n",
    "avatars/alice.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "avatars/bob.png": b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 4,
    "artifacts/web-app/1.0.0.tar.gz": b"\x1f\x8b" + b"web-app release 1.0.0\n" * 200,
    "artifacts/api/2.3.1.tar.gz": b"\x1f\x8b" + b"api release 2.3.1\n" * 300,
}


def write_example(directory: Path, *, force: bool = False, demo: bool = False) -> list[Path]:
    """Write ``rehost.yaml`` (and, with ``demo``, the demo application) into ``directory``.

    Returns the paths written. Refuses to replace a plan unless ``force``.
    """
    parse_plan(EXAMPLE_PLAN)  # the example must always be a valid plan
    plan = directory / PLAN_FILE
    if plan.exists() and not force:
        raise UsageError(f"{plan} exists; pass --force to replace it.")
    directory.mkdir(parents=True, exist_ok=True)
    plan.write_text(EXAMPLE_PLAN, encoding="utf-8")
    written = [plan]
    if demo:
        written += _write_demo(directory, force)
    return written


def _write_demo(directory: Path, force: bool) -> list[Path]:
    from rehost import demo_app

    made = [directory / n for n in ("source.db", "target.db", "source-files", "target-files")]
    present = [p for p in made if p.exists()]
    if present and not force:
        raise UsageError(
            f"{', '.join(str(p) for p in present)} exist(s); pass --force to make the demo anew."
        )
    import shutil

    for p in present:
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    keys = directory / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    src_key, tgt_key = demo_app.generate_key(), demo_app.generate_key()
    for name, value in (
        ("source-app.key", src_key),
        ("target-app.key", tgt_key),
        ("bundle-password.txt", "correct horse battery staple"),
    ):
        path = keys / name
        path.write_text(value + "\n", encoding="utf-8")
        path.chmod(0o600)
    demo_app.create_source(directory / "source.db", src_key)
    demo_app.create_target(directory / "target.db", tgt_key)
    profile = demo_app.DEMO_PROFILE_YAML.replace(
        "env:DEMO_SOURCE_APP_KEY", "file:keys/source-app.key"
    ).replace("env:DEMO_TARGET_APP_KEY", "file:keys/target-app.key")
    (directory / "profile.yaml").write_text(profile, encoding="utf-8")
    for rel, data in DEMO_FILES.items():
        path = directory / "source-files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return [*made[:3], keys, directory / "profile.yaml"]
