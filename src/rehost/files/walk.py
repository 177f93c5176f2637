"""Streaming, depth-first walk of a local tree that never follows symbolic links.

Only one directory's names are held at a time per level (os.scandir, sorted by
name so runs are reproducible), so memory stays flat however many files there
are. Each entry is ``lstat``-ed; a directory that cannot be listed, or that
vanishes during the walk, is reported as a :class:`WalkError` and the walk goes on.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from rehost.files.entry import Entry, join


@dataclass(frozen=True)
class Listing:
    """A directory was listed: ``names`` are its children, as the walk will yield them."""

    rel: bytes
    names: frozenset[bytes]


@dataclass(frozen=True)
class WalkError:
    """An entry could not be read: what, and why, in words."""

    rel: bytes
    message: str


WalkItem = Entry | Listing | WalkError


def describe(exc: OSError) -> str:
    """An OSError as a short reason: 'vanished', 'permission denied' …"""
    if isinstance(exc, FileNotFoundError):
        return "vanished (no longer exists)"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link where a file was listed
        return "replaced by a symbolic link during the run"
    return exc.strerror or str(exc)


def walk(root: bytes) -> Iterator[WalkItem]:
    """Yield the root directory's entry, then for each directory its Listing and its
    children (pre-order: a directory before what it holds). Iterative, so depth is
    bounded by path length, not by Python's recursion limit."""
    try:
        st = os.lstat(root)
    except OSError as exc:
        yield WalkError(b"", describe(exc))
        return
    yield Entry.from_stat(b"", st)
    if not stat.S_ISDIR(st.st_mode):
        return
    stack: list[tuple[bytes, Iterator[bytes]]] = []
    listed = yield from _list(root, b"")
    if listed is not None:
        stack.append((b"", iter(listed)))
    while stack:
        rel, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        child = rel + b"/" + name if rel else name
        child_path = join(root, child)
        try:
            st = os.lstat(child_path)
            link = os.readlink(child_path) if stat.S_ISLNK(st.st_mode) else None
        except OSError as exc:
            yield WalkError(child, describe(exc))
            continue
        yield Entry.from_stat(child, st, link)
        if stat.S_ISDIR(st.st_mode):
            listed = yield from _list(root, child)
            if listed is not None:
                stack.append((child, iter(listed)))


def _list(root: bytes, rel: bytes) -> Generator[WalkItem, None, list[bytes] | None]:
    try:
        with os.scandir(join(root, rel)) as it:
            names = sorted(d.name for d in it)
    except OSError as exc:
        yield WalkError(rel, f"cannot list directory: {describe(exc)}")
        return None
    yield Listing(rel, frozenset(names))
    return names
