"""Cutover: freeze the source, a final delta, verify, switch, record — as resumable stages.

Each stage's status is in the state store (``cutover_stages``); the freeze records
every action it took (a file's previous mode, a database's previous setting) so
that a rollback undoes exactly that. The source is never deleted.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehost.errors import RehostError, UsageError
from rehost.importer import LedgerConflict
from rehost.migration.plan import Hook, ReadOnly
from rehost.migration.state import Step
from rehost.progress import NoProgress, Progress

if TYPE_CHECKING:
    from rehost.migration.core import Migration

STAGES = ("freeze", "delta", "verify", "switch", "record")
OUTPUT_LIMIT = 4000


class CutoverRefused(UsageError):
    """The migration is not ready for cutover (its run has not succeeded)."""


class HookFailed(RehostError):
    """A cutover hook exited non-zero or timed out."""


@dataclass
class CutoverReport:
    dry_run: bool
    status: str
    stages: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "status": self.status, "stages": self.stages}


def plan_hash(m: Migration) -> str:
    return hashlib.sha256(m.plan_path.read_bytes()).hexdigest()


def who() -> str:
    try:
        return os.environ.get("REHOST_USER") or getpass.getuser()
    except Exception:  # no user name (a container without one)
        return str(os.getuid())


# ------------------------------------------------------------------- hooks


def run_hook(m: Migration, command: str, timeout: float, label: str) -> dict[str, Any]:
    """Run ``command`` in the plan's folder; its output goes to the log, scrubbed."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            command,
            shell=True,
            cwd=m.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "REHOST_PLAN": str(m.plan_path)},
        )
    except subprocess.TimeoutExpired:
        m.store.event(f"cutover:{label}", "hook", f"{command!r} timed out after {timeout:g} s")
        raise HookFailed(f"The {label} hook {command!r} timed out after {timeout:g} s.") from None
    output = (proc.stdout + proc.stderr).strip()[-OUTPUT_LIMIT:]
    m.store.event(
        f"cutover:{label}",
        "hook",
        f"{command!r} exited {proc.returncode}" + (f": {output}" if output else ""),
    )
    if proc.returncode != 0:
        raise HookFailed(
            f"The {label} hook {command!r} exited {proc.returncode}"
            + (f": {m.store.scrub(output[-500:])}" if output else ".")
        )
    return {"run": command, "exit": 0, "seconds": round(time.perf_counter() - started, 3)}


# --------------------------------------------------------------- read-only


def _sqlite_path(url: str) -> Path | None:
    match = re.match(r"^sqlite[^:]*:///(.+?)(\?.*)?$", url)
    return Path(match.group(1)) if match and match.group(1) != ":memory:" else None


_PG_SETTING = (
    "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
)


def _pg(url: str) -> Any:
    from rehost.db.connect import open_engine

    return open_engine(url).execution_options(isolation_level="AUTOCOMMIT")


def _is_mysql(url: str) -> bool:
    return url.startswith(("mysql", "mariadb"))


# MariaDB error 1227: "Access denied; you need (at least one of) the ... privilege(s)"
_ACCESS_DENIED = 1227


def _mysql_read_only(m: Migration, database: str, on: bool) -> bool:
    """SET GLOBAL read_only (server-wide) on a MariaDB/MySQL source; returns the value
    it had before."""
    import sqlalchemy as sa

    engine = _pg(m.db_url(database))
    try:
        with engine.connect() as conn:
            previous = bool(int(conn.exec_driver_sql("SELECT @@GLOBAL.read_only").scalar_one()))
            if previous != on:
                conn.exec_driver_sql(f"SET GLOBAL read_only = {'ON' if on else 'OFF'}")
    except sa.exc.DBAPIError as exc:
        orig = exc.orig or exc
        reason = str(orig).strip().splitlines()[0]
        if getattr(orig, "args", (None,))[0] == _ACCESS_DENIED:
            raise RehostError(
                f"Setting read_only on the server of {database} needs the READ_ONLY ADMIN or "
                f"SUPER privilege (MySQL: SUPER or SYSTEM_VARIABLES_ADMIN): {reason}. Grant "
                "it to that user, or freeze the source with a hook (run: ...) instead."
            ) from None
        raise RehostError(
            f"Could not set read_only on the server of {database}: {reason}."
        ) from None
    finally:
        engine.dispose()
    return previous


