"""A migration: the plan's moves as phases of steps, run and resumed from the state store."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehost.db.connect import redact
from rehost.errors import RehostError, UsageError
from rehost.files.location import RemoteOptions
from rehost.migration.codes import PlanFinding
from rehost.migration.plan import DatabaseMove, Plan, ShareMove, load_plan
from rehost.migration.state import StateStore, Step, is_database_url
from rehost.profile.model import Profile
from rehost.progress import NoProgress, Progress

PHASES = ("inventory", "validate", "export", "import", "clone", "transfer", "verify")

# A library call the steps make; named here so one place lists what a run touches.
Runner = Callable[["StepContext"], tuple[str, dict[str, Any]]]


class ValidationFailed(RehostError):
    """The plan's checks found errors that were not accepted."""


class VerifyFailed(RehostError):
    """The target does not hold what the source does after the move."""


class PhaseOrder(UsageError):
    """A phase was asked for before the phases it needs."""


@dataclass(frozen=True)
class StepDef:
    id: str
    phase: str
    fingerprint: str
    run: Runner


@dataclass
class StepContext:
    migration: Migration
    step: Step
    dry_run: bool
    progress: Progress
    # overwrite records changed in the target since rehost wrote them (the ledger)
    force: bool = False


@dataclass
class RunReport:
    """What one ``run`` did: per step, its status (or ``already done``) and counts."""

    dry_run: bool
    phase: str | None
    status: str
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "phase": self.phase,
            "status": self.status,
            "steps": self.steps,
        }


def combine(statuses: list[str]) -> str:
    """One status for many: a phase's from its steps, a migration's from its phases."""
    counted = [s for s in statuses if s != "skipped"]
    if not counted:
        return "skipped"
    for s in ("failed", "running", "pending"):
        if s in counted:
            return s
    return "incomplete" if "incomplete" in counted else "succeeded"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name)


