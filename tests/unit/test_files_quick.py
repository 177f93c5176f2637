"""The bulk quick check of a local re-run and the worker processes of a first copy:
every change the per-entry planner would see is still seen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rehost.files import walk as walk_mod
from rehost.files.transfer import TransferOptions, transfer
from rehost.files.verify import verify


def _xattrs_supported(path: Path) -> bool:
    try:
        os.setxattr(path, "user.rehost-probe", b"1")
        os.removexattr(path, "user.rehost-probe")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("jobs", [1, 2])
def test_rerun_sees_each_change(tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walk_mod, "BATCH", 7)  # several batches per directory
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    for i in range(30):
        (src / "d" / f"f{i:02d}").write_bytes(b"x" * i)
    (src / "top.txt").write_text("top\n")
    os.link(src / "d" / "f05", src / "d" / "hard")
    opts = TransferOptions(jobs=jobs, state_dir=tmp_path / "state")
    first = transfer(str(src), str(dst), opts)
    assert first.ok and first.counts["copied"] == 31 and first.counts["linked"] == 1
    assert os.stat(dst / "d" / "hard").st_ino == os.stat(dst / "d" / "f05").st_ino
    again = transfer(str(src), str(dst), opts)
    assert again.ok and again.counts["unchanged"] == 34 and again.counts["copied"] == 0

    os.chmod(src / "d" / "f01", 0o600)  # mode
    st = os.stat(src / "d" / "f02")
    os.utime(src / "d" / "f02", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # newer source
    (dst / "d" / "f03").unlink()  # gone from the target
    (dst / "d" / "f04").write_bytes(b"y" * 5)  # target rewritten, newer: kept
    os.utime(dst / "d" / "f04", ns=(0, st.st_mtime_ns + 10**10))
    changes = 4
    if _xattrs_supported(src):
        os.setxattr(dst / "d" / "f06", "user.note", b"on the target only")
        os.setxattr(src / "d" / "f07", "user.note", b"on the source")
        changes += 2
    rep = transfer(str(src), str(dst), opts)
    assert rep.ok, rep.errors
    assert rep.counts["copied"] == 2  # f02 (newer), f03 (missing)
    assert rep.counts["metadata updated"] == changes - 3  # f01 mode, xattrs
    assert rep.skipped == {"target newer": 1}  # f04
    assert rep.counts["unchanged"] == 34 - changes
    assert (dst / "d" / "f04").read_bytes() == b"y" * 5
    os.unlink(dst / "d" / "f04")
    assert transfer(str(src), str(dst), opts).counts["copied"] == 1
    assert verify(str(src), str(dst), content=True, state_dir=tmp_path / "state").ok


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the target another group needs root")
@pytest.mark.parametrize("jobs", [1, 2])
def test_modes_and_group_exact_under_setgid_and_default_acl(tmp_path: Path, jobs: int) -> None:
    """Workers create files with their final mode (umask 0) and skip a chown that
    changes nothing; a set-group-ID directory or a default ACL must not fool that."""
    import struct

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    modes = {"a": 0o640, "b": 0o755, "c": 0o000, "d": 0o4755, "e": 0o2750, "f": 0o444}
    for name, mode in modes.items():
        (src / name).write_text(name)
        os.chmod(src / name, mode)
    (dst / "sub").mkdir(parents=True)
    os.chown(dst, 0, 65534)
    os.chmod(dst, 0o2775)  # new files would take group 65534
    # default ACL: user::rwx group::r-- other::--- (new files would lose bits)
    undefined = 0xFFFFFFFF
    acl = struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, undefined) for tag, perm in [(1, 7), (4, 4), (0x20, 0)]
    )
    os.setxattr(dst / "sub", "system.posix_acl_default", acl)
    (src / "sub").mkdir()
    for name, mode in modes.items():
        (src / "sub" / name).write_text(name)
        os.chmod(src / "sub" / name, mode)
    opts = TransferOptions(jobs=jobs, state_dir=tmp_path / "state")
    rep = transfer(str(src), str(dst), opts)
    assert rep.ok and rep.counts["copied"] == 12, rep.errors
    for rel in [*modes, *(f"sub/{n}" for n in modes)]:
        st_src, st_dst = os.stat(src / rel), os.stat(dst / rel)
        assert oct(st_dst.st_mode) == oct(st_src.st_mode), rel
        assert (st_dst.st_uid, st_dst.st_gid) == (st_src.st_uid, st_src.st_gid), rel
    assert transfer(str(src), str(dst), opts).counts["unchanged"] == 14


@pytest.mark.parametrize("jobs", [1, 2])
def test_sparse_files_keep_their_holes(tmp_path: Path, jobs: int) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    size = 8 << 20
    layouts = {
        "middle": [(1 << 20, b"a" * 4096), (6 << 20, b"b" * 8192)],
        "ends-with-data": [(size - 4096, b"c" * 4096)],
        "starts-with-data": [(0, b"d" * 3000)],
        "only-a-hole": [],
    }
    for name, pieces in layouts.items():
        with open(src / name, "wb") as f:
            f.truncate(size)
            for offset, data in pieces:
                f.seek(offset)
                f.write(data)
    if os.stat(src / "middle").st_blocks * 512 >= size:
        pytest.skip("this file system keeps no holes")
    rep = transfer(str(src), str(dst), TransferOptions(jobs=jobs, state_dir=tmp_path / "state"))
    assert rep.ok and rep.counts["copied"] == 4 and rep.bytes_copied == 4 * size, rep.errors
    for name in layouts:
        assert (dst / name).read_bytes() == (src / name).read_bytes(), name
        assert os.stat(dst / name).st_size == size
        assert os.stat(dst / name).st_blocks * 512 <= os.stat(src / name).st_blocks * 512 + 65536
    # The hashes recorded while copying are the content's: verify --content agrees.
    assert verify(str(src), str(dst), content=True, state_dir=tmp_path / "state").ok


def test_killed_workers_fail_their_files_and_the_rest_is_copied(tmp_path: Path) -> None:
    import signal

    src, dst = tmp_path / "src", tmp_path / "dst"
    for d in range(4):
        (src / f"d{d}").mkdir(parents=True)
        for i in range(200):
            (src / f"d{d}" / f"f{i:03d}").write_bytes(os.urandom(2000))

    class KillWorkers:
        """On the first file recorded, SIGKILL every child process (the workers)."""

        done = False

        def update(self, files: int, nbytes: int) -> None:
            if self.done:
                return
            self.done = True
            for children in Path("/proc/self/task").glob("*/children"):
                for pid in children.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)

    opts = TransferOptions(jobs=2, state_dir=tmp_path / "state")
    rep = transfer(str(src), str(dst), opts, progress=KillWorkers())
    failed = [e for e in rep.errors if e.message.startswith("copy worker failed")]
    assert len(failed) == len(rep.errors)  # nothing else went wrong
    assert rep.counts["copied"] + len(failed) == 800
    again = transfer(str(src), str(dst), opts)
    # A file a worker finished before it died is in place (and unchanged now).
    assert again.ok and again.counts["copied"] <= len(failed)
    assert again.counts["copied"] + again.counts["unchanged"] == 800 + 5
    assert verify(str(src), str(dst), content=True, state_dir=tmp_path / "state").ok
    assert not [p for p in dst.rglob(".rehost-tmp-*")]
