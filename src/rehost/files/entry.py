"""One entry of a file tree, as rehost sees it: kind, size, times, mode, owner, link.

Paths inside a tree are relative ``bytes`` (``b""`` is the root), so names that
are not valid UTF-8 survive unchanged; ``display()`` turns one into text for
people and JSON.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

FILE = "file"
DIR = "dir"
SYMLINK = "symlink"
FIFO = "fifo"
SOCKET = "socket"
CHARDEV = "char device"
BLOCKDEV = "block device"
SPECIAL_KINDS = (FIFO, SOCKET, CHARDEV, BLOCKDEV)
_KINDS = {
    stat.S_IFREG: FILE,
    stat.S_IFDIR: DIR,
    stat.S_IFLNK: SYMLINK,
    stat.S_IFIFO: FIFO,
    stat.S_IFSOCK: SOCKET,
    stat.S_IFCHR: CHARDEV,
    stat.S_IFBLK: BLOCKDEV,
}


def kind_of(mode: int) -> str:
    """The kind of entry an ``st_mode`` describes."""
    return _KINDS[stat.S_IFMT(mode)]


@dataclass(frozen=True, slots=True)
class Entry:
    """What rehost compares and preserves about one path (from ``lstat``)."""

    rel: bytes
    kind: str
    size: int
    mtime_ns: int
    mode: int  # permission bits only (S_IMODE)
    uid: int
    gid: int
    nlink: int = 1
    dev: int = 0
    ino: int = 0
    ctime_ns: int = 0
    atime_ns: int = field(default=0, compare=False)
    link: bytes | None = None  # a symlink's target, verbatim
    xattrs: dict[str, bytes] | None = field(default=None, compare=False)

    @classmethod
    def from_stat(cls, rel: bytes, st: os.stat_result, link: bytes | None = None) -> Entry:
        return cls(
            rel=rel,
            kind=kind_of(st.st_mode),
            size=st.st_size if stat.S_IFMT(st.st_mode) == stat.S_IFREG else 0,
            mtime_ns=st.st_mtime_ns,
            mode=stat.S_IMODE(st.st_mode),
            uid=st.st_uid,
            gid=st.st_gid,
            nlink=st.st_nlink,
            dev=st.st_dev,
            ino=st.st_ino,
            ctime_ns=st.st_ctime_ns,
            atime_ns=st.st_atime_ns,
            link=link,
        )

    def with_xattrs(self, xattrs: dict[str, bytes] | None) -> Entry:
        # Spelled out: dataclasses.replace costs several times more, once or twice per file.
        return Entry(
            self.rel, self.kind, self.size, self.mtime_ns, self.mode, self.uid, self.gid,
            self.nlink, self.dev, self.ino, self.ctime_ns, self.atime_ns, self.link, xattrs,
        )  # fmt: skip

    def __reduce__(self) -> tuple[type[Entry], tuple[object, ...]]:
        # Pickled once per file copied by a worker process; the dataclass default
        # (fields() and setattr per field) costs several times more.
        return Entry, (
            self.rel, self.kind, self.size, self.mtime_ns, self.mode, self.uid, self.gid,
            self.nlink, self.dev, self.ino, self.ctime_ns, self.atime_ns, self.link, self.xattrs,
        )  # fmt: skip

    @property
    def name(self) -> bytes:
        return self.rel.rsplit(b"/", 1)[-1]


def lstat_entry(root: bytes, rel: bytes) -> Entry | None:
    """The entry at ``root/rel`` without following links, or None when it does not exist."""
    path = join(root, rel)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return Entry.from_stat(rel, st, link)


def read_xattrs(path: bytes | int) -> dict[str, bytes]:
    """Extended attributes of a path (links not followed) or open file; {} when unsupported.

    POSIX ACLs are the ``system.posix_acl_access`` / ``system.posix_acl_default``
    attributes, so they come along with the rest.
    """
    follow = isinstance(path, int)
    try:
        names = os.listxattr(path, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
            return {}
        raise
    values: dict[str, bytes] = {}
    for name in names:
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=follow)
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM, errno.EACCES):
                raise
    return values


def join(root: bytes, rel: bytes) -> bytes:
    return root + b"/" + rel if rel else root


def parent(rel: bytes) -> bytes:
    return rel.rsplit(b"/", 1)[0] if b"/" in rel else b""


def display(rel: bytes) -> str:
    """A path for people and JSON: UTF-8 where valid, ``\\xNN`` for other bytes,
    control characters (newlines …) escaped, so one path is one line."""
    text = rel.decode("utf-8", "backslashreplace") if rel else "."
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        text = "".join(
            c if ord(c) >= 32 and ord(c) != 127 else c.encode("unicode_escape").decode()
            for c in text
        )
    return text
