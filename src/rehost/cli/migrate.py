"""Commands for migrations: init, check, run, status, log, ack, cutover (over rehost.Migration)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from rehost.cli.core import app, handle_errors
from rehost.cli.render import BarProgress, err, out, print_json

if TYPE_CHECKING:
    from rehost.migration import Migration

JSON_OPT = typer.Option(False, "--json", help="Print the result as JSON for scripts.")
PLAN_OPT = typer.Option(
    Path("rehost.yaml"), "--plan", help="The plan file (state is kept in .rehost/ beside it)."
)
STATE_OPT = typer.Option(
    None,
    "--state",
    help="Keep the state in this PostgreSQL database (postgresql://…, or env:VAR) or SQLite "
    "file instead of the plan's options.state or .rehost/state.db.",
)

_STATUS_STYLE = {
    "succeeded": "bold green",
    "incomplete": "bold yellow",
    "failed": "bold red",
    "running": "bold cyan",
    "pending": "dim",
    "skipped": "dim",
    "preview": "bold",
    "already done": "dim",
    "rolled back": "bold yellow",
}
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}


def _open(plan: Path, state: str | None = None) -> Migration:
    from rehost.migration import Migration

    return Migration(plan, state=state)


def _styled(status: str, width: int = 0) -> str:
    return f"[{_STATUS_STYLE.get(status, 'bold')}]{status.upper():<{width}}[/]"


def _summary(detail: dict[str, Any]) -> str:
    """A step's counts in one line."""
    parts = []
    for key, value in detail.items():
        if key in ("target_was_empty", "accepted") or value in (None, {}, []):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items() if v)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


# ---------------------------------------------------------------------- init


@app.command("init")
@handle_errors
def init_cmd(
    directory: Path = typer.Argument(Path("."), help="Where to write rehost.yaml."),
    force: bool = typer.Option(False, "--force", help="Replace an existing plan (and demo)."),
    demo: bool = typer.Option(
        False, "--demo", help="Also create the demo application the example plan moves."
    ),
) -> None:
    """Write a commented example plan, rehost.yaml, to edit for your servers.

    With --demo, also create what it names: two SQLite servers of the demo
    application (source.db, target.db), their keys, and a share of uploads, so
    that 'rehost check' and 'rehost run' work at once.

    Example: rehost init --demo /tmp/move && cd /tmp/move && rehost run
    """
    from rehost.migration.example import write_example

    for path in write_example(directory, force=force, demo=demo):
        out.print(f"wrote {path}")
    out.print("next: rehost check, then rehost run --dry-run, then rehost run")


# --------------------------------------------------------------------- check


def _render_check(rep: Any, *, info: bool) -> None:
    from rehost.migration.codes import PlanFinding

    findings = sorted(rep.findings, key=PlanFinding.sort_key)
    for severity in ("error", "warning", "info"):
        mine = [f for f in findings if f.severity == severity]
        if severity == "info" and not info:
            for f in mine:
                if f.code == "RH601":
                    out.print(f"estimate: {escape(f.message)}")
            if len(mine) > 1:
                out.print(f"[dim]{len(mine) - 1} more info finding(s): --info shows them[/]")
            continue
        if not mine:
            continue
        out.print(f"[{_SEVERITY_STYLE[severity]}]{severity}s ({len(mine)})[/]")
        for f in mine:
            accepted = rep.accepted.get(f.code) if severity == "error" else None
            mark = f" [green](accepted: {escape(accepted)})[/]" if accepted else ""
            out.print(f"  {f.code} {escape(f.title)} · [bold]{escape(f.subject)}[/]{mark}")
            out.print(f"      {escape(f.message)}")
            if f.fix:
                out.print(f"      [dim]fix: {escape(f.fix)}[/]")
    errors = [f for f in findings if f.severity == "error"]
    warnings = sum(1 for f in findings if f.severity == "warning")
    if rep.blocking:
        out.print(
            f"[bold red]{len(rep.blocking)} error(s)[/] to fix or accept, {warnings} warning(s)"
        )
    else:
        accepted = f" ({len(errors)} accepted)" if errors else ""
        out.print(f"[green]ok[/]: no errors{accepted}, {warnings} warning(s)")


