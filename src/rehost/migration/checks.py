"""The plan's checks: every endpoint, database and share, as findings with RH codes.

Read only on every side. Each check that cannot run (an endpoint is down) is
itself a finding, and the checks that need that endpoint are left out.
"""

from __future__ import annotations

import grp
import pwd
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rehost.errors import RehostError
from rehost.migration.codes import PlanFinding, finding, from_library
from rehost.migration.plan import DatabaseMove, ShareMove

if TYPE_CHECKING:
    from rehost.migration.core import Migration

# Rough rates for the estimate (local disks, one job): rows and bytes per second.
ROWS_PER_SECOND = 20_000
BYTES_PER_SECOND = 100 * 1024 * 1024


def check_plan(m: Migration) -> list[PlanFinding]:
    out: list[PlanFinding] = []
    rows = 0
    nbytes = 0
    for move in m.plan.databases:
        found, n = _check_database(m, move)
        out += found
        rows += n
    for smove in m.plan.shares:
        found, n = _check_share(m, smove)
        out += found
        nbytes += n
    out += _collisions(m)
    seconds = rows / ROWS_PER_SECOND + nbytes / BYTES_PER_SECOND
    out.append(
        finding(
            "RH601",
            m.plan.name,
            f"{rows:,} row(s) in {len(m.plan.databases)} database move(s), {nbytes:,} byte(s) "
            f"in {len(m.plan.shares)} share move(s); about {max(1, round(seconds))} s.",
        )
    )
    return out


def _check_database(m: Migration, move: DatabaseMove) -> tuple[list[PlanFinding], int]:
    from rehost.db.connect import open_engine

    out: list[PlanFinding] = []
    try:
        src_url = m.db_url(move.from_)
        open_engine(src_url).dispose()
    except RehostError as exc:
        return [finding("RH101", move.from_, str(exc))], 0
    try:
        tgt_url = m.db_url(move.to, "target")
        open_engine(tgt_url, must_exist=move.method == "bundle").dispose()
    except RehostError as exc:
        out.append(finding("RH102", move.to, str(exc)))
        tgt_url = None
    if move.method == "clone":
        from rehost.migration.steps import source_rows

        if tgt_url is not None:
            out += _privileges(move, tgt_url, [])
        return out + _check_clone(move, src_url, tgt_url), source_rows(src_url, move.exclude)
    return _check_bundle(m, move, src_url, tgt_url, out)


_PG_CAN_CREATE = (
    "SELECT current_user, current_schema(), has_schema_privilege(current_schema(), 'CREATE')"
)
_PG_TABLE_PRIVILEGES = """
SELECT c.relname, p.name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE')) AS p (name)
WHERE c.relkind IN ('r', 'p') AND NOT has_table_privilege(c.oid, p.name)
ORDER BY c.relname, p.name
"""
_PG_SEQUENCE_PRIVILEGES = """
WITH owned AS MATERIALIZED (
    SELECT t.relname AS tab, s.oid AS seq, s.relname AS name
    FROM pg_depend d
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i')
)
SELECT tab, name FROM owned WHERE NOT has_sequence_privilege(seq, 'USAGE') ORDER BY tab
"""


