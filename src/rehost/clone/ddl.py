"""Building the target schema with SQLAlchemy Core: bare tables first, keys after the load.

Before the load each table gets its columns, NOT NULL, defaults,
identity/auto-increment and checks (and, on MariaDB and SQLite, its primary
key: InnoDB clusters rows on it, SQLite's rowid is it). After the load:
the PostgreSQL primary keys, unique constraints, indexes and foreign keys —
cheaper to build once than to maintain row by row, and foreign keys added
last make cycles and self-references a non-issue. SQLite cannot add foreign
keys to an existing table, so there they are declared up front and the load
runs with ``PRAGMA foreign_keys=OFF``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import AddConstraint, CreateIndex, DDLElement

from rehost.clone.plan import ClonePlan, TablePlan

_MAX_NAME = {"postgresql": 63, "mysql": 64, "sqlite": 1000}


class _Names:
    """Constraint and index names, unique across the target schema and short enough."""

    def __init__(self, target: str) -> None:
        self.limit = _MAX_NAME[target]
        self.taken: set[str] = set()

    def __call__(self, wanted: str | None, fallback: str) -> str:
        name = wanted or fallback
        if len(name) > self.limit or name.lower() in self.taken:
            digest = hashlib.sha1(f"{fallback}/{name}".encode()).hexdigest()[:8]
            name = f"{name[: self.limit - 9]}_{digest}"
        self.taken.add(name.lower())
        return name


@dataclass
class TargetSchema:
    metadata: sa.MetaData
    tables: dict[str, sa.Table]
    names: _Names


def build(plan: ClonePlan) -> TargetSchema:
    """SQLAlchemy tables for the target, and the DDL to run once rows are in."""
    target = plan.target
    md = sa.MetaData()
    names = _Names(target)
    # PostgreSQL indexes share one namespace with tables (MariaDB names an FK's index
    # after its column, which may also be a table's name).
    names.taken.update(n.lower() for n in plan.tables)
    tables: dict[str, sa.Table] = {}
    for tp in plan.tables.values():
        tables[tp.name] = _table(md, tp, plan, names)
    return TargetSchema(md, tables, names)


def after_load(schema: TargetSchema, plan: ClonePlan) -> list[tuple[str, DDLElement]]:
    """(table, DDL) to run once the rows are in; call after the tables exist."""
    steps = [
        (tp.name, element)
        for tp in plan.tables.values()
        for element in _after_load(tp, schema.tables, plan, schema.names)
    ]
    # Every key before any foreign key that may reference it.
    steps.sort(
        key=lambda s: isinstance(s[1], AddConstraint)
        and isinstance(s[1].element, sa.ForeignKeyConstraint)
    )
    return steps


def _table(md: sa.MetaData, tp: TablePlan, plan: ClonePlan, names: _Names) -> sa.Table:
    target = plan.target
    same = plan.source == target
    cols: list[Any] = []
    for c in tp.columns:
        args: list[Any] = []
        if c.autoinc and target == "postgresql":
            ident = c.src.identity or {}
            args.append(
                sa.Identity(
                    always=bool(ident.get("always")) if same else False,
                    start=ident.get("start") if same else None,
                    increment=ident.get("increment") if same else None,
                )
            )
        cols.append(
            sa.Column(
                c.name,
                c.mapped.type,
                *args,
                nullable=c.src.nullable and c.name not in tp.pk,
                server_default=sa.text(c.default) if c.default is not None else None,
                autoincrement="auto" if args else bool(c.autoinc),
            )
        )
    kwargs: dict[str, Any] = {}
    if target == "mysql":
        collate = tp.src.options.get("mysql_collate") if same else None
        kwargs.update(
            mysql_engine="InnoDB",
            mysql_charset="utf8mb4",
            mysql_collate=collate if collate and collate.startswith("utf8mb4") else "utf8mb4_bin",
        )
    if target == "sqlite" and tp.autoinc is not None:
        # Never hand out an ID twice, as PostgreSQL and MariaDB sequences do not.
        kwargs["sqlite_autoincrement"] = tp.src.sqlite_autoincrement or plan.source != "sqlite"
    table = sa.Table(tp.name, md, *cols, **kwargs)
    if tp.pk and target != "postgresql":
        table.append_constraint(
            sa.PrimaryKeyConstraint(
                *tp.pk, name=names(tp.src.pk_name if same else None, f"pk_{tp.name}")
            )
        )
    for ck in tp.checks:
        table.append_constraint(
            sa.CheckConstraint(sa.text(ck.sqltext), name=names(ck.name, f"ck_{tp.name}"))
        )
    return table


def _after_load(
    tp: TablePlan, tables: dict[str, sa.Table], plan: ClonePlan, names: _Names
) -> Iterator[DDLElement]:
    target = plan.target
    same = plan.source == target
    table = tables[tp.name]
    if tp.pk and target == "postgresql":
        pk = sa.PrimaryKeyConstraint(
            *[table.c[c] for c in tp.pk],
            name=names(tp.src.pk_name if same else None, f"{tp.name}_pkey"),
        )
        table.append_constraint(pk)
        yield AddConstraint(pk)
    for u in tp.uniques:
        name = names(u.name, f"uq_{tp.name}_{'_'.join(u.columns)}")
        if target == "sqlite":  # no ALTER TABLE … ADD CONSTRAINT: a unique index is the same
            yield CreateIndex(sa.Index(name, *[table.c[c] for c in u.columns], unique=True))
        else:
            uq = sa.UniqueConstraint(*[table.c[c] for c in u.columns], name=name)
            table.append_constraint(uq)
            yield AddConstraint(uq)
    for ix in tp.indexes:
        name = names(ix.name, f"ix_{tp.name}_{'_'.join(ix.columns) or 'expr'}")
        exprs: list[Any] = (
            [sa.text(e) for e in ix.expressions]
            if ix.expressions
            else [table.c[c] for c in ix.columns]
        )
        options = {}
        if same:
            for key, value in ix.options.items():
                if key == "postgresql_where" and isinstance(value, str):
                    value = sa.text(value)
                if value not in (None, [], {}):
                    options[key] = value
        yield CreateIndex(sa.Index(name, *exprs, unique=ix.unique, **options))
    if target == "sqlite":
        return
    for fk in tp.fks:
        ref = tables[fk.ref_table]
        fkc = sa.ForeignKeyConstraint(
            [table.c[c] for c in fk.columns],
            [ref.c[c] for c in fk.ref_columns],
            name=names(fk.name, f"fk_{tp.name}_{'_'.join(fk.columns)}"),
            **fk.options,
        )
        table.append_constraint(fkc)
        yield AddConstraint(fkc)


def add_sqlite_foreign_keys(schema: TargetSchema, plan: ClonePlan) -> None:
    """SQLite: foreign keys are part of CREATE TABLE (checked only when enforced)."""
    names = _Names("sqlite")
    for tp in plan.tables.values():
        table = schema.tables[tp.name]
        for fk in tp.fks:
            ref = schema.tables[fk.ref_table]
            table.append_constraint(
                sa.ForeignKeyConstraint(
                    [table.c[c] for c in fk.columns],
                    [ref.c[c] for c in fk.ref_columns],
                    name=names(fk.name, f"fk_{tp.name}_{'_'.join(fk.columns)}"),
                    **fk.options,
                )
            )


def create_tables(
    conn: Connection, schema: TargetSchema, plan: ClonePlan, skip: set[str] | None = None
) -> None:
    """CREATE TABLE for each planned table but those in ``skip`` (already there)."""
    if plan.target == "sqlite":
        add_sqlite_foreign_keys(schema, plan)
    # Tables that reference each other: SQLite takes any order, and elsewhere the
    # foreign keys come later, so plain creation order is fine.
    for table in schema.tables.values():
        if skip and table.name in skip:
            continue
        for c in table.columns:
            enum = getattr(c.type, "item_type", c.type)  # an enum, or an array of one
            if isinstance(enum, postgresql.ENUM) and plan.target == "postgresql":
                enum.create(conn, checkfirst=True)
                enum.create_type = False  # made above; CREATE TABLE must not try again
        table.create(conn)


def enum_names(plan: ClonePlan) -> set[str]:
    """PostgreSQL enum types the clone creates."""
    types = [
        getattr(c.mapped.type, "item_type", c.mapped.type)
        for tp in plan.tables.values()
        for c in tp.columns
    ]
    return {t.name for t in types if isinstance(t, postgresql.ENUM) and t.name}


def drop_tables(
    conn: Connection, names: list[str], dialect: str, enums: set[str] | frozenset[str] = frozenset()
) -> None:
    """Drop these tables (for --replace), whatever references between them."""
    q = conn.dialect.identifier_preparer.quote_identifier
    if not names:
        return
    if dialect == "postgresql":
        conn.exec_driver_sql("DROP TABLE " + ", ".join(q(n) for n in names))
        for name in sorted(enums):  # an earlier clone's enum types, now unused
            conn.exec_driver_sql(f"DROP TYPE IF EXISTS {q(name)}")
    elif dialect == "mysql":
        conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        try:
            conn.exec_driver_sql("DROP TABLE " + ", ".join(q(n) for n in names))
        finally:
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 1")
    else:
        for n in names:
            conn.exec_driver_sql(f"DROP TABLE {q(n)}")
