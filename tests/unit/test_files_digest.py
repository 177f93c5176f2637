"""Content hashes are BLAKE3 wherever files are hashed, and a manifest written with
another algorithm (SHA-256, by older versions) is never taken for a BLAKE3 one."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import blake3
import pytest

from rehost.files import local
from rehost.files.entry import lstat_entry
from rehost.files.manifest import Manifest
from rehost.files.plan import Wanted
from rehost.files.transfer import TransferOptions, transfer
from rehost.files.verify import verify

# The manifest schema rehost wrote before hashes were BLAKE3, verbatim.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
  path BLOB PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  ino INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  sha256 TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


@pytest.mark.parametrize(
    "size", [0, 1, local.BUFFER_SIZE, local.BUFFER_SIZE + 1, 3 * local.BUFFER_SIZE + 7]
)
def test_copy_and_hash_file_give_the_blake3_of_the_content(tmp_path: Path, size: int) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    data = os.urandom(size)
    (src / "f").write_bytes(data)
    placed = local.copy_file(os.fsencode(src), os.fsencode(dst), b"f", Wanted())
    assert (dst / "f").read_bytes() == data
    assert placed.digest == _b3(data) == local.hash_file(os.fsencode(src / "f"))
    assert placed.size == size


def test_a_sparse_copy_hashes_its_holes_as_zeros(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    size = 8 * local.BUFFER_SIZE
    with open(src / "sparse", "wb") as f:
        f.truncate(size)
        f.seek(3 * local.BUFFER_SIZE + 5)
        f.write(b"data in the middle")
    st = os.stat(src / "sparse")
    if st.st_blocks * 512 >= size:
        pytest.skip("this file system does not keep holes")
    placed = local.copy_file(os.fsencode(src), os.fsencode(dst), b"sparse", Wanted())
    data = (src / "sparse").read_bytes()
    assert (dst / "sparse").read_bytes() == data
    assert placed.digest == _b3(data)
    assert os.stat(dst / "sparse").st_blocks * 512 < size  # holes kept


def _old_manifest(path: Path, files: dict[bytes, Path]) -> None:
    """A manifest as older versions wrote it: SHA-256 hashes in a ``sha256`` column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO meta VALUES ('target', '/somewhere')")
        for rel, target in files.items():
            st = os.stat(target)
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
            db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode, sha),
            )


def test_an_old_sha256_manifest_is_read_without_its_hashes_then_migrated(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"some content\n")
    state = tmp_path / "state"
    _old_manifest(state / "manifest.sqlite", {b"file": target})
    dst = lstat_entry(os.fsencode(tmp_path), b"file")
    assert dst is not None

    readonly = Manifest.open(state, os.fsencode(tmp_path), readonly=True)
    record = readonly.get(b"file")
    assert record is not None and record.matches(dst) and record.digest is None
    assert readonly.hash_for(dst) is None  # a SHA-256 is never offered as a BLAKE3
    readonly.close()

    writable = Manifest.open(state, os.fsencode(tmp_path))
    record = writable.get(b"file")
    assert record is not None and record.matches(dst) and record.digest is None  # kept
    writable.put(dst, _b3(b"some content\n"))
    writable.close()
    with sqlite3.connect(state / "manifest.sqlite") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(files)")]
        assert columns == ["path", "size", "mtime_ns", "ctime_ns", "ino", "mode", "digest"]
        assert db.execute("SELECT value FROM meta WHERE key = 'digest'").fetchone() == ("blake3",)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert "files_before" not in tables
    again = Manifest.open(state, os.fsencode(tmp_path), readonly=True)
    assert again.hash_for(dst) == _b3(b"some content\n")
    again.close()


def test_a_tree_recorded_by_an_older_version_verifies_and_rerecords(tmp_path: Path) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    (src / "d").mkdir(parents=True)
    (src / "d" / "a.txt").write_bytes(b"alpha\n" * 1000)
    (src / "b.bin").write_bytes(os.urandom(3 * local.BUFFER_SIZE))
    opts = TransferOptions(state_dir=state)
    assert transfer(str(src), str(dst), opts).ok
    manifest = state / "manifest.sqlite"
    manifest.unlink()
    _old_manifest(manifest, {b"d/a.txt": dst / "d" / "a.txt", b"b.bin": dst / "b.bin"})

    checked = verify(str(src), str(dst), content=True, state_dir=state)
    assert checked.ok and checked.hashes_from_manifest == 0  # both read, none trusted

    # One byte changed under the same size and mtime: the old hash would not tell.
    target = dst / "b.bin"
    st = os.stat(target)
    with open(target, "r+b") as f:
        f.seek(local.BUFFER_SIZE + 3)
        byte = f.read(1)
        f.seek(local.BUFFER_SIZE + 3)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    checked = verify(str(src), str(dst), content=True, state_dir=state)
    assert [(d.path, d.what, d.detail) for d in checked.differences] == [
        (b"b.bin", "content", "BLAKE3 hash differs")
    ]

    rep = transfer(str(src), str(dst), TransferOptions(state_dir=state, checksum=True,
                                                       overwrite=True))  # fmt: skip
    assert rep.ok and rep.counts["copied"] == 1
    checked = verify(str(src), str(dst), content=True, state_dir=state)
    assert checked.ok and checked.hashes_from_manifest == 2  # both re-recorded as BLAKE3
    with sqlite3.connect(manifest) as db:
        rows = dict(db.execute("SELECT path, digest FROM files").fetchall())
    assert rows == {
        b"d/a.txt": _b3((src / "d" / "a.txt").read_bytes()),
        b"b.bin": _b3((src / "b.bin").read_bytes()),
    }