def _privileges(move: DatabaseMove, tgt_url: str, tables: list[str]) -> list[PlanFinding]:
    """What the target user may not do that the move needs (PostgreSQL, MariaDB/MySQL):
    create tables (a clone; the ledger's table), read and write the tables an import
    writes, use their ID sequences."""
    from rehost.db.connect import open_engine
    from rehost.importer import LEDGER

    engine = open_engine(tgt_url, must_exist=False)
    try:
        if engine.dialect.name in ("mysql", "mariadb"):
            return _mysql_privileges(engine, move, tables)
        if engine.dialect.name != "postgresql":
            return []
        with engine.connect() as conn:
            user, schema, can_create = conn.exec_driver_sql(_PG_CAN_CREATE).one()
            lacking: dict[str, list[str]] = {}
            for table, privilege in conn.exec_driver_sql(_PG_TABLE_PRIVILEGES):
                lacking.setdefault(table, []).append(privilege)
            sequences: dict[str, str] = {
                row[0]: row[1] for row in conn.exec_driver_sql(_PG_SEQUENCE_PRIVILEGES)
            }
            has_ledger = (
                LEDGER in lacking
                or conn.exec_driver_sql("SELECT to_regclass(%s) IS NOT NULL", (LEDGER,)).scalar()
            )
    except RehostError:
        return []  # unreachable: RH102 says so
    finally:
        engine.dispose()
    out: list[PlanFinding] = []
    needs_create = move.method == "clone" or (move.ledger and not has_ledger)
    if needs_create and not can_create:
        why = "to clone into" if move.method == "clone" else f"for the ledger table {LEDGER}"
        out.append(
            finding(
                "RH105",
                move.to,
                f"{user} may not create tables in schema {schema} ({why}).",
                f"GRANT CREATE ON SCHEMA {schema} TO {user};"
                + ("" if move.method == "clone" else " or set ledger: false for this move."),
            )
        )
    wanted = [*tables, *([LEDGER] if move.ledger and has_ledger else [])]
    by_privileges: dict[str, list[str]] = {}
    for t in sorted(wanted):
        if t in lacking:
            by_privileges.setdefault(", ".join(lacking[t]), []).append(t)
    problems = [f"{p} on {', '.join(ts)}" for p, ts in by_privileges.items()]
    seq_of = sorted(t for t in tables if t in sequences)
    if seq_of:
        problems.append(f"USAGE on the ID sequences of {', '.join(seq_of)}")
    if problems:
        out.append(
            finding(
                "RH105",
                move.to,
                f"{user} lacks privileges the import needs: {'; '.join(problems)}.",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO "
                f"{user}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {user};",
            )
        )
    return out


# ------------------------------------------------------------ MariaDB/MySQL grants
#
# SHOW GRANTS (the current user's, and those of its active role) rather than
# information_schema: MariaDB's *_PRIVILEGES views leave out what a role gives.

