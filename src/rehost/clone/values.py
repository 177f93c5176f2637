"""Values on their way between engines: conversion for the load, canonical text for verify.

``converter`` turns what the source driver returns into what the target
driver (or PostgreSQL COPY) accepts; ``canonical`` turns a value read from
either side into one string, equal on both sides when the value survived.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from collections.abc import Callable
from typing import Any

from rehost.db.types import from_doc, to_doc

Convert = Callable[[Any], Any]

_DATE_KINDS = ("date", "datetime", "datetimetz")


class ZeroDates:
    """Counts MySQL zero dates ('0000-00-00') turned into NULL, per column."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def fixer(self, subject: str) -> Convert:
        counts = self.counts

        def fix(value: Any) -> Any:
            if value.__class__ is str:  # PyMySQL returns invalid dates as text
                try:
                    dt.date.fromisoformat(value[:10])
                except ValueError:
                    counts[subject] = counts.get(subject, 0) + 1
                    return None
            return value

        return fix


def source_fix(
    source: str, target: str, kind: str, subject: str, zero: ZeroDates
) -> Convert | None:
    """A first step for values of this column, or None (MySQL zero dates → NULL elsewhere)."""
    if source == "mysql" and target != "mysql" and kind in _DATE_KINDS:
        return zero.fixer(subject)
    return None


def converter(
    src_kind: str, kind: str, source: str, target: str, scale: int | None = None
) -> Convert | None:
    """Driver value of ``src_kind`` on ``source`` → parameter for ``kind`` on ``target``.

    None means the value can go as it is.
    """
    if source == target and src_kind == kind:
        return None
    if src_kind == kind and kind in ("int", "text"):
        return None
    if kind == "bytes" and src_kind == "bytes":
        return lambda v: bytes(v) if isinstance(v, memoryview) else v
    if kind == "json" and src_kind == "json":

        def as_json(v: Any) -> Any:
            if v is None or v.__class__ is str:
                return v
            if isinstance(v, (bytes, bytearray)):
                return bytes(v).decode("utf-8")
            return json.dumps(v, ensure_ascii=False)

        return as_json
    if kind == "float" and src_kind == "float":
        return lambda v: None if v is None else float(v)
    if kind == "text" and src_kind in ("uuid", "other"):
        return lambda v: None if v is None else _text(v)
    if kind == "json" and src_kind == "other":
        return lambda v: None if v is None else json.dumps(_plain(v), ensure_ascii=False)

    def general(value: Any) -> Any:
        if value is None:
            return None
        return from_doc(to_doc(value, src_kind, scale), kind, target)

    return _fast_paths(src_kind, kind, target, scale, general)


def _fast_paths(
    src_kind: str, kind: str, target: str, scale: int | None, general: Convert
) -> Convert:
    if kind == src_kind == "decimal" and scale is not None and target != "sqlite":
        general = _decimal(scale, general)
    if target in ("postgresql", "mysql") and src_kind == kind:
        return _as_is(kind, general)
    return general


def _decimal(scale: int, general: Convert) -> Convert:
    """Floats (SQLite's REAL-stored NUMERIC) to the column's exact decimal, as to_doc does."""
    quantum = decimal.Decimal(1).scaleb(-scale)
    Dec = decimal.Decimal

    def exact(v: Any) -> Any:
        if v.__class__ is float and math.isfinite(v):
            try:
                return Dec(repr(v)).quantize(quantum)
            except decimal.InvalidOperation:
                pass
        return general(v)

    return exact


_ISO = re.compile(r"\d{4}-\d\d-\d\d( \d\d:\d\d:\d\d(\.\d{1,6})?)?|\d\d:\d\d:\d\d(\.\d{1,6})?")
_AS_IS = {
    "datetime": (dt.datetime,),
    "date": (dt.date,),
    "time": (dt.time,),
    "bool": (bool, int),  # 0 and 1 are booleans to both
    "decimal": (decimal.Decimal, int),
}


