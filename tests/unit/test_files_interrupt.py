"""A stop request ends a transfer cleanly: nothing half-written, the next run finishes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rehost.files import interrupt
from rehost.files.transfer import TransferOptions, transfer


class StopAfter:
    """A progress sink that asks for a stop once ``n`` files are recorded."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.files = 0

    def update(self, files: int, nbytes: int) -> None:
        self.files += files
        if self.files >= self.n:
            interrupt.request()


@pytest.mark.parametrize("jobs", [1, 3])
def test_stop_request_leaves_only_complete_files(tmp_path: Path, jobs: int) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(40):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(200_000 + i))
    opts = TransferOptions(jobs=jobs, state_dir=tmp_path / "state")
    interrupt.clear()
    try:
        with pytest.raises(interrupt.Interrupted):
            transfer(str(src), str(dst), opts, progress=StopAfter(5))
    finally:
        interrupt.clear()
    placed = sorted(p.name for p in dst.iterdir())
    assert not [n for n in placed if n.startswith(".rehost-tmp-")]
    assert 5 <= len(placed) < 40
    for name in placed:
        assert (dst / name).read_bytes() == (src / name).read_bytes()
    rep = transfer(str(src), str(dst), opts)
    assert rep.ok and rep.counts["copied"] == 40 - len(placed)
    assert sorted(p.name for p in dst.iterdir()) == sorted(p.name for p in src.iterdir())


def test_stop_inside_a_copy_removes_its_temporary_file(tmp_path: Path) -> None:
    from rehost.files import local
    from rehost.files.plan import Wanted

    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * local.BUFFER_SIZE))
    (tmp_path / "out").mkdir()
    interrupt.request()
    try:
        with pytest.raises(interrupt.Interrupted):
            local.copy_file(bytes(tmp_path), bytes(tmp_path / "out"), b"big.bin", Wanted())
    finally:
        interrupt.clear()
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("jobs", [1, 3])
def test_stop_after_the_last_copy_removes_nothing(tmp_path: Path, jobs: int) -> None:
    """Ctrl-C once every copy is done still ends the run before --delete-extra acts."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}.txt").write_text(f"file {i}\n")
    dst.mkdir()
    (dst / "only-on-target.txt").write_text("keep me unless asked\n")
    opts = TransferOptions(jobs=jobs, delete_extra=True, state_dir=tmp_path / "state")
    interrupt.clear()
    try:
        with pytest.raises(interrupt.Interrupted):
            transfer(str(src), str(dst), opts, progress=StopAfter(10))
    finally:
        interrupt.clear()
    assert (dst / "only-on-target.txt").read_text() == "keep me unless asked\n"
    rep = transfer(str(src), str(dst), opts)  # the next run finishes, removal included
    assert rep.ok and not (dst / "only-on-target.txt").exists()
