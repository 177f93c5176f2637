"""SFTP hard links: the link count in a listing's long name, the stand-in inode."""

from __future__ import annotations

from rehost.files.entry import FILE, Entry
from rehost.files.plan import Op, decide_link
from rehost.files.remote import link_id, listed_nlink

T0 = 1_700_000_000_000_000_000


def entry(rel: bytes = b"a", **kw: object) -> Entry:
    base: dict[str, object] = dict(rel=rel, kind=FILE, size=10, mtime_ns=T0, mode=0o644,
                                   uid=1000, gid=1000)  # fmt: skip
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def test_link_count_from_long_names() -> None:
    # OpenSSH's sftp-server ("%s %3u %-*s …") and asyncssh's server (ls -l style).
    assert listed_nlink(b"-rw-r--r--    3 alice    staff        10 Nov 14  2023 a") == 3
    assert listed_nlink("-rw-r--r--   12 1000     1000         10 Nov 14 10:00 a b") == 12
    assert listed_nlink(b"") == listed_nlink(None) == 0
    assert listed_nlink(b"a") == 0
    assert listed_nlink(b"name 2 with spaces") == 0  # a server that sends the name alone


def test_names_of_one_file_share_the_stand_in_inode() -> None:
    a, b = entry(b"a"), entry(b"dir/b")
    assert link_id(a, 1) == 0  # one name: nothing to tell apart
    assert link_id(a, 2) == link_id(b, 3) != 0  # the link count is not part of it
    for other in (entry(size=11), entry(mtime_ns=T0 + 10**9), entry(mode=0o600),
                  entry(uid=0), entry(gid=0)):  # fmt: skip
        assert link_id(other, 2) != link_id(a, 2)


def test_unknown_inode_is_never_the_same_file() -> None:
    src = entry(nlink=2)
    assert decide_link(src, entry(ino=0), 0).op == Op.LINK
    assert decide_link(src, entry(ino=5), 5).op == Op.UNCHANGED
