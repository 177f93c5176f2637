"""The plan file model (errors with line and field), the code table, statuses, the store."""

from __future__ import annotations

import re

import pytest

from rehost.checks.findings import Finding
from rehost.migration.codes import CODES, ORIGINS, from_library
from rehost.migration.core import combine
from rehost.migration.example import EXAMPLE_PLAN
from rehost.migration.plan import PlanError, parse_plan
from rehost.migration.state import StateStore

PLAN = """\
name: move
sources:
  old:
    databases:
      app: {url: "sqlite:///a.db"}
    shares:
      files: {url: files}
targets:
  new:
    databases:
      app: {url: "sqlite:///b.db"}
      copy: {url: "sqlite:///c.db"}
    shares:
      files: {url: out}
databases:
  - from: old.app
    to: new.app
    only: [projects=web]
  - from: old.app
    to: new.copy
    method: clone
shares:
  - {from: old.files, to: new.files}
"""


def error_of(text: str) -> str:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "rehost.yaml")
    return str(info.value)


def test_example_and_a_split_plan_are_valid():
    example = parse_plan(EXAMPLE_PLAN)
    assert example.databases[0].method == "bundle"
    plan = parse_plan(PLAN)
    assert [m.name for m in plan.databases] == ["old.app>new.app", "old.app>new.copy"]
    assert plan.databases[1].method == "clone"
    assert plan.shares[0].from_ == "old.files"


def test_unknown_field_names_its_line_and_path():
    text = PLAN.replace("    only: [projects=web]\n", "    onli: [projects=web]\n")
    msg = error_of(text)
    assert "line 18: databases[0].onli: Extra inputs are not permitted" in msg


def test_wrong_value_names_its_line():
    msg = error_of(PLAN.replace("method: clone", "method: copy"))
    assert re.search(r"line 21: databases\[1\]\.method: Input should be 'bundle' or 'clone'", msg)


def test_missing_field_names_the_mapping_that_lacks_it():
    msg = error_of(PLAN.replace("name: move\n", ""))
    assert "line 1: name: Field required" in msg


def test_every_problem_is_listed():
    text = PLAN.replace("method: clone", "method: copy").replace("    to: new.app\n", "")
    msg = error_of(text)
    assert "databases[0].to: Field required" in msg and "databases[1].method" in msg


def test_unknown_server_or_database_is_named_with_the_choices():
    msg = error_of(PLAN.replace("to: new.copy", "to: new.nope"))
    assert "line 20: databases[1].to: 'new.nope' is not a target database" in msg
    assert "new.app, new.copy" in msg
    msg = error_of(PLAN.replace("{from: old.files,", "{from: elsewhere.files,"))
    assert "line 23: shares[0].from: 'elsewhere.files' is not a source share" in msg


def test_clone_with_bundle_options_is_refused():
    msg = error_of(PLAN.replace("    method: clone\n", "    method: clone\n    only: [x=y]\n"))
    assert "line 21: databases[1].method: the clone method copies whole databases" in msg


def test_share_exclude_patterns_and_bwlimit_are_checked_when_the_plan_is_read():
    good = parse_plan(
        PLAN.replace(
            "{from: old.files, to: new.files}",
            "{from: old.files, to: new.files, exclude: [cache/, '*.tmp']}",
        )
    )
    assert good.shares[0].exclude == ["cache/", "*.tmp"]
    msg = error_of(
        PLAN.replace(
            "{from: old.files, to: new.files}", "{from: old.files, to: new.files, exclude: ['a[b']}"
        )
    )
    assert "line 23: shares[0].exclude:" in msg and "closing ']'" in msg
    capped = PLAN.replace(
        "{from: old.files, to: new.files}", "{from: old.files, to: new.files, bwlimit: 20M}"
    )
    assert parse_plan(capped).shares[0].bwlimit == "20M"
    msg = error_of(capped.replace("20M", "fast"))
    assert "line 23: shares[0].bwlimit:" in msg and "500K or 10M" in msg