_GRANT = re.compile(
    r"^GRANT (?P<privs>.+?) ON (?P<db>\*|`(?:[^`]|``)+`)\.(?P<table>\*|`(?:[^`]|``)+`) "
    r"TO (?P<who>`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?)"
)
_DML = ("SELECT", "INSERT", "UPDATE", "DELETE")
# A clone creates its tables, adds keys and indexes after the load (ALTER TABLE,
# CREATE INDEX), sets AUTO_INCREMENT (ALTER), and drops its own tables to start
# over after an interrupted attempt; MySQL (not MariaDB) checks REFERENCES.
_CLONE_NEEDS = ("CREATE", "DROP", "ALTER", "INDEX", "SELECT", "INSERT")


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`")


def _privilege_names(text: str) -> set[str]:
    """'SELECT, INSERT (`a`, `b`), ALL PRIVILEGES' -> {'SELECT', 'ALL'}; column grants
    (a list in parentheses) do not cover whole tables and are left out."""
    items, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    out = set()
    for item in (i.strip().upper() for i in items):
        if "(" not in item:
            out.add("ALL" if item in ("ALL", "ALL PRIVILEGES") else item)
    return out


def _db_pattern(pattern: str) -> tuple[re.Pattern[str], int | None]:
    """A database name in a grant as a regex (LIKE wildcards, backslash escapes), and the
    length of its literal start (None: no wildcard)."""
    out, literal, prefix, i = "", 0, None, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
            literal += 1
        elif ch in "%_":
            prefix = literal if prefix is None else prefix
            out += ".*" if ch == "%" else "."
        else:
            out += re.escape(ch)
            literal += 1
        i += 1
    return re.compile(out + r"\Z"), prefix


def _mysql_grants(lines: list[str], db: str) -> tuple[set[str], dict[str, set[str]]]:
    """What SHOW GRANTS gives on database ``db``: (on all its tables, by table name).

    Per grantee (the user, its role): global privileges, plus those of the one
    database entry that applies — the server uses the most specific match, not a
    union: the name itself (``_`` unescaped included), else the pattern with the
    longest literal start.
    """
    on_db: set[str] = set()
    on_table: dict[str, set[str]] = {}
    grantees: dict[str, list[tuple[int | None, set[str]]]] = {}
    for line in lines:
        match = _GRANT.match(line)
        if not match:
            continue  # a role granted, PROXY, a routine's grant
        privs = _privilege_names(match["privs"])
        if match["db"] == "*":
            on_db |= privs  # global (*.*)
            continue
        name = _unquote(match["db"])
        if match["table"] != "*":  # a table's grant names its database as it is
            if name == db:
                on_table.setdefault(_unquote(match["table"]), set()).update(privs)
            continue
        regex, prefix = _db_pattern(name)
        if name.replace("\\", "") == db:
            grantees.setdefault(match["who"], []).append((None, privs))
        elif regex.match(db):
            grantees.setdefault(match["who"], []).append((prefix or 0, privs))
    for entries in grantees.values():
        exact = [p for n, p in entries if n is None]
        on_db |= exact[0] if exact else max(entries, key=lambda e: e[0] or 0)[1]
    return on_db, on_table


def _mysql_privileges(engine: Any, move: DatabaseMove, tables: list[str]) -> list[PlanFinding]:
    from rehost.importer import LEDGER

    try:
        with engine.connect() as conn:
            user, db, version = conn.exec_driver_sql(
                "SELECT CURRENT_USER(), DATABASE(), VERSION()"
            ).one()
            lines = [row[0] for row in conn.exec_driver_sql("SHOW GRANTS")]
    except RehostError:
        return []  # unreachable: RH102 says so
    if not db:
        return []  # no database in the URL: RH102 says so
    name, _, host = str(user).rpartition("@")
    who = f"'{name}'@'{host}'"
    on_db, on_table = _mysql_grants(lines, db)

    def lacking(needed: tuple[str, ...], table: str | None = None) -> list[str]:
        have = on_db | (on_table.get(table, set()) if table else set())
        return [] if "ALL" in have else [p for p in needed if p not in have]

    quoted = "`" + db.replace("`", "``") + "`"
    out: list[PlanFinding] = []
    if move.method == "clone":
        needs = _CLONE_NEEDS + (() if "mariadb" in str(version).lower() else ("REFERENCES",))
        missing = lacking(needs)
        if missing:
            out.append(
                finding(
                    "RH105",
                    move.to,
                    f"{who} lacks privileges on database {db} the clone needs: "
                    f"{', '.join(missing)}.",
                    f"GRANT {', '.join(needs)} ON {quoted}.* TO {who};",
                )
            )
        return out
    if move.ledger and lacking(("CREATE",), LEDGER):
        out.append(
            finding(
                "RH105",
                move.to,
                f"{who} may not create tables in database {db} (for the ledger table {LEDGER}; "
                "CREATE TABLE IF NOT EXISTS needs it even when the table is there).",
                f"GRANT CREATE ON {quoted}.{LEDGER} TO {who}; or set ledger: false for this move.",
            )
        )
    by_privileges: dict[str, list[str]] = {}
    for t in sorted([*tables, *([LEDGER] if move.ledger else [])]):
        missing = lacking(_DML, t)
        if missing:
            by_privileges.setdefault(", ".join(missing), []).append(t)
    if by_privileges:
        problems = [f"{p} on {', '.join(ts)}" for p, ts in by_privileges.items()]
        out.append(
            finding(
                "RH105",
                move.to,
                f"{who} lacks privileges the import needs: {'; '.join(problems)}.",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON {quoted}.* TO {who};",
            )
        )
    return out


def _check_bundle(
    m: Migration, move: DatabaseMove, src_url: str, tgt_url: str | None, out: list[PlanFinding]
) -> tuple[list[PlanFinding], int]:
    from rehost.crypto import get_cipher
    from rehost.inspect import inspect

    try:
        profile = m.profile(move)
        inv = inspect(src_url, profile=profile)
    except RehostError as exc:
        return out + [finding("RH299", move.from_, str(exc))], 0
    out += [from_library(f, move.from_) for f in inv.findings]
    out += _dangling(move, src_url, inv.model)
    has_secrets = any(e.secrets for e in inv.model.entities.values())
    if has_secrets:
        try:
            m.password()
        except RehostError as exc:
            out.append(finding("RH403", move.name, str(exc)))
        if profile.secrets.cipher != "plaintext" and any(
            how == "profile" for e in inv.model.entities.values() for how in e.secrets.values()
        ):
            try:
                get_cipher(profile.secrets.cipher, profile.secrets.target_key, "target")
            except RehostError as exc:
                out.append(finding("RH404", move.to, str(exc)))
    if tgt_url is not None:
        out += _check_version(m, move, tgt_url, profile, inv.version)
        privileges = _privileges(move, tgt_url, list(inv.model.order))
        out += privileges
        if not privileges:  # without them the target cannot be read
            out += _check_target(move, tgt_url, inv, profile)
    return out, sum(inv.rows.values())


