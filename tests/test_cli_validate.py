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
