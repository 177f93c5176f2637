"""`rehost files` at the command line, on real local trees (local → local)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rehost.cli import app
from rehost.files.plan import is_temp_name
from rehost.files.transfer import TransferOptions, transfer
from rehost.files.verify import verify

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
T_OLD = 1_600_000_000_123_456_789  # a source mtime with nanoseconds
NOBODY = 65534

# A POSIX ACL as the kernel stores it in system.posix_acl_access (what setfacl writes):
# user::rw-, user:nobody:r--, group::r--, mask::r--, other::---.
ACL_UNDEFINED = 0xFFFFFFFF
ACL = struct.pack("<I", 2) + b"".join(
    struct.pack("<HHI", tag, perm, ident)
    for tag, perm, ident in [
        (0x01, 6, ACL_UNDEFINED),
        (0x02, 4, NOBODY),
        (0x04, 4, ACL_UNDEFINED),
        (0x10, 4, ACL_UNDEFINED),
        (0x20, 0, ACL_UNDEFINED),
    ]
)


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The manifest's default home; each test gets its own.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def rehost(*args: str) -> object:
    return runner.invoke(app, ["files", *args])


def ok(*args: str) -> str:
    result = rehost(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def report(*args: str, code: int = 0) -> dict:
    result = rehost(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def b(path: Path | str) -> bytes:
    return os.fsencode(str(path))


# --------------------------------------------------------------- the tree


def make_tree(root: Path) -> None:
    """Files, modes, ns times, links, xattrs, an ACL, odd names, a long path, a FIFO."""
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "empty" / "nested-empty").mkdir(parents=True)
    (root / "docs" / "readme.txt").write_text("hello\n")
    (root / "docs" / "deep" / "data.bin").write_bytes(os.urandom(300_000))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o4750)
    (root / "private.txt").write_text("secret-ish\n")
    os.chmod(root / "private.txt", 0o600)
    os.chown(root / "private.txt", NOBODY, NOBODY)
    os.setxattr(root / "docs" / "readme.txt", "user.origin", b"upload 42")
    os.setxattr(root / "docs", "user.dir-note", b"kept on directories too")
    if os.geteuid() == 0:
        os.setxattr(root / "private.txt", "system.posix_acl_access", ACL)
    os.symlink("readme.txt", root / "docs" / "link-inside")
    os.symlink("/etc/hostname", root / "link-outside")
    os.symlink("does/not/exist", root / "dangling")
    os.link(root / "docs" / "readme.txt", root / "hard-readme.txt")
    (root / "with space and\nnewline").write_text("odd name\n")
    with open(os.path.join(b(root), b"latin1-\xe9t\xe9.txt"), "wb") as f:
        f.write(b"not utf-8 name\n")
    long_dir = root
    for i in range(14):  # a path of about 3,000 bytes
        long_dir = long_dir / (f"{i:02d}" + "d" * 200)
    long_dir.mkdir(parents=True)
    (long_dir / "far.txt").write_text("far away\n")
    os.mkfifo(root / "a-fifo")
    for dirpath, dirnames, filenames in os.walk(b(root), topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(T_OLD, T_OLD), follow_symlinks=False)
        os.utime(dirpath, ns=(T_OLD, T_OLD))


def snapshot(root: Path) -> dict[bytes, tuple]:
    """Everything about a tree except atimes: content hash, kind, mode, owner, times
    (mtime and ctime: any write, chmod or utime changes the ctime), links, xattrs."""
    snap: dict[bytes, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(b(root)):
        for name in [*dirnames, *filenames, b""]:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            digest = link = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            if stat.S_ISLNK(st.st_mode):
                link = os.readlink(path)
            xattrs = (
                {}
                if stat.S_ISLNK(st.st_mode)
                else {k: os.getxattr(path, k) for k in os.listxattr(path)}
            )
            snap[os.path.relpath(path, b(root))] = (
                st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                st.st_ctime_ns, st.st_ino, st.st_nlink, digest, link, xattrs,
            )  # fmt: skip
    return snap


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    return src


# --------------------------------------------------------------- behaviour


def test_transfer_keeps_content_and_metadata(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    before = snapshot(tree)
    rep = report("transfer", str(tree), str(dst))
    assert snapshot(tree) == before, "the source was modified"
    assert rep["ok"] and rep["errors"] == []
    assert rep["counts"]["linked"] == 1
    assert rep["skipped"] == {"special file (fifo)": 1}
    assert rep["not_preserved"] == {}

    s, d = snapshot(tree), snapshot(dst)
    del s[b"a-fifo"]
    # Same names, content, modes, owners, ns mtimes, link texts, xattrs (ACL included).
    strip = lambda snap: {k: v[:5] + v[8:] for k, v in snap.items()}  # noqa: E731
    assert strip(d) == strip(s)
    assert os.stat(dst / "run.sh").st_mode & 0o7777 == 0o4750
    assert os.lstat(dst / "private.txt").st_uid == NOBODY
    assert os.readlink(dst / "link-outside") == "/etc/hostname"  # kept as a link, not followed
    assert os.readlink(dst / "dangling") == "does/not/exist"
    assert os.stat(dst / "hard-readme.txt").st_ino == os.stat(dst / "docs/readme.txt").st_ino
    assert os.getxattr(dst / "docs" / "readme.txt", "user.origin") == b"upload 42"
    assert os.getxattr(dst / "docs", "user.dir-note") == b"kept on directories too"
    if os.geteuid() == 0:
        assert os.getxattr(dst / "private.txt", "system.posix_acl_access") == ACL
        if shutil.which("getfacl"):
            acl = subprocess.run(["getfacl", "-p", str(dst / "private.txt")], text=True,
                                 capture_output=True, check=True).stdout  # fmt: skip
            assert "user:nobody:r--" in acl
    assert (dst / "empty" / "nested-empty").is_dir()
    assert os.stat(dst / "empty").st_mtime_ns == T_OLD  # directory times set after contents
    assert not (dst / "a-fifo").exists()

    assert ok("verify", str(tree), str(dst), "--content").endswith("ok: no differences\n")
    assert snapshot(tree) == before


def test_rerun_sends_nothing_then_only_what_changed(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    ok("transfer", str(tree), str(dst))
    again = report("transfer", str(tree), str(dst))
    assert again["counts"]["copied"] == 0 and again["bytes_copied"] == 0
    assert again["counts"]["metadata updated"] == 0

    (tree / "docs" / "readme.txt").write_text("hello, changed\n")
    os.chmod(tree / "run.sh", 0o755)
    preview = report("transfer", str(tree), str(dst), "--preview")
    assert preview["actions"] == [
        {"action": "skip", "reason": "special file (fifo)", "path": "a-fifo"},
        {"action": "copy", "reason": "changed", "path": "docs/readme.txt"},
        {"action": "metadata", "reason": "mode", "path": "run.sh"},
        {"action": "link", "reason": "hard link", "path": "hard-readme.txt"},
    ]
    assert (dst / "docs" / "readme.txt").read_text() == "hello\n"  # preview wrote nothing
    rep = report("transfer", str(tree), str(dst))
    assert rep["counts"]["copied"] == 1 and rep["bytes_copied"] == len("hello, changed\n")
    assert rep["counts"]["metadata updated"] == 1
    assert (dst / "hard-readme.txt").read_text() == "hello, changed\n"
    ok("verify", str(tree), str(dst), "--content")


def test_newer_target_is_kept_unless_overwrite(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    ok("transfer", str(tree), str(dst))
    (dst / "run.sh").write_text("edited on the target\n")  # newer than the source
    result = rehost("transfer", str(tree), str(dst))
    assert result.exit_code == 0
    assert "target newer" in result.stdout
    assert (dst / "run.sh").read_text() == "edited on the target\n"
    rep = report("transfer", str(tree), str(dst), "--overwrite")
    assert rep["counts"]["copied"] == 1
    assert (dst / "run.sh").read_text() == (tree / "run.sh").read_text()


def test_checksum_finds_content_that_size_and_mtime_hide(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    before = snapshot(tree)
    ok("transfer", str(tree), str(dst))
    target = dst / "docs" / "deep" / "data.bin"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(T_OLD, T_OLD))
    assert report("transfer", str(tree), str(dst))["counts"]["copied"] == 0
    rep = report("transfer", str(tree), str(dst), "--checksum")
    assert rep["skipped"]["target differs, same mtime"] == 1
    rep = report("transfer", str(tree), str(dst), "--checksum", "--overwrite")
    assert rep["counts"]["copied"] == 1
    ok("verify", str(tree), str(dst), "--content")
    again = report("transfer", str(tree), str(dst), "--checksum")
    assert again["counts"]["copied"] == 0 and again["counts"]["metadata updated"] == 0
    assert snapshot(tree) == before


def test_verify_finds_a_changed_byte_and_a_changed_mtime(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    ok("transfer", str(tree), str(dst))
    before = snapshot(tree)
    clean = report("verify", str(tree), str(dst), "--content")
    # Target hashes come from the manifest, except for the hard-linked file: making its
    # second name changed its ctime after it was recorded, so it is read again.
    assert clean["ok"] and clean["hashes_from_manifest"] == 6
    target = dst / "docs" / "deep" / "data.bin"
    with open(target, "r+b") as f:
        f.seek(12345)
        byte = f.read(1)
        f.seek(12345)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(target, ns=(T_OLD, T_OLD))
    assert ok("verify", str(tree), str(dst)).endswith("ok: no differences\n")  # metadata equal
    rep = report("verify", str(tree), str(dst), "--content", code=1)
    assert rep["differences"] == [
        {"path": "docs/deep/data.bin", "what": "content", "detail": "BLAKE3 hash differs"}
    ]
    os.utime(dst / "docs" / "readme.txt", ns=(T_OLD, T_OLD + 1))
    result = rehost("verify", str(tree), str(dst))
    assert result.exit_code == 1
    assert "mtime     docs/readme.txt" in result.stdout
    assert snapshot(tree) == before


def test_extra_files_are_kept_then_removed_on_request(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    before = snapshot(tree)
    ok("transfer", str(tree), str(dst))
    (dst / "docs" / "notes-on-target.txt").write_text("mine\n")
    (dst / "target-only" / "sub").mkdir(parents=True)
    (dst / "target-only" / "sub" / "x").write_text("x")
    rep = report("transfer", str(tree), str(dst))
    assert rep["extra"] == [
        {"path": "target-only", "kind": "dir"},
        {"path": "docs/notes-on-target.txt", "kind": "file"},
    ]
    assert (dst / "target-only").exists()
    verified = report("verify", str(tree), str(dst))
    assert verified["ok"] and verified["extra"] == ["target-only", "docs/notes-on-target.txt"]

    result = rehost("transfer", str(tree), str(dst), "--delete-extra", "--preview")
    assert result.exit_code == 0
    assert "would remove (only on the target): target-only" in result.stderr
    assert (dst / "target-only" / "sub" / "x").exists()

    result = rehost("transfer", str(tree), str(dst), "--delete-extra")
    assert result.exit_code == 0, result.output
    assert "removing (only on the target): docs/notes-on-target.txt" in result.stderr
    assert not (dst / "target-only").exists()
    assert not (dst / "docs" / "notes-on-target.txt").exists()
    ok("verify", str(tree), str(dst), "--content")  # directory times restored too
    assert snapshot(tree) == before


def test_preview_writes_nothing(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    before = snapshot(tree)
    rep = report("transfer", str(tree), str(dst), "--preview")
    assert not dst.exists() and not (tmp_path / "state").exists()
    assert rep["preview"] and rep["counts"]["copied"] == 10
    assert {"action": "copy", "reason": "new", "path": "latin1-\\xe9t\\xe9.txt"} in rep["actions"]
    assert snapshot(tree) == before


def test_inventory(tree: Path) -> None:
    before = snapshot(tree)
    inv = report("inventory", str(tree))
    assert inv["counts"] == {
        "file": 8, "dir": 19, "symlink": 3, "fifo": 1, "socket": 0,
        "char device": 0, "block device": 0,
    }  # fmt: skip
    assert inv["hardlinks"] == {"groups": 1, "names": 1}
    assert inv["largest"][0] == {"path": "docs/deep/data.bin", "bytes": 300_000}
    assert {"name": "nobody", "files": 1, "bytes": 11} in inv["owners"]
    assert inv["links_leaving_tree"] == [{"path": "link-outside", "target": "/etc/hostname"}]
    assert inv["special"] == [{"path": "a-fifo", "kind": "fifo"}]
    assert {e["name"] for e in inv["extensions"]} == {".bin", ".txt", ".sh", "(none)"}
    text = ok("inventory", str(tree))
    assert "Special files (skipped by transfer)" in text and "link-outside → /etc/hostname" in text
    assert snapshot(tree) == before


def test_roots_with_names_that_are_not_utf8(tmp_path: Path) -> None:
    src = os.path.join(b(tmp_path), b"caf\xe9 source")
    os.mkdir(src)
    with open(os.path.join(src, b"\xff.bin"), "wb") as f:
        f.write(b"data")
    dst = tmp_path / "dst"
    rep = report("transfer", os.fsdecode(src), str(dst))
    assert rep["source"].endswith("caf\\xe9 source")
    assert os.listdir(b(dst)) == [b"\xff.bin"]
    ok("verify", os.fsdecode(src), str(dst), "--content")


def test_target_inside_source_is_refused(tree: Path) -> None:
    result = rehost("transfer", str(tree), str(tree / "docs" / "copy"))
    assert result.exit_code == 2 and "inside it" in result.stderr
    assert not (tree / "docs" / "copy").exists()


def test_source_inside_target_is_refused(tree: Path) -> None:
    # Copying docs/ into the tree that holds it would write over the source's own
    # files (docs/docs/x onto docs/x), and --delete-extra would remove docs/ itself.
    before = snapshot(tree)
    for extra in ([], ["--delete-extra"]):
        result = rehost("transfer", str(tree / "docs"), str(tree), *extra)
        assert result.exit_code == 2 and "inside the target" in result.stderr
    assert snapshot(tree) == before


def test_exclude_leaves_paths_out_on_both_sides_and_never_removes_them(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for rel, text in {
        "a.txt": "a",
        "b.tmp": "scratch",
        "cache/c": "cached",
        "d/cache/x": "cached deeper",
        "d/cachefile": "a file named like the directory pattern stays",
        "keep/k": "k",
    }.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    before = snapshot(src)
    ex = ["--exclude", "cache/", "--exclude", "*.tmp"]
    rep = report("transfer", str(src), str(dst), *ex)
    assert rep["counts"]["copied"] == 3 and rep["exclude"] == ["cache/", "*.tmp"]
    copied = sorted(str(p.relative_to(dst)) for p in dst.rglob("*"))
    assert copied == ["a.txt", "d", "d/cachefile", "keep", "keep/k"]
    assert report("transfer", str(src), str(dst), *ex)["counts"]["copied"] == 0

    # On the target: excluded paths, and a directory only there that holds one, are kept
    # by --delete-extra (as rsync protects them); the rest of what is only there goes.
    for rel in ("old/cache/z", "gone/y", "q.tmp", "cache/on-target"):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_text("target's own")
    preview = report("transfer", str(src), str(dst), *ex, "--delete-extra", "--preview")
    assert preview["kept_holding_excluded"] == ["old"]
    assert [a["path"] for a in preview["actions"] if a["action"] == "remove"] == ["gone"]
    assert (dst / "gone/y").exists()
    rep = report("transfer", str(src), str(dst), *ex, "--delete-extra")
    assert rep["removed"] == ["gone"] and rep["kept_holding_excluded"] == ["old"]
    for kept in ("old/cache/z", "q.tmp", "cache/on-target"):
        assert (dst / kept).read_text() == "target's own"
    assert not (dst / "gone").exists()
    assert snapshot(src) == before

    assert report("verify", str(src), str(dst), *ex)["ok"]
    assert not report("verify", str(src), str(dst), code=1)["ok"]  # without them: missing
    inv = report("inventory", str(src), *ex)
    # a.txt, d/cachefile and keep/k
    assert inv["counts"]["file"] == 3
    assert inv["bytes"] == 2 + len("a file named like the directory pattern stays")


def test_a_bad_exclude_pattern_is_refused_before_anything_is_written(tree: Path) -> None:
    dst = tree.parent / "dst"
    result = rehost("transfer", str(tree), str(dst), "--exclude", "[abc")
    assert result.exit_code == 2 and "closing ']'" in result.stderr
    assert not dst.exists()


@pytest.mark.parametrize("jobs", ["1", "4"])
def test_bwlimit_holds_the_whole_transfer_to_the_rate(tmp_path: Path, jobs: str) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(6):  # 3 MiB: small files in one process, 1 MiB ones in workers
        (src / f"f{i}.bin").write_bytes(os.urandom(512 * 1024))
    started = time.monotonic()
    rep = report("transfer", str(src), str(dst), "--bwlimit", "1M", "--jobs", jobs)
    elapsed = time.monotonic() - started
    assert rep["ok"] and rep["counts"]["copied"] == 6
    # 3 MiB at 1 MiB/s, less the half second of credit a start may not even have
    assert elapsed >= 2.4, elapsed
    assert report("verify", str(src), str(dst), "--content")["ok"]


def test_a_bad_bwlimit_is_refused_before_anything_is_written(tree: Path) -> None:
    dst = tree.parent / "dst"
    result = rehost("transfer", str(tree), str(dst), "--bwlimit", "fast")
    assert result.exit_code == 2 and "--bwlimit 'fast'" in result.stderr
    assert not dst.exists()


def test_many_hard_links_with_the_link_maps_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a transfer, a verify and an inventory remember of hard links goes to disk
    # past a limit (millions of links in a tree of backups): made tiny here.
    monkeypatch.setattr("rehost.files.spill.IN_MEMORY", 3)
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(12):  # 12 files, each with 3 names in 3 directories
        for d in ("a", "b", "c"):
            (src / d).mkdir(parents=True, exist_ok=True)
        (src / "a" / f"{i}.txt").write_text(f"file {i}")
        os.link(src / "a" / f"{i}.txt", src / "b" / f"{i}.txt")
        os.link(src / "a" / f"{i}.txt", src / "c" / f"{i}.txt")
    for jobs in ("1", "4"):
        shutil.rmtree(dst, ignore_errors=True)
        rep = report(
            "transfer", str(src), str(dst), "--jobs", jobs, "--state", str(tmp_path / jobs)
        )
        assert rep["ok"] and (rep["counts"]["copied"], rep["counts"]["linked"]) == (12, 24)
        for i in range(12):
            inodes = {os.stat(dst / d / f"{i}.txt").st_ino for d in ("a", "b", "c")}
            assert len(inodes) == 1
        again = report("transfer", str(src), str(dst), "--state", str(tmp_path / jobs))
        assert again["counts"]["unchanged"] == 36 + 4 and again["counts"]["linked"] == 0
        assert report("verify", str(src), str(dst), "--state", str(tmp_path / jobs))["ok"]
    os.unlink(dst / "c" / "5.txt")
    (dst / "c" / "5.txt").write_text("file 5")  # same content, no longer a link
    found = report("verify", str(src), str(dst), "--state", str(tmp_path / "4"), code=1)
    assert ("c/5.txt", "hard link") in [(d["path"], d["what"]) for d in found["differences"]]
    inv = report("inventory", str(src))
    assert inv["hardlinks"] == {"groups": 12, "names": 24}


# ------------------------------------------------------------------ faults


def test_files_vanishing_or_changing_during_the_run(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for d in ("a", "y", "z"):
        (src / d).mkdir(parents=True)
    for i in range(100):
        (src / "a" / f"{i:03d}.txt").write_text(f"file {i}\n")
    (src / "y" / "in-removed-dir.txt").write_text("y\n")
    (src / "z" / "a-first.txt").write_text("first in z\n")
    (src / "z" / "gone.txt").write_text("z\n")
    (src / "z" / "growing.log").write_bytes(b"." * 8_000_000)

    class Saboteur:
        """Removes parts of the source that the walk has not reached yet."""

        def action(self, op: str, reason: str, rel: bytes) -> None:
            if rel == b"a/000.txt":  # y/ is not listed yet
                shutil.rmtree(src / "y")
            if rel == b"z/a-first.txt":  # z/ is listed, gone.txt not yet looked at
                (src / "z" / "gone.txt").unlink()

    stop = threading.Event()

    def append_forever() -> None:
        with open(src / "z" / "growing.log", "ab") as f:
            while not stop.is_set():
                f.write(b"+")
                f.flush()
                time.sleep(0.0002)

    writer = threading.Thread(target=append_forever)
    writer.start()
    try:
        rep = transfer(str(src), str(dst), TransferOptions(jobs=1), observer=Saboteur())
    finally:
        stop.set()
        writer.join()
    errors = {e.path: e.message for e in rep.errors}
    assert errors == {
        b"y": "vanished (no longer exists)",
        b"z/gone.txt": "vanished (no longer exists)",
        b"z/growing.log": "changed while it was being copied (tried twice); "
        "run again when it is quiet",
    }
    assert rep.counts["copied"] == 101
    assert not (dst / "z" / "growing.log").exists()  # never a partial file under its name
    assert [p.name for p in (dst / "z").iterdir()] == ["a-first.txt"]  # and no temp file
    rep = report("transfer", str(src), str(dst))
    assert rep["ok"] and rep["counts"]["copied"] == 1
    ok("verify", str(src), str(dst), "--content")


def _python_for_nobody() -> tuple[str, dict[str, str]] | None:
    """An interpreter user 'nobody' can run with rehost importable (the venv's may live
    under /root), and the environment it needs."""
    site = [p for p in sys.path if p.endswith("site-packages") and p.startswith(str(REPO))]
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *site]),
    }
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [python, "-c", "import rehost.cli"], user=NOBODY, group=NOBODY,
                extra_groups=[], cwd="/", env=env, capture_output=True, check=False,
            )  # fmt: skip
        except OSError:
            continue  # not executable by nobody (e.g. a pyenv Python under /root)
        if probe.returncode == 0:
            return python, env
    return None


def test_unreadable_source_and_refusing_target_as_another_user() -> None:
    # As root every file is readable, so rehost runs as 'nobody' in a subprocess:
    # then chmod 000 and a directory 'nobody' cannot write are real faults.
    if os.geteuid() != 0:
        pytest.skip("needs root, to run rehost as another user")
    found = _python_for_nobody()
    if found is None:
        pytest.skip("no Python interpreter that user 'nobody' can run rehost with")
    python, env = found
    base = Path(tempfile.mkdtemp(prefix="rehost-nobody-"))
    try:
        os.chmod(base, 0o755)
        src, dst, state = base / "src", base / "dst", base / "state"
        (src / "locked").mkdir(parents=True)
        (src / "fine.txt").write_text("fine\n")
        (src / "secret.txt").write_text("secret\n")
        (src / "locked" / "x.txt").write_text("x\n")
        (src / "read-only.txt").write_text("r\n")
        os.setxattr(src / "read-only.txt", "user.note", b"set before the mode")
        os.chmod(src / "read-only.txt", 0o444)
        (dst / "locked").mkdir(parents=True)
        state.mkdir()
        mine = ("locked", "fine.txt", "read-only.txt", "locked/x.txt")
        for path in (src, dst, state, *(src / p for p in mine)):
            os.chown(path, NOBODY, NOBODY)
        os.chmod(src / "secret.txt", 0)  # owned by root: nobody cannot read it
        os.chmod(dst / "locked", 0o755)  # owned by root: nobody cannot write into it

        def run_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [python, "-m", "rehost", "files", *args, "--json"],
                user=NOBODY, group=NOBODY, extra_groups=[], cwd=base, text=True,
                capture_output=True, timeout=60, env={**env, "XDG_STATE_HOME": str(state)},
            )  # fmt: skip

        before = snapshot(src)
        inv = json.loads(run_as_nobody("inventory", str(src)).stdout)
        assert inv["unreadable"] == [{"path": "secret.txt", "reason": "permission denied"}]
        first = run_as_nobody("transfer", str(src), str(dst))
        assert first.returncode == 1, first.stderr
        rep = json.loads(first.stdout)
        assert sorted(rep["errors"], key=lambda e: e["path"]) == [
            {"path": "locked", "error": "cannot set directory metadata: permission denied"},
            {"path": "locked/x.txt", "error": "permission denied"},
            {"path": "secret.txt", "error": "permission denied"},
        ]
        assert (dst / "fine.txt").read_text() == "fine\n"
        assert os.getxattr(dst / "read-only.txt", "user.note") == b"set before the mode"
        assert os.stat(dst / "read-only.txt").st_mode & 0o777 == 0o444
        assert rep["not_preserved"] == {
            "owner: not running as root": 1,
            "group: not running as root": 1,
        }
        assert snapshot(src) == before

        os.chmod(src / "secret.txt", 0o644)
        os.chown(dst / "locked", NOBODY, NOBODY)
        second = run_as_nobody("transfer", str(src), str(dst))
        assert second.returncode == 0, second.stdout + second.stderr
        assert json.loads(second.stdout)["counts"]["copied"] == 2
        verified = run_as_nobody("verify", str(src), str(dst), "--content")
        assert verified.returncode == 0, verified.stdout
    finally:
        shutil.rmtree(base)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_then_rerun_completes(tmp_path: Path, sig: signal.Signals) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    block = os.urandom(1 << 20)
    for i in range(4):
        with open(src / f"big-{i}.bin", "wb") as f:
            for _ in range(48):
                f.write(block)
    for i in range(50):
        (src / f"small-{i:02d}.txt").write_text(f"small {i}\n" * 100)
    before = snapshot(src)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rehost", "files", "transfer", str(src), str(dst), "--jobs", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # kill while a big file is being written
        if dst.exists() and any(p.name.startswith(".rehost-tmp-") for p in dst.iterdir()):
            break
        time.sleep(0.001)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    names = {p.name for p in dst.iterdir()}
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert any(n.startswith(".rehost-tmp-") for n in names), "killed too late to test anything"
    else:  # files in flight are finished, the rest is left for the next run
        assert proc.returncode == 130, stderr
        assert "stopping: finishing the files in flight" in stderr
        assert "interrupted: files already in place are complete" in stderr
    for name in names - {n for n in names if n.startswith(".rehost-tmp-")}:
        # Whatever has its real name is complete.
        assert (dst / name).read_bytes() == (src / name).read_bytes(), name
    rep = report("transfer", str(src), str(dst))
    assert rep["ok"] and rep["counts"]["temp files removed"] == len(
        [n for n in names if n.startswith(".rehost-tmp-")]
    )
    assert rep["counts"]["copied"] == 54 - len(names - {n for n in names if ".rehost-tmp-" in n})
    assert not [p for p in dst.iterdir() if p.name.startswith(".rehost-tmp-")]
    ok("verify", str(src), str(dst), "--content")
    assert snapshot(src) == before


def test_owner_options(tree: Path, tmp_path: Path) -> None:
    mapped = tmp_path / "mapped"
    ok(
        "transfer",
        str(tree),
        str(mapped),
        "--map-user",
        "nobody=root",
        "--map-group",
        "nogroup=root",
    )
    assert os.lstat(mapped / "private.txt")[4:6] == (0, 0)
    # Verify compares owners through the same mapping.
    ok("verify", str(tree), str(mapped), "--map-user", "nobody=root", "--map-group", "nogroup=root")
    assert rehost("verify", str(tree), str(mapped)).exit_code == 1
    bad = rehost("transfer", str(tree), str(tmp_path / "bad"), "--map-user", "nobody")
    assert bad.exit_code == 2 and "expected SOURCE=TARGET" in bad.stderr
    result = rehost("transfer", str(tree), str(tmp_path / "x"), "--map-user", "nobody=no-such-u")
    assert (
        result.exit_code == 0 and "owner: no user named 'no-such-u' on the target" in result.stdout
    )
    none = tmp_path / "none"
    ok("transfer", str(tree), str(none), "--owners", "none")
    assert os.lstat(none / "private.txt").st_uid == os.geteuid()


def test_roots_given_as_links_are_followed(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "src-link").symlink_to(tree)
    (tmp_path / "real-dst").mkdir()
    (tmp_path / "dst-link").symlink_to(tmp_path / "real-dst")
    ok("transfer", str(tmp_path / "src-link"), str(tmp_path / "dst-link"))
    assert (tmp_path / "dst-link").is_symlink()
    assert (tmp_path / "real-dst" / "docs" / "readme.txt").read_text() == "hello\n"
    (tmp_path / "a-file").write_text("x")
    result = rehost("transfer", str(tree), str(tmp_path / "a-file"))
    assert result.exit_code == 1 and "is not a directory" in result.stderr


def test_every_files_command_and_option_is_documented() -> None:
    import click
    import typer.main

    from rehost.cli.files import files_app

    readme = (REPO / "README.md").read_text()
    group = typer.main.get_command(files_app)
    assert isinstance(group, click.Group)
    for name, command in group.commands.items():
        heading = f"### `rehost files {name} "
        assert heading in readme, f"README has no section {heading}…"
        section = readme.split(heading, 1)[1].split("\n### ", 1)[0]
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in section or f", {opt}" in section, f"{name}: {opt}"


def test_target_full_then_rerun_completes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "full"
    src.mkdir()
    dst.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(dst)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up: {mounted.stderr.decode().strip()}")
    try:
        (src / "a-small.txt").write_bytes(b"a" * 300_000)
        (src / "b-large.bin").write_bytes(b"b" * 900_000)
        (src / "c-tiny.txt").write_bytes(b"c" * 10)
        rep = report("transfer", str(src), str(dst), "--jobs", "1", code=1)
        assert rep["errors"] == [{"path": "b-large.bin", "error": "No space left on device"}]
        assert sorted(p.name for p in dst.iterdir()) == ["a-small.txt", "c-tiny.txt"]  # no temp
        subprocess.run(["mount", "-o", "remount,size=4m", str(dst)], check=True)  # more room
        rep = report("transfer", str(src), str(dst))
        assert rep["counts"]["copied"] == 1 and rep["counts"]["unchanged"] == 3
        ok("verify", str(src), str(dst), "--content")
    finally:
        subprocess.run(["umount", str(dst)], check=False)


def test_a_file_swapped_for_a_link_is_never_followed(tmp_path: Path) -> None:
    # The walk saw a regular file; by the time it is opened it is a link out of the tree.
    from rehost.files import local
    from rehost.files.plan import Wanted
    from rehost.files.walk import describe

    (tmp_path / "s").mkdir()
    (tmp_path / "t").mkdir()
    (tmp_path / "s" / "f").symlink_to("/etc/hostname")
    with pytest.raises(OSError) as exc:
        local.copy_file(b(tmp_path / "s"), b(tmp_path / "t"), b"f", Wanted())
    assert describe(exc.value) == "replaced by a symbolic link during the run"
    assert list((tmp_path / "t").iterdir()) == []


_names = st.binary(min_size=1, max_size=60).filter(
    lambda n: b"/" not in n and b"\0" not in n and n not in (b".", b"..") and not is_temp_name(n)
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_names, min_size=1, max_size=6, unique=True), st.data())
def test_any_name_survives_a_round_trip(names: list[bytes], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(b(tmp), b"src"), os.path.join(b(tmp), b"dst")
        os.mkdir(src)
        for name in names:
            if data.draw(st.booleans(), label="directory"):
                os.mkdir(os.path.join(src, name))
                with open(os.path.join(src, name, name), "wb") as f:
                    f.write(name)
            else:
                with open(os.path.join(src, name), "wb") as f:
                    f.write(name * 3)
        rep = transfer(os.fsdecode(src), os.fsdecode(dst), TransferOptions(jobs=2))
        assert rep.ok, rep.errors
        assert sorted(os.listdir(dst)) == sorted(names)
        assert verify(os.fsdecode(src), os.fsdecode(dst), content=True).ok
        again = transfer(os.fsdecode(src), os.fsdecode(dst), TransferOptions(jobs=2))
        assert again.counts["copied"] == 0


def test_case_only_names_on_a_case_insensitive_target(tmp_path: Path) -> None:
    # No case-insensitive file system here: the option stands in for the probe.
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "Docs").mkdir(parents=True)
    (src / "docs").mkdir()
    (src / "Docs" / "a.txt").write_text("Docs/a\n")
    (src / "docs" / "b.txt").write_text("docs/b\n")
    (src / "README").write_text("upper\n")
    (src / "Readme").write_text("mixed\n")
    (src / "other").write_text("other\n")
    args = ("transfer", str(src), str(dst), "--case-insensitive-target")
    rep = report(*args)
    assert rep["ok"]
    assert rep["collisions"] == [
        {"path": "Readme", "with": "README"},
        {"path": "docs", "with": "Docs"},
    ]
    assert rep["counts"]["copied"] == 3  # README, Docs/a.txt, other
    reason = "name differs only in case from another (case-insensitive target)"
    assert rep["skipped"] == {reason: 2, "inside a directory whose name differs only in case": 1}
    assert (dst / "README").read_text() == "upper\n" and not (dst / "Readme").exists()
    assert sorted(p.name for p in dst.iterdir()) == ["Docs", "README", "other"]
    text = ok(*args)
    assert "Names that differ only in case" in text and "Readme: same name as README" in text
    # verify with the same option: the names not sent are case collisions, not missing.
    check = ("verify", str(src), str(dst), "--case-insensitive-target")
    rep = report(*check, "--content")
    assert rep["ok"] and rep["differences"] == [] and rep["extra"] == []
    assert rep["collisions"] == [
        {"path": "Readme", "with": "README"},
        {"path": "docs", "with": "Docs"},
    ]
    assert rep["skipped"] == [
        {"path": "docs/b.txt", "reason": "inside a directory whose name differs only in case"}
    ]
    text = ok(*check)
    assert "Readme: same name as README" in text and "ok" in text
    # Without it (the probe finds this target case-sensitive) they are missing.
    rep = report("verify", str(src), str(dst), code=1)
    assert sorted(d["path"] for d in rep["differences"] if d["what"] == "missing") == [
        "Readme",
        "docs",
        "docs/b.txt",
    ]
    # Anything else that differs still fails verify.
    (dst / "other").write_text("changed\n")
    rep = report(*check, code=1)
    assert {d["path"] for d in rep["differences"]} == {"other"} and len(rep["collisions"]) == 2
    # On a case-sensitive target (probed: this one) every name is sent.
    rep = report("transfer", str(src), str(tmp_path / "plain"))
    assert rep["collisions"] == [] and rep["counts"]["copied"] == 5
    assert not [n for n in os.listdir(tmp_path / "plain") if is_temp_name(b(n))]  # probe gone


def test_paths_longer_than_the_system_allows_are_reported(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "near.txt").write_text("near\n")
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:  # built with directory descriptors: no path here is ever longer than a name
        while len(bytes(src)) + depth * 251 < 4200:
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = inner, depth + 1
        os.close(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    rep = report("transfer", str(src), str(dst), code=1)
    assert rep["counts"]["copied"] == 1 and (dst / "near.txt").read_text() == "near\n"
    assert len(rep["errors"]) == 1, rep["errors"]
    assert "path too long for this system" in rep["errors"][0]["error"]
    assert rep["errors"][0]["path"].startswith("d" * 250 + "/")
    text = rehost("transfer", str(src), str(dst)).stdout
    assert "path too long for this system" in text


def test_directory_times_and_modes_past_the_in_memory_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The final directory pass keeps few directories in memory, the rest in a
    # temporary file: with a batch of 3, most of these go through that file.
    from rehost.files import transfer as transfer_module

    monkeypatch.setattr(transfer_module, "DIRS_IN_MEMORY", 3)
    src, dst = tmp_path / "src", tmp_path / "dst"
    dirs = [src / f"d{i}" / f"e{j}" for i in range(4) for j in range(3)]
    for n, d in enumerate(dirs):
        d.mkdir(parents=True)
        (d / "f.txt").write_text(f"{n}\n")
    all_dirs = sorted({src, *dirs, *(d.parent for d in dirs)}, key=lambda p: -len(p.parts))
    for n, d in enumerate(all_dirs):  # deepest first: setting a child's time leaves the parent's
        os.chmod(d, 0o750 if n % 2 else 0o755)
        os.utime(d, ns=(T_OLD + n * 1_000_000_007, T_OLD + n * 1_000_000_007))

    def dir_meta(root: Path) -> dict[str, tuple[int, int]]:
        out = {}
        for d in [root, *root.rglob("*")]:
            if d.is_dir():
                st = os.lstat(d)
                out[str(d.relative_to(root))] = (st.st_mtime_ns, stat.S_IMODE(st.st_mode))
        return out

    expected = dir_meta(src)
    assert len(expected) == 17
    rep = report("transfer", str(src), str(dst))
    assert rep["ok"] and rep["counts"]["copied"] == 12
    assert dir_meta(dst) == expected
    # --delete-extra walks them again, to restore the times of the directories it emptied.
    (dst / "d1" / "e2" / "extra.txt").write_text("extra\n")
    (dst / "d3" / "extra.txt").write_text("extra\n")
    rep = report("transfer", str(src), str(dst), "--delete-extra")
    assert sorted(rep["removed"]) == ["d1/e2/extra.txt", "d3/extra.txt"]
    assert dir_meta(dst) == expected
    assert report("verify", str(src), str(dst))["ok"]
