"""Source schema × target engine → what the clone will create (pure).

Every decision that loses or changes something is a finding; errors among them
stop the clone before the target is touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from rehost.checks.findings import Finding
from rehost.clone.objects import SrcObject
from rehost.clone.reflect import SrcCheck, SrcColumn, SrcForeignKey, SrcIndex, SrcTable
from rehost.clone.types import Mapped, map_type


@dataclass
class ColumnPlan:
    name: str
    src: SrcColumn
    mapped: Mapped
    default: str | None  # SQL text for the target, or None
    autoinc: bool  # the target hands out values (identity / AUTO_INCREMENT / rowid)


@dataclass
class TablePlan:
    name: str
    src: SrcTable
    columns: list[ColumnPlan]
    pk: tuple[str, ...]
    uniques: list[SrcIndex]
    indexes: list[SrcIndex]
    fks: list[SrcForeignKey]
    checks: list[SrcCheck]  # already in the target's SQL
    same_types: bool = False  # every column keeps its exact type (binary COPY may pipe)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def autoinc(self) -> ColumnPlan | None:
        return next((c for c in self.columns if c.autoinc), None)


@dataclass
class ClonePlan:
    source: str
    target: str
    tables: dict[str, TablePlan] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    objects: list[SrcObject] = field(default_factory=list)  # views, triggers … to create
    not_cloned: list[SrcObject] = field(default_factory=list)  # left out by --skip-objects
    left_out: set[str] = field(default_factory=set)  # source tables the selection leaves out

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]


def plan_clone(
    tables: dict[str, SrcTable],
    source: str,
    target: str,
    overrides: dict[str, str] | None = None,
    objects: list[SrcObject] | None = None,
    skip: set[str] | None = None,
    left_out: set[str] | None = None,
) -> ClonePlan:
    """Decide types, defaults, keys and constraints for each table on the target.

    ``objects``: the source's views, triggers, routines …; ``skip``: their
    categories the user leaves out (``--skip-objects``); ``left_out``: the
    source tables the selection does not clone (their triggers stay behind).
    """
    plan = ClonePlan(source=source, target=target, left_out=set(left_out or ()))
    for name in sorted(tables):
        plan.tables[name] = _table(tables[name], tables, source, target, overrides or {}, plan)
    _objects(plan, objects or [], skip or set())
    return plan


def _objects(plan: ClonePlan, objects: list[SrcObject], skip: set[str]) -> None:
    """Which objects the clone creates; across engines each one is an error unless skipped."""
    for obj in objects:
        if obj.table is not None and obj.table in plan.left_out:
            plan.findings.append(
                Finding(
                    "clone-object-outside",
                    "info",
                    obj.subject,
                    f"its table {obj.table} is not cloned, so neither is the {obj.kind}",
                )
            )
        elif obj.category in skip:
            plan.not_cloned.append(obj)
            plan.findings.append(
                Finding(
                    "clone-object-skipped",
                    "warning",
                    obj.subject,
                    f"not cloned (--skip-objects {obj.category}): recreate by hand on the target",
                    fix=f"write the {obj.kind} in {plan.target}'s SQL and create it on the target",
                )
            )
        elif plan.source != plan.target:
            plan.findings.append(
                Finding(
                    "clone-object-engine",
                    "error",
                    obj.subject,
                    f"its definition is {plan.source} SQL, which rehost does not translate: "
                    f"it cannot be recreated faithfully on {plan.target}.",
                    fix=f"clone without it (--skip-objects {obj.category}, or all), then "
                    f"recreate it by hand on the target in {plan.target}'s SQL",
                )
            )
        elif not obj.sql:
            plan.findings.append(
                Finding(
                    "clone-object-unreadable",
                    "error",
                    obj.subject,
                    "the source's account may not read its definition, so it cannot be cloned.",
                    fix="grant the account the right to see it (MariaDB: SHOW CREATE ROUTINE, "
                    f"or SELECT on mysql.proc), or clone without it (--skip-objects {obj.category})",
                )
            )
        else:
            plan.objects.append(obj)


def _keyed_columns(t: SrcTable) -> set[str]:
    keyed = set(t.pk)
    for ix in [*t.uniques, *t.indexes]:
        keyed.update(ix.columns)
    for fk in t.fks:
        keyed.update(fk.columns)
    return keyed


def _table(
    t: SrcTable,
    all_tables: dict[str, SrcTable],
    source: str,
    target: str,
    overrides: dict[str, str],
    plan: ClonePlan,
) -> TablePlan:
    keyed = _keyed_columns(t)
    # Referenced columns are keyed too (they need a unique index on the target).
    for other in all_tables.values():
        for fk in other.fks:
            if fk.ref_table == t.name:
                keyed.update(fk.ref_columns)
    columns: list[ColumnPlan] = []
    for c in t.columns:
        subject = f"{t.name}.{c.name}"
        mapped = map_type(
            c.type,
            source,
            target,
            subject=subject,
            overrides=overrides,
            keyed=c.name in keyed,
            json=c.json and target != "mysql",
            enum_name=f"{t.name}_{c.name}",
        )
        plan.findings.extend(mapped.findings)
        autoinc = c.autoinc and _can_autoinc(t, c, mapped, target, subject, plan)
        default = None if c.autoinc else translate_default(c.default, source, target, mapped.kind)
        if c.default is not None and default is None and not c.autoinc:
            plan.findings.append(
                Finding(
                    "clone-default-dropped",
                    "warning",
                    subject,
                    f"default {c.default} has no portable form on {target}; the column "
                    "gets no default",
                )
            )
        columns.append(ColumnPlan(c.name, c, mapped, default, autoinc))
    fks = []
    for fk in t.fks:
        if fk.ref_table not in all_tables:
            plan.findings.append(
                Finding(
                    "clone-fk-outside",
                    "warning",
                    f"{t.name}({', '.join(fk.columns)})",
                    f"references {fk.ref_table}, which is not cloned; the foreign key is left out",
                )
            )
            continue
        fks.append(_fk_options(fk, source, target, t.name, plan))
    checks: list[SrcCheck] = []
    for ck in t.checks:
        text = translate_check(ck.sqltext, source, target, [c.name for c in t.columns])
        if (
            target == "mysql"
            and text
            and any(c.autoinc and re.search(rf"\b{re.escape(c.name)}\b", text) for c in columns)
        ):
            text = None  # MariaDB refuses checks on AUTO_INCREMENT columns
        if text is None:
            plan.findings.append(
                Finding(
                    "clone-check-dropped",
                    "warning",
                    f"{t.name}: CHECK ({ck.sqltext})",
                    f"this check constraint cannot be written for {target}; it is left out",
                    fix="add it by hand on the target after the clone",
                )
            )
            continue
        checks.append(SrcCheck(ck.name, text))
    indexes = []
    for ix in t.indexes:
        if (ix.expressions or ix.options.get("postgresql_where")) and source != target:
            plan.findings.append(
                Finding(
                    "clone-index-dropped",
                    "warning",
                    f"{t.name}: index {ix.name}",
                    f"an expression or partial index on {source} cannot be written for "
                    f"{target}; it is left out",
                )
            )
            continue
        indexes.append(ix)
    # Binary COPY carries element type OIDs in arrays: arrays of enums or domains
    # (whose OIDs differ per database) go through Python instead.
    same = source == target and all(
        c.mapped.type is c.src.type
        and not c.src.json
        and not isinstance(getattr(c.src.type, "item_type", None), (sa.Enum, postgresql.DOMAIN))
        for c in columns
    )
    return TablePlan(
        name=t.name,
        src=t,
        columns=columns,
        pk=t.pk,
        uniques=list(t.uniques),
        indexes=indexes,
        fks=fks,
        checks=checks,
        same_types=same,
    )


def _can_autoinc(
    t: SrcTable, c: SrcColumn, mapped: Mapped, target: str, subject: str, plan: ClonePlan
) -> bool:
    if target == "postgresql" and mapped.kind == "int":
        return True
    if t.pk == (c.name,) and mapped.kind == "int":
        return True
    plan.findings.append(
        Finding(
            "clone-autoinc-dropped",
            "warning",
            subject,
            f"{target} generates values only for a single-column integer primary key; "
            "this column keeps its values but new rows must supply one",
        )
    )
    return False


def _fk_options(
    fk: SrcForeignKey, source: str, target: str, table: str, plan: ClonePlan
) -> SrcForeignKey:
    opts = {}
    for key in ("ondelete", "onupdate"):
        action = (fk.options.get(key) or "").upper()
        if not action or action == "NO ACTION":
            continue
        if target == "mysql" and action == "SET DEFAULT":
            plan.findings.append(
                Finding(
                    "clone-fk-action",
                    "warning",
                    f"{table}({', '.join(fk.columns)})",
                    f"MariaDB does not support {key.upper()[2:]} SET DEFAULT; the action is left out",
                )
            )
            continue
        opts[key] = action
    if source == target == "postgresql":
        for key in ("deferrable", "initially"):
            if fk.options.get(key) is not None:
                opts[key] = fk.options[key]
    return SrcForeignKey(fk.name, fk.columns, fk.ref_table, fk.ref_columns, opts)


# ------------------------------------------------------------------- defaults

_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_STRING = re.compile(r"'(?:[^']|'')*'")
_NOW = {"now()", "current_timestamp", "current_timestamp()", "localtimestamp", "getdate()"}
_PG_CAST = re.compile(r"::[a-z_][a-z0-9_ ]*(\[\])?(\(\d+(,\s*\d+)?\))?", re.I)


def translate_default(text: str | None, source: str, target: str, kind: str) -> str | None:
    """A column default in the target's SQL, or None when it has no portable form."""
    if text is None:
        return None
    raw = text.strip()
    if source == target:
        return raw
    value = raw
    if source == "postgresql":
        value = _PG_CAST.sub("", value).strip()
        while value.startswith("(") and value.endswith(")"):
            value = value[1:-1].strip()
    if value.upper() == "NULL":
        return None
    if kind == "bool":
        truth = value.strip("'").lower()
        if truth in ("1", "true", "t"):
            return "true" if target == "postgresql" else "1"
        if truth in ("0", "false", "f"):
            return "false" if target == "postgresql" else "0"
        return None
    if _NUMBER.fullmatch(value):
        return value
    if kind in ("int", "float", "decimal") and _NUMBER.fullmatch(value.strip("'")):
        return value.strip("'")
    if _STRING.fullmatch(value):
        return value
    low = value.lower()
    if low in _NOW or re.fullmatch(r"current_timestamp\(\d\)", low):
        if target == "mysql" and kind in ("datetime", "datetimetz"):
            return "CURRENT_TIMESTAMP(6)"
        return "CURRENT_TIMESTAMP"
    if low in ("current_date", "curdate()"):
        return "(curdate())" if target == "mysql" else "CURRENT_DATE"
    return None


