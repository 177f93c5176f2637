"""`rehost demo` — the README's first command — end to end at the command line."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path


def rehost(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rehost", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_demo_runs_end_to_end_and_its_hints_hold(tmp_path: Path) -> None:
    d = tmp_path / "demo"
    r = rehost("demo", str(d), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    for title in ("1. Inspect the source", "6. Import everything", "7. Run it again",
                  "8. The whole server as one migration", "9. Manual steps acknowledged"):  # fmt: skip
        assert title in r.stdout
    assert "cutover: SUCCEEDED" in r.stdout
    # The target got the web-app project and its steps; the uploads folder moved.
    with sqlite3.connect(d / "target.db") as db:
        assert db.execute("SELECT count(*) FROM projects WHERE name = 'web-app'").fetchone() == (1,)
    move = d / "move"
    assert tree_digest(move / "source-files") == tree_digest(move / "target-files")
    # The cutover froze the source database (read-only), and says how to undo it.
    assert "read_only old.app (mode 644)" in r.stdout and "--rollback" in r.stdout
    assert (move / "source.db").stat().st_mode & 0o222 == 0
    # The closing hint: re-exporting unchanged data changes no file of the bundle.
    before = tree_digest(d / "bundle")
    keys = dict(
        line.removeprefix("export ").split("=", 1)
        for line in (d / "app-keys.env").read_text().splitlines()
    )
    again = rehost(
        "export", f"sqlite:///{d / 'source.db'}", str(d / "bundle"),
        "--profile", str(d / "profile.yaml"), "--password-file", str(d / "password.txt"),
        cwd=tmp_path, env={**os.environ, **keys},
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert tree_digest(d / "bundle") == before
    # A second demo in the same directory replaces the first.
    assert rehost("demo", str(d), cwd=tmp_path).returncode == 0


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me\n")
    r = rehost("demo", str(tmp_path / "mine"), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not empty and was not made by 'rehost demo'" in r.stdout + r.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me\n"
