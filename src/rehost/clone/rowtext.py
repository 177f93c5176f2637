"""A row's checksum text, written alike by PostgreSQL, MariaDB (in SQL) and rehost (for SQLite).

Verification across engines sums a 60-bit hash (the first 15 hex digits of
the MD5) of one text per row, per key range, on each side. The text is the
row's columns of a supported *family*, each written one way whatever the
engine, joined by ``,``:

* NULL is ``N``;
* int, bool (``0``/``1``), decimal: the exact number as the engine prints it
  (a decimal with its scale's digits, ``12.50``);
* text: ``<characters>:<text>`` — the length prefix keeps the fields apart
  whatever the text holds (CHAR(n): without trailing spaces);
* bytes: lowercase hex;
* date ``YYYY-MM-DD``, datetime ``YYYY-MM-DD HH:MM:SS.ffffff`` (always six
  digits), zoned datetime the same in UTC with ``Z``; PostgreSQL values outside
  years 1-9999 (BC, infinity) as ``!`` and PostgreSQL's own text;
* float (double precision): the shortest decimal that reads back as the same
  double, in MariaDB's notation — fixed from 1e-15 to below 1e15 (and to
  1e16 for a number with a fraction), otherwise ``1.5e-16``/``1e20``;
  PostgreSQL's shortest output (``extra_float_digits`` above 0) rewritten to
  it; ``-0``, ``NaN``, ``Infinity`` as PostgreSQL writes them.

Every field is an exact representation of its value (numbers, texts and
instants that print alike are equal), so equal texts mean values the
streamed comparison (rehost.clone.values.canonical) also finds equal. The
Python side writes a value it cannot put in this form (text in an integer
column of SQLite, say) as ``\\x02``, which no SQL field starts with: that row
then differs, and the range is streamed and compared exactly.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any

from rehost.clone.io import _mysql_bad_date
from rehost.clone.types import Mapped, _is_fixed_char, is_float4, source_kind
from rehost.clone.values import _c_datetime, _c_datetimetz, canonical

NULL = "N"
MARK = "\x02"  # a value with no checksum form: the row never matches
_PLAIN = ("int", "bool", "text", "bytes", "date", "datetime", "datetimetz")


def family(m: Mapped) -> str | None:
    """The family both sides write this column in, or None (compared by streaming)."""
    if m.src_kind == m.kind and m.kind in _PLAIN:
        return m.kind
    if m.src_kind == m.kind == "decimal" and m.scale is not None:
        return "decimal"
    if m.src_kind == m.kind == "float" and not m.float4:
        return "float"
    if {m.src_kind, m.kind} == {"int", "decimal"} and m.scale in (0, None):
        # BIGINT UNSIGNED as NUMERIC(20): the same digits (a decimal with a fraction
        # writes it, so it never matches an integer)
        return "int"
    return None


def fits(coltype: Any, dialect: str, kind: str, m: Mapped) -> bool:
    """True when a side's actual column type is what the family's SQL was written for."""
    actual = source_kind(coltype, dialect)
    if actual != kind:
        return False
    if kind == "float" and is_float4(coltype, dialect):
        return False
    return kind != "text" or _is_fixed_char(coltype) == m.fixed


# --------------------------------------------------------------------------- SQL

_PG_DATETIME = "to_char({q}, 'YYYY-MM-DD HH24:MI:SS.US')"
_PG_IN_RANGE = "{q} >= '0001-01-01' AND {q} < '10000-01-01'"


def sql_field(dialect: str, q: str, fam: str, *, fixed: bool, zero_dates: bool) -> str:
    """One column's field in SQL (never NULL). ``zero_dates``: MariaDB zero dates read as NULL."""
    if dialect == "postgresql":
        expr = _pg_field(q, fam, fixed)
        return f"coalesce({expr}, '{NULL}')"
    expr = _my_field(q, fam, fixed)
    if zero_dates and fam in ("date", "datetime", "datetimetz"):
        expr = f"IF({_mysql_bad_date(q)}, NULL, {expr})"
    return f"IFNULL({expr}, '{NULL}')"