# --------------------------------------------------------------------- checks

_CHECK_WORDS = {"and", "or", "not", "in", "is", "null", "between", "like", "true", "false"}
_FUNCTIONS = {"lower", "upper", "abs", "coalesce"}
_TOKEN = re.compile(
    r"\s+|'(?:[^']|'')*'|`[^`]+`|\"[^\"]+\"|\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*"
    r"|<>|!=|>=|<=|[=<>+\-*/%(),]"
)


def translate_check(text: str, source: str, target: str, columns: list[str]) -> str | None:
    """A check constraint's expression in the target's SQL, or None when unsure.

    Same engine: unchanged. Across engines only simple comparisons survive:
    columns, literals, arithmetic, AND/OR/NOT, IN, IS NULL, BETWEEN, LIKE and
    a few functions every engine has.
    """
    if source == target:
        return text
    expr = _PG_CAST.sub("", text) if source == "postgresql" else text
    out: list[str] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            return None
        tok = m.group(0)
        pos = m.end()
        if tok[0] in '`"':
            name = tok[1:-1]
            if name not in columns:
                return None
            out.append(_quote(name, target))
        elif tok[0].isalpha() or tok[0] == "_":
            if tok in columns:
                out.append(_quote(tok, target))
            elif tok.lower() in ("length", "char_length"):
                # Characters, not bytes: MariaDB's length() counts bytes.
                out.append("char_length" if target == "mysql" else "length")
            elif tok.lower() in _FUNCTIONS:
                out.append(tok.lower())
            elif tok.lower() in _CHECK_WORDS:
                out.append(tok.upper())
            else:
                return None
        else:
            out.append(tok)
    return "".join(out).strip() or None


def _quote(name: str, target: str) -> str:
    if target == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'
