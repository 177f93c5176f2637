"""Column kinds and the value codec between databases and bundle documents.

A bundle value is plain JSON. Values are normalized by the *source* column's
kind when exported (so the same data gives the same document whatever engine
it came from) and converted by the *target* column's kind when imported.

| kind       | document value                         |
|------------|----------------------------------------|
| int        | JSON integer                           |
| float      | JSON number                            |
| decimal    | string, quantized to the column scale  |
| bool       | true / false                           |
| text       | string                                 |
| bytes      | {"$base64": "…"}                       |
| date       | "YYYY-MM-DD"                           |
| datetime   | "YYYY-MM-DDTHH:MM:SS[.ffffff]"         |
| datetimetz | "YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM"   |
| time       | "HH:MM:SS[.ffffff]"                    |
| json       | any JSON value                         |
| uuid       | string                                 |
| other      | string (the driver's text form)        |

A value that does not fit its column's kind (SQLite stores anything
anywhere) is kept as it is, so nothing is lost.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy.types as st
from sqlalchemy.dialects import mysql, postgresql

KINDS = (
    "int",
    "float",
    "decimal",
    "bool",
    "text",
    "bytes",
    "date",
    "datetime",
    "datetimetz",
    "time",
    "json",
    "uuid",
    "other",
)


def kind_of(coltype: Any, dialect: str) -> str:
    """Classify a reflected SQLAlchemy column type."""
    t = coltype
    if isinstance(t, mysql.TINYINT) and getattr(t, "display_width", None) == 1:
        return "bool"
    if isinstance(t, st.Boolean):
        return "bool"
    if isinstance(t, st.Integer):
        return "int"
    if isinstance(t, (st.Float, postgresql.DOUBLE_PRECISION, st.REAL)):
        return "float"
    if isinstance(t, st.Numeric):
        return "decimal"
    if isinstance(t, st.DateTime):
        return "datetimetz" if getattr(t, "timezone", False) else "datetime"
    if isinstance(t, st.Date):
        return "date"
    if isinstance(t, st.Time):
        return "time"
    if isinstance(t, st.JSON):
        return "json"
    if isinstance(t, (st.Uuid, postgresql.UUID)):
        return "uuid"
    if isinstance(t, (st._Binary, st.LargeBinary)):
        return "bytes"
    if isinstance(t, (st.String, st.Enum)):
        return "text"
    name = type(t).__name__.upper()
    if "BLOB" in name or "BINARY" in name or name == "BYTEA":
        return "bytes"
    if "CHAR" in name or "TEXT" in name or "CLOB" in name:
        return "text"
    return "other"


def scale_of(coltype: Any) -> int | None:
    scale = getattr(coltype, "scale", None)
    return scale if isinstance(scale, int) else None


# ---------------------------------------------------------------- export side


def _iso_datetime(value: dt.datetime) -> str:
    return value.isoformat()


def _parse_datetime(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None


def _mysql_duration(value: dt.timedelta) -> str:
    """A MySQL TIME outside one day ('838:59:59', '-01:00:00'), as MySQL writes it."""
    sign = "-" if value < dt.timedelta(0) else ""
    micros = abs(value) // dt.timedelta(microseconds=1)
    seconds, frac = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}.{frac:06d}" if frac else text


def to_doc(value: Any, kind: str, scale: int | None = None) -> Any:
    """Normalize a raw driver value into its document form."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        value = value.tobytes()
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
            return int(value)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif kind == "float":
        if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
            f = float(value)
            if math.isfinite(f):
                return f
            return {"$float": repr(f)}
    elif kind == "decimal":
        if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
            d = decimal.Decimal(str(value)) if isinstance(value, float) else decimal.Decimal(value)
            if scale is not None and d.is_finite():
                with contextlib.suppress(decimal.InvalidOperation):
                    d = d.quantize(decimal.Decimal(1).scaleb(-scale))
            return str(d)
    elif kind in ("datetime", "datetimetz"):
        if isinstance(value, str):
            parsed = _parse_datetime(value)
            if parsed is None:
                return value
            value = parsed
        if isinstance(value, dt.datetime):
            return _iso_datetime(value)
        if isinstance(value, dt.date):
            return _iso_datetime(dt.datetime(value.year, value.month, value.day))
    elif kind == "date":
        if isinstance(value, dt.datetime):
            return value.date().isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()[:10]).isoformat()
            except ValueError:
                return value
    elif kind == "time":
        if isinstance(value, dt.time):
            return value.isoformat()
        if isinstance(value, dt.timedelta):  # MySQL TIME comes back as a timedelta
            total = value.total_seconds()
            if 0 <= total < 86400:
                return (dt.datetime.min + value).time().isoformat()
            return _mysql_duration(value)
    elif kind == "json":
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    elif kind == "uuid":
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (str, int, float, bool)):
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (dict, list)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


