"""The per-column fast encoders give exactly what the general codec gives."""

from __future__ import annotations

import datetime as dt
import decimal

from hypothesis import given
from hypothesis import strategies as st

from rehost.db.types import doc_encoder, to_doc

KINDS = [
    "text",
    "int",
    "bool",
    "float",
    "decimal",
    "datetime",
    "datetimetz",
    "date",
    "json",
    "other",
]

raw_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text(max_size=30),
    st.datetimes().map(lambda d: d.isoformat(" ")),  # as SQLite keeps them
    st.datetimes(),
    st.datetimes(timezones=st.just(dt.UTC)),
    st.dates(),
    st.binary(max_size=8),
)


def _same(a: object, b: object) -> bool:
    # NaN passes through both alike (a JSON or untyped value), and equals nothing
    return type(a) is type(b) and (a == b or (a != a and b != b))  # noqa: PLR0124


@given(kind=st.sampled_from(KINDS), scale=st.sampled_from([None, 0, 2, 6]), value=raw_values)
def test_fast_encoder_matches_to_doc(kind: str, scale: int | None, value: object) -> None:
    assert _same(doc_encoder(kind, scale)(value), to_doc(value, kind, scale))


def test_fast_paths_shape_values() -> None:
    assert doc_encoder("bool")(1) is True and doc_encoder("bool")(0) is False
    assert doc_encoder("decimal", 2)(12.5) == "12.50"
    assert doc_encoder("decimal", 2)(decimal.Decimal("3")) == "3.00"
    assert doc_encoder("datetime")("2020-01-01 00:00:01") == "2020-01-01T00:00:01"
    assert doc_encoder("text")("x") == "x"
