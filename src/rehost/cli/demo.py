"""`rehost demo`: the whole flow on two small SQLite applications, no setup."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import typer

from rehost.cli.core import app, handle_errors
from rehost.cli.database import (
    _render_export,
    _render_import,
    _render_inventory,
    export,
    import_,
    inspect,
)
from rehost.cli.render import out
from rehost.errors import RehostError, UsageError

MARKER = ".rehost-demo"
PASSWORD = "correct horse battery staple"


def _prepare(directory: Path) -> None:
    if directory.exists():
        if not directory.is_dir():
            raise UsageError(f"{directory} is a file; give a directory for the demo.")
        entries = [p for p in directory.iterdir()]
        if entries and not (directory / MARKER).exists():
            raise UsageError(
                f"{directory} is not empty and was not made by 'rehost demo'; choose a new or "
                "empty directory."
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("made by rehost demo; safe to delete\n")


def _step(title: str, command: str | None = None) -> None:
    out.print()
    out.rule(f"[bold]{title}")
    if command is not None:
        out.print(f"[dim]$ {command}[/]")


def _rehost(cwd: Path, *args: str, ok: tuple[int, ...] = (0,)) -> None:
    """Run one rehost command as a user would, its output going straight to the terminal."""
    out.print(f"[dim]$ rehost {' '.join(args)}[/]")
    sys.stdout.flush()
    code = subprocess.run([sys.executable, "-m", "rehost", *args], cwd=cwd, check=False).returncode
    if code not in ok:
        raise RehostError(f"the demo step 'rehost {' '.join(args)}' ended with status {code}.")


def _migration(move: Path) -> None:
    """Part two: the whole server (database and uploads folder) moved as one migration."""
    _step("8. The whole server as one migration: a plan, checks, a resumable run")
    _rehost(move.parent, "init", "--demo", move.name)
    _rehost(move, "check")
    _rehost(move, "run")
    _step("9. Manual steps acknowledged, then the cutover")
    _rehost(move, "ack", "manual-1")
    _rehost(move, "ack", "manual-2")
    _rehost(move, "cutover")
    _rehost(move, "status")


@app.command("demo")
@handle_errors
def demo_cmd(
    directory: Path = typer.Argument(
        Path("rehost-demo"), help="Working directory (created; a previous demo's is replaced)."
    ),
) -> None:
    """Run export → partial export → preview → import on two SQLite applications,
    then move a whole server (database and uploads folder) as one migration.

    Makes a deployment-server-like application (projects with steps, environments,
    variable sets with encrypted secrets, teams with members, users with a
    foreign-key cycle), and a second server that already holds overlapping names.
    Then, in DIRECTORY/move: rehost init --demo, check, run, ack, cutover, status.

    Example: rehost demo /tmp/rehost-demo
    """
    from rehost import demo_app
    from rehost.profile.model import parse_profile

    _prepare(directory)
    src_key, tgt_key = demo_app.generate_key(), demo_app.generate_key()
    os.environ["DEMO_SOURCE_APP_KEY"] = src_key
    os.environ["DEMO_TARGET_APP_KEY"] = tgt_key
    # The demo applications' own configuration, as a real server keeps its key.
    keys = directory / "app-keys.env"
    keys.write_text(f"export DEMO_SOURCE_APP_KEY={src_key}\nexport DEMO_TARGET_APP_KEY={tgt_key}\n")
    keys.chmod(0o600)
    source_db, target_db = directory / "source.db", directory / "target.db"
    demo_app.create_source(source_db, src_key)
    demo_app.create_target(target_db, tgt_key)
    profile_path = directory / "profile.yaml"
    profile_path.write_text(demo_app.DEMO_PROFILE_YAML)
    pw = directory / "password.txt"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    profile = parse_profile(demo_app.DEMO_PROFILE_YAML, "demo profile")
    source, target = f"sqlite:///{source_db}", f"sqlite:///{target_db}"
    out.print(
        f"Two servers in [bold]{directory}[/]: source.db (4 projects) and target.db (already "
        "holds users, teams, environments and a project named 'api').\n"
        "Secrets are Fernet-encrypted with a different application key on each server "
        "(DEMO_SOURCE_APP_KEY, DEMO_TARGET_APP_KEY)."
    )

    _step("1. Inspect the source", f"rehost inspect {source} --profile {profile_path}")
    _render_inventory(inspect(source, profile=profile))

    bundle = directory / "bundle"
    _step(
        "2. Export everything",
        f"rehost export {source} {bundle} --profile {profile_path} --password-file {pw}",
    )
    _render_export(export(source, bundle, profile=profile, password=PASSWORD))

    partial = directory / "web-app-bundle"
    _step(
        "3. Export one project and everything it needs",
        f"rehost export {source} {partial} --only projects=web-app --profile {profile_path} "
        f"--password-file {pw}",
    )
    _render_export(
        export(source, partial, profile=profile, only=["projects=web-app"], password=PASSWORD)
    )
    out.print(
        f"[dim]files: {', '.join(sorted(p.name for p in (partial / 'projects').iterdir()))} …[/]"
    )

    def preview_overwrite() -> None:
        _render_import(
            import_(
                bundle,
                target,
                preview=True,
                on_conflict="overwrite",
                profile=profile,
                password=PASSWORD,
            ),
            diffs=8,
        )

    _step(
        "4. Preview the full import into the target (nothing is written)",
        f"rehost import {bundle} {target} --preview --on-conflict overwrite --profile "
        f"{profile_path} --password-file {pw}",
    )
    preview_overwrite()

    _step(
        "5. Import the web-app project (existing records are matched by name and kept)",
        f"rehost import {partial} {target} --profile {profile_path} --password-file {pw}",
    )
    _render_import(import_(partial, target, profile=profile, password=PASSWORD), diffs=8)

    _step(
        "6. Import everything, overwriting what differs",
        f"rehost import {bundle} {target} --on-conflict overwrite --profile {profile_path} "
        f"--password-file {pw}",
    )
    _render_import(
        import_(bundle, target, on_conflict="overwrite", profile=profile, password=PASSWORD),
        diffs=8,
    )

    _step(
        "7. Run it again: nothing left to change",
        f"rehost import {bundle} {target} --on-conflict overwrite --preview --profile "
        f"{profile_path} --password-file {pw}",
    )
    preview_overwrite()
    _migration(directory / "move")
    out.print()
    out.print(
        f"Done. Explore [bold]{bundle}[/] and the two databases with sqlite3. The "
        f"applications' keys are in {keys}; to re-export and see what changed:\n"
        f"  cd {bundle} && git init -q && git add -A && git commit -qm export && cd -\n"
        f"  . {keys} && rehost export {source} {bundle} --profile {profile_path} "
        f"--password-file {pw}\n"
        f"  git -C {bundle} status --short\n"
        f"The migration (plan, state, both servers and their uploads) is in {directory / 'move'}: "
        "'rehost status' and 'rehost log' there show what happened; the cutover froze its "
        "source database (read-only), 'rehost cutover --rollback --reason TEXT' there thaws it.",
        soft_wrap=True,
    )
