"""What each kind of step does, real or dry: a function of the step's context that
returns its status and the counts to record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rehost.clone import clone as db_clone
from rehost.errors import RehostError
from rehost.export import export as db_export
from rehost.files.inventory import inventory as files_inventory
from rehost.files.location import RemoteOptions
from rehost.files.owners import OwnerMap
from rehost.files.throttle import parse_rate
from rehost.files.transfer import TransferOptions
from rehost.files.transfer import transfer as files_transfer
from rehost.files.verify import verify as files_verify
from rehost.importer import import_ as db_import
from rehost.inspect import inspect as db_inspect

if TYPE_CHECKING:
    from rehost.migration.core import Migration, StepContext
    from rehost.migration.plan import ShareMove

Outcome = tuple[str, dict[str, Any]]


def inventory_db(ctx: StepContext) -> Outcome:
    m = ctx.migration
    ref = ctx.step.id.split(":", 2)[2]
    move = next(d for d in m.plan.databases if d.from_ == ref)
    inv = db_inspect(m.db_url(ref), profile=m.profile(move))
    return "succeeded", {
        "tables": len(inv.rows),
        "rows": sum(inv.rows.values()),
        "version": inv.version.detail if inv.version else None,
    }


def inventory_share(ctx: StepContext) -> Outcome:
    m = ctx.migration
    ref = ctx.step.id.split(":", 2)[2]
    inv = files_inventory(m.share_url(ref), m.remote_options(ref))
    data = inv.to_json()
    return "succeeded", {"counts": data["counts"], "bytes": data["bytes"]}


def validate(ctx: StepContext) -> Outcome:
    from rehost.migration.core import ValidationFailed

    rep = ctx.migration.validate()
    counts = {s: sum(1 for f in rep.findings if f.severity == s) for s in ("error", "warning")}
    detail = {"errors": counts["error"], "warnings": counts["warning"], "accepted": rep.accepted}
    if not rep.ok and not ctx.dry_run:
        codes = ", ".join(sorted({f"{f.code} ({f.subject})" for f in rep.blocking}))
        raise ValidationFailed(
            f"Validation found errors: {codes}. See 'rehost check'; fix them, or accept one "
            "with 'rehost check --accept CODE --reason TEXT'."
        )
    return ("succeeded" if rep.ok else "failed"), detail


def _password(ctx: StepContext) -> Any:
    return ctx.migration.password


def export(ctx: StepContext) -> Outcome:
    m = ctx.migration
    move = m.database_move(ctx.step.id)
    res = db_export(
        m.db_url(move.from_),
        m.bundle_dir(move, ctx.dry_run),
        profile=m.profile(move),
        only=move.only,
        password=_password(ctx),
        progress=ctx.progress,
    )
    if ctx.dry_run:
        m.dry_exports.add(move.name)
    return "succeeded", {"records": sum(res.counts.values()), "files": res.files}


def import_(ctx: StepContext) -> Outcome:
    m = ctx.migration
    move = m.database_move(ctx.step.id)
    bundle = m.bundle_dir(move, ctx.dry_run)
    if ctx.dry_run and move.name not in m.dry_exports:
        export(ctx)  # a dry run of the import phase alone: a fresh bundle, never a stale one
    rep = db_import(
        bundle,
        m.db_url(move.to, "target"),
        on_conflict=move.on_conflict,
        preview=ctx.dry_run,
        profile=m.profile(move),
        password=_password(ctx),
        ignore_version_check=m.plan.options.ignore_version_check,
        progress=ctx.progress,
        ledger=move.ledger,
        force=ctx.force,
    )
    detail = {"totals": rep.totals(), "manual_steps": len(rep.manual_steps)}
    changed = [w for w in rep.warnings if "changed in the target since" in w]
    if changed:  # a dry run: the real import stops on them
        detail["changed_in_target"] = changed[0].split(" record(s)", 1)[0]
    if ctx.dry_run:
        return "preview", detail
    if rep.status == "incomplete":
        m.store.add_manual_steps(rep.manual_steps, ctx.step.id)
        mine = [x for x in m.store.manual_steps() if ctx.step.id in x["steps"]]
        if not all(x["acknowledged_at"] for x in mine):
            return "incomplete", detail
    return "succeeded", detail


def _target_has_tables(url: str, source_url: str) -> bool | None:
    """Whether the target holds any of the source's tables; None if it cannot be reached."""
    import sqlalchemy as sa

    from rehost.db.connect import open_engine

    src = open_engine(source_url)
    try:
        names = set(sa.inspect(src).get_table_names())
    finally:
        src.dispose()
    try:
        tgt = open_engine(url, must_exist=False)  # a new SQLite file is an empty target
    except RehostError:
        return None
    try:
        return bool(names & set(sa.inspect(tgt).get_table_names()))
    finally:
        tgt.dispose()


