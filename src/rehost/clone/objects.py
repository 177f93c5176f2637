"""The schema objects that are not tables: views, triggers, routines, events, sequences.

Each is kept as the SQL its engine gives for it, so only the same engine can
run it again: across engines a clone refuses them unless the user leaves them
out (``--skip-objects``). Reading is one function per engine; the rest (what
to keep, the DEFINER clause, creation order) is plain data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# kind → the --skip-objects category that covers it
CATEGORY = {
    "sequence": "sequences",
    "function": "routines",
    "procedure": "routines",
    "view": "views",
    "materialized view": "views",
    "trigger": "triggers",
    "event": "routines",
}
CATEGORIES = ("views", "triggers", "routines", "sequences")
# Creation order: what others may use comes first (a view may call a function,
# a trigger may sit on a view); within a kind the source's order, retried.
_RANK = {kind: i for i, kind in enumerate(CATEGORY)}


@dataclass(frozen=True)
class SrcObject:
    """One view, trigger, routine, event or standalone sequence of the source.

    ``sql``: the statements that create it on the same engine, empty when
    the source's account may not read its definition (a populated
    materialized view's ``REFRESH`` included: objects are created once the
    rows are in). ``drop``: the statement that drops it. ``table``: the table
    (or view) a trigger belongs to.
    """

    kind: str
    name: str
    sql: tuple[str, ...]
    drop: str
    table: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies it on either side (trigger names are per table on PostgreSQL)."""
        return (self.kind, self.name, self.table or "")

    @property
    def category(self) -> str:
        return CATEGORY[self.kind]

    @property
    def subject(self) -> str:
        where = f" on {self.table}" if self.table else ""
        return f"{self.kind} {self.name}{where}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "table": self.table}


def parse_skip(values: Iterable[str]) -> set[str]:
    """``--skip-objects`` values (each may be comma-separated) → categories; ``all``: every one.

    Raises ValueError for a value that is not a category.
    """
    chosen = {p.strip().lower() for v in values for p in v.split(",") if p.strip()}
    unknown = sorted(chosen - {*CATEGORIES, "all"})
    if unknown:
        raise ValueError(
            f"--skip-objects takes {', '.join(CATEGORIES)} or all, not {', '.join(unknown)}"
        )
    return set(CATEGORIES) if "all" in chosen else chosen


def creation_order(objects: Iterable[SrcObject]) -> list[SrcObject]:
    """Sequences, routines, views, triggers, events; the source's order within a kind."""
    return sorted(objects, key=lambda o: _RANK[o.kind])


def retry_all(
    objects: list[SrcObject], run: Callable[[SrcObject], str | None]
) -> dict[SrcObject, str]:
    """Run ``run`` on each object in order, retrying the failed ones while a round makes progress.

    A view on a view (or a function a view calls) then needs no dependency
    graph: whatever failed because something was missing succeeds in a later
    round; dropping works the same way, the other way round. ``run`` returns
    None on success, else the server's message. Returns the objects still
    failing, with their last message.
    """
    pending = list(objects)
    failed: dict[SrcObject, str] = {}
    while pending:
        failed = {}
        for obj in pending:
            message = run(obj)
            if message is not None:
                failed[obj] = message
        if len(failed) == len(pending):
            break
        pending = [o for o in pending if o in failed]
    return failed


_NAME = r"(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[\w.%-]+)"
_HEAD = re.compile(
    r"^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:ALGORITHM\s*=\s*\w+\s+)?)"
    rf"(?:DEFINER\s*=\s*{_NAME}(?:\s*@\s*{_NAME})?\s+)?"
    r"(?:SQL\s+SECURITY\s+DEFINER\s+)?",
    re.I,
)


def strip_definer(sql: str) -> str:
    """MariaDB's ``DEFINER=`user`@`host``` and ``SQL SECURITY DEFINER`` out of a CREATE.

    The source's account may not exist on the target; without the clause the
    object belongs to the account that creates it, and SQL SECURITY DEFINER is
    the default anyway. ``SQL SECURITY INVOKER`` changes behaviour and stays.
    Only the head of the statement (``CREATE … DEFINER=…``) is touched.
    """
    return _HEAD.sub(r"\1", sql, count=1)


def mentions(sql: str, names: Iterable[str]) -> list[str]:
    """Which of these (table) names the SQL text uses as a word or quoted identifier."""
    found = []
    for name in names:
        pattern = rf"(?<![\w$]){re.escape(name)}(?![\w$])"
        if re.search(pattern, sql, re.I):
            found.append(name)
    return sorted(found)


# ------------------------------------------------------------------- reading


