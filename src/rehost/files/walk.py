"""Streaming, depth-first walk of a local tree that never follows symbolic links.

Only one directory's names are held at a time per level (os.scandir, sorted by
name so runs are reproducible), so memory stays flat however many files there
are. Each entry is ``lstat``-ed; a directory that cannot be listed, or that
vanishes during the walk, is reported as a :class:`WalkError` and the walk goes on.

A directory's files are ``lstat``-ed in batches of :data:`BATCH` just before
they are yielded (its subdirectories one by one, when their turn comes). ``walk(root, batches=True)`` also yields each :class:`Batch`
first, so a consumer can settle many children at once from the stat results
alone (the transfer's quick check on a re-run) and name them in ``Batch.skip``:
the walk then does not make an :class:`Entry` for them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from rehost.files.entry import Entry, join
from rehost.files.exclude import NONE, Excludes

BATCH = 1024  # children lstat-ed ahead of being yielded (bounds memory per directory level)


@dataclass(frozen=True)
class Listing:
    """A directory was listed: ``names`` are its children, as the walk will yield them."""

    rel: bytes
    names: frozenset[bytes]


@dataclass(frozen=True)
class Batch:
    """The next children of directory ``rel`` with their ``lstat`` results (only those
    that could be read). Names the consumer adds to ``skip`` are not yielded."""

    rel: bytes
    stats: list[tuple[bytes, os.stat_result]]
    skip: set[bytes] = field(default_factory=set)


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
    if exc.errno == errno.ENAMETOOLONG:
        return (
            "path too long for this system (4,096 bytes, or a name over 255): not reached; "
            "move it higher in the tree or give a shorter root"
        )
    return exc.strerror or str(exc)


_Child = tuple[bytes, "os.stat_result | OSError", set[bytes]]


def walk(
    root: bytes, *, batches: bool = False, excludes: Excludes = NONE
) -> Iterator[WalkItem | Batch]:
    """Yield the root directory's entry, then for each directory its Listing and its
    children (pre-order: a directory before what it holds). Iterative, so depth is
    bounded by path length, not by Python's recursion limit. With ``batches``, each
    :class:`Batch` of children comes before them (see the module docstring). What
    ``excludes`` leaves out is not listed, yielded or entered."""
    try:
        st = os.lstat(root)
    except OSError as exc:
        yield WalkError(b"", describe(exc))
        return
    yield Entry.from_stat(b"", st)
    if not stat.S_ISDIR(st.st_mode):
        return
    stack: list[tuple[bytes, Iterator[Batch | _Child]]] = []
    listed = yield from _list(root, b"", excludes)
    if listed is not None:
        stack.append((b"", _stat_batches(root, b"", listed)))
    while stack:
        rel, children = stack[-1]
        item = next(children, None)
        if item is None:
            stack.pop()
            continue
        if isinstance(item, Batch):
            if batches:
                yield item
            continue
        name, found, skip = item
        if name in skip:
            continue
        child = rel + b"/" + name if rel else name
        if isinstance(found, OSError):
            yield WalkError(child, describe(found))
            continue
        st = found
        link = None
        if stat.S_ISLNK(st.st_mode):
            try:
                link = os.readlink(join(root, child))
            except OSError as exc:
                yield WalkError(child, describe(exc))
                continue
        yield Entry.from_stat(child, st, link)
        if stat.S_ISDIR(st.st_mode):
            listed = yield from _list(root, child, excludes)
            if listed is not None:
                stack.append((child, _stat_batches(root, child, listed)))


def _stat_batches(
    root: bytes, rel: bytes, names: list[tuple[bytes, bool]]
) -> Iterator[Batch | _Child]:
    """The children in batches: non-directories ``lstat``-ed ahead, directories (known
    from the listing) only when their turn comes, after their elder siblings' trees."""
    prefix = join(root, rel) + b"/"
    lstat = os.lstat
    for start in range(0, len(names), BATCH):
        children: list[tuple[bytes, os.stat_result | OSError | None]] = []
        for name, is_dir in names[start : start + BATCH]:
            if is_dir:
                children.append((name, None))
                continue
            try:
                children.append((name, lstat(prefix + name)))
            except OSError as exc:
                children.append((name, exc))
        batch = Batch(rel, [c for c in children if isinstance(c[1], os.stat_result)])  # type: ignore[misc]
        yield batch
        for name, st in children:
            if st is None:
                try:
                    st = lstat(prefix + name)
                except OSError as exc:
                    st = exc
            yield name, st, batch.skip


def _list(
    root: bytes, rel: bytes, excludes: Excludes
) -> Generator[WalkItem, None, list[tuple[bytes, bool]] | None]:
    """List a directory: (name, is a directory), sorted by name, without the excluded."""
    try:
        with os.scandir(join(root, rel)) as it:
            names = excludes.keep(
                rel, sorted((d.name, d.is_dir(follow_symlinks=False)) for d in it)
            )
    except OSError as exc:
        yield WalkError(rel, f"cannot list directory: {describe(exc)}")
        return None
    yield Listing(rel, frozenset(name for name, _ in names))
    return names
