"""validate: the profile's secrets section is checked against the source's own data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rehost import demo_app
from rehost.cli import app

runner = CliRunner()


@pytest.fixture
def demo_source(tmp_path: Path) -> tuple[str, Path, str]:
    key = demo_app.generate_key()
    db = tmp_path / "source.db"
    demo_app.create_source(db, key)
    profile = tmp_path / "profile.yaml"
    profile.write_text(demo_app.DEMO_PROFILE_YAML)
    return f"sqlite:///{db}", profile, key


def _validate(url: str, profile: Path, env: dict[str, str]) -> tuple[int, dict]:
    r = runner.invoke(app, ["validate", url, "--profile", str(profile), "--json"], env=env)
    return r.exit_code, json.loads(r.stdout)


def _codes(report: dict) -> set[str]:
    return {f["code"] for f in report["findings"]}


def test_right_key_validates(demo_source) -> None:
    url, profile, key = demo_source
    code, report = _validate(url, profile, {"DEMO_SOURCE_APP_KEY": key})
    assert code == 0, report
    assert not {"SECRET_DECRYPT", "SECRETS_CONFIG"} & _codes(report)


def test_wrong_source_key_is_an_error_before_export(demo_source) -> None:
    url, profile, _key = demo_source
    code, report = _validate(url, profile, {"DEMO_SOURCE_APP_KEY": demo_app.generate_key()})
    assert code == 1
    (finding,) = [f for f in report["findings"] if f["code"] == "SECRET_DECRYPT"]
    assert finding["subject"] == "variables.secret_value"
    assert finding["severity"] == "error"


def test_unknown_cipher_is_an_error(demo_source, tmp_path: Path) -> None:
    url, profile, key = demo_source
    bad = tmp_path / "bad.yaml"
    bad.write_text(demo_app.DEMO_PROFILE_YAML.replace("cipher: fernet", "cipher: rot13"))
    code, report = _validate(url, bad, {"DEMO_SOURCE_APP_KEY": key})
    assert code == 1
    (finding,) = [f for f in report["findings"] if f["code"] == "SECRETS_CONFIG"]
    assert "rot13" in finding["message"]


def test_errors_are_json_too_when_json_is_asked(tmp_path: Path) -> None:
    r = runner.invoke(app, ["inspect", f"sqlite:///{tmp_path / 'missing.db'}", "--json"])
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["status"] == "error"
    assert report["error"]["exit_code"] == 1
    assert "does not exist" in report["error"]["message"]


# ------------------------------------------------------------------ --target


def _validate_target(url: str, target: str, profile: Path | None, env: dict[str, str]):
    args = ["validate", url, "--target", target, "--json"]
    if profile is not None:
        args += ["--profile", str(profile)]
    r = runner.invoke(app, args, env=env)
    return r.exit_code, json.loads(r.stdout)


def _sqlite(path: Path, script: str) -> str:
    import sqlite3

    with sqlite3.connect(path) as db:
        db.executescript(script)
    return f"sqlite:///{path}"


def test_target_of_the_same_application_validates(demo_source, tmp_path: Path) -> None:
    url, profile, key = demo_source
    target = tmp_path / "target.db"
    demo_app.create_target(target, demo_app.generate_key())
    env = {"DEMO_SOURCE_APP_KEY": key, "DEMO_TARGET_APP_KEY": demo_app.generate_key()}
    code, report = _validate_target(url, f"sqlite:///{target}", profile, env)
    assert code == 0, report
    assert report["target"] == f"sqlite:///{target}"
    assert not [f for f in report["findings"] if f["code"].startswith("TARGET_")]


def test_target_problems_are_named_before_anything_moves(tmp_path: Path) -> None:
    source = _sqlite(tmp_path / "s.db", """
        CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('b2');
        CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, hits INTEGER);
        CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE);
        CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, body BLOB);
        INSERT INTO tags (name) VALUES ('red'), ('blue');
    """)  # fmt: skip
    target = _sqlite(tmp_path / "t.db", """
        CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('a1');
        CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL);
        INSERT INTO tags (name, owner) VALUES ('red', 'x'), ('red', 'y'), ('green', 'z');
        CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, body DATE);
    """)  # fmt: skip
    before = (tmp_path / "t.db").read_bytes()
    code, report = _validate_target(source, target, None, {})
    assert code == 1
    got = {(f["code"], f["subject"]): f for f in report["findings"]}
    assert "a1" in got[("TARGET_VERSION", "version")]["message"]
    assert "b2" in got[("TARGET_VERSION", "version")]["message"]
    assert got[("TARGET_TABLE_MISSING", "notes")]["severity"] == "error"
    assert "hits" in got[("TARGET_COLUMN_MISSING", "tags")]["message"]
    assert "owner" in got[("TARGET_COLUMN_REQUIRED", "tags")]["message"]
    assert "'red'" in got[("TARGET_DUPLICATE_KEY", "tags")]["message"]
    assert got[("TARGET_TYPE_DIFFERS", "files.body")]["severity"] == "warning"
    assert (tmp_path / "t.db").read_bytes() == before  # nothing written


def test_unreachable_target_and_missing_target_key(demo_source, tmp_path: Path) -> None:
    url, profile, key = demo_source
    code, report = _validate_target(
        url, f"sqlite:///{tmp_path / 'nope.db'}", profile, {"DEMO_SOURCE_APP_KEY": key}
    )
    assert code == 1
    codes = _codes(report)
    assert "TARGET_UNREACHABLE" in codes
    assert "TARGET_SECRET_KEY" in codes  # DEMO_TARGET_APP_KEY is not set
    assert not (tmp_path / "nope.db").exists()
    # Plain text output names the same problems.
    r = runner.invoke(
        app, ["validate", url, "--target", f"sqlite:///{tmp_path / 'nope.db'}", "--profile",
              str(profile)], env={"DEMO_SOURCE_APP_KEY": key},
    )  # fmt: skip
    assert r.exit_code == 1
    assert "TARGET_UNREACHABLE" in r.stdout and "nope.db" in r.stdout


def test_target_on_another_engine(demo_source, make_db, tmp_path: Path) -> None:
    """The demo's target schema cloned into PostgreSQL/MariaDB: engines spell types
    differently (booleans, timestamps), which is not a finding."""
    from tests.conftest import require_server

    url, profile, key = demo_source
    target = tmp_path / "target.db"
    demo_app.create_target(target, demo_app.generate_key())
    env = {"DEMO_SOURCE_APP_KEY": key, "DEMO_TARGET_APP_KEY": demo_app.generate_key()}
    for kind in ("postgresql", "mariadb"):
        require_server(kind)
        other = make_db(kind)
        r = runner.invoke(app, ["clone", f"sqlite:///{target}", other])
        assert r.exit_code == 0, r.stdout
        code, report = _validate_target(url, other, profile, env)
        assert code == 0, report
        assert not [f for f in report["findings"] if f["code"].startswith("TARGET_")], kind
