"""The transfer planner: source entry × target entry → what to do. Pure: no I/O.

The executor gathers the facts (both entries, the owner the target should have,
whether contents are equal when ``--checksum`` asked for it) and this module
decides. Rules, in order:

* FIFOs, sockets and devices are skipped (reason: the kind).
* A directory never replaces a non-directory or the reverse: skipped, because
  either way something on the target would be destroyed.
* Same content (same kind and link target; for files same size and, without
  ``--checksum``, same mtime) → ``unchanged``, or ``metadata`` when mode, owner,
  xattrs or mtime differ.
* Different content → ``copy`` when the target is missing, older than the source,
  or ``overwrite`` is set; otherwise skipped: the target is newer (or as new), and
  a newer file on the target is someone's work.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rehost.files.entry import DIR, FILE, SPECIAL_KINDS, SYMLINK, Entry

TEMP_PREFIX = b".rehost-tmp-"
TEMP_SUFFIX = b".part"


class Op(StrEnum):
    COPY = "copy"  # write content (new or replacing), then metadata
    MKDIR = "mkdir"
    LINK = "link"  # a hard link to a file already placed in this run
    METADATA = "metadata"  # content is right; fix mode / owner / xattrs / times
    UNCHANGED = "unchanged"
    SKIP = "skip"


@dataclass(frozen=True)
class Action:
    op: Op
    reason: str = ""


@dataclass(frozen=True)
class Wanted:
    """Target metadata that depends on options: owner after mapping (None = leave as is),
    and whether xattrs are compared."""

    uid: int | None = None
    gid: int | None = None
    xattrs: bool = True


KEEP_OWNER = Wanted()  # owner not compared, xattrs compared


def metadata_differences(
    src: Entry, dst: Entry, wanted: Wanted, *, mtime: bool = True
) -> list[str]:
    """Names of the pieces of metadata in which ``dst`` is not what ``src`` asks for."""
    diffs = []
    if mtime and src.mtime_ns != dst.mtime_ns:
        diffs.append("mtime")
    if src.kind != SYMLINK and src.mode != dst.mode:
        diffs.append("mode")
    if (wanted.uid is not None and wanted.uid != dst.uid) or (
        wanted.gid is not None and wanted.gid != dst.gid
    ):
        diffs.append("owner")
    if (
        wanted.xattrs
        and src.kind != SYMLINK
        and src.xattrs is not None
        and dst.xattrs is not None
        and src.xattrs != dst.xattrs
    ):
        diffs.append("xattrs")
    return diffs


def same_content(src: Entry, dst: Entry, content_equal: bool | None = None) -> bool:
    """Whether ``dst`` holds what ``src`` holds: by size and mtime, or by hash when known."""
    if src.kind != dst.kind:
        return False
    if src.kind == SYMLINK:
        return src.link == dst.link
    if src.kind == DIR:
        return True
    if src.size != dst.size:
        return False
    if content_equal is not None:
        return content_equal
    return src.mtime_ns == dst.mtime_ns


def decide(
    src: Entry,
    dst: Entry | None,
    *,
    wanted: Wanted = KEEP_OWNER,
    overwrite: bool = False,
    content_equal: bool | None = None,
) -> Action:
    """What to do so that ``dst`` becomes ``src`` (see the module docstring for the rules)."""
    if src.kind in SPECIAL_KINDS:
        return Action(Op.SKIP, f"special file ({src.kind})")
    if src.kind == DIR:
        if dst is None:
            return Action(Op.MKDIR, "new")
        if dst.kind != DIR:
            return Action(Op.SKIP, f"target is a {dst.kind}, not a directory")
        # Directory times are set after their contents, so mtime is not compared here.
        diffs = metadata_differences(src, dst, wanted, mtime=False)
        return Action(Op.METADATA, ", ".join(diffs)) if diffs else Action(Op.UNCHANGED)
    if dst is None:
        return Action(Op.COPY, "new")
    if dst.kind == DIR:
        return Action(Op.SKIP, "target is a directory")
    if dst.kind not in (FILE, SYMLINK):
        return Action(Op.SKIP, f"target is a {dst.kind}")
    if same_content(src, dst, content_equal):
        diffs = metadata_differences(src, dst, wanted)
        return Action(Op.METADATA, ", ".join(diffs)) if diffs else Action(Op.UNCHANGED)
    if overwrite:
        return Action(Op.COPY, "overwrite")
    if dst.mtime_ns < src.mtime_ns:
        return Action(Op.COPY, "changed")
    if dst.mtime_ns > src.mtime_ns:
        return Action(Op.SKIP, "target newer")
    return Action(Op.SKIP, "target differs, same mtime")


def decide_link(
    src: Entry,
    dst: Entry | None,
    first_dst_ino: int | None,
    *,
    wanted: Wanted = KEEP_OWNER,
    overwrite: bool = False,
) -> Action:
    """A further name of a hard-linked source file whose first name was placed as
    ``first_dst_ino`` (None when that failed or was skipped: then copy it on its own).
    An inode number 0 is unknown (an SFTP file whose link count was not listed): never
    taken for the same file, so such a name is linked again."""
    if first_dst_ino is None:
        return decide(src, dst, wanted=wanted, overwrite=overwrite)
    if dst is not None and dst.kind == FILE and dst.ino and dst.ino == first_dst_ino:
        return Action(Op.UNCHANGED)
    action = decide(src, dst, wanted=wanted, overwrite=overwrite)
    if action.op in (Op.COPY, Op.METADATA, Op.UNCHANGED):
        return Action(Op.LINK, "hard link")
    return action


def is_temp_name(name: bytes) -> bool:
    """A temporary file left on the target by an interrupted rehost run."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


CASE_COLLISION = "name differs only in case from another (case-insensitive target)"


def fold(name: bytes) -> str:
    """A name as a case-insensitive file system compares it: case folded and
    Unicode-normalised (macOS also equates composed and decomposed accents)."""
    return unicodedata.normalize("NFC", name.decode("utf-8", "surrogateescape").casefold())


def case_collisions(names: Iterable[bytes]) -> dict[bytes, bytes]:
    """Names of one directory that a case-insensitive target would hold as one: each
    name after the first (in byte order) of such a group → that first name, which
    alone is transferred. Empty when all names differ in more than case."""
    first: dict[str, bytes] = {}
    losers: dict[bytes, bytes] = {}
    for name in sorted(names):
        winner = first.setdefault(fold(name), name)
        if winner != name:
            losers[name] = winner
    return losers