def freeze_read_only(m: Migration, action: ReadOnly) -> dict[str, Any]:
    """Make a source database read-only; returns what to restore."""
    url = m.db_url(action.database)
    path = _sqlite_path(url)
    if path is not None:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        return {
            "builtin": "read_only",
            "database": action.database,
            "file": str(path),
            "mode": mode,
        }
    if _is_mysql(url):
        # read_only is server-wide: every database on that server stops taking writes
        # (but from users with READ_ONLY ADMIN or SUPER, such as root).
        previous = _mysql_read_only(m, action.database, True)
        return {
            "builtin": "read_only",
            "database": action.database,
            "server_read_only": previous,
        }
    if not url.startswith("postgresql"):
        raise UsageError(
            f"The read_only built-in handles SQLite, PostgreSQL and MariaDB/MySQL sources; "
            f"freeze {action.database} with a hook (run: ...) instead."
        )
    engine = _pg(url)
    try:
        with engine.connect() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar_one()
            setting: str | None = None
            for item in conn.exec_driver_sql(_PG_SETTING).scalar() or []:
                key, _, value = item.partition("=")
                if key == "default_transaction_read_only":
                    setting = value
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"ALTER DATABASE {quoted} SET default_transaction_read_only = on")
    finally:
        engine.dispose()
    return {"builtin": "read_only", "database": action.database, "previous": setting}


def unfreeze_read_only(m: Migration, done: dict[str, Any]) -> str:
    if "file" in done:
        Path(done["file"]).chmod(int(done["mode"]))
        return f"{done['database']}: mode {int(done['mode']):o} restored"
    if "server_read_only" in done:
        if done["server_read_only"]:
            return f"{done['database']}: the server's read_only was ON before the freeze: left ON"
        _mysql_read_only(m, done["database"], False)
        return f"{done['database']}: the server's read_only restored to OFF"
    engine = _pg(m.db_url(done["database"]))
    try:
        with engine.connect() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar_one()
            quoted = conn.dialect.identifier_preparer.quote(name)
            # this session was opened read-only by the setting: allow its own ALTER
            conn.exec_driver_sql("SET SESSION default_transaction_read_only = off")
            if done.get("previous") is None:
                conn.exec_driver_sql(f"ALTER DATABASE {quoted} RESET default_transaction_read_only")
            else:
                value = "on" if done["previous"] in ("on", "true", "1") else "off"
                conn.exec_driver_sql(
                    f"ALTER DATABASE {quoted} SET default_transaction_read_only = {value}"
                )
    finally:
        engine.dispose()
    return f"{done['database']}: default_transaction_read_only restored"


# ------------------------------------------------------------------ stages


def _describe(m: Migration, action: ReadOnly | Hook) -> str:
    if isinstance(action, ReadOnly):
        try:
            server_wide = _is_mysql(m.db_url(action.database))
        except RehostError:  # e.g. an env: variable not set: said when it is needed
            server_wide = False
        if server_wide:
            return f"read_only {action.database} (SET GLOBAL read_only: the whole server)"
        return f"read_only {action.database}"
    return f"run {action.run!r}"


def _actions(m: Migration, stage: str, step: Step, ctx_progress: Progress) -> None:
    """Run the freeze or switch actions not yet done, recording each as it completes."""
    actions = m.plan.cutover.freeze if stage == "freeze" else m.plan.cutover.switch
    done: list[dict[str, Any]] = list(step.detail.get("done", []))
    for i, action in enumerate(actions):
        if i < len(done):
            continue  # done before a crash: never twice
        if isinstance(action, ReadOnly):
            record = freeze_read_only(m, action)
        else:
            record = run_hook(m, action.run, action.timeout, stage)
            if action.undo:
                record["undo"] = action.undo
                record["timeout"] = action.timeout
        m.store.event(f"cutover:{stage}", "action", f"{stage}: {_describe(m, action)} done")
        done.append(record)
        step.detail["done"] = done
        m.store.stage_detail(stage, step.detail)