# What the plan's own checks already say (RH102, RH103 with ignore_version_check, RH404).
_TARGET_CHECKED = {"TARGET_UNREACHABLE", "TARGET_VERSION", "TARGET_SECRET_KEY"}


def _check_target(move: DatabaseMove, tgt_url: str, inv: Any, profile: Any) -> list[PlanFinding]:
    """The import target against the source's model: tables and columns it lacks or
    requires, keys that repeat in it, columns of another kind (rehost validate --target)."""
    import sqlalchemy as sa

    from rehost.checks.target import check_target

    try:
        found = check_target(tgt_url, inv.model, profile, inv.version)
    except sa.exc.DBAPIError as exc:  # e.g. a table the target user may not read
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return [finding("RH102", move.to, f"Cannot read the target: {reason}.")]
    return [from_library(f, move.to) for f in found if f.code not in _TARGET_CHECKED]


def _dangling(move: DatabaseMove, url: str, model: Any) -> list[PlanFinding]:
    """References to rows that do not exist (SQLite and MyISAM do not always enforce them)."""
    from rehost.db.connect import open_engine
    from rehost.db.rows import Sql

    out = []
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            sql = Sql(conn)
            for table in model.order:
                for col, ref in sorted(model.entities[table].refs.items()):
                    if ref.table not in model.entities:
                        continue  # an excluded table: RH208 says so
                    n = sql.execute(
                        f"SELECT COUNT(*) FROM {sql.q(table)} t WHERE t.{sql.q(col)} IS NOT NULL "
                        f"AND NOT EXISTS (SELECT 1 FROM {sql.q(ref.table)} r "
                        f"WHERE r.{sql.q(ref.ref_column)} = t.{sql.q(col)})"
                    ).scalar_one()
                    if n:
                        out.append(
                            finding(
                                "RH211",
                                f"{move.from_}: {table}.{col}",
                                f"{n} {table} row(s) reference a {ref.table} row that does not "
                                "exist; the export would stop on them.",
                            )
                        )
    finally:
        engine.dispose()
    return out


def _check_version(
    m: Migration, move: DatabaseMove, tgt_url: str, profile: object, source: object
) -> list[PlanFinding]:
    import sqlalchemy as sa

    from rehost.db.connect import open_engine
    from rehost.versions import detect

    engine = open_engine(tgt_url)
    try:
        with engine.connect() as conn:
            target = detect(conn, profile, set(sa.inspect(conn).get_table_names()))  # type: ignore[arg-type]
    except RehostError as exc:
        return [finding("RH102", move.to, str(exc))]
    except sa.exc.DBAPIError as exc:  # e.g. no SELECT on the version table: RH105 too
        reason = str(exc.orig or exc).strip().splitlines()[0]
        return [finding("RH102", move.to, f"Cannot read the target's version: {reason}.")]
    finally:
        engine.dispose()
    sv = getattr(source, "value", None)
    tv = getattr(target, "value", None)
    if sv != tv and not m.plan.options.ignore_version_check:
        return [
            finding(
                "RH103",
                move.name,
                f"The source is at application version {getattr(source, 'detail', None)}, "
                f"the target at {getattr(target, 'detail', None)}.",
                "Bring both to the same version, or set options.ignore_version_check: true "
                "if you know the schemas match.",
            )
        ]
    return []


def _check_clone(move: DatabaseMove, src_url: str, tgt_url: str | None) -> list[PlanFinding]:
    import sqlalchemy as sa

    from rehost.clone import prepare
    from rehost.db.connect import normalize_url, open_engine

    out: list[PlanFinding] = []
    src = open_engine(src_url)
    try:
        target_dialect = normalize_url(tgt_url or src_url).get_backend_name()
        if target_dialect == "mariadb":
            target_dialect = "mysql"
        try:
            plan = prepare(src, target_dialect, **move.clone_options)
        except RehostError as exc:
            return [finding("RH399", move.name, str(exc))]
        out += [from_library(f, move.name) for f in plan.findings]
        if tgt_url is not None:
            tgt = open_engine(tgt_url, must_exist=False)
            try:
                existing = set(sa.inspect(tgt).get_table_names()) & set(plan.tables)
            finally:
                tgt.dispose()
            if existing:
                out.append(
                    finding(
                        "RH320",
                        move.to,
                        f"The clone target already has table(s) {', '.join(sorted(existing))}; "
                        "a clone writes into an empty database only.",
                        "Give an empty target, or use method: bundle to merge by name.",
                    )
                )
    finally:
        src.dispose()
    return out