def _pg_field(q: str, fam: str, fixed: bool) -> str:
    if fam in ("int", "decimal"):
        return f"{q}::text"
    if fam == "bool":
        return f"CASE WHEN {q} THEN '1' WHEN NOT {q} THEN '0' END"
    if fam == "text":
        v = f"rtrim({q}::text, ' ')" if fixed else f"{q}::text"
        return f"length({v})::text || ':' || {v}"
    if fam == "bytes":
        return f"encode({q}, 'hex')"
    if fam == "date":
        return (
            f"CASE WHEN {q} >= '0001-01-01' AND {q} <= '9999-12-31' THEN {q}::text"
            f" ELSE '!' || {q}::text END"
        )
    if fam in ("datetime", "datetimetz"):
        zone = " || 'Z'" if fam == "datetimetz" else ""
        return (
            f"CASE WHEN {_PG_IN_RANGE.format(q=q)} THEN {_PG_DATETIME.format(q=q)}{zone}"
            f" ELSE '!' || {q}::text END"
        )
    if fam == "float":
        # Shortest output is 1.5e-05 below 1e-4, MariaDB's is 0.000015 down to 1e-15;
        # from 1e15 to 1e16 MariaDB writes a fraction in fixed notation.
        sign = f"CASE WHEN {q} < 0 THEN '-' ELSE '' END"
        digits = f"replace(ltrim(split_part({q}::text, 'e', 1), '-'), '.', '')"
        small = (
            f"{sign} || '0.' || repeat('0', -split_part({q}::text, 'e', 2)::int - 1) || {digits}"
        )
        large = f"{sign} || substr({digits}, 1, 16) || '.' || substr({digits}, 17)"
        return (
            f"CASE WHEN abs({q}) >= 1e-15 AND abs({q}) < 1e-4 THEN {small}"
            f" WHEN abs({q}) >= 1e15 AND abs({q}) < 1e16 AND {q} <> trunc({q}) THEN {large}"
            f" ELSE replace({q}::text, 'e+', 'e') END"
        )
    raise ValueError(fam)


def _my_field(q: str, fam: str, fixed: bool) -> str:
    if fam in ("int", "bool", "decimal", "float"):
        return f"CAST({q} AS CHAR)"
    if fam == "text":
        v = f"CONVERT({q} USING utf8mb4)"
        if fixed:
            v = f"TRIM(TRAILING ' ' FROM {v})"
        return f"CONCAT(CHAR_LENGTH({v}), ':', {v})"
    if fam == "bytes":
        return f"LOWER(HEX({q}))"
    if fam == "date":
        return f"DATE_FORMAT({q}, '%Y-%m-%d')"
    if fam == "datetime":
        return f"DATE_FORMAT({q}, '%Y-%m-%d %H:%i:%s.%f')"
    if fam == "datetimetz":
        return f"CONCAT(DATE_FORMAT({q}, '%Y-%m-%d %H:%i:%s.%f'), 'Z')"
    raise ValueError(fam)


def sql_hash(dialect: str, fields: list[str]) -> str:
    """The row's 60-bit hash, a non-negative integer, from its fields."""
    if dialect == "postgresql":
        row = " || ',' || ".join(fields)
        return f"('x' || left(md5({row}), 15))::bit(60)::bigint"
    row = f"CONVERT(CONCAT_WS(',', {', '.join(fields)}) USING utf8mb4)"
    return f"CAST(CONV(LEFT(MD5({row}), 15), 16, 10) AS UNSIGNED)"


def sql_bucket(dialect: str, q: str, lo: int, width: int) -> str:
    """A key's range number: (key - lo) / width, truncated toward zero (as in Python below)."""
    if dialect == "postgresql":
        return f"({q}::bigint - {lo}) / {width}"
    return f"({q} - {lo}) DIV {width}"  # an out-of-range result is an error, never wraps


# ------------------------------------------------------------------------ Python

Field = Callable[[Any], str]
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
_DATETIME_S = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_DATETIME_Z = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}Z")


def py_field(fam: str, *, scale: int | None = None, fixed: bool = False) -> Field:
    """One column's field for a value read from SQLite: the SQL sides' text for the same value."""
    if fam == "int":
        return _f_int
    if fam == "bool":
        return lambda v: _BOOL.get(v, MARK) if v.__class__ is not str else MARK
    if fam == "decimal":
        assert scale is not None
        return _f_decimal(scale)
    if fam == "text":
        return _f_fixed if fixed else _f_text
    if fam == "bytes":
        return _f_bytes
    if fam == "date":
        return _f_date
    if fam == "datetime":
        return _f_datetime
    if fam == "datetimetz":
        return _f_datetimetz
    if fam == "float":
        return float_text
    raise ValueError(fam)


