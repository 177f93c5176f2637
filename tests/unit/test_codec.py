"""Deterministic JSON text for documents, file names and labels from natural keys."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rehost.bundle.codec import (
    canonical,
    dumps_file,
    dumps_line,
    key_label,
    short_hash,
    slugify,
)

keys = st.text(max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=8,
)
documents = st.dictionaries(keys, json_values, max_size=5)

# ---------------------------------------------------------------- encoding


def test_dumps_file_layout_is_exact() -> None:
    doc = {"name": "Zoë", "_id": 3, "tags": ["b", "a"], "meta": {"z": None, "a": 1.5}}
    assert dumps_file(doc) == (
        "{\n"
        '  "_id": 3,\n'
        '  "meta": {\n'
        '    "a": 1.5,\n'
        '    "z": null\n'
        "  },\n"
        '  "name": "Zoë",\n'
        '  "tags": [\n'
        '    "b",\n'
        '    "a"\n'
        "  ]\n"
        "}\n"
    )


def test_dumps_file_writes_unicode_as_is_and_escapes_only_what_json_needs() -> None:
    text = dumps_file({"s": 'AC/DC — “Live” 日本 \n\t"\\'})
    assert "— “Live” 日本" in text
    assert "\\u" not in text
    assert '\\n\\t\\"\\\\' in text
    assert text.endswith("}\n") and not text.endswith("\n\n")


def test_dumps_line_is_compact_sorted_one_line() -> None:
    assert dumps_line({"b": [1, {"d": 2, "c": 3}], "a": "é"}) == (
        '{"a":"é","b":[1,{"c":3,"d":2}]}\n'
    )
    assert dumps_line({"s": "two\nlines"}).count("\n") == 1


def test_canonical_has_no_whitespace_and_no_newline() -> None:
    assert canonical({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'
    assert canonical("x") == '"x"'


def test_numbers_keep_their_value() -> None:
    doc = {"big": 2**80, "neg": -(2**70), "small": 1e-07, "third": 1 / 3, "max": 2**63 - 1}
    for text in (dumps_file(doc), dumps_line(doc)):
        back = json.loads(text)
        assert back == doc
        assert type(back["big"]) is int and type(back["small"]) is float


def test_encoding_refuses_values_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        dumps_file({"when": object()})


@settings(max_examples=80, deadline=None)
@given(documents)
def test_encoding_round_trips_and_is_stable(doc: dict[str, Any]) -> None:
    text = dumps_file(doc)
    assert json.loads(text) == doc
    # encoding what was decoded gives the very same text (a fixed point)
    assert dumps_file(json.loads(text)) == text
    assert text.endswith("\n") and not text.endswith("\n\n")
    # key order in memory does not matter
    assert dumps_file(dict(reversed(list(doc.items())))) == text
    # two-space indentation
    for line in text.split("\n")[1:-2]:
        indent = len(line) - len(line.lstrip(" "))
        assert indent >= 2 and indent % 2 == 0

    line = dumps_line(doc)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == doc
    assert dumps_line(dict(reversed(list(doc.items())))) == line
    assert dumps_line(json.loads(line)) == line


# ------------------------------------------------------------------- slugs


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("AC/DC — Live", "ac-dc-live"),
        ("Crème Brûlée", "creme-brulee"),
        ("  --Hello,   World!--  ", "hello-world"),
        ("web-app", "web-app"),
        ("Release 2.0 / step 3", "release-2-0-step-3"),
        ("ÆON ﬁle", "on-file"),  # Æ has no decomposition; the ligature ﬁ does
        ("日本語", ""),
        ("", ""),
        ("∅", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugify_truncates_to_the_limit_without_a_trailing_dash() -> None:
    assert slugify("a" * 100) == "a" * 80
    assert slugify("ab-" * 40, limit=10) == "ab-ab-ab-a"
    assert slugify("abcd-efgh", limit=5) == "abcd"
    assert slugify("abc def", limit=80) == "abc-def"


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=100))
def test_slugs_are_safe_file_names(text: str, limit: int) -> None:
    slug = slugify(text, limit)
    assert re.fullmatch(r"([a-z0-9]+(-[a-z0-9]+)*)?", slug)
    assert len(slug) <= limit
    assert slugify(slug, limit) == slug
    assert slugify(text.upper(), limit) == slugify(text.lower(), limit) or not text.isascii()


# ------------------------------------------------------ short hashes, labels


def test_short_hash_is_8_hex_digits_of_the_canonical_form() -> None:
    import hashlib

    assert short_hash({"name": "x"}) == hashlib.sha256(b'{"name":"x"}').hexdigest()[:8]
    assert re.fullmatch(r"[0-9a-f]{8}", short_hash([1, "a"]))
    assert short_hash({"a": 1, "b": 2}) == short_hash({"b": 2, "a": 1})
    assert short_hash({"name": "A"}) != short_hash({"name": "a"})
    assert short_hash(1) != short_hash("1")


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ({"name": "web"}, "web"),
        ({"project": {"_id": 4, "name": "web"}, "position": 2}, "2 / web"),
        ({"b": "B", "a": "A"}, "A / B"),
        ({"_id": 17}, "#17"),
        ({"owner": {"_id": 9}, "name": "x"}, "x / #9"),
        (["a", 1, None], "a / 1 / ∅"),
        (None, "∅"),
        (True, "True"),
        ({"album": {"artist": {"_id": 1, "name": "AC/DC"}, "title": "Live"}}, "AC/DC / Live"),
    ],
)
def test_key_label(key: Any, label: str) -> None:
    assert key_label(key) == label


def test_labels_of_different_keys_can_slug_alike_but_hash_apart() -> None:
    a, b = {"name": "AC/DC"}, {"name": "ac dc"}
    assert slugify(key_label(a)) == slugify(key_label(b)) == "ac-dc"
    assert short_hash(a) != short_hash(b)