_PASS_THROUGH: dict[str, type] = {"text": str, "int": int, "bool": bool, "other": str}


def doc_encoder(kind: str, scale: int | None = None) -> Callable[[Any], Any]:
    """``to_doc`` for one column, with the driver's usual type on a fast path."""
    same = _PASS_THROUGH.get(kind)
    if same is not None:

        def passthrough(value: Any) -> Any:
            if value is None or value.__class__ is same:
                return value
            return to_doc(value, kind, scale)

        return passthrough
    if kind == "bool":

        def flag(value: Any) -> Any:
            if value is None or value is True or value is False:
                return value
            if value.__class__ is int and (value == 0 or value == 1):
                return value == 1
            return to_doc(value, kind, scale)

        return flag
    if kind in ("datetime", "datetimetz"):
        parse = dt.datetime.fromisoformat

        def stamp(value: Any) -> Any:
            if value is None:
                return None
            cls = value.__class__
            if cls is dt.datetime:
                return value.isoformat()
            if cls is str:  # SQLite keeps text
                try:
                    return parse(value).isoformat()
                except ValueError:
                    pass
            return to_doc(value, kind, scale)

        return stamp
    if kind == "decimal" and scale is not None:
        quantum = decimal.Decimal(1).scaleb(-scale)
        Dec = decimal.Decimal

        def number(value: Any) -> Any:
            if value is None:
                return None
            cls = value.__class__
            if cls is Dec or cls is int or cls is float:
                d = Dec(repr(value)) if cls is float else Dec(value)
                if d.is_finite():
                    try:
                        return str(d.quantize(quantum))
                    except decimal.InvalidOperation:
                        return str(d)
            return to_doc(value, kind, scale)

        return number
    return lambda value: None if value is None else to_doc(value, kind, scale)


# ---------------------------------------------------------------- import side


def _as_datetime(value: Any) -> Any:
    if isinstance(value, str):
        parsed = _parse_datetime(value)
        return parsed if parsed is not None else value
    return value


def _to_utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _to_aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def from_doc(value: Any, kind: str, dialect: str) -> Any:
    """Turn a document value into the parameter the target driver expects."""
    if value is None:
        return None
    if kind == "json":  # any JSON value, one-key objects such as {"$float": …} included
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if isinstance(value, dict):
        if "$base64" in value and len(value) == 1:
            return base64.b64decode(value["$base64"])
        if "$float" in value and len(value) == 1:
            return float(value["$float"])
    if kind == "bool":
        if isinstance(value, bool):
            return value if dialect == "postgresql" else int(value)
        return value
    if kind == "int":
        if isinstance(value, bool):
            return int(value)
        return value
    if kind == "decimal":
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            try:
                d = decimal.Decimal(str(value))
            except decimal.InvalidOperation:
                return value
            # SQLite has no exact decimal: hand it text and let its affinity decide.
            return str(d) if dialect == "sqlite" else d
        return value
    if kind == "float":
        return value
    if kind in ("datetime", "datetimetz"):
        v = _as_datetime(value)
        if not isinstance(v, dt.datetime):
            return v
        if dialect == "sqlite":
            # SQLite keeps text: naive columns get UTC wall time, zoned ones keep the offset.
            return str(_to_utc_naive(v) if kind == "datetime" else v)
        if kind == "datetimetz" and dialect == "postgresql":
            return _to_aware(v)
        return _to_utc_naive(v)
    if kind == "date":
        if isinstance(value, str) and dialect != "sqlite":
            try:
                return dt.date.fromisoformat(value[:10])
            except ValueError:
                return value
        return value
    if kind == "time":
        if isinstance(value, str) and dialect != "sqlite":
            try:
                return dt.time.fromisoformat(value)
            except ValueError:
                return value
        return value
    if kind == "uuid":
        if dialect == "postgresql" and isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                return value
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def comparable(value: Any, kind: str) -> Any:
    """A form of a document value for equality checks (plan: unchanged or update)."""
    if value is None:
        return None
    if kind in ("datetime", "datetimetz") and isinstance(value, str):
        parsed = _parse_datetime(value)
        if parsed is not None:
            if parsed.tzinfo is not None:
                parsed = _to_utc_naive(parsed) if kind == "datetime" else parsed
            return parsed
        return value
    if kind == "decimal" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return decimal.Decimal(str(value)).normalize()
        except decimal.InvalidOperation:
            return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "bool" and isinstance(value, int):
        return bool(value)
    return value


Encoder = Callable[[Any], Any]