_BOOL: dict[Any, str] = {0: "0", 1: "1", None: NULL}


def _f_int(v: Any) -> str:
    if v.__class__ is int:
        return str(v)
    return NULL if v is None else MARK


def _f_text(v: Any) -> str:
    if v.__class__ is str:
        return f"{len(v)}:{v}"
    return NULL if v is None else MARK


def _f_fixed(v: Any) -> str:
    if v.__class__ is str:
        v = v.rstrip(" ")
        return f"{len(v)}:{v}"
    return NULL if v is None else MARK


def _f_bytes(v: Any) -> str:
    if isinstance(v, (bytes, memoryview)):
        return bytes(v).hex()
    return NULL if v is None else MARK


_c_date = canonical("date")


def _f_date(v: Any) -> str:
    if v.__class__ is str and len(v) == 10 and _DATE.fullmatch(v):
        try:
            dt.date.fromisoformat(v)
            return v
        except ValueError:
            return MARK
    if v is None:
        return NULL
    text = _c_date(v)
    return text if _DATE.fullmatch(text) else MARK


def _f_datetime(v: Any) -> str:
    if v.__class__ is str:
        if len(v) == 26 and _DATETIME.fullmatch(v):
            return v  # what canonical() writes for it, valid or not (SQL writes only valid ones)
        if len(v) == 19 and _DATETIME_S.fullmatch(v):
            try:
                dt.datetime.fromisoformat(v)
                return v + ".000000"
            except ValueError:
                return MARK
    if v is None:
        return NULL
    text = _c_datetime(v)
    return text if _DATETIME.fullmatch(text) else MARK


def _f_datetimetz(v: Any) -> str:
    if v is None:
        return NULL
    text = _c_datetimetz(v)
    return text if _DATETIME_Z.fullmatch(text) else MARK


def _f_decimal(scale: int) -> Field:
    quantum = decimal.Decimal(1).scaleb(-scale)
    zeros = "0" * scale
    Dec = decimal.Decimal

    def slow(v: Any) -> str:
        try:
            d = Dec(repr(v)) if v.__class__ is float else Dec(str(v))
        except (decimal.InvalidOperation, ValueError):
            return MARK
        if not d.is_finite():
            return str(d) if not d.is_snan() else MARK
        try:
            return format(d.quantize(quantum), "f")
        except decimal.InvalidOperation:
            return MARK

    def field(v: Any) -> str:
        cls = v.__class__
        if cls is float:
            r = repr(v)
            dot = r.find(".")
            if dot > 0 and "e" not in r:
                places = len(r) - dot - 1
                if places <= scale:
                    return r + zeros[places:] if scale else r[:dot]
                if scale == 0 and r.endswith(".0"):
                    return r[:dot]
            return slow(v)
        if cls is int:
            return f"{v}.{zeros}" if scale else str(v)
        if v is None:
            return NULL
        return slow(v)

    return field


def float_text(v: Any) -> str:
    """A double as MariaDB prints it (shortest digits; fixed from 1e-15 to below 1e15)."""
    if v.__class__ is float and (1e-4 <= v < 1e15 or -1e15 < v <= -1e-4):
        r = repr(v)  # the common case: fixed notation, "100.0" written "100"
        return r[:-2] if r[-2:] == ".0" else r
    if v.__class__ is not float:
        if v is None:
            return NULL
        if v.__class__ is not int:
            return MARK
        v = float(v)
    if v != v:
        return "NaN"
    a = abs(v)
    if a == float("inf"):
        return "Infinity" if v > 0 else "-Infinity"
    r = repr(v)  # shortest digits: fixed from 1e-4 to below 1e16, else d.ddde±XX
    if 1e-4 <= a < 1e15 or a == 0:
        return r[:-2] if r.endswith(".0") else r
    sign = "-" if v < 0 else ""
    if a < 1e-4:
        mantissa, exp = r.lstrip("-").split("e")
        if a < 1e-15:
            return f"{sign}{mantissa}e{int(exp)}"
        return f"{sign}0.{'0' * (-int(exp) - 1)}{mantissa.replace('.', '')}"
    if "e" in r:  # 1e16 and up
        mantissa, exp = r.lstrip("-").split("e")
        return f"{sign}{mantissa}e{int(exp)}"
    if not r.endswith(".0"):  # 1e15 to below 1e16 with a fraction: "1234567890123456.8"
        return r
    digits = r.lstrip("-")[:-2].rstrip("0")
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e15"