def reflect_objects(conn: Connection) -> list[SrcObject]:
    """The views, triggers, routines, events and standalone sequences of the connection's schema.

    Only the schema (or database) the connection uses by default; objects of
    extensions and the engine's own are skipped.
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return _sqlite(conn)
    if dialect == "postgresql":
        return _postgres(conn)
    if dialect == "mysql":
        return _mariadb(conn)
    return []


def _drop(kind: str, name: str) -> str:
    return f"DROP {kind.upper()} IF EXISTS {name}"


def _sqlite(conn: Connection) -> list[SrcObject]:
    q = conn.dialect.identifier_preparer.quote
    rows = conn.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master"
        " WHERE type IN ('view', 'trigger') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        " AND sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    return [
        SrcObject(
            kind, name, (sql,), _drop(kind, q(name)), table=table if kind == "trigger" else None
        )
        for kind, name, table, sql in rows
    ]


def _pg_rows(conn: Connection, select: str, where: str, oid: str, order: str) -> list[Any]:
    """Rows of a catalog query on the connection's schema (``n``), extensions' objects left out."""
    catalog = {"p": "pg_proc", "c": "pg_class", "t": "pg_trigger"}[oid.split(".")[0]]
    sql = (
        f"{select} WHERE n.nspname = current_schema() AND {where} AND NOT EXISTS (SELECT 1"
        f" FROM pg_depend d WHERE d.classid = '{catalog}'::regclass AND d.objid = {oid}"
        f" AND d.deptype = 'e') ORDER BY {order}"
    )
    return list(conn.exec_driver_sql(sql).fetchall())


def _postgres(conn: Connection) -> list[SrcObject]:
    q = conn.dialect.identifier_preparer.quote
    out: list[SrcObject] = []
    for name, seq_type, start, inc, low, high, cache, cycle in conn.exec_driver_sql(
        "SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,"
        " s.seqmax, s.seqcache, s.seqcycle FROM pg_sequence s"
        " JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND NOT EXISTS (SELECT 1 FROM pg_depend d"
        " WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
        " AND d.deptype IN ('a', 'i', 'e')) ORDER BY c.relname"
    ).fetchall():
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {q(name)}").one()
        create = (
            f"CREATE SEQUENCE {q(name)} AS {seq_type} INCREMENT BY {inc} MINVALUE {low}"
            f" MAXVALUE {high} START WITH {start} CACHE {cache}{' CYCLE' if cycle else ''}"
        )
        literal = q(name).replace("'", "''")
        setval = f"SELECT setval('{literal}', {last}, {'true' if called else 'false'})"
        out.append(SrcObject("sequence", name, (create, setval), _drop("sequence", q(name))))
    for name, kind, args, body in _pg_rows(
        conn,
        "SELECT p.proname, p.prokind, pg_get_function_identity_arguments(p.oid),"
        " pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace",
        "p.prokind IN ('f', 'p')",
        "p.oid",
        "p.proname, p.oid",
    ):
        kind = "function" if kind == "f" else "procedure"
        signature = f"{q(name)}({args})"
        out.append(SrcObject(kind, f"{name}({args})", (body,), _drop(kind, signature)))
    for name, relkind, definition, options, populated, indexes in _pg_rows(
        conn,
        "SELECT c.relname, c.relkind, pg_get_viewdef(c.oid), array_to_string(c.reloptions, ', '),"
        " c.relispopulated, ARRAY(SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = c.oid ORDER BY i.indexrelid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
        "c.relkind IN ('v', 'm')",
        "c.oid",
        "c.oid",
    ):
        select = definition.strip().rstrip(";")
        with_options = f" WITH ({options})" if options else ""
        if relkind == "v":
            view = f"CREATE VIEW {q(name)}{with_options} AS {select}"
            out.append(SrcObject("view", name, (view,), _drop("view", q(name))))
            continue
        # Created empty, its indexes, then filled from the rows already on the target.
        create = f"CREATE MATERIALIZED VIEW {q(name)}{with_options} AS {select} WITH NO DATA"
        refresh = (f"REFRESH MATERIALIZED VIEW {q(name)}",) if populated else ()
        out.append(
            SrcObject(
                "materialized view",
                name,
                (create, *indexes, *refresh),
                _drop("materialized view", q(name)),
            )
        )
    for name, table, definition, enabled in _pg_rows(
        conn,
        "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace",
        "NOT t.tgisinternal",
        "t.oid",
        "c.relname, t.tgname",
    ):
        disable = (f"ALTER TABLE {q(table)} DISABLE TRIGGER {q(name)}",) if enabled == "D" else ()
        drop = f"DROP TRIGGER IF EXISTS {q(name)} ON {q(table)}"
        out.append(SrcObject("trigger", name, (definition, *disable), drop, table=table))
    return out


def _mariadb(conn: Connection) -> list[SrcObject]:
    """MariaDB/MySQL: each object runs under the sql_mode it was created with, as on the source."""
    q = conn.dialect.identifier_preparer.quote

    def show(kind: str, name: str, column: int, table: str | None = None) -> SrcObject:
        what = kind.upper()
        try:
            row = conn.exec_driver_sql(f"SHOW CREATE {what} {q(name)}").one()
        except sa.exc.DBAPIError:
            row = None
        if row is None or row[column] is None:  # listed, but its definition is not shown
            return SrcObject(kind, name, (), _drop(kind, q(name)), table=table)
        sql: tuple[str, ...] = (strip_definer(str(row[column])),)
        if kind != "view":  # routines, triggers and events keep the sql_mode of their creation
            mode = str(row[1]).replace("'", "''")
            sql = (f"SET SESSION sql_mode = '{mode}'", *sql)
        return SrcObject(kind, name, sql, _drop(kind, q(name)), table=table)

    out: list[SrcObject] = []
    for name, kind in conn.exec_driver_sql(
        "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES"
        " WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION')"
        " ORDER BY ROUTINE_NAME"
    ).fetchall():
        out.append(show(kind.lower(), name, 2))
    for (name,) in conn.exec_driver_sql(
        "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()"
        " ORDER BY TABLE_NAME"
    ).fetchall():
        out.append(show("view", name, 1))
    for name, table in conn.exec_driver_sql(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS"
        " WHERE TRIGGER_SCHEMA = DATABASE()"
        " ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER"
    ).fetchall():
        out.append(show("trigger", name, 2, table))
    for (name,) in conn.exec_driver_sql(
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()"
        " ORDER BY EVENT_NAME"
    ).fetchall():
        out.append(show("event", name, 3))
    return out