@app.command("check")
@handle_errors
def check_cmd(
    plan: Path = PLAN_OPT,
    state: str | None = STATE_OPT,
    accept: list[str] = typer.Option(
        [], "--accept", help="Accept errors with this code (needs --reason); recorded."
    ),
    reason: str = typer.Option("", "--reason", help="Why the accepted errors are acceptable."),
    codes: bool = typer.Option(False, "--codes", help="List every validation code and exit."),
    info: bool = typer.Option(False, "--info", help="Show info findings too."),
    json_out: bool = JSON_OPT,
) -> None:
    """Check the whole plan: every endpoint, database and share; exit 1 on errors.

    Findings are grouped by severity, each with a stable code (RH1xx
    connectivity and privileges, RH2xx data and keys, RH3xx types, RH4xx secrets, RH5xx files
    and space, RH6xx the plan). An error can be accepted, with a reason, and is
    then recorded in the migration and no longer stops 'rehost run'.

    Examples:

      rehost check

      rehost check --accept RH103 --reason "schemas match; version table differs"
    """
    if codes:
        from rehost.migration.codes import CODES

        if json_out:
            print_json([c.__dict__ for c in CODES.values()])
        else:
            for c in CODES.values():
                out.print(f"{c.code}  {c.severity:<7}  {c.title}")
        return
    check_plan(plan, state, accept, reason, info=info, json_out=json_out)


def check_plan(
    plan: Path,
    state: str | None,
    accept: list[str],
    reason: str,
    *,
    info: bool = False,
    json_out: bool = False,
) -> None:
    """'rehost check', also 'rehost validate' without SOURCE: the plan's checks; exit 1
    on errors that are not accepted."""
    if accept and not reason.strip():
        from rehost.errors import UsageError

        raise UsageError("--accept needs --reason TEXT: say why the error is acceptable.")
    with _open(plan, state) as m:
        rep = m.validate(accept=dict.fromkeys(accept, reason))
    if json_out:
        print_json(rep.to_json())
    else:
        _render_check(rep, info=info)
    if not rep.ok:
        raise typer.Exit(1)


# ----------------------------------------------------------------------- run


def _print_entry(entry: dict[str, Any], summary: str, width: int = 0) -> None:
    """One step's or cutover stage's line as it ends: status, id, time, counts, error."""
    secs = f"{entry['seconds']:.2f} s" if "seconds" in entry else ""
    out.print(
        f"  {_styled(entry['status'], 12)} {escape(entry['id']):<{width}}  [dim]{secs}[/]  "
        f"{escape(summary)}"
    )
    for action in entry.get("actions", []):
        out.print(f"      {escape(action)}")
    if entry.get("error"):
        out.print(f"      [red]{escape(entry['error'])}[/]")


def _print_step(entry: dict[str, Any]) -> None:
    _print_entry(entry, _summary(entry.get("detail") or {}))


def _with_progress(m: Migration, title: str, json_out: bool, call: Any) -> Any:
    """``call(bar)`` under a title and progress bars; Ctrl-C says how to resume (exit 130)."""
    if not json_out:
        out.print(f"[bold]{title}[/]: {m.plan.name}  [dim]{m.plan_path}[/]")
    try:
        with BarProgress(not json_out) as bar:
            return call(bar)
    except KeyboardInterrupt:
        err.print(
            "interrupted: what was done is saved, the interrupted step is marked failed; "
            "run again to resume."
        )
        raise typer.Exit(130) from None