def _as_is(kind: str, general: Convert) -> Convert:
    """Values PostgreSQL COPY and MariaDB literals take as they are: ISO text, 0/1 booleans."""
    classes = _AS_IS.get(kind)
    if classes is None:
        return general
    iso = kind in ("datetime", "date", "time")

    def fast(v: Any) -> Any:
        if v.__class__ in classes or (iso and v.__class__ is str and _ISO.fullmatch(v)):
            return v
        return general(v)

    return fast


def _plain(v: Any) -> Any:
    """Arrays (lists) and ranges as JSON-able values."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, (dt.date, dt.time, dt.datetime)):
        return v.isoformat()
    return str(v)


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(_plain(v), ensure_ascii=False)
    return str(v)


# ------------------------------------------------------------------ canonical


def canonical(
    kind: str, *, scale: int | None = None, float4: bool = False, fixed: bool = False
) -> Convert:
    """One column's canonical text form, the same on every engine for the same value."""
    if kind == "int":
        return _c_int
    if kind == "bool":
        return _c_bool
    if kind == "float":
        return _c_float4 if float4 else _c_float
    if kind == "decimal":
        quantum = decimal.Decimal(1).scaleb(-scale) if scale is not None else None

        Dec = decimal.Decimal

        def c_dec(v: Any) -> str:
            cls = v.__class__
            d = v if cls is Dec else Dec(repr(v)) if cls is float else Dec(str(v))
            if not d.is_finite():
                return str(d)
            if quantum is not None:
                try:
                    return str(d.quantize(quantum))
                except decimal.InvalidOperation:
                    pass
            return str(d.normalize())

        return c_dec
    if kind == "text":
        return (lambda v: str(v).rstrip(" ")) if fixed else _c_text
    if kind == "bytes":
        return lambda v: bytes(v).hex() if not isinstance(v, str) else v.encode().hex()
    if kind == "date":
        return lambda v: str(to_doc(v, "date"))
    if kind == "datetime":
        return _c_datetime
    if kind == "datetimetz":
        return _c_datetimetz
    if kind == "time":
        return _c_time
    if kind == "json":
        return _c_json
    if kind == "uuid":
        return lambda v: str(v).lower()
    return lambda v: _text(v)


def _c_int(v: Any) -> str:
    if v.__class__ is int:
        return str(v)
    try:
        return str(int(v))
    except (TypeError, ValueError):
        return str(v)


def _c_bool(v: Any) -> str:
    if v in (True, 1, "1", "t", "true"):
        return "1"
    if v in (False, 0, "0", "f", "false"):
        return "0"
    return str(v)


def _c_float(v: Any) -> str:
    f = float(v)
    return repr(f) if math.isfinite(f) else str(f)


def _c_float4(v: Any) -> str:
    return f"{float(v):.6g}"


def _parse_dt(v: Any) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day)
    if isinstance(v, str):
        try:
            return dt.datetime.fromisoformat(v.strip())
        except ValueError:
            return None
    return None


def _c_datetime(v: Any) -> str:
    if v.__class__ is dt.datetime and v.tzinfo is None:
        return v.isoformat(sep=" ", timespec="microseconds")
    d = _parse_dt(v)
    if d is None:
        return str(v)
    if d.tzinfo is not None:
        d = d.astimezone(dt.UTC).replace(tzinfo=None)
    return d.isoformat(sep=" ", timespec="microseconds")


def _c_datetimetz(v: Any) -> str:
    """An instant, in UTC (a naive value is taken as UTC, as rehost writes them)."""
    return _c_datetime(v) + ("Z" if _parse_dt(v) is not None else "")


def _c_time(v: Any) -> str:
    text = to_doc(v, "time")
    try:
        return dt.time.fromisoformat(str(text)).isoformat(timespec="microseconds")
    except ValueError:
        return str(text)


def _c_json(v: Any) -> str:
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("utf-8")
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return v
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _c_text(v: Any) -> str:
    return v if v.__class__ is str else _text(v)
