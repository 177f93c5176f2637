"""Everything a clone needs to know about the source schema, read once.

Richer than rehost.db.schema: keeps the SQLAlchemy types themselves, defaults,
auto-increment, indexes (with expressions and filters), named constraints and
checks, so the target can be built with the same shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from json import loads as json_loads
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class SrcColumn:
    name: str
    type: Any
    nullable: bool
    default: str | None
    autoinc: bool = False
    identity: dict[str, Any] | None = None
    json: bool = False  # MariaDB JSON, which reflects as LONGTEXT


@dataclass(frozen=True)
class SrcIndex:
    name: str | None
    columns: tuple[str, ...]
    unique: bool
    expressions: tuple[str, ...] = ()  # for expression indexes
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SrcForeignKey:
    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SrcCheck:
    name: str | None
    sqltext: str


@dataclass
class SrcTable:
    name: str
    columns: list[SrcColumn]
    pk: tuple[str, ...]
    pk_name: str | None
    uniques: list[SrcIndex]
    indexes: list[SrcIndex]
    fks: list[SrcForeignKey]
    checks: list[SrcCheck]
    sqlite_autoincrement: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> SrcColumn:
        return next(c for c in self.columns if c.name == name)

    @property
    def autoinc(self) -> SrcColumn | None:
        return next((c for c in self.columns if c.autoinc), None)


def reflect_tables(engine: Engine, names: list[str]) -> dict[str, SrcTable]:
    """Read the named tables (their structure, never data)."""
    if not names:
        return {}
    dialect = engine.dialect.name
    insp = sa.inspect(engine)
    cols = insp.get_multi_columns(filter_names=names)
    pks = insp.get_multi_pk_constraint(filter_names=names)
    uqs = insp.get_multi_unique_constraints(filter_names=names)
    idxs = insp.get_multi_indexes(filter_names=names)
    fks = insp.get_multi_foreign_keys(filter_names=names)
    try:
        checks = insp.get_multi_check_constraints(filter_names=names)
    except NotImplementedError:
        checks = {}
    json_cols = _mariadb_json_columns(engine) if dialect == "mysql" else set()
    sqlite_sql = _sqlite_create_sql(engine) if dialect == "sqlite" else {}
    out: dict[str, SrcTable] = {}
    for name in names:
        key = (None, name)
        pk_info: dict[str, Any] = dict(pks.get(key) or {})
        pk = tuple(pk_info.get("constrained_columns") or ())
        create_sql = sqlite_sql.get(name, "")
        columns = [
            _column(dict(c), dialect, name, pk, create_sql, (name, c["name"]) in json_cols)
            for c in cols.get(key, [])
        ]
        uniques = [
            SrcIndex(u.get("name"), tuple(u["column_names"]), True)
            for u in uqs.get(key, [])
            if u.get("column_names")
        ]
        if dialect == "sqlite":
            uniques.extend(_sqlite_unique_columns(engine, name, {u.columns for u in uniques}))
        unique_sets = {u.columns for u in uniques}
        indexes: list[SrcIndex] = []
        for ix in idxs.get(key, []):
            colnames = ix.get("column_names") or []
            exprs = tuple(ix.get("expressions") or ())
            if ix.get("duplicates_constraint"):
                continue
            if ix.get("unique") and tuple(colnames) in unique_sets and not exprs:
                continue  # MySQL lists a UNIQUE constraint as an index too
            indexes.append(
                SrcIndex(
                    ix.get("name"),
                    tuple(c for c in colnames if c is not None),
                    bool(ix.get("unique")),
                    expressions=exprs if any(c is None for c in colnames) else (),
                    options=dict(ix.get("dialect_options") or {}),
                )
            )
        fklist = [
            SrcForeignKey(
                f.get("name"),
                tuple(f["constrained_columns"]),
                f["referred_table"],
                tuple(f["referred_columns"]),
                options=dict(f.get("options") or {}),
            )
            for f in fks.get(key, [])
            if f.get("referred_table")
        ]
        if dialect == "sqlite":
            fklist = _sqlite_fk_actions(engine, name, fklist)
        out[name] = SrcTable(
            name=name,
            columns=columns,
            pk=pk,
            pk_name=pk_info.get("name"),
            uniques=uniques,
            indexes=indexes,
            fks=fklist,
            checks=_sqlite_checks(create_sql)
            if dialect == "sqlite"
            else [
                SrcCheck(c.get("name"), c["sqltext"])
                for c in checks.get(key, [])
                if not _is_json_check(c["sqltext"])
            ],
            sqlite_autoincrement=bool(re.search(r"\bAUTOINCREMENT\b", create_sql, re.I)),
            options=_table_options(insp, name) if dialect == "mysql" else {},
        )
    return out


def _column(
    c: dict[str, Any], dialect: str, table: str, pk: tuple[str, ...], create_sql: str, json: bool
) -> SrcColumn:
    default = c.get("default")
    identity = c.get("identity")
    if isinstance(identity, str):  # rehost reads PostgreSQL json as text
        identity = json_loads(identity)
    autoinc = False
    if dialect == "postgresql":
        autoinc = bool(identity) or bool(default and str(default).startswith("nextval("))
    elif dialect == "mysql":
        autoinc = c.get("autoincrement") is True
    elif dialect == "sqlite":
        # INTEGER PRIMARY KEY is the rowid: SQLite hands out the next value itself.
        autoinc = (
            pk == (c["name"],)
            and str(c["type"]).upper() == "INTEGER"
            and not re.search(r"\bWITHOUT\s+ROWID\b", create_sql, re.I)
        )
    return SrcColumn(
        name=c["name"],
        type=c["type"],
        nullable=bool(c.get("nullable", True)),
        default=None if default is None else str(default),
        autoinc=autoinc,
        identity=dict(identity) if identity else None,
        json=json,
    )


def _sqlite_unique_columns(
    engine: Engine, table: str, known: set[tuple[str, ...]]
) -> list[SrcIndex]:
    """UNIQUE written on a column (``username TEXT UNIQUE``), which SQLAlchemy does not list."""
    q = engine.dialect.identifier_preparer.quote_identifier
    out: list[SrcIndex] = []
    with engine.connect() as conn:
        for row in conn.exec_driver_sql(f"PRAGMA index_list({q(table)})").fetchall():
            # seq, name, unique, origin ('c' CREATE INDEX, 'u' UNIQUE, 'pk'), partial
            if not row[2] or row[3] != "u":
                continue
            info = conn.exec_driver_sql(f"PRAGMA index_info({q(row[1])})").fetchall()
            cols = tuple(r[2] for r in sorted(info))
            if cols and None not in cols and cols not in known:
                known.add(cols)
                out.append(SrcIndex(None, cols, True))
    return out


_CHECK_START = re.compile(
    r"(?:\bCONSTRAINT\s+(\"[^\"]+\"|`[^`]+`|\[[^\]]+\]|\w+)\s+)?\bCHECK\s*\(", re.I
)


def _sqlite_checks(create_sql: str) -> list[SrcCheck]:
    """CHECK constraints from SQLite's CREATE TABLE text, column-level ones included.

    SQLAlchemy's pattern runs past the closing parenthesis of a column check;
    this follows the parentheses (and skips those inside string literals).
    """
    checks: list[SrcCheck] = []
    pos = 0
    while m := _CHECK_START.search(create_sql, pos):
        depth, i, quote = 1, m.end(), ""
        while i < len(create_sql) and depth:
            ch = create_sql[i]
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            i += 1
        name = m.group(1).strip('"`[]') if m.group(1) else None
        checks.append(SrcCheck(name, create_sql[m.end() : i - 1].strip()))
        pos = i
    return checks


def _is_json_check(text: str) -> bool:
    return bool(re.fullmatch(r"\s*json_valid\(\s*`?[^`]+`?\s*\)\s*", text, re.I))


def _mariadb_json_columns(engine: Engine) -> set[tuple[str, str]]:
    """MariaDB's JSON is LONGTEXT with a json_valid() check named after the column."""
    sql = (
        "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS"
        " WHERE CONSTRAINT_SCHEMA = DATABASE()"
    )
    found: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        try:
            rows = conn.exec_driver_sql(sql).fetchall()
        except sa.exc.DBAPIError:  # MySQL before 8.0.16 has no such view
            return found
    for table, _name, clause in rows:
        m = re.fullmatch(r"\s*json_valid\(\s*`([^`]+)`\s*\)\s*", clause or "", re.I)
        if m:
            found.add((table, m.group(1)))
    return found