@app.command("run")
@handle_errors
def run_cmd(
    plan: Path = PLAN_OPT,
    state: str | None = STATE_OPT,
    phase: str | None = typer.Option(
        None,
        "--phase",
        help="Run only this phase: inventory, validate, export, import, clone, transfer, verify.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Do everything but write to a target; show what would change."
    ),
    rerun: bool = typer.Option(
        False, "--rerun", help="Run the steps (of --phase) again even if they are done."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Overwrite records that were changed in the target since rehost wrote them.",
    ),
    json_out: bool = JSON_OPT,
) -> None:
    """Run the migration's phases in order; a re-run resumes where the last one stopped.

    State is saved after every step: after a crash or Ctrl-C, run again and the
    steps already done are skipped. With --dry-run nothing is written to any
    target and no status changes; the counts are what the real run will do.
    An import stops, listing them, when records it wrote were changed in the
    target since (the ledger); --force overwrites them.

    Examples:

      rehost run --dry-run

      rehost run

      rehost run --phase transfer

      rehost run --phase import --rerun --force
    """
    with _open(plan, state) as m:
        title = "Dry run (nothing written to a target)" if dry_run else "Run"
        rep = _with_progress(
            m,
            title,
            json_out,
            lambda bar: m.run(
                phase,
                dry_run=dry_run,
                rerun=rerun,
                force=force,
                progress=bar,
                on_step=None if json_out else _print_step,
            ),
        )
        if json_out:
            print_json(rep.to_json())
        else:
            out.print(f"status: {_styled(rep.status)}")
            if rep.status == "incomplete":
                _render_manual(m.status()["manual_steps"])
    if rep.status == "failed":
        raise typer.Exit(1)


# -------------------------------------------------------------------- status


def _render_manual(manual: list[dict[str, Any]]) -> None:
    left = [x for x in manual if not x["acknowledged_at"]]
    if not left:
        return
    out.print("[bold]Manual steps[/] (do them, then 'rehost ack ID'):")
    for x in left:
        out.print(f"  {x['id']}  {escape(x['text'])}")