def _check_share(m: Migration, move: ShareMove) -> tuple[list[PlanFinding], int]:
    from rehost.files.inventory import inventory

    src_url, tgt_url = m.share_url(move.from_), m.share_url(move.to, "target")
    if "://" not in src_url and not Path(src_url).is_dir():
        return [finding("RH501", move.from_, f"The source share {src_url} is not a folder.")], 0
    try:
        inv = inventory(src_url, m.remote_options(move.from_))
    except (RehostError, OSError) as exc:
        return [finding("RH501", move.from_, str(exc))], 0
    out: list[PlanFinding] = []
    if inv.unreadable:
        out.append(
            finding(
                "RH504",
                move.from_,
                f"{len(inv.unreadable)} path(s) cannot be read, e.g. {inv.to_json()['unreadable'][0]['path']}.",
            )
        )
    if inv.links_leaving_tree:
        out.append(
            finding(
                "RH505",
                move.from_,
                f"{len(inv.links_leaving_tree)} symbolic link(s) point outside the share.",
            )
        )
    if "://" in tgt_url:
        out += _check_remote_target(m, move, tgt_url)
    else:
        out += _check_local_target(move, Path(tgt_url), inv.total_bytes)
        if move.owners == "name":
            out += _missing_owners(move, sorted(inv.owners), sorted(inv.groups))
    return out, inv.total_bytes


def _check_remote_target(m: Migration, move: ShareMove, url: str) -> list[PlanFinding]:
    """An SFTP or S3 target: reachable with the plan's settings (S3: the bucket exists)."""
    from rehost.files.location import parse_location
    from rehost.files.remote import open_tree

    tree = None
    try:
        tree = open_tree(parse_location(url, "target"), m.remote_options(move.to, "target"))
        tree.entry(b"", xattrs=False)
    except (RehostError, OSError) as exc:
        return [
            finding(
                "RH502",
                move.to,
                f"{url}: {exc}",
                "Check the URL and the share's connection settings (sftp_*, s3_*) in the plan.",
            )
        ]
    finally:
        if tree is not None:
            tree.close()
    return []


def _check_local_target(move: ShareMove, path: Path, needed: int) -> list[PlanFinding]:
    import os

    from rehost.migration.core import free_bytes

    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        return [finding("RH502", move.to, f"{existing} is not a folder this user can write in.")]
    free = free_bytes(path)
    if free is not None and free < needed:
        return [
            finding(
                "RH503",
                move.to,
                f"The source share holds {needed:,} bytes; {path} has {free:,} bytes free.",
            )
        ]
    return []


def _missing_owners(move: ShareMove, users: list[str], groups: list[str]) -> list[PlanFinding]:
    out = []
    for what, names, lookup in (("user", users, pwd.getpwnam), ("group", groups, grp.getgrnam)):
        missing = []
        for name in names:
            try:
                lookup(name)
            except KeyError:
                missing.append(name)
        if missing:
            out.append(
                finding(
                    "RH506",
                    move.to,
                    f"The {what}(s) {', '.join(missing)} owning source files do not exist here; "
                    "their files will belong to the user running rehost.",
                )
            )
    return out


def _collisions(m: Migration) -> list[PlanFinding]:
    out = []
    by_target: dict[str, list[DatabaseMove]] = {}
    for move in m.plan.databases:
        by_target.setdefault(move.to, []).append(move)
    for target, moves in by_target.items():
        if len(moves) > 1 and any(x.method == "clone" for x in moves):
            out.append(
                finding(
                    "RH602",
                    target,
                    f"{len(moves)} moves write into {target} and one of them is a clone, which "
                    "needs the target to itself.",
                )
            )
    shares: dict[str, int] = {}
    for smove in m.plan.shares:
        shares[smove.to] = shares.get(smove.to, 0) + 1
    for target, n in shares.items():
        if n > 1:
            out.append(
                finding(
                    "RH602",
                    target,
                    f"{n} shares are transferred into {target}: files with the same path would "
                    "overwrite each other.",
                    "Give each source share its own target share (or a sub-folder of one).",
                )
            )
    return out
