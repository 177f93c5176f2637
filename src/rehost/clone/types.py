"""Mapping reflected column types to a target engine (pure: no database needed).

Each source column type is classified into a family (integer with its width,
float with its width, exact decimal, text, binary, date/time, JSON, UUID …)
and re-created in the target dialect with the type that holds every value the
source can hold. What has no faithful equivalent (a PostgreSQL array, range,
enum, domain or interval into MariaDB or SQLite, a decimal wider than the
target keeps exactly …) becomes an error finding: the user decides with
``--map-type SRC=TARGET`` and the clone never downgrades silently.

The table per engine pair is in docs/clone.md; ``tests/unit/test_clone_types.py``
keeps the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import sqlalchemy.types as st
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.dialects.postgresql import ranges as pg_ranges

from rehost.checks.findings import Finding
from rehost.db.types import kind_of
from rehost.errors import UsageError

DIALECTS: dict[str, Any] = {
    "postgresql": postgresql.dialect(),
    "mysql": mysql.dialect(),
    "sqlite": sqlite.dialect(),
}

# MariaDB keys are at most 3072 bytes: 768 four-byte characters.
MYSQL_KEY_CHARS = 768
# SQLite converts NUMERIC text through a double: 15 significant digits survive.
SQLITE_EXACT_DIGITS = 15
MYSQL_MAX_PRECISION = 65
MYSQL_MAX_SCALE = 38
MYSQL_MAX_VARCHAR = 16383  # utf8mb4 characters in one VARCHAR


@dataclass(frozen=True)
class Mapped:
    """A column's target type, and how its values are read and compared.

    ``src_kind`` / ``kind`` are the value kinds (see rehost.db.types) on each
    side; ``float4`` marks single-precision floats (compared to 6 digits);
    ``fixed`` marks CHAR(n) (engines differ on trailing-space padding).
    """

    type: Any
    src_kind: str
    kind: str
    scale: int | None = None
    float4: bool = False
    fixed: bool = False
    findings: tuple[Finding, ...] = field(default=(), compare=False)


def type_names(coltype: Any, dialect: str) -> list[str]:
    """Names a ``--map-type`` source may use for this type, most specific first.

    The full type as the source writes it (``numeric(10,2)``, ``integer[]``),
    its base name (``numeric``), an enum's or domain's own name (``mood``), and
    a family (``array``, ``range``, ``enum``, ``domain``, ``interval``).
    """
    names: list[str] = []
    text = render(coltype, dialect).lower()
    names.append(_squash(text))
    # MySQL's display widths mean nothing: "bigint(20) unsigned" is "bigint unsigned".
    bare = _squash(re.sub(r"\(\d+\)", "", text))
    if bare not in names:
        names.append(bare)
    names.append(_squash(text.split("(", 1)[0]))
    own = getattr(coltype, "name", None)
    if isinstance(own, str) and own:
        names.append(own.lower())
    family = next((f for classes, f in _FAMILIES if isinstance(coltype, classes)), None)
    if family:
        names.append(family)
    return list(dict.fromkeys(n for n in names if n))


# A DOMAIN is an enum-like SchemaType too: it comes first.
_FAMILIES: tuple[tuple[Any, str], ...] = (
    (postgresql.ARRAY, "array"),
    ((pg_ranges.AbstractRange, pg_ranges.AbstractMultiRange), "range"),
    (postgresql.DOMAIN, "domain"),
    (st.Enum, "enum"),
    ((postgresql.INTERVAL, st.Interval), "interval"),
    (st.NullType, "untyped"),
)


def _squash(text: str) -> str:
    return re.sub(r"\s*([(),])\s*", r"\1", text.strip())


def render(coltype: Any, dialect: str) -> str:
    """The type as its own engine writes it (``INTEGER[]``, ``VARCHAR(40)``)."""
    if isinstance(coltype, st.NullType):
        return "untyped"
    try:
        return str(coltype.compile(dialect=DIALECTS[dialect]))
    except Exception:  # a reflected type its dialect cannot render on its own
        return type(coltype).__name__


# ----------------------------------------------------------------- target text

_ALIASES = {
    "postgresql": {
        "varchar": "character varying",
        "char": "character",
        "int": "integer",
        "int4": "integer",
        "int8": "bigint",
        "int2": "smallint",
        "bool": "boolean",
        "decimal": "numeric",
        "double": "double precision",
        "timestamptz": "timestamp with time zone",
        "timetz": "time with time zone",
        "float8": "double precision",
        "float4": "real",
    },
    "mysql": {"bool": "boolean", "real": "double", "character varying": "varchar"},
    "sqlite": {},
}


def parse_type(text: str, dialect: str, *, like: Any = None, name: str = "") -> Any:
    """A target type from its SQL text (``TEXT``, ``DECIMAL(38,10)``, ``JSONB``).

    ``ENUM`` without labels copies the labels of ``like`` (the source enum).
    """
    raw = text.strip()
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_ ]*?)\s*(?:\((.*)\))?\s*(\[\])?", raw)
    if not m:
        raise UsageError(f"--map-type: '{text}' is not a type name such as TEXT or DECIMAL(38,10).")
    base, args_text, array = m.group(1).strip().lower(), m.group(2), m.group(3)
    base = _ALIASES[dialect].get(base, base)
    if base == "enum" and not args_text:
        labels = list(getattr(like, "enums", None) or [])
        if not labels:
            raise UsageError(f"--map-type: ENUM needs labels, e.g. \"ENUM('a','b')\" ({text}).")
        if dialect == "postgresql":
            return postgresql.ENUM(*labels, name=name or "enum")
        if dialect == "mysql":
            return mysql.ENUM(*labels)
        raise UsageError("--map-type: SQLite has no ENUM; map to TEXT.")
    names = {k.lower(): v for k, v in DIALECTS[dialect].ischema_names.items()}
    cls = names.get(base)
    if cls is None:
        known = ", ".join(sorted(names))
        raise UsageError(
            f"--map-type: '{text}' is not a {dialect} type rehost knows. Known: {known}."
        )
    args: list[Any] = []
    if args_text:
        for part in _split_args(args_text):
            args.append(int(part) if re.fullmatch(r"-?\d+", part) else part.strip("'\""))
    try:
        if cls in (mysql.ENUM, mysql.SET, sa.Enum):
            made: Any = cls(*args)
        elif cls in (postgresql.TIMESTAMP, postgresql.TIME) and "time zone" in base:
            made = cls(timezone="without" not in base, precision=args[0] if args else None)
        else:
            made = cls(*args)
    except TypeError:
        made = cls()
    if array and dialect == "postgresql":
        return postgresql.ARRAY(made)
    return made


def _split_args(text: str) -> list[str]:
    return [p.strip() for p in re.findall(r"'(?:[^']|'')*'|[^,]+", text) if p.strip()]


# ------------------------------------------------------------------ families

_INT_BITS = (
    (mysql.TINYINT, 8),
    (mysql.MEDIUMINT, 24),
    (st.SmallInteger, 16),
    (st.BigInteger, 64),
    (st.Integer, 32),
)


def int_bits(coltype: Any, dialect: str) -> int:
    """Bits a value of this integer column may need (65: MySQL BIGINT UNSIGNED)."""
    if dialect == "sqlite":
        return 64  # every SQLite INTEGER holds 64 bits, whatever it is called
    bits = 32
    for cls, b in _INT_BITS:
        if isinstance(coltype, cls):
            bits = b
            break
    if getattr(coltype, "unsigned", False):
        bits += 1
    return bits


def _int_type(bits: int, dialect: str) -> Any:
    if dialect == "sqlite":
        return sa.INTEGER()
    if dialect == "mysql":
        if bits <= 8:
            return mysql.TINYINT()
        if bits <= 16:
            return mysql.SMALLINT()
        if bits <= 24:
            return mysql.MEDIUMINT()
        if bits <= 32:
            return mysql.INTEGER()
        return mysql.BIGINT(unsigned=bits > 64)
    if bits <= 16:
        return sa.SMALLINT()
    if bits <= 32:
        return sa.INTEGER()
    return sa.BIGINT()


def is_float4(coltype: Any, dialect: str) -> bool:
    """Single precision: PostgreSQL REAL, MySQL FLOAT (SQLite REAL is a double)."""
    if dialect == "sqlite":
        return False
    if isinstance(coltype, (postgresql.DOUBLE_PRECISION, mysql.DOUBLE, sa.Double)):
        return False
    if isinstance(coltype, (sa.REAL, mysql.FLOAT)) or type(coltype) is sa.Float:
        precision = getattr(coltype, "precision", None)
        return precision is None or precision <= 24
    return False


def _float_type(float4: bool, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.REAL() if float4 else postgresql.DOUBLE_PRECISION()
    if dialect == "mysql":
        return mysql.FLOAT() if float4 else mysql.DOUBLE()
    return sa.REAL()


def _is_fixed_char(coltype: Any) -> bool:
    return isinstance(coltype, (sa.CHAR, sa.NCHAR)) and not isinstance(
        coltype, (sa.VARCHAR, sa.NVARCHAR)
    )


def _text_type(coltype: Any, dialect: str, *, keyed: bool) -> tuple[Any, str | None]:
    """Target text type, and a warning when MariaDB needs a bounded key column."""
    length = getattr(coltype, "length", None)
    fixed = _is_fixed_char(coltype)
    if dialect == "mysql":
        if fixed and length and length <= 255:
            return mysql.CHAR(length), None
        if length and length <= MYSQL_MAX_VARCHAR and not (keyed and length > MYSQL_KEY_CHARS):
            return mysql.VARCHAR(length), None
        if keyed:
            return mysql.VARCHAR(MYSQL_KEY_CHARS), (
                f"is part of a key or index and MariaDB indexes at most {MYSQL_KEY_CHARS} "
                f"characters: it becomes VARCHAR({MYSQL_KEY_CHARS}); a longer value would "
                "stop the load"
            )
        return mysql.LONGTEXT(), None
    if fixed and length:
        return sa.CHAR(length), None
    if length:
        return sa.VARCHAR(length), None
    return sa.TEXT(), None


def _binary_type(coltype: Any, dialect: str, *, keyed: bool) -> Any:
    length = getattr(coltype, "length", None)
    if dialect == "postgresql":
        return postgresql.BYTEA()
    if dialect == "sqlite":
        return sa.BLOB()
    if isinstance(coltype, (mysql.BINARY, sa.BINARY)) and length and length <= 255:
        return mysql.BINARY(length)
    if length and length <= 65000:
        return mysql.VARBINARY(length)
    if keyed:
        return mysql.VARBINARY(3072)
    return mysql.LONGBLOB()


def _decimal(
    coltype: Any, target: str, subject: str, names: list[str]
) -> tuple[Any, Finding | None]:
    precision = getattr(coltype, "precision", None)
    scale = getattr(coltype, "scale", None)
    if target == "postgresql":
        return (sa.NUMERIC(precision, scale) if precision else sa.NUMERIC()), None
    if target == "mysql":
        if precision and precision <= MYSQL_MAX_PRECISION and (scale or 0) <= MYSQL_MAX_SCALE:
            return mysql.DECIMAL(precision, scale or 0), None
        return None, _untranslatable(
            subject,
            names,
            f"{names[0]} keeps any number of digits; a MariaDB DECIMAL keeps at most "
            f"{MYSQL_MAX_PRECISION} digits with {MYSQL_MAX_SCALE} after the point",
            "DECIMAL(65,20)",
        )
    if precision and precision <= SQLITE_EXACT_DIGITS:
        return sa.NUMERIC(precision, scale), None
    return None, _untranslatable(
        subject,
        names,
        f"SQLite keeps {SQLITE_EXACT_DIGITS} significant digits of a NUMERIC value, "
        f"{names[0]} may hold more",
        "TEXT",
        also="(exact digits, stored as text) or =NUMERIC (accept 15 digits)",
    )


def _untranslatable(
    subject: str, names: list[str], why: str, suggestion: str, also: str = ""
) -> Finding:
    fix = f"choose the target type: --map-type '{names[-1]}={suggestion}'"
    if also:
        fix += f" {also}"
    return Finding(
        code="clone-type-unmapped",
        severity="error",
        subject=subject,
        message=f"no faithful target type: {why}.",
        fix=fix,
    )


def _warning(subject: str, message: str, code: str = "clone-type-narrowed") -> Finding:
    return Finding(code=code, severity="warning", subject=subject, message=message)


def source_kind(coltype: Any, dialect: str, *, json: bool = False) -> str:
    """The value kind read from the source, with MySQL specifics folded in."""
    if json:
        return "json"
    if dialect == "mysql" and isinstance(coltype, mysql.TIMESTAMP):
        return "datetimetz"  # an instant, read in UTC
    if isinstance(coltype, st.NullType):
        return "other"
    return kind_of(coltype, dialect)


def map_type(
    coltype: Any,
    source: str,
    target: str,
    *,
    subject: str,
    overrides: dict[str, str] | None = None,
    keyed: bool = False,
    json: bool = False,
    enum_name: str = "",
) -> Mapped:
    """The target type for one source column.

    ``keyed``: the column is in a key, index or foreign key (MariaDB cannot
    index unbounded text). ``json``: a MariaDB LONGTEXT holding JSON.
    Findings on the result say what could not be carried faithfully.
    """
    names = type_names(coltype, source)
    if json:
        names = ["json", *names]
    src_kind = source_kind(coltype, source, json=json)
    scale = getattr(coltype, "scale", None) if isinstance(coltype, st.Numeric) else None
    float4 = is_float4(coltype, source) if src_kind == "float" else False
    fixed = _is_fixed_char(coltype)
    for name in names:
        if overrides and name in overrides:
            made = parse_type(overrides[name], target, like=coltype, name=enum_name)
            kind = kind_of(made, target)
            if target == "mysql" and isinstance(made, mysql.TIMESTAMP):
                kind = "datetimetz"
            return Mapped(
                made,
                src_kind,
                kind,
                scale=getattr(made, "scale", None) if kind == "decimal" else None,
                float4=is_float4(made, target) if kind == "float" else False,
                fixed=_is_fixed_char(made),
            )
    if source == target and not json and not isinstance(coltype, st.NullType):
        return Mapped(coltype, src_kind, src_kind, scale=scale, float4=float4, fixed=fixed)
    made, finding = _cross(coltype, source, target, subject, names, src_kind, keyed)
    if made is None:
        return Mapped(sa.TEXT(), src_kind, "text", findings=(finding,) if finding else ())
    kind = src_kind
    if src_kind == "uuid" and target != "postgresql":
        kind = "text"
    if src_kind == "datetimetz" and target != "postgresql":
        kind = "datetime"
    return Mapped(
        made,
        src_kind,
        kind,
        scale=scale,
        float4=float4,
        fixed=fixed and kind == "text",
        findings=(finding,) if finding else (),
    )


def _cross(
    coltype: Any,
    source: str,
    target: str,
    subject: str,
    names: list[str],
    kind: str,
    keyed: bool,
) -> tuple[Any, Finding | None]:
    """Type and finding for a column moving to another engine."""
    if isinstance(coltype, postgresql.DOMAIN):
        return None, _untranslatable(
            subject,
            names,
            f"domain {names[0]} exists only on PostgreSQL",
            "TEXT",
            also="(or its base type)",
        )
    if isinstance(coltype, st.Enum):
        return None, _untranslatable(
            subject,
            names,
            f"enum {names[0]} has no equivalent that keeps its labels and order on {target}",
            "TEXT" if target == "sqlite" else "ENUM",
            also="" if target == "sqlite" else "(same labels) or =TEXT",
        )
    if kind == "bool":
        return (mysql.BOOLEAN() if target == "mysql" else sa.BOOLEAN()), None
    if kind == "int":
        bits = int_bits(coltype, source)
        if bits > 64 and target != "mysql":
            return _int_type(64, target), _warning(
                subject,
                "BIGINT UNSIGNED becomes BIGINT: a value above 9223372036854775807 would "
                "stop the load (map it with --map-type 'bigint unsigned=NUMERIC(20)' to keep "
                "such values)",
            )
        return _int_type(bits, target), None
    if kind == "float":
        return _float_type(is_float4(coltype, source), target), None
    if kind == "decimal":
        return _decimal(coltype, target, subject, names)
    if kind == "text":
        made, why = _text_type(coltype, target, keyed=keyed)
        return made, (_warning(subject, why) if why else None)
    if kind == "bytes":
        return _binary_type(coltype, target, keyed=keyed), None
    if kind == "date":
        return sa.DATE(), None
    if kind == "datetime":
        return _datetime(target, zoned=False), None
    if kind == "datetimetz":
        made = _datetime(target, zoned=True)
        if target == "postgresql":
            return made, None
        return made, Finding(
            code="clone-timestamp-utc",
            severity="warning" if target == "mysql" else "info",
            subject=subject,
            message=(
                f"{target} has no zoned timestamp: instants are stored as UTC "
                + ("in DATETIME(6)" if target == "mysql" else "text with a +00:00 offset")
            ),
        )
    if kind == "time":
        if target == "mysql":
            return mysql.TIME(fsp=6), None
        return sa.TIME(), None
    if kind == "json":
        if target == "postgresql":
            return postgresql.JSONB(), None
        return sa.JSON(), None
    if kind == "uuid":
        if target == "postgresql":
            return postgresql.UUID(), None
        return sa.CHAR(36), None
    if source == target:  # SQLAlchemy did not recognise the type (an extension's, a composite)
        return None, _untranslatable(
            subject, names, "rehost cannot read this column's type from the catalog", "TEXT"
        )
    what = "this type"
    for family in ("array", "range", "interval", "untyped"):
        if family in names:
            what = {"untyped": "a column without a declared type"}.get(family, f"a {family}")
    return None, _untranslatable(
        subject,
        names,
        f"{names[0]} ({what}) exists only on {source}",
        "JSON" if "array" in names else "TEXT",
    )


def _datetime(target: str, *, zoned: bool) -> Any:
    if target == "postgresql":
        return postgresql.TIMESTAMP(timezone=zoned)
    if target == "mysql":
        return mysql.DATETIME(fsp=6)
    return sa.DATETIME()


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["integer[]=JSON", "mood=TEXT"]`` → ``{"integer[]": "JSON", "mood": "TEXT"}``."""
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(
                f"--map-type '{item}': write SOURCE_TYPE=TARGET_TYPE, e.g. 'integer[]=JSON'."
            )
        src, tgt = item.split("=", 1)
        if not src.strip() or not tgt.strip():
            raise UsageError(f"--map-type '{item}': both sides of '=' are needed.")
        out[_squash(src.lower())] = tgt.strip()
    return out
