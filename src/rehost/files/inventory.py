"""Inventory of a tree: what is there, how big, whose, and what will need care."""

from __future__ import annotations

import heapq
import os
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rehost.errors import RehostError
from rehost.files.entry import DIR, FILE, SPECIAL_KINDS, SYMLINK, Entry, display, join, parent
from rehost.files.exclude import Excludes
from rehost.files.location import RemoteOptions, parse_location
from rehost.files.owners import group_name, user_name
from rehost.files.spill import SpillMap
from rehost.files.walk import WalkError, walk

LARGEST = 10
TOP_EXTENSIONS = 20


@dataclass
class Totals:
    files: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size


@dataclass
class Inventory:
    root: str
    counts: Counter[str] = field(default_factory=Counter)
    total_bytes: int = 0
    largest: list[tuple[int, bytes]] = field(default_factory=list)  # a min-heap while walking
    owners: dict[str, Totals] = field(default_factory=dict)
    groups: dict[str, Totals] = field(default_factory=dict)
    extensions: dict[str, Totals] = field(default_factory=dict)
    unreadable: list[tuple[bytes, str]] = field(default_factory=list)
    links_leaving_tree: list[tuple[bytes, bytes]] = field(default_factory=list)
    hardlink_groups: int = 0
    hardlink_names: int = 0
    special: list[tuple[bytes, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def totals(d: dict[str, Totals], limit: int | None = None) -> list[dict[str, Any]]:
            rows = sorted(d.items(), key=lambda kv: (-kv[1].bytes, kv[0]))[:limit]
            return [{"name": k, "files": v.files, "bytes": v.bytes} for k, v in rows]

        return {
            "root": self.root,
            "counts": {k: self.counts[k] for k in (FILE, DIR, SYMLINK, *SPECIAL_KINDS)},
            "bytes": self.total_bytes,
            "largest": [
                {"path": display(p), "bytes": s} for s, p in sorted(self.largest, reverse=True)
            ],
            "owners": totals(self.owners),
            "groups": totals(self.groups),
            "extensions": totals(self.extensions, TOP_EXTENSIONS),
            "extensions_total": len(self.extensions),
            "unreadable": [{"path": display(p), "reason": r} for p, r in self.unreadable],
            "links_leaving_tree": [
                {"path": display(p), "target": display(t)} for p, t in self.links_leaving_tree
            ],
            "hardlinks": {"groups": self.hardlink_groups, "names": self.hardlink_names},
            "special": [{"path": display(p), "kind": k} for p, k in self.special],
        }


def extension(name: bytes) -> str:
    stem, dot, ext = name.rpartition(b".")
    if not dot or not stem or len(ext) > 16:
        return "(none)"
    return "." + ext.decode("utf-8", "backslashreplace").lower()


def leaves_tree(rel: bytes, link: bytes) -> bool:
    """Whether a link's target is absolute or climbs out of the tree."""
    if link.startswith(b"/"):
        return True
    resolved = posixpath.normpath(posixpath.join(parent(rel), link))
    return resolved == b".." or resolved.startswith(b"../")


def inventory(
    url: str, remote: RemoteOptions | None = None, exclude: tuple[str, ...] = ()
) -> Inventory:
    """Walk the tree at ``url`` (read only) and summarise it, without what ``exclude``
    (--exclude patterns) leaves out."""
    loc = parse_location(url, "path")
    inv = Inventory(loc.label)
    seen_inodes: SpillMap[tuple[int, int], bool] = SpillMap()  # flat with millions of links
    excludes = Excludes(exclude)
    if loc.is_local:
        items = walk(loc.root, excludes=excludes)
    else:
        from rehost.files.remote import open_tree

        items = open_tree(loc, remote, excludes).walk()
    for item in items:
        if isinstance(item, WalkError):
            if item.rel == b"":
                raise RehostError(f"{url!r}: {item.message}; give a directory that exists.")
            inv.unreadable.append((item.rel, item.message))
            continue
        if not isinstance(item, Entry):
            continue
        inv.counts[item.kind] += 1
        if item.kind in SPECIAL_KINDS:
            inv.special.append((item.rel, item.kind))
        elif item.kind == SYMLINK and item.link is not None and leaves_tree(item.rel, item.link):
            inv.links_leaving_tree.append((item.rel, item.link))
        if item.kind != FILE:
            continue
        if item.nlink > 1:
            key = (item.dev, item.ino)
            if key in seen_inodes:
                inv.hardlink_names += 1
                continue  # its bytes were counted under its first name
            seen_inodes[key] = True
            inv.hardlink_groups += 1
        inv.total_bytes += item.size
        entry = (item.size, item.rel)
        if len(inv.largest) < LARGEST:
            heapq.heappush(inv.largest, entry)
        elif entry > inv.largest[0]:
            heapq.heapreplace(inv.largest, entry)
        inv.owners.setdefault(user_name(item.uid), Totals()).add(item.size)
        inv.groups.setdefault(group_name(item.gid), Totals()).add(item.size)
        inv.extensions.setdefault(extension(item.name), Totals()).add(item.size)
        if loc.is_local and not os.access(join(loc.root, item.rel), os.R_OK):
            inv.unreadable.append((item.rel, "permission denied"))
    seen_inodes.close()
    return inv
