"""The clone command: a whole database into an empty one, on any engine, then verified."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import typer
from rich.filesize import decimal as size
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rehost.cli.core import app, handle_errors
from rehost.cli.render import BarProgress, err, out, print_json, render_findings

if TYPE_CHECKING:
    from rehost.clone import CloneResult


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class CloneBar(BarProgress):
    """The clone's progress on stderr (a terminal only): each table's rows and bytes, overall ETA.

    One line for the whole copy (rows done of the source's counts, bytes,
    rate, time left), one per table being copied, then one per later step
    (keys, verification).
    """

    def __init__(self, enabled: bool) -> None:
        super().__init__(enabled)
        self._overall: Any = None
        self._tasks: dict[str, Any] = {}
        self._step: Any = None
        self._step_done = 0
        self._step_total: int | None = None
        self._totals: dict[str, int] = {}
        self._rows = self._bytes = 0
        self._kept = 0  # rows of tables --resume kept: done, but not moved at any rate
        self._done: dict[str, int] = {}
        self._table_bytes: dict[str, int] = {}
        self._t0 = 0.0

    def __enter__(self) -> CloneBar:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self._progress.start()
        return self

    # ---- tables (rehost.clone.progress.TableSink)

    def tables(self, totals: dict[str, int]) -> None:
        self._totals = dict(totals)
        self._t0 = time.perf_counter()
        if self._progress is not None:
            self._overall = self._progress.add_task(
                f"copy {len(totals)} tables", total=sum(totals.values()) or None, detail=""
            )

    def table_start(self, name: str) -> None:
        self._done[name] = 0
        self._table_bytes[name] = 0
        if self._progress is not None:
            self._tasks[name] = self._progress.add_task(
                f"  {name}", total=self._totals.get(name) or None, detail=""
            )

    def table_advance(self, name: str, rows: int, nbytes: int) -> None:
        self._done[name] += rows
        self._table_bytes[name] += nbytes
        self._rows += rows
        self._bytes += nbytes
        self._show(name)

    def table_done(self, name: str, rows: int | None, nbytes: int) -> None:
        if rows is not None and name not in self._done:  # never started: kept by --resume
            self._kept += rows
        if rows is not None:
            # Loaders may report the last rows or bytes only in their count at the end.
            self._rows += rows - self._done.get(name, 0)
            self._bytes += nbytes - self._table_bytes.get(name, 0)
            self._done[name], self._table_bytes[name] = rows, nbytes
        if self._progress is not None and name in self._tasks:
            self._progress.remove_task(self._tasks.pop(name))
        self._show(None)

    def _show(self, name: str | None) -> None:
        if self._progress is None:
            return
        from rehost.clone.progress import estimate

        if name is not None and name in self._tasks:
            done, total = self._done[name], self._totals.get(name, 0)
            self._progress.update(
                self._tasks[name],
                completed=done,
                detail=f"{done:,}/{total:,} rows  {size(self._table_bytes[name])}",
            )
        e = estimate(
            self._rows,
            sum(self._totals.values()),
            self._bytes,
            time.perf_counter() - self._t0,
            kept=self._kept,
        )
        rate = f"  {e.rows_per_s:,.0f} rows/s" if e.rows_per_s else ""
        self._progress.update(
            self._overall,
            completed=e.rows,
            detail=f"{e.rows:,}/{e.total:,} rows  {size(e.nbytes)}{rate}  ETA {_duration(e.eta)}",
        )

    # ---- later steps (rehost.progress.Progress)

    def start(self, label: str, total: int | None) -> None:
        if self._progress is None:
            return
        if self._overall is not None:
            self._progress.remove_task(self._overall)
            self._overall = None
        self._step_done, self._step_total = 0, total
        self._step = self._progress.add_task(label, total=total, detail="")

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._step is not None:
            self._step_done += n
            detail = f"{self._step_done:,}/{self._step_total:,}" if self._step_total else ""
            self._progress.update(self._step, completed=self._step_done, detail=detail)

    def finish(self) -> None:
        if self._progress is not None and self._step is not None:
            self._progress.remove_task(self._step)
            self._step = None


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for v in values or [] for part in v.split(",") if part.strip()]


def _render(result: CloneResult) -> None:
    from rehost.clone.progress import rate

    verb = "Verified" if result.verify_only else "Cloned"
    out.print(
        f"{verb} {escape(result.source)} ({result.source_engine}) → "
        f"{escape(result.target)} ({result.target_engine})"
    )
    t = Table(title_justify="left")
    t.add_column("table")
    t.add_column("rows", justify="right")
    if not result.verify_only:
        t.add_column("bytes", justify="right")
        t.add_column("seconds", justify="right")
        t.add_column("rows/s", justify="right")
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
            per_s = rate(r.rows, r.seconds)
            row += (
                ["—", "kept", "—"]
                if r.kept
                else [size(r.bytes), f"{r.seconds:.2f}", "—" if per_s is None else f"{per_s:,.0f}"]
            )
        t.add_row(*row, verified)
    out.print(t)
    _render_objects(result)
    render_findings(result.findings)
    rows = sum(r.rows for r in result.tables)
    moved = "" if result.verify_only else f", {size(sum(r.bytes for r in result.tables))}"
    if result.ok:
        out.print(
            f"{len(result.tables)} tables, {rows:,} rows{moved}, {result.seconds:.1f} s: verified."
        )
    else:
        bad = ", ".join(c.table for c in result.mismatches) or "see the findings"
        out.print(f"[bold red]Verification failed[/]: {escape(bad)}.")


def _render_objects(result: CloneResult) -> None:
    """One line per status: the views, triggers, routines … created (kept, failed, …)."""
    from collections import defaultdict

    by_status: dict[str, list[str]] = defaultdict(list)
    for obj, status in result.objects:
        by_status[status].append(obj.subject)
    for status in ("created", "kept", "present", "failed", "missing"):
        if by_status[status]:
            names = ", ".join(by_status[status])
            out.print(f"Objects {status}: {escape(names)}")
    if result.not_cloned:
        names = ", ".join(o.subject for o in result.not_cloned)
        out.print(f"[yellow]Not cloned[/] (recreate by hand on the target): {escape(names)}")


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
    skip_objects: list[str] | None = typer.Option(
        None,
        "--skip-objects",
        help="Leave out the source's views, triggers, routines (functions, procedures, events) "
        "or sequences not owned by a column: comma-separated, or all, e.g. "
        "'--skip-objects views,triggers'. Needed across engines, where their SQL cannot be "
        "recreated; each one left out is listed to recreate by hand.",
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Drop the tables (and views, triggers, routines) this clone creates if the "
        "target has them.",
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
        help="Run the clone's steps on N workers (at most 8): tables copied at once (a big "
        "PostgreSQL table in parts), keys and foreign keys as soon as their tables are in. "
        "Copies go one at a time from MariaDB/MySQL or into SQLite.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON for scripts."),
) -> None:
    """Copy a whole database (schema, rows, sequences) into an empty one, then verify it.

    Any engine pair among SQLite, PostgreSQL and MariaDB/MySQL. Views,
    triggers and routines are recreated on the same engine; across engines
    they stop the clone unless --skip-objects leaves them out. Exit 1 when a
    type or object has no faithful equivalent (nothing is written), the target
    is not empty, or verification finds a difference.

    Example: rehost clone sqlite:///app.db postgresql://app@db/app --skip-objects all
    """
    from rehost.clone import CloneBlocked, clone  # the library loads when the command runs

    try:
        with CloneBar(not json_out) as bar:
            result = clone(
                source,
                target,
                tables=_split(tables) or None,
                exclude=_split(exclude),
                map_types=map_type or [],
                skip_objects=_split(skip_objects),
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
