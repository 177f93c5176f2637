"""`rehost files` with SFTP and S3 stores, against real servers on loopback.

SFTP: asyncssh's server (tests/sftp_server.py) in its own process, so a test can
kill it with SIGKILL mid-run and start it again on the same port. S3: moto's
server mode (ThreadedMotoServer) on a free port; stopping it mid-run drops the
connections, its buckets survive for the restart (they live in this process).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rehost.cli import app
from rehost.files.location import RemoteOptions, parse_location
from rehost.files.remote import S3Tree
from rehost.files.transfer import TransferOptions, transfer
from tests.test_files_cli import T_OLD, b, snapshot

asyncssh = pytest.importorskip("asyncssh")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("REHOST_SFTP_PASSWORD", PASSWORD)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(key, value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ servers


class SFTPServer:
    """tests/sftp_server.py in a process of its own, rooted at ``root``."""

    def __init__(self, root: Path, keydir: Path, *, hardlinks: bool = True) -> None:
        self.root, self.hardlinks = root, hardlinks
        self.port = free_port()
        key = asyncssh.generate_private_key("ssh-ed25519")
        self.key = keydir / "host_key"
        key.write_private_key(str(self.key))
        self.known_hosts = keydir / "known_hosts"
        pub = key.export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub}\n")
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "sftp_server.py"), str(self.root),
             str(self.key), PASSWORD, str(self.port), *([] if self.hardlinks else ["no-hardlink"])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == str(self.port)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def url(self, path: str) -> str:
        return f"sftp://rehost@127.0.0.1:{self.port}/{path}"

    @property
    def opts(self) -> list[str]:
        return ["--sftp-known-hosts", str(self.known_hosts)]


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SFTPServer]:
    (tmp_path / "server").mkdir()
    (tmp_path / "keys").mkdir()
    server = SFTPServer(tmp_path / "server", tmp_path / "keys")
    server.start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.kill()


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: object | None = None

    def start(self) -> None:
        self.server = moto_server.ThreadedMotoServer(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self.server.start()  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.server.stop()  # type: ignore[attr-defined]

    @property
    def client(self) -> object:
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    @property
    def opts(self) -> list[str]:
        return ["--s3-endpoint-url", self.endpoint]

    def objects(self, bucket: str) -> dict[str, tuple]:
        """Every object: ETag, LastModified, metadata (what any change would alter)."""
        c = self.client
        out = {}
        for obj in c.list_objects_v2(Bucket=bucket).get("Contents", []):  # type: ignore[attr-defined]
            head = c.head_object(Bucket=bucket, Key=obj["Key"])  # type: ignore[attr-defined]
            out[obj["Key"]] = (obj["ETag"], obj["LastModified"], head["Metadata"])
        return out


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: S3Server, request: pytest.FixtureRequest) -> str:
    name = "t-" + request.node.name.lower().replace("_", "-")[:50]
    s3_server.client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


# --------------------------------------------------------------------- tree


def make_tree(root: Path, *, s3: bool = False) -> None:
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "docs" / "readme.txt").write_text("hello\n")
    (root / "docs" / "deep" / "data.bin").write_bytes(os.urandom(3_000_000))  # > 1 buffer
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "run.sh", 0o750)
    (root / "private.txt").write_text("secret-ish\n")
    os.chmod(root / "private.txt", 0o600)
    (root / "with space").write_text("odd name\n")
    if not s3:  # moto's server answers 404 to a key with a newline; AWS takes it
        (root / "with\nnewline").write_text("odd name\n")
    os.symlink("readme.txt", root / "docs" / "link-inside")
    os.link(root / "docs" / "readme.txt", root / "hard-readme.txt")
    if not s3:
        with open(os.path.join(b(root), b"latin1-\xe9t\xe9.txt"), "wb") as f:
            f.write(b"not utf-8 name\n")
    for dirpath, dirnames, filenames in os.walk(b(root), topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(T_OLD, T_OLD), follow_symlinks=False)
        os.utime(dirpath, ns=(T_OLD, T_OLD))


def files(*args: str, code: int = 0) -> dict:
    result = runner.invoke(app, ["files", *args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def contents(root: Path) -> dict[bytes, tuple]:
    """Name → (kind, content or link text, mode, mtime in whole seconds)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(b(root)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if os.path.islink(path):
                what: object = os.readlink(path)
            elif os.path.isdir(path):
                what = "dir"
            else:
                with open(path, "rb") as f:
                    what = f.read()
            mode = st.st_mode & 0o7777 if not os.path.islink(path) else None
            mtime = st.st_mtime_ns // 10**9 if not os.path.isdir(path) else None
            out[os.path.relpath(path, b(root))] = (what, mode, mtime)
    return out


# --------------------------------------------------------------------- SFTP


def test_sftp_round_trip(sftp: SFTPServer, tmp_path: Path) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    make_tree(src)
    before = snapshot(src)
    url = sftp.url("data")

    rep = files("transfer", str(src), url, *sftp.opts)
    assert rep["ok"] and rep["counts"]["copied"] == 8 and rep["counts"]["linked"] == 1, rep
    # Counted once per file: the linked name is the file counted under its first name.
    assert rep["not_preserved"]["owner and group: SFTP keeps none"] == 11
    assert rep["not_preserved"]["mtime below a second: SFTP keeps whole seconds"] == 12
    assert not any(k.startswith("hard links") for k in rep["not_preserved"])
    on_server = sftp.root / "data"
    assert os.path.samefile(on_server / "docs" / "readme.txt", on_server / "hard-readme.txt")
    assert os.stat(on_server / "run.sh").st_mode & 0o7777 == 0o750
    assert os.stat(on_server / "docs" / "readme.txt").st_mtime_ns == T_OLD // 10**9 * 10**9
    assert os.readlink(on_server / "docs" / "link-inside") == "readme.txt"
    assert (on_server / "empty").is_dir()
    assert os.path.exists(os.path.join(b(on_server), b"latin1-\xe9t\xe9.txt"))
    assert files("verify", str(src), url, "--content", *sftp.opts)["ok"]
    assert snapshot(src) == before

    again = files("transfer", str(src), url, *sftp.opts)
    assert again["counts"]["copied"] == 0 and again["counts"]["metadata updated"] == 0
    assert again["bytes_copied"] == 0

    (src / "run.sh").write_text("#!/bin/sh\necho changed\n")
    os.utime(src / "run.sh", ns=(T_OLD + 5 * 10**9, T_OLD + 5 * 10**9))
    rep = files("transfer", str(src), url, *sftp.opts)
    assert rep["counts"]["copied"] == 1 and rep["bytes_copied"] == len("#!/bin/sh\necho changed\n")
    assert (on_server / "run.sh").read_text().endswith("changed\n")

    (on_server / "docs" / "mine.txt").write_text("only on the target\n")
    rep = files("transfer", str(src), url, *sftp.opts)
    assert rep["extra"] == [{"path": "docs/mine.txt", "kind": "file"}]
    assert (on_server / "docs" / "mine.txt").exists()
    rep = files("transfer", str(src), url, "--delete-extra", *sftp.opts)
    assert rep["removed"] == ["docs/mine.txt"] and not (on_server / "docs" / "mine.txt").exists()

    # SFTP → local: the SFTP source is not modified (ctimes included), by transfer or verify.
    server_before = snapshot(on_server)
    rep = files("transfer", url, str(back), *sftp.opts)
    assert rep["ok"] and rep["counts"]["copied"] == 9
    assert files("verify", url, str(back), "--content", *sftp.opts)["ok"]
    assert snapshot(on_server) == server_before
    assert contents(back) == contents(src)
    assert files("transfer", url, str(back), *sftp.opts)["counts"]["copied"] == 0

    # Written into an existing directory, whose mtime is then set back: entries kept
    # from listings during the run are not trusted for a directory written into.
    (src / "docs" / "new.txt").write_text("new\n")
    os.utime(src / "docs", ns=(T_OLD, T_OLD))
    rep = files("transfer", str(src), url, *sftp.opts)
    assert rep["ok"] and rep["counts"]["copied"] == 1
    assert os.stat(on_server / "docs").st_mtime_ns == T_OLD // 10**9 * 10**9
    assert files("verify", str(src), url, *sftp.opts)["ok"]


def hard_linked_tree(src: Path, dirs: int) -> None:
    """Two hard-linked files (three names and two) with ``dirs`` directories walked
    between their first and further names, so that the listings of the first ones
    are no longer kept when the further names are linked."""
    for d in ("a", "b", "c", "z"):
        (src / d).mkdir(parents=True)
    (src / "a" / "one.txt").write_text("one\n")
    os.link(src / "a" / "one.txt", src / "b" / "one-again.txt")
    os.link(src / "a" / "one.txt", src / "c" / "one-more.txt")
    (src / "two.bin").write_bytes(os.urandom(5000))
    os.link(src / "two.bin", src / "z" / "two.bin")
    for i in range(dirs):
        (src / "many" / f"{i:03d}").mkdir(parents=True)
        (src / "many" / f"{i:03d}" / "f").write_text(str(i))


def test_sftp_hard_links_are_hard_links_on_the_server(sftp: SFTPServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    hard_linked_tree(src, dirs=70)
    url, on_server = sftp.url("data"), sftp.root / "data"

    preview = files("transfer", str(src), url, "--preview", *sftp.opts)
    assert preview["counts"]["linked"] == 3 and preview["counts"]["copied"] == 72
    assert not on_server.exists()
    rep = files("transfer", str(src), url, *sftp.opts)
    assert rep["ok"] and rep["counts"]["linked"] == 3 and rep["counts"]["copied"] == 72, rep
    assert not any(k.startswith("hard links") for k in rep["not_preserved"])
    one = os.stat(on_server / "a" / "one.txt")
    assert one.st_nlink == 3
    for name in ("b/one-again.txt", "c/one-more.txt"):
        assert os.stat(on_server / name).st_ino == one.st_ino
    assert os.stat(on_server / "z" / "two.bin").st_ino == os.stat(on_server / "two.bin").st_ino
    assert not [p for p in on_server.rglob("*") if p.name.startswith(".rehost-")]

    again = files("transfer", str(src), url, *sftp.opts)
    counts = again["counts"]
    assert again["ok"] and counts["linked"] == counts["copied"] == counts["metadata updated"] == 0
    assert counts["unchanged"] == 75 + 76  # files and directories (root included)
    assert files("verify", str(src), url, "--content", *sftp.opts)["ok"]

    # A name that is a separate copy (same content, mtime, mode) is found, and linked again.
    copy = on_server / "b" / "one-again.txt"
    b_times = os.stat(copy.parent).st_mtime_ns
    copy.unlink()
    copy.write_text("one\n")
    os.utime(copy, ns=(one.st_mtime_ns, one.st_mtime_ns))
    os.chmod(copy, one.st_mode & 0o7777)
    os.utime(copy.parent, ns=(b_times, b_times))
    verified = files("verify", str(src), url, *sftp.opts, code=1)
    assert [(d["path"], d["what"]) for d in verified["differences"]] == [
        ("b/one-again.txt", "hard link")
    ]
    rep = files("transfer", str(src), url, *sftp.opts)
    assert rep["ok"] and rep["counts"]["linked"] == 1 and rep["counts"]["copied"] == 0
    assert os.stat(copy).st_ino == one.st_ino and os.stat(copy).st_nlink == 3
    assert files("verify", str(src), url, *sftp.opts)["ok"]

    # SFTP → local: a listing gives no inode numbers; each name is a file of its own.
    back = tmp_path / "back"
    rep = files("transfer", url, str(back), *sftp.opts)
    assert rep["ok"] and rep["counts"]["copied"] == 75 and rep["counts"]["linked"] == 0
    assert (back / "c" / "one-more.txt").read_text() == "one\n"
    assert files("verify", url, str(back), "--content", *sftp.opts)["ok"]


def test_sftp_server_without_hard_links_gets_copies(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "keys").mkdir()
    server = SFTPServer(tmp_path / "server", tmp_path / "keys", hardlinks=False)
    server.start()
    try:
        src = tmp_path / "src"
        hard_linked_tree(src, dirs=0)
        url, on_server = server.url("data"), server.root / "data"
        rep = files("transfer", str(src), url, *server.opts)
        assert rep["ok"] and rep["counts"]["copied"] == 5 and rep["counts"]["linked"] == 0
        assert rep["not_preserved"]["hard links: separate copies on SFTP"] == 5
        assert os.stat(on_server / "a" / "one.txt").st_nlink == 1
        assert os.stat(on_server / "z" / "two.bin").st_nlink == 1
        again = files("transfer", str(src), url, *server.opts)
        assert again["ok"] and again["counts"]["unchanged"] == 5 + 5
        assert files("verify", str(src), url, "--content", *server.opts)["ok"]
    finally:
        server.kill()


def test_sftp_server_killed_mid_run_then_rerun_completes(sftp: SFTPServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(24):
        (src / "d" / f"{i:02d}.bin").write_bytes(os.urandom(40_000))
    before = snapshot(src)
    url = sftp.url("data")
    state = tmp_path / "state-kill"

    class Killer:
        copied = 0

        def action(self, op: str, reason: str, rel: bytes) -> None:
            if op == "copy":
                self.copied += 1
                if self.copied == 5:
                    sftp.kill()

    remote = RemoteOptions(sftp_password=PASSWORD, sftp_known_hosts=str(sftp.known_hosts),
                           retries=1, backoff=0.05)  # fmt: skip
    opts = TransferOptions(jobs=2, state_dir=state, remote=remote)
    rep = transfer(str(src), url, opts, observer=Killer())
    assert not rep.ok and rep.counts["copied"] >= 5
    odd = [e for e in rep.errors if "network: " not in e.message]
    assert rep.errors and not odd, odd
    assert all("tried 2 times" in e.message for e in rep.errors)

    # Still down: the command line reports every file and exits 1.
    result = runner.invoke(app, ["files", "transfer", str(src), url, "--retries", "0",
                                 "--state", str(state), *sftp.opts])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "network: " in result.stdout and "run the same command again" in result.stdout

    sftp.start()  # same port, same host key
    rep2 = files("transfer", str(src), url, "--state", str(state), *sftp.opts)
    # What was in flight when the server died may have landed; the rest is sent now.
    assert rep2["ok"] and 1 <= rep2["counts"]["copied"] <= 24 - rep.counts["copied"]
    leftovers = [n for n in os.listdir(sftp.root / "data" / "d") if n.startswith(".rehost-tmp")]
    assert leftovers == []
    assert files("verify", str(src), url, "--content", "--state", str(state), *sftp.opts)["ok"]
    assert snapshot(src) == before


def test_sftp_wrong_host_key_is_refused(sftp: SFTPServer, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    other = tmp_path / "other_known_hosts"
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    other.write_text(f"[127.0.0.1]:{sftp.port} {key}\n")
    result = runner.invoke(app, ["files", "transfer", str(src), sftp.url("data"),
                                 "--sftp-known-hosts", str(other)])  # fmt: skip
    assert result.exit_code != 0
    assert not (sftp.root / "data").exists()


# ----------------------------------------------------------------------- S3


def heads_to_list_docs(url: str, s3_server: S3Server, manifest: Path) -> int:
    """HEAD requests an S3 tree using ``manifest`` makes to list ``docs`` of ``url``."""
    tree = S3Tree(parse_location(url, "target"), RemoteOptions(s3_endpoint_url=s3_server.endpoint))
    tree.use_manifest(manifest)
    try:
        assert [e.rel for e in tree.scan(b"docs")] == [b"docs/deep", b"docs/readme.txt"]
        return tree.heads
    finally:
        tree.close()


def test_s3_round_trip(s3_server: S3Server, bucket: str, tmp_path: Path) -> None:
    src, back = tmp_path / "src", tmp_path / "back"
    src.mkdir()
    make_tree(src, s3=True)
    before = snapshot(src)
    url = f"s3://{bucket}/data"
    opts = s3_server.opts

    rep = files("transfer", str(src), url, *opts)
    assert rep["ok"] and rep["counts"]["copied"] == 6, rep
    assert rep["skipped"] == {"symbolic link: S3 holds no links": 1}
    assert rep["not_preserved"]["directory mode and times: S3 has no directories"] == 4
    assert rep["not_preserved"]["hard links: separate copies on S3"] == 2
    head = s3_server.client.head_object(Bucket=bucket, Key="data/docs/readme.txt")  # type: ignore[attr-defined]
    assert head["Metadata"]["rehost-mtime-ns"] == str(T_OLD)
    assert head["Metadata"]["rehost-mode"] == "644"
    big = s3_server.client.head_object(Bucket=bucket, Key="data/docs/deep/data.bin")  # type: ignore[attr-defined]
    assert big["ContentLength"] == 3_000_000
    assert snapshot(src) == before

    # Small objects: the PUT's ETag is recorded, no HEAD after it; the LastModified
    # comes from one listing per directory at the end, so every record is complete
    # and a later look at the tree needs no HEAD per object.
    manifest = Path(rep["state"]) / "manifest.sqlite"
    with sqlite3.connect(manifest) as db:
        recorded = dict(db.execute("SELECT path, ctime_ns FROM files").fetchall())
    listed = {
        o["Key"].removeprefix("data/").encode(): int(o["LastModified"].timestamp() * 1e9)
        for o in s3_server.client.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]  # type: ignore[attr-defined]
    }
    assert recorded == listed
    assert heads_to_list_docs(url, s3_server, manifest) == 0

    verified = files("verify", str(src), url, "--content", *opts)
    assert verified["ok"] and verified["hashes_from_manifest"] == 6  # no object read back
    assert verified["skipped"] == [
        {"path": "docs/link-inside", "reason": "symbolic link: S3 holds no links"}
    ]

    # The manifest as an older rehost wrote it (SHA-256 hashes in a sha256 column): its
    # records still spare the HEAD requests; its hashes are never taken for BLAKE3 ones.
    with sqlite3.connect(manifest) as db:
        db.execute("ALTER TABLE files RENAME COLUMN digest TO sha256")
        db.execute("DELETE FROM meta WHERE key = 'digest'")
        for (rel,) in db.execute("SELECT path FROM files").fetchall():
            sha = hashlib.sha256((src / os.fsdecode(rel)).read_bytes()).hexdigest()
            db.execute("UPDATE files SET sha256 = ? WHERE path = ?", (sha, rel))
    assert heads_to_list_docs(url, s3_server, manifest) == 0
    verified = files("verify", str(src), url, "--content", *opts)
    assert verified["ok"] and verified["hashes_from_manifest"] == 0  # objects read back

    again = files("transfer", str(src), url, *opts)  # migrates the manifest: no hashes
    assert again["counts"]["copied"] == 0 and again["counts"]["metadata updated"] == 0
    with sqlite3.connect(manifest) as db:
        assert db.execute("SELECT count(*) FROM files WHERE digest IS NULL").fetchone() == (6,)

    (src / "docs" / "readme.txt").write_text("hello, changed\n")
    rep = files("transfer", str(src), url, *opts)
    assert rep["counts"]["copied"] == 2  # readme.txt and its hard-linked name
    os.chmod(src / "private.txt", 0o640)
    rep = files("transfer", str(src), url, *opts)
    assert rep["counts"]["copied"] == 0 and rep["counts"]["metadata updated"] == 1
    head = s3_server.client.head_object(Bucket=bucket, Key="data/private.txt")  # type: ignore[attr-defined]
    assert head["Metadata"]["rehost-mode"] == "640"

    s3_server.client.put_object(Bucket=bucket, Key="data/docs/mine.txt", Body=b"x")  # type: ignore[attr-defined]
    rep = files("transfer", str(src), url, *opts)
    assert rep["extra"] == [{"path": "docs/mine.txt", "kind": "file"}]
    rep = files("transfer", str(src), url, "--delete-extra", *opts)
    assert rep["removed"] == ["docs/mine.txt"]
    assert "data/docs/mine.txt" not in s3_server.objects(bucket)

    # S3 → local: the S3 source is not modified, by transfer or verify.
    objects_before = s3_server.objects(bucket)
    rep = files("transfer", url, str(back), *opts)
    assert rep["ok"] and rep["counts"]["copied"] == 6
    assert files("verify", url, str(back), "--content", *opts)["ok"]
    assert s3_server.objects(bucket) == objects_before
    expected = contents(src)
    del expected[b"docs/link-inside"], expected[b"empty"]  # no links, no empty dirs on S3
    assert contents(back) == expected
    assert (
        os.stat(back / "docs" / "readme.txt").st_mtime_ns
        == os.stat(src / "docs" / "readme.txt").st_mtime_ns
    )  # nanoseconds, from the object metadata


def test_s3_server_stopped_mid_run_then_rerun_completes(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(20):
        (src / "d" / f"{i:02d}.bin").write_bytes(os.urandom(20_000))
    url = f"s3://{bucket}/data"
    state = tmp_path / "state-kill"

    class Stopper:
        copied = 0

        def action(self, op: str, reason: str, rel: bytes) -> None:
            if op == "copy":
                self.copied += 1
                if self.copied == 5:
                    s3_server.stop()

    remote = RemoteOptions(s3_endpoint_url=s3_server.endpoint, retries=1, backoff=0.05)
    try:
        rep = transfer(str(src), url, TransferOptions(jobs=1, state_dir=state, remote=remote),
                       observer=Stopper())  # fmt: skip
        assert not rep.ok and rep.counts["copied"] == 5
        assert len(rep.errors) == 15
        assert all(e.message.startswith("network: ") for e in rep.errors), rep.errors
    finally:
        s3_server.start()
    rep2 = files("transfer", str(src), url, "--state", str(state), *s3_server.opts)
    assert rep2["ok"] and rep2["counts"]["copied"] == 15
    assert rep2["counts"]["unchanged"] == 5 + 2  # and the two directories
    assert files("verify", str(src), url, "--content", "--state", str(state), *s3_server.opts)["ok"]


def test_s3_source_object_rewritten_before_it_is_read(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    """Listed, then rewritten (larger) before its GETs: the reads, pinned to the listed
    ETag, fail; the directory is listed again and the new object copied whole."""
    c = s3_server.client
    old, new = os.urandom(2 << 20), os.urandom(3 << 20)
    c.put_object(Bucket=bucket, Key="data/a/1.txt", Body=b"first")  # type: ignore[attr-defined]
    c.put_object(Bucket=bucket, Key="data/a/2.bin", Body=old)  # type: ignore[attr-defined]
    back = tmp_path / "back"

    class Rewrite:
        """After the first file (the listing of a/ is taken), 2.bin is rewritten."""

        done = False

        def update(self, files: int, nbytes: int) -> None:
            if files and (back / "a" / "1.txt").exists() and not self.done:
                c.put_object(Bucket=bucket, Key="data/a/2.bin", Body=new)  # type: ignore[attr-defined]
                self.done = True

    remote = RemoteOptions(s3_endpoint_url=s3_server.endpoint)
    hook = Rewrite()
    rep = transfer(f"s3://{bucket}/data", str(back),
                   TransferOptions(jobs=1, state_dir=tmp_path / "st", remote=remote),
                   progress=hook)  # fmt: skip
    assert hook.done and rep.ok and rep.counts["copied"] == 2, rep.errors
    assert (back / "a" / "2.bin").read_bytes() == new  # not the first 2 MiB of it
    assert files("verify", f"s3://{bucket}/data", str(back), "--content", *s3_server.opts)["ok"]


def test_sftp_to_s3_and_back_to_sftp(
    sftp: SFTPServer, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src, s3=True)
    on_sftp, on_s3, again = sftp.url("a"), f"s3://{bucket}/b", sftp.url("c")
    opts = [*sftp.opts, *s3_server.opts]
    assert files("transfer", str(src), on_sftp, *opts)["ok"]
    rep = files("transfer", on_sftp, on_s3, *opts)
    assert rep["ok"] and rep["counts"]["copied"] == 6
    assert files("verify", on_sftp, on_s3, "--content", *opts)["ok"]
    assert files("transfer", on_s3, again, *opts)["ok"]
    assert files("verify", on_s3, again, "--content", *opts)["ok"]
    assert (sftp.root / "c" / "docs" / "readme.txt").read_text() == "hello\n"


def test_exclude_on_s3_and_sftp(
    sftp: SFTPServer, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    for rel in ("a.txt", "b.tmp", "cache/c", "d/cache/x", "d/y"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    c = s3_server.client
    for key in ("data/old/cache/z", "data/gone/y", "data/q.tmp"):  # the target's own
        c.put_object(Bucket=bucket, Key=key, Body=b"target's own")  # type: ignore[attr-defined]
    url, ex = f"s3://{bucket}/data", ["--exclude", "cache/", "--exclude", "*.tmp"]
    opts = [*sftp.opts, *s3_server.opts]
    rep = files("transfer", str(src), url, *ex, "--delete-extra", *opts)
    assert rep["ok"] and rep["counts"]["copied"] == 2, rep
    assert rep["removed"] == ["gone"] and rep["kept_holding_excluded"] == ["old"]
    listed = c.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]  # type: ignore[attr-defined]
    assert sorted(o["Key"] for o in listed) == [
        "data/a.txt", "data/d/y", "data/old/cache/z", "data/q.tmp"
    ]  # fmt: skip
    assert files("verify", str(src), url, *ex, *opts)["ok"]

    # An S3 source walked with patterns: what they name is not listed, read or sent.
    rep = files("transfer", url, sftp.url("e"), *ex, *opts)
    assert rep["ok"] and rep["counts"]["copied"] == 2
    assert sorted(p.name for p in (sftp.root / "e").rglob("*") if p.is_file()) == ["a.txt", "y"]
    assert files("verify", url, sftp.url("e"), *ex, "--content", *opts)["ok"]


def test_bwlimit_to_sftp_and_s3(
    sftp: SFTPServer, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):  # 2 MiB
        (src / f"f{i}.bin").write_bytes(os.urandom(512 * 1024))
    for target in (sftp.url("capped"), f"s3://{bucket}/capped"):
        started = time.monotonic()
        rep = files("transfer", str(src), target, "--bwlimit", "1M",
                    *sftp.opts, *s3_server.opts)  # fmt: skip
        elapsed = time.monotonic() - started
        assert rep["ok"] and rep["counts"]["copied"] == 4
        assert elapsed >= 1.4, (target, elapsed)  # 2 MiB at 1 MiB/s, less the credit


# ------------------------------------------------------------------- basics


def test_urls_and_lazy_imports() -> None:
    from rehost.files.location import parse_location

    loc = parse_location("sftp://backup@files.example:2222/srv/data/", "target")
    assert (loc.scheme, loc.user, loc.host, loc.port, loc.root) == (
        "sftp", "backup", "files.example", 2222, b"/srv/data"
    )  # fmt: skip
    s3 = parse_location("s3://bucket/some/prefix", "target")
    assert (s3.scheme, s3.host, s3.root) == ("s3", "bucket", b"bucket/some/prefix")
    for url, words in [
        ("sftp://u:secret@host/x", "no password in the URL"),
        ("gs://bucket/x", "gs:// is not supported"),
    ]:
        result = runner.invoke(app, ["files", "inventory", url])
        assert result.exit_code == 2 and words in result.stderr
        assert "secret" not in result.stderr
    # The SFTP and S3 libraries load only when such a URL is used.
    code = (
        "import sys, rehost.cli, rehost.files.transfer as t, tempfile, os\n"
        "d = tempfile.mkdtemp(); os.mkdir(d + '/s'); open(d + '/s/f', 'w').write('x')\n"
        "t.transfer(d + '/s', d + '/t', t.TransferOptions(state_dir=__import__('pathlib').Path(d)))\n"
        "print(sorted(m for m in ('sshfs', 's3fs', 'asyncssh', 'botocore', 'fsspec') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_s3_large_file_goes_in_parts_and_streams(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "small").mkdir(parents=True)
    (src / "large").mkdir()
    (src / "small" / "one.bin").write_bytes(b"x")
    size = 80 << 20  # 10 parts of rehost's 8 MiB
    with open(src / "large" / "big.bin", "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))

    def peak_rss(tree: str) -> int:
        """Peak memory (bytes) of `rehost files transfer` of one subtree, in its own process."""
        with open(tmp_path / "stderr", "w+b") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rehost", "files", "transfer", str(src / tree),
                 f"s3://{bucket}/{tree}", "--json", *s3_server.opts],
                stdout=subprocess.PIPE, stderr=err,
            )  # fmt: skip
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)  # (communicate() would reap it first)
            proc.returncode = os.waitstatus_to_exitcode(status)
            err.seek(0)
            assert proc.returncode == 0, err.read().decode()
        assert json.loads(out)["counts"]["copied"] == 1
        return usage.ru_maxrss * 1024

    small, large = peak_rss("small"), peak_rss("large")
    head = s3_server.client.head_object(Bucket=bucket, Key="large/big.bin")  # type: ignore[attr-defined]
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-10")  # a multipart upload of 10 parts
    # Streamed: one part (and its copy on the way out) in memory, not the file.
    assert large - small < size / 2, f"{(large - small) / 2**20:.0f} MiB more for {size >> 20} MiB"
    url = f"s3://{bucket}/large"
    verified = files("verify", str(src / "large"), url, "--content", *s3_server.opts)
    assert verified["ok"] and verified["hashes_from_manifest"] == 1
    back = tmp_path / "back"
    assert files("transfer", url, str(back), *s3_server.opts)["ok"]
    assert (back / "big.bin").read_bytes() == (src / "large" / "big.bin").read_bytes()