def _delta(m: Migration, step: Step, progress: Progress) -> None:
    """Re-run the import steps (export + import, or a clone re-verify) and the transfers."""
    from rehost.migration import steps as S
    from rehost.migration.core import StepContext

    results: dict[str, Any] = dict(step.detail.get("results", {}))
    work: list[tuple[str, Callable[..., Any]]] = []
    for move in m.plan.databases:
        if move.method == "bundle":
            work += [(f"export:{move.name}", S.export), (f"import:{move.name}", S.import_)]
        else:
            work.append((f"verify:db:{move.name}", S.verify_db))
    work += [(f"transfer:{s.name}", S.transfer) for s in m.plan.shares]
    for sid, fn in work:
        if sid in results:
            continue
        ctx = StepContext(m, Step(sid, "cutover", 0), False, progress)
        try:
            status, detail = fn(ctx)
        except LedgerConflict as exc:
            raise LedgerConflict(
                f"{exc} To keep the target's changes, take them into the source first; to "
                f"overwrite them, run 'rehost run --phase import --rerun --force'. Then run "
                "'rehost cutover' again."
            ) from None
        if status == "incomplete":
            raise CutoverRefused(
                f"The final import {sid} named new manual steps: do them, 'rehost ack' them, "
                "then run 'rehost cutover' again."
            )
        results[sid] = detail
        step.detail["results"] = results
        m.store.stage_detail("delta", step.detail)


def _verify(m: Migration, step: Step, progress: Progress) -> None:
    from rehost.migration.core import StepContext

    results: dict[str, Any] = {}
    for d in m.step_defs():
        if d.phase == "verify":
            ctx = StepContext(m, Step(d.id, "cutover", 0), False, progress)
            results[d.id] = d.run(ctx)[1]
    step.detail["results"] = results
    m.store.stage_detail("verify", step.detail)


def _record(m: Migration, step: Step, progress: Progress) -> None:
    info = {"who": who(), "plan_hash": plan_hash(m)}
    force = m.store.cutover_stages(STAGES)[0].detail.get("force_reason")
    m.store.add_history("cutover", info["who"], info["plan_hash"], force, {})
    step.detail.update(info)
    m.store.stage_detail("record", step.detail)


def _preview(m: Migration, stage: str) -> list[str]:
    c = m.plan.cutover
    if stage == "freeze":
        return [_describe(m, a) for a in c.freeze] or ["nothing to freeze (no cutover.freeze)"]
    if stage == "switch":
        return [_describe(m, a) for a in c.switch] or ["nothing to switch (no cutover.switch)"]
    if stage == "delta":
        out = []
        for move in m.plan.databases:
            if move.method == "bundle":
                out.append(f"export + import {move.name}")
            else:
                out.append(f"re-verify the clone {move.name}")
        return out + [f"transfer {s.name}" for s in m.plan.shares]
    if stage == "verify":
        return [d.id for d in m.step_defs() if d.phase == "verify"]
    return ["record the time, who, and the plan's hash"]


