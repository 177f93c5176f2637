"""Verify that a target holds what the source holds: metadata, or content too.

Every difference is reported, one per path and aspect. Names only on the target
are listed as ``extra`` but are not differences: a transfer keeps them by default.
On a case-insensitive target, names that differ only in case from another in the
same source directory (all but the first in byte order, which transfer sends
alone) are listed as ``collisions``, not as differences, as is what lies under them.
With ``--content`` both sides are hashed; a target hash recorded in the manifest
is used instead of reading the target while the file's size, mtime, ctime and
inode are still the recorded ones (any write changes the ctime).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehost.files import local
from rehost.files.entry import (
    DIR,
    FILE,
    SPECIAL_KINDS,
    SYMLINK,
    Entry,
    display,
    parent,
)
from rehost.files.exclude import Excludes
from rehost.files.location import LOCAL, RemoteOptions
from rehost.files.manifest import Manifest, default_state_dir
from rehost.files.owners import OwnerMap
from rehost.files.plan import (
    Wanted,
    case_collisions,
    fold,
    is_temp_name,
    metadata_differences,
)
from rehost.files.spill import SpillMap
from rehost.files.transfer import fit, resolve_pair, target_entry
from rehost.files.walk import Listing, WalkError, describe

INSIDE_COLLISION = "inside a directory whose name differs only in case"


@dataclass
class Difference:
    path: bytes
    what: str  # missing, kind, size, content, link, mtime, mode, owner, xattrs, hard link
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"path": display(self.path), "what": self.what, "detail": self.detail}


@dataclass
class VerifyReport:
    source: str
    target: str
    content: bool
    checked: Counter[str] = field(default_factory=Counter)
    differences: list[Difference] = field(default_factory=list)
    extra: list[bytes] = field(default_factory=list)
    skipped: list[tuple[bytes, str]] = field(default_factory=list)
    collisions: list[tuple[bytes, bytes]] = field(default_factory=list)  # (not sent, kept)
    errors: list[tuple[bytes, str]] = field(default_factory=list)
    hashes_from_manifest: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.differences and not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "content": self.content,
            "ok": self.ok,
            "checked": dict(self.checked),
            "differences": [d.to_json() for d in self.differences],
            "extra": [display(p) for p in self.extra],
            "skipped": [{"path": display(p), "reason": r} for p, r in self.skipped],
            "collisions": [{"path": display(p), "with": display(w)} for p, w in self.collisions],
            "errors": [{"path": display(p), "error": e} for p, e in self.errors],
            "hashes_from_manifest": self.hashes_from_manifest,
            "seconds": round(self.seconds, 3),
        }


def _detail(what: str, src: Entry, dst: Entry) -> str:
    if what == "mtime":
        return f"source {src.mtime_ns} ns, target {dst.mtime_ns} ns"
    if what == "mode":
        return f"source {src.mode:04o}, target {dst.mode:04o}"
    if what == "owner":
        return f"source {src.uid}:{src.gid}, target {dst.uid}:{dst.gid}"
    if what == "xattrs":
        keys = sorted((src.xattrs or {}).keys() ^ (dst.xattrs or {}).keys()) or sorted(
            k for k in (src.xattrs or {}) if (src.xattrs or {})[k] != (dst.xattrs or {}).get(k)
        )
        return "differ: " + ", ".join(keys)
    return ""


def verify(
    src_url: str,
    dst_url: str,
    *,
    content: bool = False,
    owners: OwnerMap | None = None,
    state_dir: Path | None = None,
    xattrs: bool = True,
    remote: RemoteOptions | None = None,
    case_insensitive: bool | None = None,
    exclude: tuple[str, ...] = (),
) -> VerifyReport:
    """Compare the trees (read only on both sides) and list every difference.

    ``case_insensitive``: as for transfer; None = probe a local target (read only),
    take SFTP and S3 as case-sensitive. ``exclude``: --exclude patterns, left out on
    both sides as transfer leaves them out."""
    started = time.monotonic()
    src_loc, dst_loc = resolve_pair(src_url, dst_url)
    owners = owners or OwnerMap()
    report = VerifyReport(src_loc.label, dst_loc.label, content)
    state = state_dir or default_state_dir(dst_loc.state_key)
    manifest = Manifest.open(state, dst_loc.state_key, readonly=True)
    first_names: SpillMap[tuple[int, int], tuple[bytes, int]] = SpillMap()  # → (rel, target ino)

    def differ(rel: bytes, what: str, detail: str = "") -> None:
        report.differences.append(Difference(rel, what, detail))

    excludes = Excludes(exclude)
    source = local.open_tree(src_loc, remote, excludes)
    target = local.open_tree(dst_loc, remote, excludes)
    target.use_manifest(manifest.path)
    source.use_manifest(default_state_dir(src_loc.state_key) / "manifest.sqlite")
    caps, both_local = target.capabilities, source.capabilities is target.capabilities is LOCAL
    dirs_comparable = source.capabilities.directories and caps.directories
    if case_insensitive is None:
        case_insensitive = isinstance(target, local.LocalTree) and local.case_insensitive(
            target.root, write=False
        )
    collide: dict[bytes, bytes] = {}  # rel not sent → the name sent in its place
    pruned: set[bytes] = set()  # directories not sent: their contents are not compared
    try:
        for item in source.walk():
            if isinstance(item, WalkError):
                report.errors.append((item.rel, item.message))
                continue
            if isinstance(item, Listing):
                if item.rel not in pruned:
                    _extras(target, item, report, collide if case_insensitive else None)
                continue
            src = item
            if src.rel and parent(src.rel) in pruned:
                report.skipped.append((src.rel, INSIDE_COLLISION))
                if src.kind == DIR:
                    pruned.add(src.rel)
                continue
            if collide and src.rel in collide:
                report.collisions.append((src.rel, collide.pop(src.rel)))
                if src.kind == DIR:
                    pruned.add(src.rel)
                continue
            if src.kind in SPECIAL_KINDS:
                report.skipped.append((src.rel, f"special file ({src.kind})"))
                continue
            if src.kind == SYMLINK and not caps.symlinks:
                report.skipped.append((src.rel, f"symbolic link: {caps.name} holds no links"))
                continue
            src = fit(src, caps)
            if src.kind == DIR and not caps.directories:
                report.checked[DIR] += 1  # S3: a prefix, present only with keys under it
                continue
            report.checked[src.kind] += 1
            try:
                dst = target_entry(target, caps, src, xattrs=False)
                if dst is None:
                    differ(src.rel, "missing", f"{src.kind} not on the target")
                    continue
                if dst.kind != src.kind:
                    differ(src.rel, "kind", f"source {src.kind}, target {dst.kind}")
                    continue
                if xattrs:
                    src, dst = source.with_xattrs(src), target.with_xattrs(dst)
                if src.kind == SYMLINK and src.link != dst.link:
                    differ(src.rel, "link", f"source → {display(src.link or b'')}, "
                                            f"target → {display(dst.link or b'')}")  # fmt: skip
                if src.kind == FILE and src.size != dst.size:
                    differ(src.rel, "size", f"source {src.size} bytes, target {dst.size} bytes")
                elif src.kind == FILE and content:
                    recorded = manifest.hash_for(dst)
                    report.hashes_from_manifest += recorded is not None
                    dst_hash = recorded or target.hash(src.rel)
                    if source.hash(src.rel) != dst_hash:
                        differ(src.rel, "content", f"{local.DIGEST.upper()} hash differs")
                if both_local:
                    wanted, _ = owners.wanted(src.uid, src.gid, xattrs=xattrs)
                else:  # owners and xattrs are compared between local trees only
                    wanted = Wanted(xattrs=False)
                if src.kind != DIR or dirs_comparable:
                    for what in metadata_differences(src, dst, wanted, mtime=True):
                        differ(src.rel, what, _detail(what, src, dst))
                if src.kind == FILE and src.nlink > 1 and caps.hardlinks:
                    key = (src.dev, src.ino)
                    first = first_names.get(key)  # one look-up: the map may be on disk
                    if first is None:
                        first_names[key] = (src.rel, dst.ino)
                    elif first[1] != dst.ino or not dst.ino:  # 0: not known
                        differ(src.rel, "hard link",
                               f"not linked to {display(first[0])} on the target")  # fmt: skip
            except OSError as exc:
                report.errors.append((src.rel, describe(exc)))
    finally:
        manifest.close()
        first_names.close()
        source.close()
        target.close()
    report.seconds = time.monotonic() - started
    return report


def _extras(
    target: local.LocalTree | Any,
    listing: Listing,
    report: VerifyReport,
    collide: dict[bytes, bytes] | None,
) -> None:
    """Names only on the target; with ``collide`` (a case-insensitive target), also
    record this directory's case-only duplicates and match names by folded case."""
    folded: set[str] = set()
    if collide is not None:
        at = listing.rel + b"/" if listing.rel else b""
        for name, kept in case_collisions(listing.names).items():
            collide[at + name] = at + kept
        folded = {fold(name) for name in listing.names}
    try:
        names = target.excludes.keep(listing.rel, target.names(listing.rel) or [])
    except OSError as exc:
        report.errors.append((listing.rel, f"cannot list target directory: {describe(exc)}"))
        return
    for name, _is_dir in names:
        if name in listing.names or is_temp_name(name) or (folded and fold(name) in folded):
            continue
        report.extra.append(listing.rel + b"/" + name if listing.rel else name)