@app.command("status")
@handle_errors
def status_cmd(
    plan: Path = PLAN_OPT, state: str | None = STATE_OPT, json_out: bool = JSON_OPT
) -> None:
    """Show each phase and step: status, progress, timings, last error, manual steps left.

    Example: rehost status --json
    """
    with _open(plan, state) as m:
        st = m.status()
    if json_out:
        print_json(st)
        return
    out.print(f"[bold]{escape(st['name'])}[/]: {_styled(st['status'])}  [dim]{st['plan']}[/]")
    t = Table(title_justify="left")
    t.add_column("phase / step", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("steps", justify="right", no_wrap=True)
    t.add_column("time", justify="right", no_wrap=True)
    for ph in st["phases"]:
        secs = f"{ph['seconds']:.2f} s" if ph["seconds"] is not None else ""
        t.add_row(ph["name"], _styled(ph["status"]), f"{ph['done']}/{ph['total']}", secs)
        for s in ph["steps"]:
            secs = f"{s['seconds']:.2f} s" if s["seconds"] is not None else ""
            t.add_row(f"  [dim]{escape(s['id'])}[/]", _styled(s["status"]), "", secs)
    out.print(t)
    for ph in st["phases"]:
        for s in ph["steps"]:
            if s["last_error"]:
                out.print(f"[red]last error[/] {escape(s['id'])}: {escape(s['last_error'])}")
    for code, why in st["accepted"].items():
        out.print(f"accepted {code}: {escape(why)}")
    _render_manual(st["manual_steps"])
    _render_cutover(st["cutover"])


def _render_cutover(cut: dict[str, Any]) -> None:
    out.print(f"[bold]cutover[/]: {_styled(cut['status'])}")
    for s in cut["stages"]:
        secs = f"{s['seconds']:.2f} s" if s["seconds"] is not None else ""
        out.print(f"  {_styled(s['status'], 10)} {s['id']:<7} [dim]{secs}[/]")
        if s["last_error"]:
            out.print(f"      [red]{escape(s['last_error'])}[/]")
    for h in cut["history"]:
        why = f": {escape(h['reason'])}" if h.get("reason") else ""
        out.print(f"  {h['kind']} {h['at']} by {escape(h['who'])}, plan {h['plan_hash'][:12]}{why}")


# ----------------------------------------------------------------- log, ack


@app.command("log")
@handle_errors
def log_cmd(
    plan: Path = PLAN_OPT, state: str | None = STATE_OPT, json_out: bool = JSON_OPT
) -> None:
    """Show the migration's events: runs, steps started and ended, acceptances, acks."""
    with _open(plan, state) as m:
        events = m.log()
    if json_out:
        print_json(events)
        return
    for e in events:
        out.print(f"[dim]{e['at']}[/] {e['kind']:<12} {escape(e['message'])}")


@app.command("ack")
@handle_errors
def ack_cmd(
    step: str = typer.Argument(..., help="The manual step's id, e.g. manual-1."),
    plan: Path = PLAN_OPT,
    state: str | None = STATE_OPT,
    json_out: bool = JSON_OPT,
) -> None:
    """Acknowledge a manual step as done; with all done, the migration can succeed.

    Example: rehost ack manual-1
    """
    with _open(plan, state) as m:
        res = m.ack(step)
    if json_out:
        print_json(res)
        return
    out.print(f"acknowledged {res['id']}: {escape(res['text'])}")
    out.print(f"status: {_styled(res['status'])}")


# ------------------------------------------------------------------- cutover


def _stage_summary(detail: dict[str, Any]) -> str:
    """What a cutover stage did, in one line."""
    parts = []
    for record in detail.get("done", []):
        if "server_read_only" in record:
            was = "ON" if record["server_read_only"] else "OFF"
            parts.append(f"read_only {record['database']} (server-wide read_only, was {was})")
        elif record.get("builtin"):
            was = (
                f"mode {record['mode']:o}"
                if "mode" in record
                else f"setting was {record.get('previous') or 'unset'}"
            )
            parts.append(f"read_only {record['database']} ({was})")
        else:
            parts.append(f"ran {record['run']!r}")
    parts += list(detail.get("results", {}))
    if "plan_hash" in detail:
        parts.append(f"by {detail['who']}, plan {detail['plan_hash'][:12]}")
    return "; ".join(parts)


def _print_stage(entry: dict[str, Any]) -> None:
    _print_entry(entry, _stage_summary(entry.get("detail") or {}), width=6)


@app.command("cutover")
@handle_errors
def cutover_cmd(
    plan: Path = PLAN_OPT,
    state: str | None = STATE_OPT,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the stages without doing them."),
    force: bool = typer.Option(
        False, "--force", help="Cut over although the run has not succeeded (needs --reason)."
    ),
    rollback: bool = typer.Option(
        False,
        "--rollback",
        help="Unfreeze the source, undoing what the freeze did (needs --reason).",
    ),
    reason: str = typer.Option("", "--reason", help="Why (for --force and --rollback); recorded."),
    json_out: bool = JSON_OPT,
) -> None:
    """Cut over: freeze the source, final delta, verify, switch hooks, record.

    Each stage is saved as it ends: after a crash, run again to resume at the
    first unfinished stage; a finished cutover is reported, not repeated. The
    source is left intact and frozen, never deleted. Refused unless 'rehost run'
    succeeded with every manual step acknowledged (or --force --reason TEXT).

    Examples:

      rehost cutover --dry-run

      rehost cutover

      rehost cutover --rollback --reason "the new server drops connections"
    """
    from rehost.errors import UsageError

    if (force or rollback) and not reason.strip():
        raise UsageError("--force and --rollback need --reason TEXT: say why; it is recorded.")
    with _open(plan, state) as m:
        if rollback:
            res = m.rollback(reason)
            if json_out:
                print_json(res)
                return
            for line in res["undone"]:
                out.print(f"  undone: {escape(line)}")
            out.print(f"status: {_styled('rolled back')}  reason: {escape(reason)}")
            return
        rep = _with_progress(
            m,
            "Cutover dry run (nothing done)" if dry_run else "Cutover",
            json_out,
            lambda bar: m.cutover(
                dry_run=dry_run,
                force_reason=reason if force else None,
                progress=bar,
                on_stage=None if json_out else _print_stage,
            ),
        )
    if json_out:
        print_json(rep.to_json())
    else:
        out.print(f"cutover: {_styled(rep.status)}")
    if rep.status == "failed":
        raise typer.Exit(1)
