"""Column kinds and the value codec between drivers and bundle documents."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from typing import Any

import pytest
import sqlalchemy.types as sat
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql, sqlite

from rehost.db.types import KINDS, comparable, from_doc, kind_of, scale_of, to_doc

D = decimal.Decimal
UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MINUS5 = dt.timezone(dt.timedelta(hours=-5))

# ------------------------------------------------------------------- kind_of


@pytest.mark.parametrize(
    ("coltype", "dialect", "kind"),
    [
        # MySQL / MariaDB
        (mysql.TINYINT(1), "mysql", "bool"),
        (mysql.TINYINT(display_width=1, unsigned=True), "mysql", "bool"),
        (mysql.TINYINT(), "mysql", "int"),
        (mysql.TINYINT(4), "mysql", "int"),
        (mysql.INTEGER(11), "mysql", "int"),
        (mysql.BIGINT(unsigned=True), "mysql", "int"),
        (mysql.DOUBLE(), "mysql", "float"),
        (mysql.FLOAT(), "mysql", "float"),
        (mysql.DECIMAL(10, 2), "mysql", "decimal"),
        (mysql.DATETIME(fsp=6), "mysql", "datetime"),
        (mysql.TIMESTAMP(), "mysql", "datetime"),
        (mysql.DATE(), "mysql", "date"),
        (mysql.TIME(), "mysql", "time"),
        (mysql.JSON(), "mysql", "json"),
        (mysql.LONGBLOB(), "mysql", "bytes"),
        (mysql.VARBINARY(16), "mysql", "bytes"),
        (mysql.LONGTEXT(), "mysql", "text"),
        (mysql.VARCHAR(40), "mysql", "text"),
        (mysql.ENUM("a", "b"), "mysql", "text"),
        (mysql.SET("a", "b"), "mysql", "text"),
        (mysql.YEAR(), "mysql", "other"),
        (mysql.BIT(8), "mysql", "other"),
        # PostgreSQL
        (postgresql.BOOLEAN(), "postgresql", "bool"),
        (postgresql.SMALLINT(), "postgresql", "int"),
        (postgresql.BIGINT(), "postgresql", "int"),
        (postgresql.DOUBLE_PRECISION(), "postgresql", "float"),
        (postgresql.REAL(), "postgresql", "float"),
        (postgresql.NUMERIC(12, 4), "postgresql", "decimal"),
        (postgresql.TIMESTAMP(), "postgresql", "datetime"),
        (postgresql.TIMESTAMP(timezone=True), "postgresql", "datetimetz"),
        (postgresql.DATE(), "postgresql", "date"),
        (postgresql.TIME(), "postgresql", "time"),
        (postgresql.JSON(), "postgresql", "json"),
        (postgresql.JSONB(), "postgresql", "json"),
        (postgresql.UUID(), "postgresql", "uuid"),
        (postgresql.BYTEA(), "postgresql", "bytes"),
        (postgresql.TEXT(), "postgresql", "text"),
        (postgresql.CITEXT(), "postgresql", "text"),
        (postgresql.INTERVAL(), "postgresql", "other"),
        (postgresql.INET(), "postgresql", "other"),
        (postgresql.ARRAY(sat.Integer()), "postgresql", "other"),
        # SQLite (what reflection hands back for declared types)
        (sqlite.INTEGER(), "sqlite", "int"),
        (sat.BOOLEAN(), "sqlite", "bool"),
        (sqlite.FLOAT(), "sqlite", "float"),
        (sqlite.NUMERIC(10, 2), "sqlite", "decimal"),
        (sqlite.DATETIME(), "sqlite", "datetime"),
        (sqlite.DATE(), "sqlite", "date"),
        (sqlite.TIME(), "sqlite", "time"),
        (sqlite.JSON(), "sqlite", "json"),
        (sat.BLOB(), "sqlite", "bytes"),
        (sqlite.VARCHAR(10), "sqlite", "text"),
        (sat.NullType(), "sqlite", "other"),
        # Generic SQLAlchemy types
        (sat.Boolean(), "sqlite", "bool"),
        (sat.Integer(), "postgresql", "int"),
        (sat.Float(), "postgresql", "float"),
        (sat.Numeric(10, 0), "postgresql", "decimal"),
        (sat.DateTime(), "postgresql", "datetime"),
        (sat.DateTime(timezone=True), "postgresql", "datetimetz"),
        (sat.JSON(), "mysql", "json"),
        (sat.LargeBinary(), "mysql", "bytes"),
        (sat.Uuid(), "postgresql", "uuid"),
        (sat.Enum("x", "y"), "postgresql", "text"),
        (sat.Unicode(5), "sqlite", "text"),
    ],
    ids=lambda v: repr(v) if not isinstance(v, str) else v,
)
def test_kind_of(coltype: Any, dialect: str, kind: str) -> None:
    assert kind_of(coltype, dialect) == kind
    assert kind in KINDS


@pytest.mark.parametrize(
    ("name", "kind"),
    [("MEDIUMBLOB", "bytes"), ("BYTEA", "bytes"), ("NCHAR2", "text"), ("NCLOB", "text")],
)
def test_kind_of_unknown_types_falls_back_on_the_type_name(name: str, kind: str) -> None:
    custom = type(name, (sat.TypeEngine,), {})()
    assert kind_of(custom, "sqlite") == kind
    assert kind_of(type("GEOMETRY", (sat.TypeEngine,), {})(), "sqlite") == "other"


def test_scale_of() -> None:
    assert scale_of(sat.Numeric(10, 2)) == 2
    assert scale_of(sat.Numeric(10, 0)) == 0
    assert scale_of(sat.Numeric()) is None
    assert scale_of(sat.Integer()) is None
    assert scale_of(sat.Float()) is None


# -------------------------------------------------------------------- to_doc


def test_none_stays_none_for_every_kind() -> None:
    for kind in KINDS:
        assert to_doc(None, kind) is None
        assert from_doc(None, kind, "sqlite") is None
        assert comparable(None, kind) is None


def test_to_doc_int() -> None:
    assert to_doc(5, "int") == 5
    assert to_doc(True, "int") == 1 and type(to_doc(True, "int")) is int
    assert to_doc(D("42"), "int") == 42 and type(to_doc(D("42"), "int")) is int
    assert to_doc(2**70, "int") == 2**70
    # A value that does not fit the kind is kept (SQLite stores anything anywhere).
    assert to_doc("n/a", "int") == "n/a"
    assert to_doc(D("1.5"), "int") == "1.5"


def test_to_doc_bool_from_integers() -> None:
    assert to_doc(True, "bool") is True
    assert to_doc(False, "bool") is False
    assert to_doc(1, "bool") is True
    assert to_doc(0, "bool") is False
    # Out of range integers are kept as they are, not squashed to true.
    assert to_doc(2, "bool") == 2 and to_doc(2, "bool") is not True
    assert to_doc("yes", "bool") == "yes"


def test_to_doc_float() -> None:
    assert to_doc(1.5, "float") == 1.5
    assert to_doc(3, "float") == 3.0 and type(to_doc(3, "float")) is float
    assert to_doc(D("0.25"), "float") == 0.25
    assert to_doc(float("inf"), "float") == {"$float": "inf"}
    assert to_doc(float("-inf"), "float") == {"$float": "-inf"}
    assert to_doc(float("nan"), "float") == {"$float": "nan"}
    assert to_doc(D("NaN"), "float") == {"$float": "nan"}
    # Non-finite floats in columns of other kinds are marked too: JSON has no inf.
    assert to_doc(float("inf"), "text") == {"$float": "inf"}


def test_to_doc_decimal_is_a_string_quantized_to_the_scale() -> None:
    assert to_doc(D("1.5"), "decimal", 2) == "1.50"
    assert to_doc(D("1.50"), "decimal", 2) == "1.50"
    assert to_doc(D("1.504"), "decimal", 2) == "1.50"
    assert to_doc(D("1.506"), "decimal", 2) == "1.51"
    assert to_doc(7, "decimal", 2) == "7.00"
    assert to_doc(0.1, "decimal", 3) == "0.100"  # via str(0.1), not 0.1000000000000000055…
    assert to_doc(19.99, "decimal", 2) == "19.99"
    assert to_doc(D("12"), "decimal", 0) == "12"
    assert to_doc(D("-0.5"), "decimal", 1) == "-0.5"
    # Without a scale the value is written as it comes.
    assert to_doc(D("1.250"), "decimal") == "1.250"
    assert to_doc(D("NaN"), "decimal", 2) == "NaN"
    assert to_doc(True, "decimal", 2) is True  # not a number: kept


def test_decimal_document_is_the_same_whatever_engine_returned() -> None:
    # SQLite hands back a float, PostgreSQL a Decimal, MySQL a Decimal with the scale.
    assert to_doc(12.5, "decimal", 2) == to_doc(D("12.5"), "decimal", 2) == "12.50"
    assert to_doc(D("12.50"), "decimal", 2) == "12.50"


def test_to_doc_datetime_naive_and_text() -> None:
    v = dt.datetime(2024, 2, 29, 13, 5, 9)
    assert to_doc(v, "datetime") == "2024-02-29T13:05:09"
    assert to_doc(v.replace(microsecond=120), "datetime") == "2024-02-29T13:05:09.000120"
    # SQLite returns text, in either separator style.
    assert to_doc("2024-02-29 13:05:09", "datetime") == "2024-02-29T13:05:09"
    assert to_doc("2024-02-29 13:05:09.000000", "datetime") == "2024-02-29T13:05:09"
    assert to_doc(" 2024-02-29T13:05:09 ", "datetime") == "2024-02-29T13:05:09"
    # A date in a datetime column is midnight.
    assert to_doc(dt.date(2024, 2, 29), "datetime") == "2024-02-29T00:00:00"
    # Unparseable text is kept.
    assert to_doc("yesterday", "datetime") == "yesterday"


def test_to_doc_datetime_aware_keeps_its_offset() -> None:
    v = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PLUS2)
    assert to_doc(v, "datetimetz") == "2024-01-02T03:04:05+02:00"
    assert to_doc(v.astimezone(UTC), "datetimetz") == "2024-01-02T01:04:05+00:00"
    assert to_doc("2024-01-02 03:04:05+02:00", "datetimetz") == "2024-01-02T03:04:05+02:00"
    assert to_doc("2024-01-02T01:04:05Z", "datetimetz") == "2024-01-02T01:04:05+00:00"


def test_to_doc_date() -> None:
    assert to_doc(dt.date(2023, 12, 31), "date") == "2023-12-31"
    assert to_doc(dt.datetime(2023, 12, 31, 23, 59), "date") == "2023-12-31"
    assert to_doc("2023-12-31", "date") == "2023-12-31"
    assert to_doc("2023-12-31 00:00:00", "date") == "2023-12-31"
    assert to_doc("31/12/2023", "date") == "31/12/2023"


def test_to_doc_time_from_time_and_mysql_timedelta() -> None:
    assert to_doc(dt.time(8, 30), "time") == "08:30:00"
    assert to_doc(dt.time(8, 30, 0, 500), "time") == "08:30:00.000500"
    # MySQL TIME comes back as a timedelta.
    assert to_doc(dt.timedelta(hours=8, minutes=30), "time") == "08:30:00"
    assert to_doc(dt.timedelta(0), "time") == "00:00:00"
    assert to_doc(dt.timedelta(hours=23, minutes=59, seconds=59), "time") == "23:59:59"
    assert to_doc(dt.timedelta(seconds=1, microseconds=5), "time") == "00:00:01.000005"
    assert to_doc("08:30", "time") == "08:30"  # SQLite text is kept


def test_to_doc_mysql_time_beyond_a_day_stays_a_mysql_time_literal() -> None:
    assert to_doc(dt.timedelta(hours=25), "time") == "25:00:00"
    assert to_doc(dt.timedelta(hours=-1), "time") == "-01:00:00"


def test_to_doc_json_parses_the_text_every_driver_returns() -> None:
    assert to_doc('{"b": [1, 2.5, null], "a": true}', "json") == {"a": True, "b": [1, 2.5, None]}
    assert to_doc(b'{"k": "v"}', "json") == {"k": "v"}
    assert to_doc("[]", "json") == []
    assert to_doc("0", "json") == 0
    assert to_doc("null", "json") is None
    # A JSON string document stays a string, however much it looks like a number.
    assert to_doc('"0"', "json") == "0"
    assert to_doc('"true"', "json") == "true"
    assert to_doc('"{\\"a\\": 1}"', "json") == '{"a": 1}'
    # Not JSON at all (SQLite will store it): kept as text.
    assert to_doc("not json", "json") == "not json"
    # Already decoded values pass through.
    assert to_doc({"a": 1}, "json") == {"a": 1}


def test_to_doc_bytes_as_base64() -> None:
    assert to_doc(b"\x00\xffhi", "bytes") == {"$base64": "AP9oaQ=="}
    assert to_doc(memoryview(b"\x00\xffhi"), "bytes") == {"$base64": "AP9oaQ=="}
    assert to_doc(bytearray(b""), "bytes") == {"$base64": ""}
    # Bytes in a column of another kind (a BLOB stored in a TEXT column) are kept too.
    assert to_doc(b"\x01", "text") == {"$base64": "AQ=="}


def test_to_doc_uuid_text_and_other() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert to_doc(u, "uuid") == "12345678-1234-5678-1234-567812345678"
    assert to_doc(str(u), "uuid") == str(u)
    assert to_doc("héllo", "text") == "héllo"
    assert to_doc(dt.timedelta(days=1, hours=2), "other") == "1 day, 2:00:00"
    assert to_doc(D("1.10"), "other") == "1.10"
    assert to_doc(u, "other") == str(u)
    assert to_doc(dt.date(2020, 1, 1), "other") == "2020-01-01"
    assert to_doc([1, "a"], "other") == [1, "a"]


def test_every_document_is_plain_json() -> None:
    samples: list[tuple[Any, str]] = [
        (D("1.5"), "decimal"),
        (dt.datetime(2020, 1, 1, tzinfo=UTC), "datetimetz"),
        (dt.time(1, 2), "time"),
        (dt.timedelta(hours=1), "time"),
        (b"x", "bytes"),
        (uuid.uuid4(), "uuid"),
        (float("nan"), "float"),
        (object(), "other"),
    ]
    for value, kind in samples:
        doc = to_doc(value, kind)
        assert json.loads(json.dumps(doc, allow_nan=False)) == doc


# ------------------------------------------------------------------ from_doc


@pytest.mark.parametrize(
    ("dialect", "expected"), [("postgresql", True), ("mysql", 1), ("sqlite", 1)]
)
def test_from_doc_bool(dialect: str, expected: Any) -> None:
    assert from_doc(True, "bool", dialect) == expected
    assert type(from_doc(True, "bool", dialect)) is type(expected)
    assert from_doc(False, "bool", dialect) == (False if dialect == "postgresql" else 0)


def test_from_doc_int_and_float() -> None:
    assert from_doc(True, "int", "postgresql") == 1 and type(from_doc(True, "int", "mysql")) is int
    assert from_doc(7, "int", "postgresql") == 7
    assert from_doc(1.25, "float", "mysql") == 1.25
    assert math.isinf(from_doc({"$float": "inf"}, "float", "postgresql"))
    assert from_doc({"$float": "-inf"}, "float", "postgresql") < 0
    assert math.isnan(from_doc({"$float": "nan"}, "float", "sqlite"))


def test_from_doc_decimal() -> None:
    pg = from_doc("12.50", "decimal", "postgresql")
    assert isinstance(pg, D) and pg == D("12.50") and str(pg) == "12.50"
    assert from_doc("12.50", "decimal", "mysql") == D("12.50")
    # SQLite has no exact decimal: it gets the text.
    assert from_doc("12.50", "decimal", "sqlite") == "12.50"
    assert from_doc(3, "decimal", "postgresql") == D(3)
    assert from_doc("abc", "decimal", "postgresql") == "abc"


def test_from_doc_datetime_per_dialect() -> None:
    naive = "2024-05-06T07:08:09.000010"
    aware = "2024-05-06T07:08:09+02:00"
    want_naive = dt.datetime(2024, 5, 6, 7, 8, 9, 10)
    # naive columns: aware values become UTC wall time
    assert from_doc(naive, "datetime", "postgresql") == want_naive
    assert from_doc(naive, "datetime", "mysql") == want_naive
    assert from_doc(aware, "datetime", "mysql") == dt.datetime(2024, 5, 6, 5, 8, 9)
    assert from_doc(aware, "datetime", "postgresql").tzinfo is None
    assert from_doc(naive, "datetime", "sqlite") == "2024-05-06 07:08:09.000010"
    assert from_doc(aware, "datetime", "sqlite") == "2024-05-06 05:08:09"
    # zoned columns
    pg = from_doc(aware, "datetimetz", "postgresql")
    assert pg == dt.datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC) and pg.tzinfo is not None
    assert from_doc(naive, "datetimetz", "postgresql").tzinfo is UTC  # naive taken as UTC
    assert from_doc(aware, "datetimetz", "mysql") == dt.datetime(2024, 5, 6, 5, 8, 9)
    assert from_doc(aware, "datetimetz", "sqlite") == "2024-05-06 07:08:09+02:00"
    assert from_doc("garbage", "datetime", "postgresql") == "garbage"


def test_from_doc_date_time_uuid() -> None:
    assert from_doc("2024-05-06", "date", "postgresql") == dt.date(2024, 5, 6)
    assert from_doc("2024-05-06", "date", "mysql") == dt.date(2024, 5, 6)
    assert from_doc("2024-05-06", "date", "sqlite") == "2024-05-06"
    assert from_doc("bad", "date", "mysql") == "bad"
    assert from_doc("10:11:12.5", "time", "postgresql") == dt.time(10, 11, 12, 500000)
    assert from_doc("10:11:12", "time", "sqlite") == "10:11:12"
    u = "12345678-1234-5678-1234-567812345678"
    assert from_doc(u, "uuid", "postgresql") == uuid.UUID(u)
    assert from_doc(u, "uuid", "mysql") == u
    assert from_doc("not-a-uuid", "uuid", "postgresql") == "not-a-uuid"


def test_from_doc_bytes_and_json_text() -> None:
    assert from_doc({"$base64": "AP9oaQ=="}, "bytes", "postgresql") == b"\x00\xffhi"
    assert from_doc({"b": [1], "a": "é"}, "json", "mysql") == '{"a":"é","b":[1]}'
    assert from_doc("0", "json", "postgresql") == '"0"'
    assert from_doc(0, "json", "postgresql") == "0"
    assert from_doc(False, "json", "sqlite") == "false"
    # Structured values in columns of other kinds become JSON text.
    assert json.loads(from_doc({"x": 1}, "other", "postgresql")) == {"x": 1}


@pytest.mark.parametrize("value", [{"$base64": "AA=="}, {"$float": "1.5"}, {"$float": "x"}])
def test_json_objects_that_look_like_markers_round_trip(value: dict[str, str]) -> None:
    text = from_doc(value, "json", "sqlite")
    assert to_doc(text, "json") == value


# ---------------------------------------------------------------- comparable


def test_comparable_datetime() -> None:
    c = comparable
    assert c("2024-01-01T00:00:00", "datetime") == c("2024-01-01 00:00:00.000000", "datetime")
    # naive columns: an aware value is compared as UTC wall time
    assert c("2024-01-01T02:00:00+02:00", "datetime") == c("2024-01-01T00:00:00", "datetime")
    # zoned columns: the same instant in two offsets is equal, a naive value is not
    assert c("2024-01-01T02:00:00+02:00", "datetimetz") == c(
        "2024-01-01T00:00:00+00:00", "datetimetz"
    )
    assert c("2024-01-01T02:00:00+02:00", "datetimetz") != c(
        "2024-01-01T02:00:00+00:00", "datetimetz"
    )
    assert c("2024-01-01T00:00:00", "datetimetz") != c("2024-01-01T00:00:00+00:00", "datetimetz")
    assert c("someday", "datetime") == "someday"


def test_comparable_decimal_float_bool() -> None:
    c = comparable
    assert c("1.50", "decimal") == c("1.5", "decimal") == c(1.5, "decimal")
    assert c("100", "decimal") == c("1E+2", "decimal")
    assert c("1.50", "decimal") != c("1.51", "decimal")
    assert c("abc", "decimal") == "abc"
    assert c(3, "float") == c(3.0, "float") and type(c(3, "float")) is float
    assert c(1, "bool") is True and c(0, "bool") is False
    assert c(True, "bool") is True
    # other kinds are compared as they are
    assert c("1.50", "text") != c("1.5", "text")
    assert c({"a": 1}, "json") == {"a": 1}


# ---------------------------------------------------------- round trips (hypothesis)

# What each driver hands back for the parameter rehost gave it, where that differs.


def _driver(param: Any, kind: str, dialect: str) -> Any:
    if dialect == "mysql" and kind == "time" and isinstance(param, dt.time):
        return dt.timedelta(
            hours=param.hour,
            minutes=param.minute,
            seconds=param.second,
            microseconds=param.microsecond,
        )
    if dialect == "mysql" and kind == "bool" and isinstance(param, int):
        return param  # TINYINT(1) gives back 0/1
    if dialect == "postgresql" and kind == "bytes" and isinstance(param, bytes):
        return memoryview(param)
    return param


def _offsets() -> st.SearchStrategy[dt.timezone]:
    return st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda m: dt.timezone(dt.timedelta(minutes=m))
    )


_naive = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(min_size=2, max_size=6), inner, max_size=4),
    max_leaves=8,
)

# kind → (strategy of raw source values, scale, dialects where the round trip holds)
ALL = ("sqlite", "postgresql", "mysql")
RAW: dict[str, tuple[st.SearchStrategy[Any], int | None, tuple[str, ...]]] = {
    "int": (st.integers(min_value=-(2**63), max_value=2**63 - 1), None, ALL),
    "bool": (st.booleans() | st.sampled_from([0, 1]), None, ALL),
    "float": (st.floats(), None, ALL),
    "decimal": (
        st.decimals(min_value=-(10**12), max_value=10**12, places=4, allow_nan=False),
        4,
        ALL,
    ),
    "text": (st.text(), None, ALL),
    "bytes": (st.binary(), None, ALL),
    "date": (st.dates(), None, ALL),
    "datetime": (_naive, None, ALL),
    "datetimetz": (
        st.builds(lambda d, tz: d.replace(tzinfo=tz), _naive, _offsets()),
        None,
        ("sqlite", "postgresql"),
    ),
    "time": (st.times(), None, ALL),
    "json": (_json.map(lambda v: json.dumps(v)), None, ALL),
    "uuid": (st.uuids(), None, ALL),
}


@pytest.mark.parametrize("kind", sorted(RAW))
def test_documents_survive_import_and_re_export(kind: str) -> None:
    """to_doc(driver(from_doc(doc))) == doc for every document to_doc can produce."""
    strategy, scale, dialects = RAW[kind]

    @settings(max_examples=60, deadline=None)
    @given(raw=strategy, dialect=st.sampled_from(dialects))
    def check(raw: Any, dialect: str) -> None:
        doc = to_doc(raw, kind, scale)
        param = from_doc(doc, kind, dialect)
        again = to_doc(_driver(param, kind, dialect), kind, scale)
        assert again == doc
        assert type(again) is type(doc)
        assert comparable(again, kind) == comparable(doc, kind)

    check()


@settings(max_examples=60, deadline=None)
@given(_json)
def test_json_text_documents_round_trip(value: Any) -> None:
    text = json.dumps(value)
    doc = to_doc(text, "json")
    assert doc == value
    assert to_doc(from_doc(doc, "json", "postgresql"), "json") == value


@settings(max_examples=100, deadline=None)
@given(
    st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False),
    st.integers(0, 6),
)
def test_decimal_quantizing_keeps_the_value_to_the_scale(value: D, scale: int) -> None:
    doc = to_doc(value, "decimal", scale)
    d = D(doc)
    assert d == value.quantize(D(1).scaleb(-scale))
    assert -d.as_tuple().exponent == scale  # exactly `scale` digits after the point
    assert abs(d - value) <= D(1).scaleb(-scale) / 2


@settings(max_examples=100, deadline=None)
@given(st.builds(lambda d, tz: d.replace(tzinfo=tz), _naive, _offsets()))
def test_aware_values_in_naive_columns_become_utc_wall_time(value: dt.datetime) -> None:
    doc = to_doc(value, "datetime")
    expected = value.astimezone(UTC).replace(tzinfo=None)
    for dialect in ("postgresql", "mysql"):
        assert from_doc(doc, "datetime", dialect) == expected
    assert from_doc(doc, "datetime", "sqlite") == str(expected)
    assert comparable(doc, "datetime") == expected