def cutover(
    m: Migration,
    *,
    dry_run: bool = False,
    force_reason: str | None = None,
    progress: Progress | None = None,
    on_stage: Callable[[dict[str, Any]], None] | None = None,
) -> CutoverReport:
    stages = m.store.cutover_stages(STAGES)
    if dry_run:
        report = CutoverReport(True, "preview")
        for s in stages:
            entry: dict[str, Any] = {"id": s.id, "status": s.status, "actions": _preview(m, s.id)}
            report.stages.append(entry)
            if on_stage:
                on_stage(entry)
        return report
    if all(s.status == "succeeded" for s in stages):
        report = CutoverReport(False, "already done")
        for s in stages:
            entry = {"id": s.id, "status": "already done", "detail": s.detail}
            report.stages.append(entry)
            if on_stage:
                on_stage(entry)
        return report
    if stages[0].attempts == 0:  # not started: the run must have succeeded
        status = m.status()["status"]
        if status != "succeeded":
            if not (force_reason and force_reason.strip()):
                left = [x["id"] for x in m.status()["manual_steps"] if not x["acknowledged_at"]]
                why = f"the migration is {status.upper()}" + (
                    f" (manual steps not acknowledged: {', '.join(left)})" if left else ""
                )
                raise CutoverRefused(
                    f"Cutover needs a migration whose run succeeded: {why}. Finish 'rehost run' "
                    "and 'rehost ack', or pass --force --reason TEXT."
                )
            stages[0].detail["force_reason"] = force_reason
            m.store.stage_detail("freeze", stages[0].detail)
            m.store.event(None, "forced", f"cutover forced ({status}): {force_reason}")
    sink = progress or NoProgress()
    report = CutoverReport(False, "running")
    m.store.event(None, "cutover", "cutover started")
    runners = {
        "freeze": lambda st: _actions(m, "freeze", st, sink),
        "delta": lambda st: _delta(m, st, sink),
        "verify": lambda st: _verify(m, st, sink),
        "switch": lambda st: _actions(m, "switch", st, sink),
        "record": lambda st: _record(m, st, sink),
    }
    for s in stages:
        if s.status == "succeeded":
            entry = {"id": s.id, "status": "already done", "detail": s.detail}
        else:
            entry = _run_stage(m, s, runners[s.id])
        report.stages.append(entry)
        if on_stage:
            on_stage(entry)
        if entry["status"] == "failed":
            report.status = "failed"
            break
    else:
        report.status = "succeeded"
    m.store.event(None, "cutover", f"cutover ended: {report.status}")
    return report


def _run_stage(m: Migration, s: Step, fn: Callable[[Step], None]) -> dict[str, Any]:
    from rehost.migration.core import crash_point

    m.store.stage_start(s.id)
    started = time.perf_counter()
    error = None
    try:
        crash_point("before", f"cutover:{s.id}")
        fn(s)
        crash_point("after", f"cutover:{s.id}")
    except RehostError as exc:
        error = str(exc)
    except Exception as exc:  # recorded; a re-run resumes at this stage
        error = f"unexpected {type(exc).__name__}: {exc}"
    except BaseException:
        m.store.stage_finish(s.id, "failed", time.perf_counter() - started, "interrupted")
        raise
    seconds = time.perf_counter() - started
    status = "failed" if error else "succeeded"
    m.store.stage_finish(s.id, status, seconds, error)
    entry: dict[str, Any] = {
        "id": s.id,
        "status": status,
        "seconds": round(seconds, 3),
        "detail": m.store.cutover_stages(STAGES)[STAGES.index(s.id)].detail,
    }
    if error:
        entry["error"] = m.store.scrub(error)
    return entry


def rollback(m: Migration, reason: str) -> dict[str, Any]:
    """Undo what the freeze (and switch hooks with ``undo``) did, as recorded; record why."""
    if not reason.strip():
        raise UsageError("A rollback needs a reason (--reason TEXT).")
    stages = {s.id: s for s in m.store.cutover_stages(STAGES)}
    frozen = stages["freeze"].detail.get("done", [])
    switched = stages["switch"].detail.get("done", [])
    if not frozen and not switched:
        raise UsageError("Nothing to roll back: no cutover has frozen the source.")
    undone: list[str] = []
    for label, done in (("switch", switched), ("freeze", frozen)):
        for record in reversed(done):
            if record.get("builtin") == "read_only":
                undone.append(unfreeze_read_only(m, record))
            elif record.get("undo"):
                run_hook(m, record["undo"], float(record.get("timeout", 300)), f"rollback-{label}")
                undone.append(f"ran {record['undo']!r}")
            else:
                undone.append(f"{record['run']!r} has no undo: nothing run")
    for line in undone:
        m.store.event("cutover:rollback", "undone", line)
    m.store.add_history("rollback", who(), plan_hash(m), reason, {"undone": undone})
    m.store.event(None, "rollback", f"cutover rolled back: {reason}")
    m.store.reset_cutover()
    return {"status": "rolled back", "reason": reason, "undone": undone}


def cutover_status(m: Migration) -> dict[str, Any]:
    stages = m.store.cutover_stages(STAGES)
    from rehost.migration.core import combine

    history = m.store.history()
    if any(s.attempts for s in stages):
        status = combine([s.status for s in stages])
    else:
        status = "rolled back" if history and history[-1]["kind"] == "rollback" else "pending"
    return {"status": status, "stages": [s.to_json() for s in stages], "history": history}
