"""Commands for databases: inspect, validate, export, import."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from rehost.checks.findings import Finding, errors_in
from rehost.cli.core import app, handle_errors
from rehost.cli.render import BarProgress, err, out, print_json, render_findings
from rehost.errors import UsageError

if TYPE_CHECKING:
    from rehost.export import ExportResult
    from rehost.importer import ImportReport
    from rehost.inspect import Inventory
    from rehost.profile.model import Profile

# The library (SQLAlchemy, pydantic, cryptography) is imported when a command
# runs, not when the command line starts: 'rehost --help' and 'rehost files …'
# do not pay for it.


def inspect(source: str, **kwargs: Any) -> Inventory:
    from rehost.inspect import inspect as run

    return run(source, **kwargs)


def export(source: str, dest: Path | str, **kwargs: Any) -> ExportResult:
    from rehost.export import export as run

    return run(source, dest, **kwargs)


def import_(bundle: Path | str, target: str, **kwargs: Any) -> ImportReport:
    from rehost.importer import import_ as run

    return run(bundle, target, **kwargs)


def load_profile(path: Path | None) -> Profile:
    from rehost.profile.model import load_profile as load

    return load(path)


def read_password(path: Path | None, *, confirm: bool) -> str:
    from rehost.crypto.password import read_password as read

    return read(path, confirm=confirm)


JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON for scripts.")
PROFILE_OPT = typer.Option(
    None,
    "--profile",
    "-p",
    help="YAML profile overriding what is inferred.",
    exists=True,
    dir_okay=False,
)
PASSWORD_FILE_OPT = typer.Option(
    None,
    "--password-file",
    help="File holding the bundle password (else REHOST_PASSWORD, else a prompt).",
    exists=True,
    dir_okay=False,
)
PASSWORD_OPT = typer.Option(
    None, "--password", hidden=True, help="Refused: a password on the command line leaks."
)


def _refuse_password(value: str | None) -> None:
    if value is not None:
        raise UsageError(
            "A password on the command line is visible to other users (ps, shell history), so "
            "rehost refuses it. Put it in a file with mode 600 and pass --password-file FILE, "
            "or set REHOST_PASSWORD."
        )


def _password(path: Path | None, *, confirm: bool) -> Any:
    """A lazy password source: asked for only when the bundle has secrets."""
    return lambda: read_password(path, confirm=confirm)


# ------------------------------------------------------------------- inspect


def _render_inventory(inv: Inventory) -> None:
    out.print(f"[bold]{inv.source}[/]  ({inv.engine})")
    if inv.version:
        out.print(f"application version: {inv.version.detail}  [dim]from {inv.version.source}[/]")
    else:
        out.print("application version: [yellow]not found[/]")
    t = Table(title="Entity types", title_justify="left")
    for col in ("entity type", "rows", "natural key", "references", "owned by", "secrets"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for name in inv.model.order:
        e = inv.model.entities[name]
        key = ", ".join(e.key) if e.key else "[yellow]none[/]"
        if e.key:
            key += f" [dim]({e.key_origin})[/]"
        refs = ", ".join(
            f"{c}→{r.table}" + (" [dim](deferred)[/]" if (name, c) in inv.model.deferred else "")
            for c, r in sorted(e.refs.items())
            if c != e.owner
        )
        owner = f"{e.owner_table} [dim]via {e.owner}[/]" if e.owner else ""
        if e.merge == "union":
            owner += " [dim](merge: union)[/]"
        secrets = ", ".join(
            c + ("" if how == "profile" else " [dim](inferred)[/]") for c, how in e.secrets.items()
        )
        t.add_row(name, f"{inv.rows.get(name, 0):,}", key, refs, owner, secrets)
    out.print(t)
    if inv.model.excluded:
        out.print(f"excluded: {', '.join(inv.model.excluded)}")
    render_findings(inv.findings)


@app.command("inspect")
@handle_errors
def inspect_cmd(
    source: str = typer.Argument(..., help="Source database URL, e.g. sqlite:///app.db"),
    profile: Path | None = PROFILE_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Show entity types, row counts, natural keys, references, owners, secrets and version.

    Example: rehost inspect sqlite:///app.db --profile app.yaml
    """
    inv = inspect(source, profile=load_profile(profile))
    if json_out:
        print_json(inv.to_json())
    else:
        _render_inventory(inv)