def _sqlite_create_sql(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
        ).fetchall()
    return {r[0]: r[1] or "" for r in rows}


def _sqlite_fk_actions(engine: Engine, table: str, fks: list[SrcForeignKey]) -> list[SrcForeignKey]:
    """ON DELETE / ON UPDATE from PRAGMA foreign_key_list (SQLAlchemy misses column-level ones)."""
    quoted = engine.dialect.identifier_preparer.quote_identifier(table)
    groups: dict[int, list[Any]] = {}
    with engine.connect() as conn:
        for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({quoted})"):
            groups.setdefault(row[0], []).append(row)
    actions: dict[tuple[tuple[str, ...], str], dict[str, str]] = {}
    for rows in groups.values():
        rows.sort(key=lambda r: r[1])
        opts = {}
        if rows[0][5] and rows[0][5].upper() != "NO ACTION":
            opts["onupdate"] = rows[0][5].upper()
        if rows[0][6] and rows[0][6].upper() != "NO ACTION":
            opts["ondelete"] = rows[0][6].upper()
        actions[(tuple(r[3] for r in rows), rows[0][2])] = opts
    out = []
    for fk in fks:
        opts = {**fk.options, **actions.get((fk.columns, fk.ref_table), {})}
        out.append(SrcForeignKey(fk.name, fk.columns, fk.ref_table, fk.ref_columns, opts))
    return out


def _table_options(insp: Any, name: str) -> dict[str, Any]:
    try:
        return dict(insp.get_table_options(name))
    except NotImplementedError:
        return {}
