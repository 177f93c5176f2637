"""Reflection of a live database into plain, engine-neutral descriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from rehost.db.types import kind_of, scale_of


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    nullable: bool
    type_text: str
    scale: int | None = None
    has_default: bool = False


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    ondelete: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: dict[str, Column]
    pk: tuple[str, ...]
    uniques: tuple[tuple[str, ...], ...]
    fks: tuple[ForeignKey, ...]

    @property
    def surrogate(self) -> str | None:
        """The single integer primary key column, if any: an ID that differs per server."""
        if len(self.pk) == 1 and self.columns[self.pk[0]].kind == "int":
            return self.pk[0]
        return None


@dataclass
class Schema:
    dialect: str
    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        return self.tables[name]


def reflect(engine: Engine, *, exclude: set[str] | frozenset[str] = frozenset()) -> Schema:
    """Read tables, columns, keys and foreign keys (never data)."""
    insp = sa.inspect(engine)
    names = sorted(n for n in insp.get_table_names() if n not in exclude)
    schema = Schema(dialect=engine.dialect.name)
    if not names:
        return schema
    cols = insp.get_multi_columns(filter_names=names)
    pks = insp.get_multi_pk_constraint(filter_names=names)
    uqs = insp.get_multi_unique_constraints(filter_names=names)
    idxs = insp.get_multi_indexes(filter_names=names)
    fks = insp.get_multi_foreign_keys(filter_names=names)
    sqlite_ondelete = _sqlite_ondelete(engine, names) if engine.dialect.name == "sqlite" else {}
    for name in names:
        k: Any = (None, name)
        columns: dict[str, Column] = {}
        for c in cols.get(k, []):
            ctype: Any = c["type"]
            columns[c["name"]] = Column(
                name=c["name"],
                kind=kind_of(ctype, engine.dialect.name),
                nullable=bool(c.get("nullable", True)),
                type_text=_type_text(ctype, engine),
                scale=scale_of(ctype),
                has_default=c.get("default") is not None
                or bool(c.get("autoincrement") is True)
                or bool(c.get("identity")),
            )
        pk_info: Any = pks.get(k) or {}
        pk = tuple(pk_info.get("constrained_columns") or ())
        uniq: list[tuple[str, ...]] = []
        for uc in uqs.get(k, []):
            uniq.append(tuple(uc["column_names"]))
        for ix in idxs.get(k, []):
            ix_cols = ix["column_names"]
            if ix.get("unique") and all(cn is not None for cn in ix_cols):
                uniq.append(tuple(str(cn) for cn in ix_cols))
        seen: set[tuple[str, ...]] = set()
        uniques: list[tuple[str, ...]] = []
        for u in uniq:
            if u and u not in seen and all(c in columns for c in u):
                seen.add(u)
                uniques.append(u)
        fklist = []
        for f in fks.get(k, []):
            if not f.get("referred_table"):
                continue
            fkcols = tuple(f["constrained_columns"])
            ondelete = (f.get("options") or {}).get("ondelete") or sqlite_ondelete.get(
                (name, fkcols, f["referred_table"])
            )
            fklist.append(
                ForeignKey(
                    columns=fkcols,
                    ref_table=f["referred_table"],
                    ref_columns=tuple(f["referred_columns"]),
                    ondelete=ondelete or None,
                    name=f.get("name"),
                )
            )
        # In column order, whatever order the engine lists constraints in, so that
        # "the first ON DELETE CASCADE reference" means the same on every engine.
        position = {c: i for i, c in enumerate(columns)}
        fklist.sort(key=lambda fk: [position.get(c, len(position)) for c in fk.columns])
        schema.tables[name] = Table(
            name=name,
            columns=columns,
            pk=pk,
            uniques=tuple(uniques),
            fks=tuple(fklist),
        )
    return schema


def _sqlite_ondelete(
    engine: Engine, names: list[str]
) -> dict[tuple[str, tuple[str, ...], str], str]:
    """ON DELETE actions from PRAGMA foreign_key_list.

    SQLAlchemy reads them from the CREATE TABLE text and misses those written on
    the column (``p_id INTEGER REFERENCES p(id) ON DELETE CASCADE``); SQLite's
    own pragma always has them.
    """
    out: dict[tuple[str, tuple[str, ...], str], str] = {}
    with engine.connect() as conn:
        for name in names:
            quoted = engine.dialect.identifier_preparer.quote_identifier(name)
            groups: dict[int, list[Any]] = {}
            for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list({quoted})"):
                # id, seq, table, from, to, on_update, on_delete, match
                groups.setdefault(row[0], []).append(row)
            for rows in groups.values():
                rows.sort(key=lambda r: r[1])
                action = rows[0][6]
                if action and action.upper() != "NO ACTION":
                    cols = tuple(r[3] for r in rows)
                    out[(name, cols, rows[0][2])] = action.upper()
    return out


def _type_text(ctype: Any, engine: Engine) -> str:
    try:
        return str(ctype.compile(dialect=engine.dialect))
    except Exception:  # some reflected types cannot render on their own dialect
        return type(ctype).__name__


def table_names(engine: Engine) -> list[str]:
    return sorted(sa.inspect(engine).get_table_names())
