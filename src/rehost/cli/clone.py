"""The clone command: a whole database into an empty one, on any engine, then verified."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from rehost.cli.app import app, handle_errors
from rehost.cli.render import BarProgress, err, out, print_json, render_findings

if TYPE_CHECKING:
    from rehost.clone import CloneResult


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for v in values or [] for part in v.split(",") if part.strip()]


def _render(result: CloneResult) -> None:
    verb = "Verified" if result.verify_only else "Cloned"
    out.print(
        f"{verb} {escape(result.source)} ({result.source_engine}) → "
        f"{escape(result.target)} ({result.target_engine})"
    )
    t = Table(title_justify="left")
    t.add_column("table")
    t.add_column("rows", justify="right")
    if not result.verify_only:
        t.add_column("seconds", justify="right")
    t.add_column("verified")
    for r in result.tables:
        check = r.check
        verified = (
            "[green]yes[/]"
            if check is not None and check.ok
            else f"[bold red]NO[/]: {escape(check.problem())}"
            if check is not None
            else "—"
        )
        row = [escape(r.name), f"{r.rows:,}"]
        if not result.verify_only:
            row.append("kept" if r.kept else f"{r.seconds:.2f}")
        t.add_row(*row, verified)
    out.print(t)
    render_findings(result.findings)
    rows = sum(r.rows for r in result.tables)
    if result.ok:
        out.print(f"{len(result.tables)} tables, {rows:,} rows, {result.seconds:.1f} s: verified.")
    else:
        bad = ", ".join(c.table for c in result.mismatches) or "see the findings"
        out.print(f"[bold red]Verification failed[/]: {escape(bad)}.")


@app.command("clone")
@handle_errors
def clone_cmd(
    source: str = typer.Argument(..., help="Source database URL, e.g. sqlite:///app.db"),
    target: str = typer.Argument(..., help="Empty target database URL, e.g. postgresql://u@h/db"),
    tables: list[str] | None = typer.Option(
        None, "--tables", help="Only these tables (comma-separated, or repeat the option)."
    ),
    exclude: list[str] | None = typer.Option(
        None, "--exclude", help="Leave these tables out (comma-separated, or repeat)."
    ),
    map_type: list[str] | None = typer.Option(
        None,
        "--map-type",
        help="SRC=TARGET: the target type for a source type with no faithful mapping, "
        "e.g. 'integer[]=JSON' or 'mood=TEXT' (repeatable).",
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Drop the tables this clone creates if the target has them."
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Carry on an interrupted clone: keep the tables it loaded in full, reload the rest.",
    ),
    verify_only: bool = typer.Option(
        False, "--verify-only", help="Write nothing: compare a finished clone with its source."
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        min=1,
        help="Copy up to N tables at once (at most 8; one at a time from MariaDB/MySQL "
        "or into SQLite).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON for scripts."),
) -> None:
    """Copy a whole database (schema, rows, sequences) into an empty one, then verify it.

    Any engine pair among SQLite, PostgreSQL and MariaDB/MySQL. Exit 1 when a
    type has no faithful mapping (nothing is written), the target is not empty,
    or verification finds a difference.

    Example: rehost clone sqlite:///app.db postgresql://app@db/app
    """
    from rehost.clone import CloneBlocked, clone  # the library loads when the command runs

    try:
        with BarProgress(not json_out) as bar:
            result = clone(
                source,
                target,
                tables=_split(tables) or None,
                exclude=_split(exclude),
                map_types=map_type or [],
                replace=replace,
                resume=resume,
                verify_only=verify_only,
                jobs=jobs,
                progress=bar,
            )
    except KeyboardInterrupt:
        # Unlike an import, a clone commits table by table: say what is left behind.
        err.print(
            "interrupted: the tables loaded so far stay on the target. Run the same command "
            "with --resume to carry on, or with --replace to start over."
        )
        raise typer.Exit(130) from None
    except CloneBlocked as exc:
        if json_out:
            print_json({"ok": False, "findings": [f.to_json() for f in exc.findings]})
            raise typer.Exit(1) from None
        raise
    if json_out:
        print_json(result.to_json())
    else:
        _render(result)
    if not result.ok:
        raise typer.Exit(1)