def clone(ctx: StepContext) -> Outcome:
    m = ctx.migration
    move = m.database_move(ctx.step.id)
    src, tgt = m.db_url(move.from_), m.db_url(move.to, "target")
    if ctx.dry_run:
        return "preview", {"rows": source_rows(src, move.exclude)}
    # A clone interrupted half-way left tables behind: replace them, but only when
    # this migration found the target empty before its first attempt.
    replace = bool(ctx.step.detail.get("target_was_empty"))
    if not replace and _target_has_tables(tgt, src) is False:
        m.store.update_detail(ctx.step.id, {"target_was_empty": True})
        replace = True
    res = db_clone(src, tgt, **move.clone_options, replace=replace, progress=ctx.progress)
    from rehost.migration.core import VerifyFailed

    if not res.ok:
        bad = ", ".join(c.table for c in res.mismatches) or "see findings"
        raise VerifyFailed(f"The clone of {move.name} does not match its source: {bad}.")
    return "succeeded", {
        "target_was_empty": True,
        "tables": len(res.tables),
        "rows": sum(t.rows for t in res.tables),
    }


def source_rows(url: str, exclude: list[str]) -> int:
    import sqlalchemy as sa

    from rehost.db.connect import open_engine, quote

    engine = open_engine(url)
    try:
        names = [n for n in sa.inspect(engine).get_table_names() if n not in exclude]
        with engine.connect() as conn:
            return sum(
                conn.exec_driver_sql(f"SELECT COUNT(*) FROM {quote(engine, n)}").scalar_one()
                for n in names
            )
    finally:
        engine.dispose()


def _counts(data: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in data["counts"].items() if v}


def _remote(m: Migration, move: ShareMove) -> RemoteOptions:
    """One set of remote options for a move's two ends (at most one is usually remote)."""
    src, dst = m.remote_options(move.from_), m.remote_options(move.to, "target")
    merged = {
        k: getattr(dst, k) if getattr(dst, k) is not None else getattr(src, k)
        for k in ("sftp_password", "sftp_known_hosts", "sftp_key", "s3_endpoint_url", "s3_region")
    }
    return RemoteOptions(**merged)


def transfer(ctx: StepContext) -> Outcome:
    m = ctx.migration
    move = m.share_move(ctx.step.id)
    opts = TransferOptions(
        checksum=move.checksum,
        owners=OwnerMap(move.owners),
        preview=ctx.dry_run,
        state_dir=m.files_state_dir(move),
        remote=_remote(m, move),
        exclude=tuple(move.exclude),
        bwlimit=parse_rate(move.bwlimit) if move.bwlimit else None,
    )
    rep = files_transfer(m.share_url(move.from_), m.share_url(move.to, "target"), opts)
    data = rep.to_json()
    detail = {"counts": _counts(data), "bytes": data["bytes_copied"], "errors": len(rep.errors)}
    if not rep.ok:
        shown = "; ".join(f"{e['path']}: {e['error']}" for e in data["errors"][:3])
        from rehost.migration.core import VerifyFailed

        raise VerifyFailed(f"{len(rep.errors)} file(s) could not be transferred: {shown}.")
    return ("preview" if ctx.dry_run else "succeeded"), detail


def verify_db(ctx: StepContext) -> Outcome:
    from rehost.migration.core import VerifyFailed

    if ctx.dry_run:
        return "skipped", {"reason": "nothing was written to verify"}
    m = ctx.migration
    move = m.database_move(ctx.step.id)
    if move.method == "clone":
        res = db_clone(
            m.db_url(move.from_),
            m.db_url(move.to, "target"),
            **move.clone_options,
            verify_only=True,
        )
        if not res.ok:
            bad = ", ".join(c.table for c in res.mismatches)
            raise VerifyFailed(f"The target of {move.name} differs from its source: {bad}.")
        return "succeeded", {"tables": len(res.tables)}
    rep = db_import(
        m.bundle_dir(move),
        m.db_url(move.to, "target"),
        on_conflict=move.on_conflict,
        preview=True,
        profile=m.profile(move),
        password=_password(ctx),
        ignore_version_check=m.plan.options.ignore_version_check,
        manual_steps_done=True,
    )
    t = rep.totals()
    left = {a: t[a] for a in ("create", "update", "delete") if t.get(a)}
    if left:
        raise VerifyFailed(
            f"The target of {move.name} does not hold the bundle yet: a re-import would "
            f"{', '.join(f'{a} {n}' for a, n in left.items())} record(s)."
        )
    return "succeeded", {"unchanged": t.get("unchanged", 0), "skipped": t.get("skip", 0)}


def verify_share(ctx: StepContext) -> Outcome:
    from rehost.migration.core import VerifyFailed

    if ctx.dry_run:
        return "skipped", {"reason": "nothing was written to verify"}
    m = ctx.migration
    move = m.share_move(ctx.step.id)
    rep = files_verify(
        m.share_url(move.from_),
        m.share_url(move.to, "target"),
        content=move.verify_content,
        owners=OwnerMap(move.owners),
        state_dir=m.files_state_dir(move),
        remote=_remote(m, move),
        exclude=tuple(move.exclude),
    )
    if not rep.ok:
        shown = "; ".join(f"{d.what} {d.path!r}" for d in rep.differences[:3])
        raise VerifyFailed(
            f"{move.name}: {len(rep.differences)} difference(s), {len(rep.errors)} error(s): "
            f"{shown}."
        )
    return "succeeded", {"checked": dict(rep.checked)}