def _fingerprint(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def crash_point(where: str, step_id: str) -> None:
    """For tests of resuming: ``REHOST_TEST_KILL=before:STEP`` (or ``after:STEP``) kills
    this process with SIGKILL as that step starts its work (or ends it, before its
    end is recorded), like a crash or ``kill -9`` at that moment. Cutover stages are
    ``cutover:STAGE``."""
    import os

    if os.environ.get("REHOST_TEST_KILL") == f"{where}:{step_id}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _is_url(text: str) -> bool:
    return "://" in text


class Migration:
    """The migration described by a plan file, with its state beside it.

    ``Migration("rehost.yaml").run()`` runs every phase not yet done;
    ``status()``, ``log()``, ``validate()`` and ``ack()`` are what the command
    line shows. Library calls are quiet: progress goes to the sink given.
    """

    def __init__(self, plan_path: Path | str = "rehost.yaml", state: str | None = None) -> None:
        """``state``: where the state is kept, overriding the plan's ``options.state``: a
        PostgreSQL URL (or ``env:VAR``) for a store a team shares, or an SQLite file."""
        self.plan_path = Path(plan_path).resolve()
        self.plan: Plan = load_plan(self.plan_path)
        self.base = self.plan_path.parent
        self.state_dir = self.base / self.plan.options.state_dir
        self._password: str | None = None
        # Moves exported by this object's dry runs (their bundles are fresh).
        self.dry_exports: set[str] = set()
        where: Path | str = self.state_dir / "state.db"
        secrets = self._url_passwords()
        spec = state or self.plan.options.state
        if spec:
            spec = self._env(spec)
            if is_database_url(spec):
                from sqlalchemy.engine import make_url

                where = spec
                secrets.append(str(make_url(spec).password or ""))
            elif "://" in spec:
                raise UsageError(
                    f"The state store {redact(spec)} is neither a postgresql:// URL nor a file."
                )
            else:
                where = self.base / Path(spec).expanduser()
        self.store = StateStore(where, self.plan.name, str(self.plan_path), secrets=secrets)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Migration:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------ resolving

    def _url_passwords(self) -> list[str]:
        from sqlalchemy.engine import make_url

        out = []
        for server in [*self.plan.sources.values(), *self.plan.targets.values()]:
            for db in server.databases.values():
                try:
                    out.append(make_url(self._env(db.url)).password or "")
                except Exception:  # not a URL yet: the checks say so
                    continue
        return [str(p) for p in out if p]

    @staticmethod
    def _env(text: str) -> str:
        if text.startswith("env:"):
            import os

            value = os.environ.get(text[4:], "")
            if not value:
                raise UsageError(
                    f"The plan reads a URL from the environment variable {text[4:]}, "
                    "which is not set."
                )
            return value
        return text

    def db_url(self, ref: str, role: str = "source") -> str:
        """The database URL for ``server.name``; relative SQLite paths are from the plan."""
        servers = self.plan.sources if role == "source" else self.plan.targets
        server, _, name = ref.partition(".")
        url = self._env(servers[server].databases[name].url)
        m = re.match(r"^(sqlite[^:]*:///)(.*)$", url)
        if m and m.group(2) and m.group(2) != ":memory:" and not m.group(2).startswith("/"):
            url = m.group(1) + str(self.base / m.group(2))
        return url

    def share_url(self, ref: str, role: str = "source") -> str:
        servers = self.plan.sources if role == "source" else self.plan.targets
        server, _, name = ref.partition(".")
        url = servers[server].shares[name].url
        if _is_url(url):
            return url
        return str((self.base / Path(url).expanduser()).absolute())

    def remote_options(self, ref: str, role: str = "source") -> RemoteOptions:
        """How to reach the share ``server.name`` when it is on SFTP or S3."""
        servers = self.plan.sources if role == "source" else self.plan.targets
        server, _, name = ref.partition(".")
        share = servers[server].shares[name]
        password = None
        if share.sftp_password:
            password = self.read_secret(share.sftp_password, f"the SFTP password of {ref}")

        def path(p: str | None) -> str | None:
            return None if p is None else str(self.base / Path(p).expanduser())

        return RemoteOptions(
            sftp_password=password,
            sftp_known_hosts=path(share.sftp_known_hosts),
            sftp_key=path(share.sftp_key),
            s3_endpoint_url=share.s3_endpoint_url,
            s3_region=share.s3_region,
        )

    def read_secret(self, spec: str, what: str) -> str:
        """The value named by ``env:VAR`` or ``file:PATH`` (relative to the plan), kept
        out of the state: every text the store records is scrubbed of it."""
        import os

        how, _, where = spec.partition(":")
        if how == "env":
            value = os.environ.get(where, "").strip()
            if not value:
                raise UsageError(f"{what} is to come from ${where}, which is not set or empty.")
        else:
            path = self.base / Path(where).expanduser()
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise UsageError(f"{what}: cannot read {path} ({exc.strerror}).") from None
        if value not in self.store._secrets:
            self.store._secrets.append(value)
        return value

    def profile(self, move: DatabaseMove) -> Profile:
        """The move's profile; its ``file:`` key paths are relative to the profile file."""
        from rehost.profile.model import load_profile

        if move.profile is None:
            return Profile()
        path = self.base / move.profile
        prof = load_profile(path)
        updates = {}
        for attr in ("source_key", "target_key"):
            spec = getattr(prof.secrets, attr)
            if spec and spec.startswith("file:") and not Path(spec[5:]).expanduser().is_absolute():
                updates[attr] = "file:" + str(path.parent / spec[5:])
        if updates:
            prof = prof.model_copy(update={"secrets": prof.secrets.model_copy(update=updates)})
        return prof

    def password(self) -> str:
        """The bundle password named by ``options.password``."""
        if self._password is None:
            from rehost.crypto import resolve_key

            spec = self.plan.options.password
            if spec is None:
                raise UsageError(
                    "The databases hold secrets, so their bundles need a password: set "
                    "options.password in the plan to env:VAR or file:PATH."
                )
            if spec.startswith("file:") and not Path(spec[5:]).expanduser().is_absolute():
                spec = "file:" + str(self.base / spec[5:])
            self._password = resolve_key(spec, "bundle password").strip()
            self.store._secrets.append(self._password)
        return self._password

    def bundle_dir(self, move: DatabaseMove, dry_run: bool = False) -> Path:
        return self.state_dir / ("dry-run" if dry_run else "bundles") / _safe(move.name)

    def files_state_dir(self, move: ShareMove) -> Path:
        return self.state_dir / "files" / _safe(move.name)

    # ---------------------------------------------------------------- steps

    def step_defs(self) -> list[StepDef]:
        from rehost.migration import steps as S

        p = self.plan
        defs: list[StepDef] = []
        seen: set[str] = set()
        for move in p.databases:
            if move.from_ not in seen:
                seen.add(move.from_)
                fp = _fingerprint(p.sources[move.from_.split(".")[0]].databases, move.profile)
                defs.append(StepDef(f"inventory:db:{move.from_}", "inventory", fp, S.inventory_db))
        for smove in p.shares:
            if smove.from_ not in seen:
                seen.add(smove.from_)
                fp = _fingerprint(p.sources[smove.from_.split(".")[0]].shares)
                defs.append(
                    StepDef(f"inventory:share:{smove.from_}", "inventory", fp, S.inventory_share)
                )
        defs.append(StepDef("validate", "validate", _fingerprint(p.model_dump()), S.validate))
        for move in p.databases:
            fp = _fingerprint(
                move.model_dump(), self.db_url(move.from_), self.db_url(move.to, "target")
            )
            if move.method == "bundle":
                defs.append(StepDef(f"export:{move.name}", "export", fp, S.export))
                defs.append(StepDef(f"import:{move.name}", "import", fp, S.import_))
            else:
                defs.append(StepDef(f"clone:{move.name}", "clone", fp, S.clone))
        for smove in p.shares:
            fp = _fingerprint(smove.model_dump(), self.share_url(smove.from_))
            defs.append(StepDef(f"transfer:{smove.name}", "transfer", fp, S.transfer))
        for move in p.databases:
            fp = _fingerprint(move.model_dump())
            defs.append(StepDef(f"verify:db:{move.name}", "verify", fp, S.verify_db))
        for smove in p.shares:
            fp = _fingerprint(smove.model_dump())
            defs.append(StepDef(f"verify:share:{smove.name}", "verify", fp, S.verify_share))
        return defs

    def database_move(self, step_id: str) -> DatabaseMove:
        name = step_id.rsplit(":", 1)[1]
        return next(m for m in self.plan.databases if m.name == name)

    def share_move(self, step_id: str) -> ShareMove:
        name = step_id.rsplit(":", 1)[1]
        return next(m for m in self.plan.shares if m.name == name)

    # ------------------------------------------------------------------ run

    def run(
        self,
        phase: str | None = None,
        *,
        dry_run: bool = False,
        rerun: bool = False,
        force: bool = False,
        progress: Progress | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> RunReport:
        """Run the phases in order (or just ``phase``), skipping steps already done.

        State is saved after every step, so an interrupted run resumes where it
        stopped. With ``dry_run`` nothing is written to a target and no step's
        status changes: the report holds what the real run would do. ``rerun``
        runs the chosen steps again even if done (a later import: the ledger
        stops it on records changed in the target since); ``force`` overwrites
        those records.
        """
        if phase is not None and phase not in PHASES:
            raise UsageError(f"No phase '{phase}': the phases are {', '.join(PHASES)}.")
        with nullcontext() if dry_run else self.store.lock("run"):
            return self._run(phase, dry_run, rerun, force, progress, on_step)

    def _run(
        self,
        phase: str | None,
        dry_run: bool,
        rerun: bool,
        force: bool,
        progress: Progress | None,
        on_step: Callable[[dict[str, Any]], None] | None,
    ) -> RunReport:
        defs = self.step_defs()
        self.store.sync_steps([(d.id, d.phase, d.fingerprint) for d in defs])
        state = {s.id: s for s in self.store.steps()}
        chosen = [d for d in defs if phase is None or d.phase == phase]
        if phase is not None and not dry_run:
            before = PHASES[: PHASES.index(phase)]
            waiting = [d.id for d in defs if d.phase in before and not state[d.id].done]
            if waiting:
                raise PhaseOrder(
                    f"Phase {phase} needs the phases before it: {', '.join(waiting)} not done "
                    "yet. Run 'rehost run' (all phases) or those phases first."
                )
        report = RunReport(dry_run=dry_run, phase=phase, status="running")
        kind = "dry-run" if dry_run else "run"
        self.store.event(None, kind, f"{kind} started" + (f" (phase {phase})" if phase else ""))
        sink = progress or NoProgress()
        failed = False
        if force and not dry_run:
            self.store.event(None, "forced", "records changed in the target may be overwritten")
        for d in chosen:
            step = state[d.id]
            if step.done and not dry_run and not rerun:
                entry = {
                    "id": d.id,
                    "phase": d.phase,
                    "status": "already done",
                    "detail": step.detail,
                }
                report.steps.append(entry)
                if on_step:
                    on_step(entry)
                continue
            entry = self._run_step(d, step, dry_run, sink, force)
            report.steps.append(entry)
            if on_step:
                on_step(entry)
            if entry["status"] == "failed":
                failed = True
                break
        if dry_run:
            report.status = "failed" if failed else "preview"
        else:
            report.status = self.status()["status"]
        self.store.event(None, kind, f"{kind} ended: {report.status}")
        return report

    def _run_step(
        self, d: StepDef, step: Step, dry_run: bool, sink: Progress, force: bool = False
    ) -> dict[str, Any]:
        ctx = StepContext(self, step, dry_run, sink, force)
        if not dry_run:
            self.store.start(d.id)
        started = time.perf_counter()
        status, error = "failed", None
        detail: dict[str, Any] = {}
        try:
            crash_point("before", d.id)
            status, detail = d.run(ctx)
            crash_point("after", d.id)
        except RehostError as exc:
            error = str(exc)
        except Exception as exc:  # a step's unexpected failure stops the run, recorded
            error = f"unexpected {type(exc).__name__}: {exc}"
        except BaseException:
            if not dry_run:
                self.store.finish(
                    d.id, "failed", time.perf_counter() - started, error="interrupted"
                )
            raise
        seconds = time.perf_counter() - started
        if dry_run:
            self.store.event(d.id, "dry-run", f"{d.id}: {status} {json.dumps(detail, default=str)}")
        else:
            self.store.finish(d.id, status, seconds, detail=detail, error=error)
        entry = {
            "id": d.id,
            "phase": d.phase,
            "status": status,
            "seconds": round(seconds, 3),
            "detail": detail,
        }
        if error:
            entry["error"] = self.store.scrub(error)
        return entry

    # --------------------------------------------------------------- checks

    def validate(self, accept: dict[str, str] | None = None) -> CheckReport:
        """Run every check on the plan; ``accept`` maps codes to the reason they are accepted."""
        from rehost.migration.checks import check_plan
        from rehost.migration.codes import CODES

        for code, reason in (accept or {}).items():
            if code not in CODES:
                raise UsageError(f"No validation code {code}: see 'rehost check --codes'.")
            if not reason.strip():
                raise UsageError(f"Accepting {code} needs a reason (--reason TEXT).")
            self.store.accept(code, reason)
        findings = check_plan(self)
        accepted = self.store.accepted()
        return CheckReport(findings, accepted)

    # --------------------------------------------------------- status, log

    def status(self) -> dict[str, Any]:
        steps = [s for s in self.store.steps() if s.id in {d.id for d in self.step_defs()}]
        phases = []
        for ph in PHASES:
            mine = [s for s in steps if s.phase == ph]
            secs = [s.seconds for s in mine if s.seconds is not None]
            phases.append(
                {
                    "name": ph,
                    "status": combine([s.status for s in mine]),
                    "seconds": round(sum(secs), 3) if secs else None,
                    "done": sum(1 for s in mine if s.done),
                    "total": len(mine),
                    "steps": [s.to_json() for s in mine],
                }
            )
        manual = self.store.manual_steps()
        return {
            "name": self.plan.name,
            "plan": str(self.plan_path),
            "state": str(self.store.path),
            "status": combine([str(p["status"]) for p in phases]) if steps else "pending",
            "phases": phases,
            "manual_steps": manual,
            "accepted": self.store.accepted(),
            "cutover": self.cutover_status(),
        }

    # --------------------------------------------------------------- cutover

    def cutover(
        self,
        dry_run: bool = False,
        force_reason: str | None = None,
        *,
        progress: Progress | None = None,
        on_stage: Callable[[dict[str, Any]], None] | None = None,
    ) -> Any:
        """Freeze the source, final delta, verify, switch, record: resumable stages.

        Refused unless the run succeeded (manual steps acknowledged), or
        ``force_reason`` says why. A finished cutover is reported, not repeated.
        """
        from rehost.migration.cutover import cutover

        with nullcontext() if dry_run else self.store.lock("cutover"):
            return cutover(
                self,
                dry_run=dry_run,
                force_reason=force_reason,
                progress=progress,
                on_stage=on_stage,
            )

    def rollback(self, reason: str) -> dict[str, Any]:
        """Unfreeze the source (undo what the freeze recorded) and record why."""
        from rehost.migration.cutover import rollback

        with self.store.lock("rollback"):
            return rollback(self, reason)

    def cutover_status(self) -> dict[str, Any]:
        from rehost.migration.cutover import cutover_status

        return cutover_status(self)

    def log(self) -> list[dict[str, Any]]:
        return self.store.events()

    def ack(self, manual_id: str) -> dict[str, Any]:
        """Acknowledge a manual step as done; steps it held INCOMPLETE then succeed."""
        manual = {m["id"]: m for m in self.store.manual_steps()}
        if manual_id not in manual:
            known = ", ".join(manual) or "none yet (they appear when an import names them)"
            raise UsageError(f"No manual step '{manual_id}'. Manual steps: {known}.")
        m = manual[manual_id]
        if m["acknowledged_at"] is None:
            self.store.acknowledge(manual_id)
        self.settle_manual_steps()
        return {"id": manual_id, "text": m["text"], "status": self.status()["status"]}

    def settle_manual_steps(self) -> None:
        """INCOMPLETE steps whose manual steps are all acknowledged become SUCCEEDED."""
        manual = self.store.manual_steps()
        for step in self.store.steps():
            if step.status != "incomplete":
                continue
            mine = [m for m in manual if step.id in m["steps"]]
            if all(m["acknowledged_at"] for m in mine):
                self.store.set_status(step.id, "succeeded")
                self.store.event(step.id, "succeeded", f"{step.id}: manual steps acknowledged")


@dataclass
class CheckReport:
    findings: list[PlanFinding]
    accepted: dict[str, str]

    @property
    def blocking(self) -> list[PlanFinding]:
        return [f for f in self.findings if f.severity == "error" and f.code not in self.accepted]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": [
                {**f.to_json(), "accepted": self.accepted.get(f.code)}
                for f in sorted(self.findings, key=PlanFinding.sort_key)
            ],
            "accepted": self.accepted,
        }


def free_bytes(path: Path) -> int | None:
    """Free bytes on the file system that holds ``path`` (or its nearest existing parent)."""
    p = path
    while not p.exists():
        if p.parent == p:
            return None
        p = p.parent
    return shutil.disk_usage(p).free
