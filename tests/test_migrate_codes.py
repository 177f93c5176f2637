"""The library's own findings under their RH codes in 'rehost check': a source built
to have every schema problem, moved by bundle into SQLite and by clone into PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from rehost.migration.codes import CODES
from tests.test_migrate_cli import js, ok, rehost_cli

LAB = """
CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    created TEXT DEFAULT (datetime('now')));
CREATE TABLE children (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL, label TEXT,
    FOREIGN KEY (parent_id) REFERENCES parents (id) ON DELETE CASCADE);
CREATE TABLE loose (a TEXT, b TEXT);
CREATE TABLE nokey (id INTEGER PRIMARY KEY, note TEXT);
CREATE TABLE nullkey (id INTEGER PRIMARY KEY, code TEXT);
CREATE TABLE pk2 (x INTEGER, y INTEGER, PRIMARY KEY (x, y));
CREATE TABLE pairs (id INTEGER PRIMARY KEY, x INTEGER, y INTEGER, name TEXT NOT NULL UNIQUE,
    FOREIGN KEY (x, y) REFERENCES pk2 (x, y));
CREATE TABLE hidden (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE refs_hidden (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    hidden_id INTEGER NOT NULL, FOREIGN KEY (hidden_id) REFERENCES hidden (id));
CREATE TABLE ca (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, cb_id INTEGER NOT NULL,
    FOREIGN KEY (cb_id) REFERENCES cb (id));
CREATE TABLE cb (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, ca_id INTEGER NOT NULL,
    FOREIGN KEY (ca_id) REFERENCES ca (id));
"""

PLAN = """
name: lab
sources:
  lab:
    databases:
      app: {url: "sqlite:///lab.db"}
targets:
  new:
    databases:
      app: {url: "sqlite:///copy.db"}
      pg: {url: "PG"}
databases:
  - {from: lab.app, to: new.app, profile: profile.yaml}
  - {from: lab.app, to: new.pg, method: clone, exclude: [pk2]}
"""


def test_schema_findings_of_bundle_and_clone_moves_have_codes(tmp_path: Path, make_db):
    conn = sqlite3.connect(tmp_path / "lab.db")
    conn.executescript(LAB)
    conn.close()
    (tmp_path / "copy.db").write_bytes((tmp_path / "lab.db").read_bytes())
    (tmp_path / "profile.yaml").write_text(
        "exclude: [hidden]\nentities:\n  nullkey: {key: [code]}\n"
    )
    plan = tmp_path / "rehost.yaml"
    plan.write_text(PLAN.replace("PG", make_db("postgresql")))
    result = rehost_cli("check", "--plan", str(plan), "--json")
    assert result.exit_code == 1  # RH206 and RH208 are errors
    found = {(f["code"], f["subject"]) for f in json.loads(result.stdout)["findings"]}
    assert {
        ("RH104", "lab.app: source"),
        ("RH202", "lab.app: nokey"),
        ("RH203", "lab.app: nullkey"),
        ("RH204", "lab.app: children"),
        ("RH205", "lab.app: loose"),
        ("RH206", "lab.app: ca → cb"),
        ("RH207", "lab.app: pairs(x, y)"),
        ("RH208", "lab.app: refs_hidden.hidden_id"),
        ("RH210", "lab.app: children"),
        ("RH305", "lab.app>new.pg: parents.created"),
        ("RH310", "lab.app>new.pg: pairs(x, y)"),
    } <= found
    # the table of codes says what severity each has (the code list shows it)
    for f in json.loads(result.stdout)["findings"]:
        if f["code"] != "RH208":  # an error, or a warning when the column is nullable
            assert f["severity"] == CODES[f["code"]].severity, f


def test_info_findings_of_the_demo(tmp_path: Path):
    ok("init", "--demo", str(tmp_path))
    found = {f["code"] for f in js("check", "--plan", str(tmp_path / "rehost.yaml"))["findings"]}
    assert {"RH209", "RH210", "RH405", "RH601"} <= found
