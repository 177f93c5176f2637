"""The clone's type mapping, defaults and checks, without a database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

from rehost.clone.plan import translate_check, translate_default
from rehost.clone.types import Mapped, map_type, parse_overrides, parse_type, render
from rehost.errors import UsageError

DOC = Path(__file__).resolve().parents[2] / "docs" / "clone.md"
TARGETS = ("postgresql", "mysql", "sqlite")


def source_type(dialect: str, text: str):
    """A reflected-like type from its SQL text (``int unsigned``, ``numeric(10,2)``)."""
    unsigned = text.endswith(" unsigned")
    made = parse_type(text.removesuffix(" unsigned"), dialect)
    if unsigned:
        made = type(made)(unsigned=True)
    return made


def cell(m: Mapped, target: str) -> str:
    if any(f.severity == "error" for f in m.findings):
        return "error"
    text = render(m.type, target)
    if any(f.severity == "warning" for f in m.findings):
        text += " (warning)"
    return text


def mapped(source: str, text: str, target: str, **kw) -> Mapped:
    return map_type(source_type(source, text), source, target, subject="t.c", **kw)


def doc_rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        m = re.fullmatch(r"\| (postgresql|mysql|sqlite) \| `([^`]+)` \|(.*)\|", line)
        if m:
            cells = [c.strip().strip("`") for c in m.group(3).split("|")]
            rows.append([m.group(1), m.group(2), *cells])
    return rows


def test_the_documented_table_is_what_the_mapper_does():
    rows = doc_rows()
    assert len(rows) >= 40
    for source, text, *cells in rows:
        got = [cell(mapped(source, text, t), t) if t != source else "same" for t in TARGETS]
        want = [c if c != "same" else "same" for c in cells]
        assert got == want, f"{source} {text}"


def test_same_engine_keeps_the_reflected_type():
    arr = postgresql.ARRAY(sa.Integer())
    m = map_type(arr, "postgresql", "postgresql", subject="t.tags")
    assert m.type is arr and not m.findings


def test_array_needs_a_choice_and_map_type_makes_it():
    arr = postgresql.ARRAY(sa.Integer())
    m = map_type(arr, "postgresql", "mysql", subject="t.tags")
    (finding,) = m.findings
    assert (finding.code, finding.severity, finding.subject) == (
        "clone-type-unmapped",
        "error",
        "t.tags",
    )
    assert "--map-type" in finding.fix and "JSON" in finding.fix
    chosen = map_type(arr, "postgresql", "mysql", subject="t.tags", overrides={"integer[]": "JSON"})
    assert (chosen.kind, chosen.findings, render(chosen.type, "mysql")) == ("json", (), "JSON")
    by_family = map_type(arr, "postgresql", "sqlite", subject="t.tags", overrides={"array": "TEXT"})
    assert by_family.kind == "text"


def test_enum_keeps_its_labels_only_when_asked():
    mood = postgresql.ENUM("sad", "ok", name="mood")
    assert map_type(mood, "postgresql", "mysql", subject="t.m").findings[0].severity == "error"
    m = map_type(mood, "postgresql", "mysql", subject="t.m", overrides={"mood": "ENUM"})
    assert render(m.type, "mysql") == "ENUM('sad','ok')"
    back = map_type(mysql.ENUM("a", "b"), "mysql", "postgresql", subject="t.e",
                    overrides={"enum": "ENUM"}, enum_name="t_e")  # fmt: skip
    assert render(back.type, "postgresql") == "t_e"


def test_mysql_specifics():
    assert mapped("mysql", "tinyint(1)", "postgresql").kind == "bool"
    ts = mapped("mysql", "timestamp", "postgresql")
    assert (ts.src_kind, ts.kind, render(ts.type, "postgresql")) == (
        "datetimetz", "datetimetz", "TIMESTAMP WITH TIME ZONE")  # fmt: skip
    mariadb_json = map_type(mysql.LONGTEXT(), "mysql", "postgresql", subject="t.j", json=True)
    assert (mariadb_json.src_kind, render(mariadb_json.type, "postgresql")) == ("json", "JSONB")


def test_unbounded_text_in_a_mariadb_key_is_bounded_with_a_warning():
    m = map_type(sa.TEXT(), "postgresql", "mysql", subject="t.name", keyed=True)
    assert render(m.type, "mysql") == "VARCHAR(768)"
    assert m.findings[0].severity == "warning"
    assert (
        render(map_type(sa.TEXT(), "postgresql", "mysql", subject="t.c").type, "mysql")
        == "LONGTEXT"
    )


def test_map_type_option_errors_are_usage_errors():
    with pytest.raises(UsageError, match="SOURCE_TYPE=TARGET_TYPE"):
        parse_overrides(["integer[]"])
    with pytest.raises(UsageError, match="not a mysql type"):
        map_type(postgresql.ARRAY(sa.Integer()), "postgresql", "mysql", subject="t.c",
                 overrides=parse_overrides(["integer[]=NOPE"]))  # fmt: skip
    assert parse_overrides(["Numeric( 10, 2 )=TEXT"]) == {"numeric(10,2)": "TEXT"}


@pytest.mark.parametrize(
    ("text", "source", "target", "kind", "want"),
    [
        ("'x'::character varying", "postgresql", "mysql", "text", "'x'"),
        ("(0)::numeric", "postgresql", "sqlite", "decimal", "0"),
        ("now()", "postgresql", "mysql", "datetimetz", "CURRENT_TIMESTAMP(6)"),
        ("CURRENT_TIMESTAMP", "sqlite", "postgresql", "datetime", "CURRENT_TIMESTAMP"),
        ("true", "postgresql", "mysql", "bool", "1"),
        ("1", "mysql", "postgresql", "bool", "true"),
        ("'0'", "sqlite", "postgresql", "bool", "false"),
        ("NULL", "mysql", "postgresql", "text", None),
        ("gen_random_uuid()", "postgresql", "mysql", "uuid", None),
        ("uuid()", "mysql", "mysql", "text", "uuid()"),
    ],
)
def test_defaults_carry_when_portable(text, source, target, kind, want):
    assert translate_default(text, source, target, kind) == want


@pytest.mark.parametrize(
    ("text", "source", "target", "want"),
    [
        ("n2 >= 0::numeric", "postgresql", "mysql", "`n2` >= 0"),
        ("length((name)::text) > 0", "postgresql", "sqlite", 'length(("name")) > 0'),
        ("`pos` >= 0 and `pos` < 10", "mysql", "postgresql", '"pos" >= 0 AND "pos" < 10'),
        ("status IN ('a', 'b')", "sqlite", "mysql", "`status` IN ('a', 'b')"),
        ("name ~ '^[a-z]+$'", "postgresql", "mysql", None),
        ("octet_length(`name`) > 0", "mysql", "sqlite", None),
        ("char_length(`name`) > 0", "mysql", "postgresql", 'length("name") > 0'),
        ("length(name) > 0", "sqlite", "mysql", "char_length(`name`) > 0"),
        ("anything at all", "sqlite", "sqlite", "anything at all"),
    ],
)
def test_checks_carry_only_when_surely_equivalent(text, source, target, want):
    assert translate_check(text, source, target, ["n2", "name", "pos", "status"]) == want


def test_a_type_sqlalchemy_does_not_know_is_an_error_even_on_the_same_engine():
    m = map_type(sa.types.NullType(), "postgresql", "postgresql", subject="t.geom")
    assert m.findings[0].code == "clone-type-unmapped"
    assert "untyped=TEXT" in m.findings[0].fix


def test_mysql_unsigned_is_named_without_its_display_width():
    from sqlalchemy.dialects import mysql

    from rehost.clone.types import parse_overrides, type_names

    names = type_names(mysql.BIGINT(display_width=20, unsigned=True), "mysql")
    assert names[:2] == ["bigint(20)unsigned", "bigint unsigned"]
    # What the clone-type-narrowed finding tells the user to write works.
    assert "bigint unsigned" in parse_overrides(["bigint unsigned=NUMERIC(20)"])