@app.command("validate")
@handle_errors
def validate_cmd(
    source: str | None = typer.Argument(
        None, help="Source database URL. Without it: check the migration plan (rehost check)."
    ),
    target: str | None = typer.Option(
        None,
        "--target",
        "-t",
        help="Also check an import target: reachable, same application version, tables "
        "and columns present, natural keys unique, target key usable.",
    ),
    profile: Path | None = PROFILE_OPT,
    plan: Path = typer.Option(
        Path("rehost.yaml"), "--plan", help="Without SOURCE: the migration plan to check."
    ),
    accept: list[str] = typer.Option(
        [], "--accept", help="Without SOURCE: accept the plan's errors with this code."
    ),
    reason: str = typer.Option("", "--reason", help="Why the accepted errors are acceptable."),
    state: str | None = typer.Option(
        None, "--state", help="Without SOURCE: the migration's state store (as for rehost check)."
    ),
    json_out: bool = JSON_OPT,
) -> None:
    """Check that the source can be exported (and, with --target, imported there);
    exit 1 when there are errors. Nothing is written anywhere. Without SOURCE,
    check the migration plan (rehost.yaml) with codes, as 'rehost check' does.

    Examples:

      rehost validate postgresql://app@db/app --profile app.yaml --json

      rehost validate sqlite:///old.db --target postgresql://app@new-db/app --profile app.yaml

      rehost validate --plan rehost.yaml --accept RH103 --reason "schemas match"
    """
    if source is None:
        from rehost.cli.migrate import check_plan

        if target is not None or profile is not None:
            raise UsageError("--target and --profile go with SOURCE; a plan names its own.")
        check_plan(plan, state, accept, reason, json_out=json_out)
        return
    if accept:
        raise UsageError("--accept is for the plan's checks: give no SOURCE.")
    prof = load_profile(profile)
    inv = inspect(source, profile=prof)
    findings = list(inv.findings)
    if target is not None:
        from rehost.checks.target import check_target

        findings += check_target(target, inv.model, prof, inv.version)
    errors = errors_in(findings)
    if json_out:
        doc: dict[str, Any] = {"source": inv.source, "ok": not errors}
        if target is not None:
            from rehost.db.connect import redact

            doc["target"] = redact(target)
        doc["findings"] = [f.to_json() for f in sorted(findings, key=Finding.sort_key)]
        print_json(doc)
    else:
        render_findings(findings, show_info=False)
        n_warn = sum(1 for f in findings if f.severity == "warning")
        if errors:
            out.print(f"[bold red]{len(errors)} error(s)[/], {n_warn} warning(s)")
        else:
            out.print(f"[green]ok[/]: no errors, {n_warn} warning(s)")
    if errors:
        raise typer.Exit(1)


# -------------------------------------------------------------------- export


def _render_export(res: ExportResult) -> None:
    scope = ", ".join(res.scope) if res.scope else "everything"
    out.print(f"exported [bold]{scope}[/] to [bold]{res.bundle}[/]")
    t = Table(title_justify="left")
    t.add_column("entity type")
    t.add_column("records", justify="right")
    for name, n in res.counts.items():
        if n:
            t.add_row(name, f"{n:,}")
    out.print(t)
    extra = (
        f", {res.secrets} secret value(s) encrypted under the bundle password"
        if res.secrets
        else ""
    )
    out.print(f"{res.files} file(s){extra}")
    if res.version:
        out.print(f"application version: {res.version.detail}")