def test_clone_choices_are_checked_and_kept_to_the_clone_method():
    plan = parse_plan(
        PLAN.replace(
            "    method: clone\n",
            "    method: clone\n    map_type: ['mood=TEXT']\n    skip_objects: [views, triggers]\n",
        )
    )
    assert plan.databases[1].map_type == ["mood=TEXT"]
    assert plan.databases[1].skip_objects == ["views", "triggers"]
    msg = error_of(
        PLAN.replace("    method: clone\n", "    method: clone\n    skip_objects: [tables]\n")
    )
    assert "databases[1].skip_objects:" in msg and "not tables" in msg
    msg = error_of(PLAN.replace("    method: clone\n", "    method: clone\n    map_type: [mood]\n"))
    assert "databases[1].map_type:" in msg and "SOURCE_TYPE=TARGET_TYPE" in msg
    msg = error_of(PLAN.replace("    only: [projects=web]\n", "    skip_objects: [views]\n"))
    assert "databases[0].method: 'map_type' and 'skip_objects' are for method: clone" in msg


def test_not_yaml_or_not_a_mapping():
    assert "not valid YAML (line 2)" in error_of("name: x\n  bad: [\n")
    assert "must be a mapping" in error_of("- a\n- b\n")


def test_code_table_is_stable_and_covers_the_library_codes():
    assert all(re.fullmatch(r"RH[1-6]\d\d", c) for c in CODES)
    assert set(ORIGINS.values()) <= set(CODES)
    assert CODES["RH201"].title == "duplicate natural key"
    for origin, code in (
        ("DUPLICATE_KEY", "RH201"),
        ("NO_NATURAL_KEY", "RH202"),
        ("SECRET_DECRYPT", "RH401"),
        ("clone-type-unmapped", "RH301"),
    ):
        assert ORIGINS[origin] == code


def test_library_findings_keep_severity_and_origin():
    f = from_library(
        Finding("DUPLICATE_KEY", "error", "projects", "not unique", "fix it"), "old.app"
    )
    assert (f.code, f.severity, f.subject, f.origin, f.fix) == (
        "RH201",
        "error",
        "old.app: projects",
        "DUPLICATE_KEY",
        "fix it",
    )
    other = from_library(Finding("SOMETHING_NEW", "warning", "t", "m"), "db")
    assert (other.code, other.fix) == ("RH299", CODES["RH299"].fix)
    assert from_library(Finding("clone-new", "warning", "t", "m"), "db").code == "RH399"


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "skipped"),
        (["skipped", "skipped"], "skipped"),
        (["succeeded", "skipped"], "succeeded"),
        (["succeeded", "incomplete"], "incomplete"),
        (["succeeded", "pending"], "pending"),
        (["running", "incomplete"], "running"),
        (["failed", "running", "succeeded"], "failed"),
    ],
)
def test_combined_status(statuses, expected):
    assert combine(statuses) == expected


def test_state_store_never_holds_secrets(tmp_path):
    store = StateStore(tmp_path / "state.db", "m", "plan", secrets=["hunter2"])
    store.sync_steps([("a", "export", "f1")])
    store.start("a")
    store.finish(
        "a",
        "failed",
        0.5,
        detail={"url": "postgresql://u:hunter2@db/x"},
        error="Cannot connect to postgresql://u:hunter2@db/x (password hunter2)",
    )
    store.event("a", "note", "mysql://root:pw123@h/d")
    store.close()
    raw = (tmp_path / "state.db").read_bytes()
    assert b"hunter2" not in raw and b"pw123" not in raw
    store = StateStore(tmp_path / "state.db", "m", "plan")
    step = store.step("a")
    assert step.status == "failed" and step.attempts == 1
    assert step.last_error == "Cannot connect to postgresql://u:***@db/x (password ***)"
    # a changed plan for the step starts it over
    store.sync_steps([("a", "export", "f2")])
    assert store.step("a").status == "pending"
