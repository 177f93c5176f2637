"""Export / preview / import at the command line, on every engine."""

from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from rehost.cli import app
from tests import appdb

runner = CliRunner()


def rehost(*args: str, env: dict[str, str] | None = None) -> object:
    result = runner.invoke(app, list(args), env=env or {"REHOST_PASSWORD": "pw-for-tests"})
    return result


def ok(*args: str) -> str:
    result = rehost(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def source(make_db, engine_kind):
    url = make_db(engine_kind)
    engine = appdb.create_schema(url)
    appdb.seed_source(engine)
    engine.dispose()
    return url


@pytest.fixture
def empty_target(make_db, engine_kind):
    url = make_db(engine_kind)
    appdb.create_schema(url).dispose()
    return url


def test_full_round_trip(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    assert (bundle / "manifest.json").exists()
    assert (bundle / "projects" / "web-app.json").exists()
    ok("import", str(bundle), empty_target)
    assert appdb.snapshot(empty_target) == appdb.snapshot(source)


def test_preview_writes_nothing_and_reports_json(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    before = appdb.snapshot(empty_target)
    out = ok("import", str(bundle), empty_target, "--preview", "--json")
    report = json.loads(out)
    assert report["status"] == "preview"
    assert report["tables"]["projects"]["counts"]["create"] == 3
    assert report["tables"]["steps"]["counts"]["create"] == 6
    assert appdb.snapshot(empty_target) == before


def test_reimport_is_unchanged(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    ok("import", str(bundle), empty_target)
    report = json.loads(
        ok("import", str(bundle), empty_target, "--on-conflict", "overwrite", "--json")
    )
    totals = report["totals"]
    assert totals["create"] == 0 and totals["update"] == 0 and totals["delete"] == 0, report
    assert appdb.snapshot(empty_target) == appdb.snapshot(source)


def test_partial_export_takes_dependencies_only(source, tmp_path):
    bundle = tmp_path / "web"
    ok("export", source, str(bundle), "--only", "projects=web-app")
    manifest = json.loads((bundle / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["projects"] == 1
    assert counts["steps"] == 3
    assert manifest["scope"] == {"only": ["projects=web-app"]}
    # web-app's team (Web), its lead (bob) and bob's manager (alice) and default team.
    teams = sorted(p.stem for p in (bundle / "teams").iterdir())
    assert teams == ["platform", "web"]
    assert counts["environments"] == 2
    assert not (bundle / "credentials").exists()
    assert not (bundle / "projects" / "api.json").exists()


def test_import_into_overlapping_target_skip_and_overwrite(source, make_db, engine_kind, tmp_path):
    target = make_db(engine_kind)
    appdb.seed_target_overlap(appdb.create_schema(target))
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))

    report = json.loads(ok("import", str(bundle), target, "--json"))
    assert report["tables"]["projects"]["counts"] == {
        "create": 2,
        "update": 0,
        "unchanged": 0,
        "skip": 1,
        "merge": 0,
        "delete": 0,
    }
    snap = appdb.snapshot(target)
    # The target's 'api' project and its steps are kept as they were.
    assert ("api", "Target's API", "Web", "5.00") in snap["projects"]
    assert ("api", 7, "Old step", None) in snap["steps"]
    # bob existed: skipped, keeps the target's display name; new users were created.
    assert ("bob", "Robert (target)") in [(u[0], u[1]) for u in snap["users"]]
    assert {u[0] for u in snap["users"]} == {"alice", "bob", "carol", "dave", "erin", "zoe"}
    # team_members is union-merged? No: replace by default, but the team was skipped.
    web_members = sorted(m[1] for m in snap["team_members"] if m[0] == "Web")
    assert web_members == ["zoe"]

    report = json.loads(ok("import", str(bundle), target, "--on-conflict", "overwrite", "--json"))
    snap = appdb.snapshot(target)
    api = [p for p in snap["projects"] if p[0] == "api"][0]
    assert api == ("api", "Public API", "Platform", None)
    api_steps = sorted(s[1:] for s in snap["steps"] if s[0] == "api")
    assert api_steps == [(1, "Build", None), (2, "Deploy", "Production")]
    assert report["tables"]["steps"]["counts"]["delete"] == 1
    # The report names what it removed: step 7 of api, which the bundle lacks.
    assert {"record": "api / 7", "action": "delete"} in report["tables"]["steps"]["changes"]
    changes = report["tables"]["projects"]["changes"]
    assert any(c["record"] == "api" and c["action"] == "update" for c in changes)
    # Overwrite replaces owned children: Web's members are now the source's.
    web_members = sorted(m[1] for m in snap["team_members"] if m[0] == "Web")
    assert web_members == ["bob", "dave", "erin"]


def test_merge_union_keeps_target_children(source, make_db, engine_kind, tmp_path):
    target = make_db(engine_kind)
    appdb.seed_target_overlap(appdb.create_schema(target))
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    profile = tmp_path / "profile.yaml"
    profile.write_text("entities:\n  team_members: {merge: union}\n")
    report = json.loads(ok("import", str(bundle), target, "--profile", str(profile), "--json"))
    assert report["tables"]["team_members"]["counts"]["merge"] == 3
    snap = appdb.snapshot(target)
    web_members = sorted(m[1] for m in snap["team_members"] if m[0] == "Web")
    assert web_members == ["bob", "dave", "erin", "zoe"]


def test_consolidate_two_sources(make_db, engine_kind, tmp_path):
    a, b, target = make_db(engine_kind), make_db(engine_kind), make_db(engine_kind)
    appdb.seed_source(appdb.create_schema(a))
    appdb.seed_target_overlap(appdb.create_schema(b))
    appdb.create_schema(target).dispose()
    ok("export", a, str(tmp_path / "a"))
    ok("export", b, str(tmp_path / "b"))
    ok("import", str(tmp_path / "a"), target)
    ok("import", str(tmp_path / "b"), target)
    snap = appdb.snapshot(target)
    assert {p[0] for p in snap["projects"]} == {"web-app", "api", "billing"}
    assert {e[0] for e in snap["environments"]} == {"Development", "Production", "Staging"}
    assert {u[0] for u in snap["users"]} == {"alice", "bob", "carol", "dave", "erin", "zoe"}


def test_failed_import_rolls_back_everything(source, make_db, engine_kind, tmp_path):
    target = make_db(engine_kind)
    engine = appdb.create_schema(target)
    appdb.seed_target_overlap(engine)
    # A constraint the source data violates, hit late in the import.
    with engine.begin() as c:
        if engine_kind == "sqlite":
            c.exec_driver_sql(
                "CREATE TRIGGER no_billing BEFORE INSERT ON steps WHEN NEW.name = 'Invoice run' BEGIN SELECT RAISE(ABORT, 'no invoices here'); END"
            )
        else:
            c.exec_driver_sql(
                "ALTER TABLE steps ADD CONSTRAINT no_invoice CHECK (name <> 'Invoice run')"
            )
    engine.dispose()
    before = appdb.snapshot(target)
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    result = rehost("import", str(bundle), target, "--on-conflict", "overwrite")
    assert result.exit_code == 1
    assert "rolled back" in result.output
    assert "Traceback" not in result.output
    assert appdb.snapshot(target) == before


def test_secrets_are_encrypted_and_password_checked(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    text = "".join(p.read_text() for p in bundle.rglob("*.json"))
    assert "s3cr3t-registry-pw" not in text and "mail-pässword" not in text
    assert "$secret" in text
    wrong = rehost("import", str(bundle), empty_target, env={"REHOST_PASSWORD": "nope"})
    assert wrong.exit_code == 1
    assert "password" in wrong.output.lower()
    assert appdb.snapshot(empty_target)["users"] == []
    ok("import", str(bundle), empty_target)
    creds = appdb.snapshot(empty_target)["credentials"]
    assert ("registry", "ci", "s3cr3t-registry-pw") in creds


def test_version_mismatch_refused(source, make_db, engine_kind, tmp_path):
    target = make_db(engine_kind)
    appdb.create_schema(target, version="zzz999").dispose()
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    result = rehost("import", str(bundle), target)
    assert result.exit_code == 1
    assert "abc123" in result.output and "zzz999" in result.output
    ok("import", str(bundle), target, "--ignore-version-check")
    assert len(appdb.snapshot(target)["projects"]) == 3


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_export_is_deterministic_and_diffs_are_local(source, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    ok("export", source, str(one))
    ok("export", source, str(two))
    files_one = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    files_two = sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert files_one == files_two
    for rel in files_one:
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    engine = sa.create_engine(source)
    with engine.begin() as c:
        c.execute(
            appdb.steps.update().where(appdb.steps.c.name == "Invoice run").values(name="Invoices")
        )
    engine.dispose()
    ok("export", source, str(two))
    changed = [rel for rel in files_one if (one / rel).read_bytes() != (two / rel).read_bytes()]
    assert sorted(map(str, changed)) == ["manifest.json", "projects/billing.json"]


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_tampered_truncated_and_foreign_bundles_are_refused(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    victim = bundle / "projects" / "api.json"
    original = victim.read_text()
    victim.write_text(original.replace("Public API", "Evil API"))
    result = rehost("import", str(bundle), empty_target)
    assert result.exit_code == 1 and "projects/api.json" in result.output
    victim.write_text(original[:20])
    result = rehost("import", str(bundle), empty_target)
    assert result.exit_code == 1 and "projects/api.json" in result.output
    victim.write_text(original)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"format": "something-else"}')
    result = rehost("import", str(foreign), empty_target)
    assert result.exit_code == 1 and "manifest.json" in result.output
    assert appdb.snapshot(empty_target)["projects"] == []


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_dangling_reference_names_both_records(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle), "--only", "projects=web-app")
    # Hand-edit a bundle so web-app's team is missing, with the manifest made consistent.
    shutil.rmtree(bundle / "teams")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("teams/")}
    manifest["counts"]["teams"] = 0
    manifest["counts"]["team_members"] = 0
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    result = rehost("import", str(bundle), empty_target)
    assert result.exit_code == 1
    assert "teams 'Web'" in result.output or "teams 'Platform'" in result.output
    assert "neither the bundle nor the target" in result.output
    assert appdb.snapshot(empty_target)["users"] == []


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_password_on_command_line_refused(source, tmp_path):
    result = rehost("export", source, str(tmp_path / "b"), "--password", "hunter2")
    assert result.exit_code == 2
    assert "hunter2" not in result.output
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_password_file(source, empty_target, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    env = {"REHOST_PASSWORD": ""}
    r = rehost("export", source, str(tmp_path / "b"), "--password-file", str(pw), env=env)
    assert r.exit_code == 0, r.output
    r = rehost("import", str(tmp_path / "b"), empty_target, "--password-file", str(pw), env=env)
    assert r.exit_code == 0, r.output
    r = rehost("import", str(tmp_path / "b"), empty_target, env=env)
    assert r.exit_code == 2 and "password" in r.output.lower()


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_manual_steps_make_result_incomplete(source, empty_target, tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("manual_steps:\n  - Rotate the SMTP password.\n")
    ok("export", source, str(tmp_path / "b"), "--profile", str(profile))
    out = ok("import", str(tmp_path / "b"), empty_target)
    assert "INCOMPLETE" in out and "Rotate the SMTP password." in out
    report = json.loads(
        ok("import", str(tmp_path / "b"), empty_target, "--manual-steps-done", "--json")
    )
    assert report["status"] == "succeeded"


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_bad_inputs_have_clear_errors(source, tmp_path):
    r = rehost("inspect", "not-a-url")
    assert r.exit_code == 2 and "not a database URL" in r.output
    r = rehost("inspect", "sqlite:///" + str(tmp_path / "missing.db"))
    assert r.exit_code == 1 and "does not exist" in r.output
    r = rehost("inspect", "postgresql://nobody@127.0.0.1:1/x")
    assert r.exit_code == 1 and "Cannot connect" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities:\n  nosuch: {key: [name]}\n")
    r = rehost("inspect", source, "--profile", str(bad))
    assert r.exit_code == 1 and "nosuch" in r.output
    bad.write_text("entities:\n  projects: {key: [nosuch_column]}\n")
    r = rehost("export", source, str(tmp_path / "x"), "--profile", str(bad))
    assert r.exit_code == 1 and "nosuch_column" in r.output
    assert not (tmp_path / "x").exists()
    bad.write_text("entities:\n  steps: {key: [name]}\n")
    r = rehost("export", source, str(tmp_path / "x"), "--profile", str(bad))
    assert r.exit_code == 1 and "not unique" in r.output and "Build" in r.output
    r = rehost("export", source, str(tmp_path / "x"), "--only", "projects=nope")
    assert r.exit_code == 2 and "nope" in r.output
    r = rehost("import", str(tmp_path / "nothing"), source)
    assert r.exit_code == 1 and "does not exist" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_inspect_reports_keys_refs_owners(source):
    data = json.loads(ok("inspect", source, "--json"))
    ents = data["entities"]
    assert ents["projects"]["key"] == ["name"]
    assert ents["steps"]["owner"] == "project_id"
    assert ents["steps"]["key"] == ["project_id", "position"]
    assert ents["team_members"]["owner"] == "team_id"
    assert ents["credentials"]["secrets"] == {"password": "plaintext"}
    assert ents["users"]["rows"] == 5
    assert data["version"]["value"] == "abc123"
    assert "users.manager_id" in {
        f["subject"] for f in data["findings"] if f["code"] == "DEFERRED_REFERENCE"
    }
    text = ok("inspect", source)
    assert "projects" in text and "natural key" in text


@pytest.mark.parametrize("engine_kind", ["sqlite"])
def test_import_profile_parts_fixed_at_export_are_named(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    prof = tmp_path / "import.yaml"
    prof.write_text("entities:\n  nosuch: {merge: union}\n")
    r = rehost("import", str(bundle), empty_target, "--profile", str(prof), "--preview")
    assert r.exit_code == 1 and "nosuch" in r.output and "not in this bundle" in r.output
    prof.write_text("exclude: [steps]\nentities:\n  projects: {key: [description]}\n")
    out = ok("import", str(bundle), empty_target, "--profile", str(prof), "--preview", "--json")
    warnings = json.loads(out)["warnings"]
    assert any("sets key for projects differently" in w for w in warnings), warnings
    assert any("excludes steps, but the bundle holds them" in w for w in warnings), warnings
    # The export profile passed again (as the demo does) is no cause for warnings.
    prof.write_text("exclude: [nothing_here]\nentities:\n  projects: {key: [name]}\n")
    out = ok("import", str(bundle), empty_target, "--profile", str(prof), "--preview", "--json")
    assert json.loads(out)["warnings"] == []


def test_round_trip_with_the_id_map_on_disk(source, empty_target, tmp_path, monkeypatch):
    # Every ID map moves to its temporary file after two entries.
    monkeypatch.setattr("rehost.idmap.DEFAULT_LIMIT", 2)
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    ok("import", str(bundle), empty_target)
    assert appdb.snapshot(empty_target) == appdb.snapshot(source)
    report = json.loads(
        ok("import", str(bundle), empty_target, "--on-conflict", "overwrite", "--json")
    )
    assert report["totals"]["create"] == 0 and report["totals"]["update"] == 0


def test_ledger_stops_on_records_changed_in_the_target(source, empty_target, tmp_path):
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle))
    ok("import", str(bundle), empty_target, "--ledger")
    engine = sa.create_engine(empty_target)
    with engine.begin() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM rehost_ledger")).scalar()
        assert n == sum(len(rows) for rows in appdb.snapshot(empty_target).values())
        conn.execute(sa.text("UPDATE users SET display_name = 'Changed' WHERE username = 'carol'"))
    engine.dispose()
    before = appdb.snapshot(empty_target)

    args = ("import", str(bundle), empty_target, "--ledger", "--on-conflict", "overwrite")
    result = rehost(*args)
    assert result.exit_code == 1, result.output
    assert "users 'carol'" in result.output and "--force" in result.output
    assert "alice" not in result.output and "web-app" not in result.output
    assert appdb.snapshot(empty_target) == before

    report = json.loads(ok(*args, "--preview", "--json"))
    assert any("users 'carol'" in w and "--force" in w for w in report["warnings"])

    ok(*args, "--force")
    assert appdb.snapshot(empty_target) == appdb.snapshot(source)
    report = json.loads(ok(*args, "--json"))
    assert not report["warnings"] and report["totals"]["update"] == 0

    export = tmp_path / "again"
    ok("export", empty_target, str(export))
    manifest = json.loads((export / "manifest.json").read_text())
    assert "rehost_ledger" not in manifest["counts"]
    assert not (export / "rehost_ledger").exists()