@app.command("export")
@handle_errors
def export_cmd(
    source: str = typer.Argument(..., help="Source database URL."),
    bundle: Path = typer.Argument(..., help="Bundle directory to write (created or replaced)."),
    only: list[str] = typer.Option(
        [],
        "--only",
        help="Export just this record and everything it needs: ENTITY=KEY (repeatable).",
    ),
    profile: Path | None = PROFILE_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password: str | None = PASSWORD_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Export the application (or chosen records with their dependencies) as a bundle.

    Examples:

      rehost export sqlite:///app.db bundle/ --password-file pw.txt

      rehost export sqlite:///app.db web/ --only projects=web-app --only projects=api
    """
    _refuse_password(password)
    with BarProgress(not json_out) as bar:
        res = export(
            source,
            bundle,
            profile=load_profile(profile),
            only=only,
            password=_password(password_file, confirm=True),
            progress=bar,
        )
    if json_out:
        print_json(res.to_json())
    else:
        _render_export(res)


# -------------------------------------------------------------------- import

_ACTION_STYLE = {
    "create": "green",
    "update": "yellow",
    "unchanged": "dim",
    "skip": "dim",
    "merge": "cyan",
    "delete": "red",
}


def _render_import(rep: ImportReport, *, diffs: int) -> None:
    title = "Preview (nothing written)" if rep.preview else "Import"
    out.print(f"[bold]{title}[/]: {rep.bundle} → {rep.target}  (on conflict: {rep.on_conflict})")
    t = Table(title_justify="left")
    t.add_column("entity type")
    for a in ("create", "update", "unchanged", "skip", "merge", "delete"):
        t.add_column(a, justify="right")
    for name in rep.order:
        s = rep.tables.get(name)
        if s is None or not any(s.counts.values()):
            continue
        t.add_row(
            name,
            *[
                f"[{_ACTION_STYLE[a]}]{s.counts[a]:,}[/]" if s.counts[a] else "·"
                for a in ("create", "update", "unchanged", "skip", "merge", "delete")
            ],
        )
    tot = rep.totals()
    t.add_row("[bold]total[/]", *[f"[bold]{tot[a]:,}[/]" for a in tot])
    out.print(t)
    shown = 0
    for name in rep.order:
        s = rep.tables.get(name)
        if not s or not s.changes:
            continue
        for ch in s.changes:
            if shown >= diffs:
                break
            mark = {"delete": "[red]-", "create": "[green]+"}.get(ch.action, "[yellow]~")
            out.print(f"{mark} {name}[/] [bold]{escape(ch.label)}[/]")
            for f, old, new in ch.diffs:
                out.print(f"    {f}: [red]{old!r}[/] → [green]{new!r}[/]", highlight=False)
            shown += 1
    total_changes = sum(len(s.changes) + s.changes_omitted for s in rep.tables.values())
    if total_changes > shown:
        out.print(f"[dim]… {total_changes - shown} more change(s); use --json for all[/]")
    for warning in rep.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if rep.manual_steps:
        out.print("[bold]Manual steps[/] (rehost cannot do these):")
        for i, step in enumerate(rep.manual_steps, 1):
            out.print(f"  {i}. {step}")
    status = rep.status.upper()
    style = {"SUCCEEDED": "bold green", "INCOMPLETE": "bold yellow", "PREVIEW": "bold"}[status]
    out.print(f"status: [{style}]{status}[/]")
    if rep.status == "incomplete":
        out.print(
            "[dim]Do the manual steps above, then acknowledge them by re-running with "
            "--manual-steps-done (a re-run changes nothing else).[/]"
        )


@app.command("import")
@handle_errors
def import_cmd(
    bundle: Path = typer.Argument(..., help="Bundle directory written by 'rehost export'."),
    target: str = typer.Argument(..., help="Target database URL."),
    preview: bool = typer.Option(False, "--preview", help="Show what would happen; write nothing."),
    on_conflict: str = typer.Option(
        "skip",
        "--on-conflict",
        help="When a record exists on the target (same natural key): skip or overwrite.",
    ),
    profile: Path | None = PROFILE_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password: str | None = PASSWORD_OPT,
    ignore_version_check: bool = typer.Option(
        False, "--ignore-version-check", help="Import even if application versions differ."
    ),
    manual_steps_done: bool = typer.Option(
        False, "--manual-steps-done", help="Acknowledge the profile's manual steps as done."
    ),
    diffs: int = typer.Option(20, "--diffs", help="How many record diffs to print."),
    ledger: bool = typer.Option(
        False, "--ledger", help="Hash written records in rehost_ledger; stop on ones changed since."
    ),
    force: bool = typer.Option(
        False, "--force", help="With --ledger: overwrite records changed in the target since."
    ),
    json_out: bool = JSON_OPT,
) -> None:
    """Import a bundle: match records by natural key, remap IDs, all in one transaction.

    Examples:

      rehost import bundle/ postgresql://app@new-db/app --preview

      rehost import bundle/ postgresql://app@new-db/app --on-conflict overwrite
    """
    _refuse_password(password)
    if on_conflict not in ("skip", "overwrite"):
        raise UsageError(f"--on-conflict must be 'skip' or 'overwrite', not '{on_conflict}'.")
    with BarProgress(not json_out) as bar:
        rep = import_(
            bundle,
            target,
            on_conflict=on_conflict,
            preview=preview,
            profile=load_profile(profile),
            password=_password(password_file, confirm=False),
            ignore_version_check=ignore_version_check,
            manual_steps_done=manual_steps_done,
            progress=bar,
            ledger=ledger,
            force=force,
        )
    if json_out:
        print_json(rep.to_json())
    else:
        _render_import(rep, diffs=diffs)
    if not json_out and err.is_terminal:
        pass
