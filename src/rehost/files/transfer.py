"""Transfer a tree: walk the source, plan each entry against the target, copy.

The walk streams (see walk.py); files are handed to a pool of ``jobs`` threads
through a bounded window, so listing and copying overlap and memory stays flat.
Held in memory for the whole run: the directories (their times are set after
their contents, deepest first), the first name of each hard-linked file
(nlink > 1), and the names found only on the target (``extra``).

All I/O goes through two trees (``local.LocalTree``: walk, entry, names, hash,
copy_in, symlink, hardlink, set_metadata, remove …); the decisions are the pure
planner's (plan.py). An SFTP or S3 store is added by giving it those methods and
its capabilities, not by touching this module's logic.

Nothing on the source is ever opened for writing, renamed, or given new times:
source files are opened ``O_RDONLY | O_NOFOLLOW`` (with ``O_NOATIME`` when
allowed), everything else on the source is ``lstat``/``readlink``/``listxattr``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import sqlite3
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from rehost.errors import RehostError, UsageError
from rehost.files import interrupt, local, throttle
from rehost.files.entry import DIR, FILE, SYMLINK, Entry, display, parent
from rehost.files.exclude import NONE, Excludes
from rehost.files.interrupt import Interrupted
from rehost.files.location import Capabilities, Location, RemoteOptions, parse_location
from rehost.files.manifest import Manifest, Record, default_state_dir
from rehost.files.owners import OwnerMap
from rehost.files.plan import (
    CASE_COLLISION,
    Action,
    Op,
    Wanted,
    case_collisions,
    decide,
    decide_link,
    fold,
    is_temp_name,
)
from rehost.files.plan import metadata_differences as _meta_diffs
from rehost.files.spill import SpillList, SpillMap
from rehost.files.walk import Batch, Listing, WalkError, describe, walk
from rehost.files.workers import ProcessCopies, copy_error, worker_count

WINDOW_PER_JOB = 8  # files queued per worker: enough to keep them busy, bounded


class TransferProgress(Protocol):
    def update(self, files: int, nbytes: int) -> None: ...


class _Silent:
    def update(self, files: int, nbytes: int) -> None:
        pass


class Observer(Protocol):
    """Told about each decision as it is made (on the calling thread)."""

    def action(self, op: str, reason: str, rel: bytes) -> None: ...


@dataclass(frozen=True)
class TransferOptions:
    checksum: bool = False
    owners: OwnerMap = field(default_factory=OwnerMap)
    jobs: int = 4
    delete_extra: bool = False
    overwrite: bool = False
    preview: bool = False
    state_dir: Path | None = None
    xattrs: bool = True
    remote: RemoteOptions = field(default_factory=RemoteOptions)
    # Names that differ only in case are one name on the target: None = find out
    # (local targets are probed; SFTP and S3 are taken as case-sensitive).
    case_insensitive: bool | None = None
    # --exclude patterns (rehost.files.exclude): left out on both sides.
    exclude: tuple[str, ...] = ()
    # --bwlimit: bytes per second over all copies at once (None: as fast as they go)
    bwlimit: float | None = None


@dataclass
class FileError:
    path: bytes
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": display(self.path), "error": self.message}


@dataclass
class TransferReport:
    source: str
    target: str
    preview: bool
    state_dir: str
    delete_extra: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    bytes_copied: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    not_preserved: Counter[str] = field(default_factory=Counter)
    extra: list[tuple[bytes, str]] = field(default_factory=list)
    removed: list[bytes] = field(default_factory=list)
    # Extra directories --delete-extra keeps because excluded paths are inside them.
    kept: list[bytes] = field(default_factory=list)
    exclude: tuple[str, ...] = ()
    errors: list[FileError] = field(default_factory=list)
    collisions: list[tuple[bytes, bytes]] = field(default_factory=list)  # (not sent, kept)
    actions: list[tuple[str, str, bytes]] = field(default_factory=list)  # preview only
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "target": self.target,
            "preview": self.preview,
            "ok": self.ok,
            "state": self.state_dir,
            "counts": {k: self.counts[k] for k in COUNT_KEYS},
            "bytes_copied": self.bytes_copied,
            "skipped": dict(sorted(self.skipped.items())),
            "not_preserved": dict(sorted(self.not_preserved.items())),
            "extra": [{"path": display(p), "kind": k} for p, k in self.extra],
            "removed": [display(p) for p in self.removed],
            "kept_holding_excluded": [display(p) for p in self.kept],
            "exclude": list(self.exclude),
            "errors": [e.to_json() for e in self.errors],
            "collisions": [{"path": display(p), "with": display(w)} for p, w in self.collisions],
            "seconds": round(self.seconds, 3),
        }
        if self.preview:
            data["actions"] = [
                {"action": op, "reason": reason, "path": display(p)}
                for op, reason, p in self.actions
            ]
        return data


# How each outcome is counted; "failed" and "skipped" also have per-file detail.
COUNT_KEYS = (
    "copied",
    "linked",
    "directories created",
    "metadata updated",
    "unchanged",
    "skipped",
    "failed",
    "extra",
    "removed",
    "temp files removed",
)
_COUNT_FOR = {
    Op.COPY: "copied",
    Op.LINK: "linked",
    Op.MKDIR: "directories created",
    Op.METADATA: "metadata updated",
    Op.UNCHANGED: "unchanged",
    Op.SKIP: "skipped",
}


_NEW = Action(Op.COPY, "new")


@dataclass
class _Outcome:
    src: Entry
    action: Action | None = None
    placed: local.Placed | None = None
    digest: str | None = None
    hashed_target: Entry | None = None  # read under --checksum: its hash is ``digest`` if equal
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def resolve_pair(src_url: str, dst_url: str) -> tuple[Location, Location]:
    """Parse both locations and refuse pairs that would copy a tree into itself."""
    src = parse_location(src_url, "source")
    dst = parse_location(dst_url, "target")
    if not (src.is_local and dst.is_local):
        if src.contains(dst):
            raise UsageError(
                f"target {dst_url!r} is the source or inside it; choose a target outside {src_url!r}."
            )
        if dst.contains(src):
            raise _source_inside(src_url, dst_url)
        if src.is_local:
            _check_local_source(src, src_url)
        if dst.is_local:
            _check_local_target(dst, dst_url)
        return _real(src), _real(dst)
    real_src = os.path.realpath(src.root)
    real_dst = os.path.realpath(dst.root)
    if real_src == real_dst or real_dst.startswith(real_src.rstrip(b"/") + b"/"):
        raise UsageError(
            f"target {dst_url!r} is the source or inside it; choose a target outside {src_url!r}."
        )
    if real_src.startswith(real_dst.rstrip(b"/") + b"/"):
        raise _source_inside(src_url, dst_url)
    _check_local_source(src, src_url)
    _check_local_target(dst, dst_url)
    # The roots the user named are followed if they are links; nothing below them is.
    return replace(src, root=real_src), replace(dst, root=real_dst)


def _source_inside(src_url: str, dst_url: str) -> UsageError:
    # Writing the tree into a directory that holds it would write (and with
    # --delete-extra remove) the source's own files: the source is read-only.
    return UsageError(
        f"source {src_url!r} is inside the target {dst_url!r}: the copy could overwrite or "
        "remove the source itself; choose a target that does not hold the source."
    )


def _real(loc: Location) -> Location:
    return replace(loc, root=os.path.realpath(loc.root)) if loc.is_local else loc


def _check_local_source(src: Location, src_url: str) -> None:
    if not os.path.isdir(src.root):
        what = "does not exist" if not os.path.lexists(src.root) else "is not a directory"
        raise RehostError(f"source {src_url!r} {what}; give the directory to copy.")


def _check_local_target(dst: Location, dst_url: str) -> None:
    if os.path.lexists(dst.root) and not os.path.isdir(dst.root):
        raise RehostError(f"target {dst_url!r} exists and is not a directory.")


def fit(src: Entry, caps: Capabilities) -> Entry:
    """``src`` as a target with these capabilities can hold it (what comparisons use)."""
    if not caps.mtime_ns and src.mtime_ns % 1_000_000_000:
        return replace(src, mtime_ns=src.mtime_ns - src.mtime_ns % 1_000_000_000)
    return src


def lost(src: Entry, source: Capabilities, target: Capabilities) -> list[str]:
    """What of ``src``'s metadata the target cannot hold, in the summary's words."""
    notes = []
    if source.owners and not target.owners and src.kind != SYMLINK:
        kept = " (names kept in object metadata)" if target.name == "S3" else ""
        notes.append(f"owner and group: {target.name} keeps none{kept}")
    if source.xattrs and not target.xattrs and src.kind != SYMLINK:
        notes.append(f"xattrs and ACLs: not read, {target.name} keeps none")
    if not target.mtime_ns and src.mtime_ns % 1_000_000_000:
        notes.append(f"mtime below a second: {target.name} keeps whole seconds")
    if src.kind == FILE and src.nlink > 1 and not target.hardlinks:
        notes.append(f"hard links: separate copies on {target.name}")
    if src.kind == DIR and not (source.directories and target.directories):
        where = target.name if not target.directories else source.name
        notes.append(f"directory mode and times: {where} has no directories")
    return notes


def target_entry(tree: Any, caps: Capabilities, src: Entry, *, xattrs: bool) -> Entry | None:
    """The target's entry for ``src``; for a further name of a hard-linked file, with
    what tells whether it is the same file as another name (its ``ino``): an SFTP
    tree gives that from a directory listing only (``link_entry``)."""
    link_entry = getattr(tree, "link_entry", None)
    if link_entry is not None and src.kind == FILE and src.nlink > 1 and caps.hardlinks:
        return link_entry(src.rel)  # type: ignore[no-any-return]
    return tree.entry(src.rel, xattrs=xattrs)  # type: ignore[no-any-return]


DIRS_IN_MEMORY = 4096  # directories kept in a list before they go to a temporary file
_INT64 = range(-(1 << 63), 1 << 63)


class _Dirs:
    """The directories a transfer made or checked, for the metadata pass at the end
    (children before parents). Only what that pass uses is kept (name, times, mode,
    owner; xattrs are read again then), and past ``DIRS_IN_MEMORY`` the rows go to
    a private temporary SQLite file, so memory stays flat however many there are."""

    def __init__(self) -> None:
        self._rows: list[tuple[bytes, int | str, int | str, int, int, int]] = []
        self._db: sqlite3.Connection | None = None

    def append(self, src: Entry) -> None:
        # Times past SQLite's 64-bit integers (year 2262 on) are kept as text.
        mtime = src.mtime_ns if src.mtime_ns in _INT64 else str(src.mtime_ns)
        atime = src.atime_ns if src.atime_ns in _INT64 else str(src.atime_ns)
        self._rows.append((src.rel, mtime, atime, src.mode, src.uid, src.gid))
        if len(self._rows) >= DIRS_IN_MEMORY:
            if self._db is None:
                self._db = sqlite3.connect("")  # a temporary file, removed when closed
                self._db.execute(
                    "CREATE TABLE dirs (seq INTEGER PRIMARY KEY, rel BLOB, mtime, atime, "
                    "mode INTEGER, uid INTEGER, gid INTEGER)"
                )
            self._db.executemany(
                "INSERT INTO dirs (rel, mtime, atime, mode, uid, gid) VALUES (?, ?, ?, ?, ?, ?)",
                self._rows,
            )
            self._rows.clear()

    def reversed(self) -> Iterator[Entry]:
        """The directories in reverse order of ``append``."""
        rows: Iterable[tuple[Any, ...]] = reversed(self._rows)
        if self._db is not None:
            rows = itertools.chain(
                rows,
                self._db.execute(
                    "SELECT rel, mtime, atime, mode, uid, gid FROM dirs ORDER BY seq DESC"
                ),
            )
        for rel, mtime, atime, mode, uid, gid in rows:
            yield Entry(rel, DIR, 0, int(mtime), mode, uid, gid, atime_ns=int(atime))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _Transfer:
    def __init__(
        self,
        src: Location,
        dst: Location,
        options: TransferOptions,
        progress: TransferProgress,
        observer: Observer | None,
    ) -> None:
        self.src, self.dst, self.opt = src, dst, options
        local.forget_dir_facts()  # what a previous run in this process saw
        self.excludes = Excludes(options.exclude)
        self.source = local.open_tree(src, options.remote, self.excludes)
        self.target = local.open_tree(dst, options.remote, self.excludes)
        self.caps, self.src_caps = self.target.capabilities, self.source.capabilities
        self.progress, self.observer = progress, observer
        state = options.state_dir or default_state_dir(dst.state_key)
        self.manifest = Manifest.open(state, dst.state_key, readonly=options.preview)
        self.target.use_manifest(self.manifest.path)
        self.source.use_manifest(default_state_dir(src.state_key) / "manifest.sqlite")
        self.report = TransferReport(
            src.label,
            dst.label,
            options.preview,
            str(state),
            delete_extra=options.delete_extra,
            exclude=options.exclude,
        )
        self.dirs = _Dirs()  # pre-order; reversed = children before parents
        self.pruned: dict[bytes, str] = {}  # directory not transferred → reason
        # Hard links, in memory up to a point, then on disk (a tree of backups holds millions):
        self.first_link: SpillMap[tuple[int, int], bytes] = SpillMap()  # (dev, ino) → first rel
        self.placed_ino: SpillMap[bytes, int] = SpillMap()  # a group's first rel → target ino
        self.later_links: SpillList[tuple[Entry, bytes]] = SpillList()  # (entry, first rel)
        self._wanted: dict[tuple[int, int], tuple[Wanted, list[str]]] = {}
        # Local → local without --checksum: the walk's stat results are compared in bulk.
        self.quick = (
            isinstance(self.source, local.LocalTree)
            and isinstance(self.target, local.LocalTree)
            and not options.checksum
        )
        self._target_listing: tuple[bytes, frozenset[bytes]] | None = None
        self.absent: set[bytes] = set()  # files known to be missing on the target
        self.procs: ProcessCopies | None = None
        self.fold_case = options.case_insensitive  # None until the target root is known
        self.collide: dict[bytes, bytes] = {}  # rel not sent → the name sent in its place

    # ----------------------------------------------------------- decisions

    def wanted(self, src: Entry, notes: list[str]) -> Wanted:
        if self.caps is not local.LOCAL or self.src_caps is not local.LOCAL:
            notes += lost(src, self.src_caps, self.caps)
            # Owners are compared and set only between local trees (by name or number).
            xattrs = self.opt.xattrs and self.caps.xattrs and self.src_caps.xattrs
            return Wanted(xattrs=xattrs)
        wanted, why = self._owner(src.uid, src.gid)
        notes += why
        return wanted

    def _owner(self, uid: int, gid: int) -> tuple[Wanted, list[str]]:
        found = self._wanted.get((uid, gid))
        if found is None:  # a tree has few owners: map each pair once
            found = self._wanted[(uid, gid)] = self.opt.owners.wanted(
                uid, gid, xattrs=self.opt.xattrs
            )
        return found

    def quick_check(self, batch: Batch) -> None:
        """Settle a batch of source files from stat results alone (local → local).

        A regular file (one name only) missing from the target's listing is new: with
        worker processes it goes straight to them (recorded by ``_record_copy``);
        without, it goes in ``absent`` (no second lookup). One whose target has the
        same type, mode, size, mtime and wanted owner, and where neither side has
        xattrs, is unchanged: it is counted and put in ``batch.skip``, so no entry
        is made for it. Anything else takes the full path, entry by entry.
        (Sharing the look-ups with a helper thread was measured slower: the
        interpreter lock, not the system calls, bounds it.)
        """
        if batch.rel in self.pruned:
            return
        listed = self._target_listing
        names = listed[1] if listed is not None and listed[0] == batch.rel else None
        at = batch.rel + b"/" if batch.rel else b""
        todo: list[tuple[bytes, os.stat_result]] = []
        for name, st in batch.stats:
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                continue
            if self.collide and at + name in self.collide:
                continue  # reported entry by entry
            if names is None or name in names:
                todo.append((name, st))
            elif self.procs is None:
                self.absent.add(at + name)
            else:  # new on the target: straight to the workers, no entry, no plan
                wanted, why = self._owner(st.st_uid, st.st_gid)
                self.procs.add((at + name, st.st_size, why), at + name, st.st_size, wanted)
                batch.skip.add(name)
        found, nbytes = self._unchanged(
            todo, self.source.path(batch.rel) + b"/", self.target.path(batch.rel) + b"/"
        )
        batch.skip.update(found)
        if found:
            self.report.counts["unchanged"] += len(found)
            self.progress.update(len(found), nbytes)
        if self.procs is not None:
            self.procs.drain(self._record_copy)

    def _unchanged(
        self, todo: list[tuple[bytes, os.stat_result]], src_dir: bytes, dst_dir: bytes
    ) -> tuple[list[bytes], int]:
        """The names in ``todo`` whose target passes the quick check, and their bytes."""
        lstat, listxattr, xattrs = os.lstat, os.listxattr, self.opt.xattrs
        found = []
        nbytes = 0
        for name, st in todo:
            try:
                d = lstat(dst_dir + name)
                if (d.st_mode, d.st_size, d.st_mtime_ns) != (
                    st.st_mode,
                    st.st_size,
                    st.st_mtime_ns,
                ):
                    continue
                wanted, why = self._owner(st.st_uid, st.st_gid)
                if why or (wanted.uid is not None and wanted.uid != d.st_uid):
                    continue
                if wanted.gid is not None and wanted.gid != d.st_gid:
                    continue
                if xattrs and (
                    listxattr(src_dir + name, follow_symlinks=False)
                    or listxattr(dst_dir + name, follow_symlinks=False)
                ):
                    continue
            except OSError:
                continue  # the full path reports it
            found.append(name)
            nbytes += st.st_size
        return found, nbytes

    # ------------------------------------------------------------ per file

    def process(self, src: Entry, record: Record | None) -> _Outcome:
        """Plan and (unless previewing) carry out one file or symlink."""
        out, dst, wanted = self.plan(src, record)
        return self.execute(out, dst, wanted)

    def plan(self, src: Entry, record: Record | None) -> tuple[_Outcome, Entry | None, Wanted]:
        """Decide what one file or symlink needs (hashing both sides under --checksum)."""
        out = _Outcome(src)
        wanted = Wanted()
        dst = None
        try:
            wanted = self.wanted(src, out.notes)
            if src.kind == SYMLINK and not self.caps.symlinks:
                out.action = Action(Op.SKIP, f"symbolic link: {self.caps.name} holds no links")
                return out, None, wanted
            src = out.src = fit(src, self.caps)
            if src.rel in self.absent:
                self.absent.discard(src.rel)
            else:
                dst = target_entry(self.target, self.caps, src, xattrs=self.opt.xattrs)
            if dst is not None and self.opt.xattrs:  # else read from the open file as it is copied
                src = out.src = self.source.with_xattrs(src)
            content_equal = None
            if (
                self.opt.checksum
                and src.kind == FILE
                and dst is not None
                and dst.kind == FILE
                and dst.size == src.size
            ):
                out.digest = self.source.hash(src.rel)
                dst_hash = record.digest if record and record.matches(dst) else None
                if dst_hash is None:
                    dst_hash, out.hashed_target = self.target.hash(src.rel), dst
                content_equal = out.digest == dst_hash
                if not content_equal:
                    out.hashed_target = None  # its hash is not ``digest``: nothing to record
            out.action = decide(src, dst, wanted=wanted, overwrite=self.opt.overwrite,
                                content_equal=content_equal)  # fmt: skip
        except OSError as exc:
            out.error = describe(exc)
        return out, dst, wanted

    def execute(self, out: _Outcome, dst: Entry | None, wanted: Wanted) -> _Outcome:
        """Carry out a planned action (nothing when previewing); errors go in the outcome."""
        if out.error is not None or out.action is None:
            return out
        if self.opt.preview:
            if dst is not None and dst.kind == FILE and out.action.op != Op.COPY:
                out.placed = local.Placed(dst)  # lets later hard links be planned
            return out
        try:
            self._execute(out, dst, wanted)
        except (local.FileChanged, OSError) as exc:
            out.error = copy_error(exc)
        return out

    def _execute(self, out: _Outcome, dst: Entry | None, wanted: Wanted) -> None:
        assert out.action is not None
        src = out.src
        if out.action.op == Op.COPY:
            if src.kind == SYMLINK:
                out.placed = self.target.symlink(src, wanted)
            else:
                out.placed = self.target.copy_in(self.source, src.rel, wanted)
                out.digest = out.placed.digest
            out.notes += out.placed.not_preserved
        elif out.action.op == Op.METADATA:
            xattrs = dst.xattrs if dst is not None else None
            notes, now = self.target.set_metadata(src.rel, src, wanted, xattrs)
            out.notes += notes
            if src.kind == FILE:
                out.placed = local.Placed(now)
        elif out.action.op == Op.UNCHANGED and dst is not None and src.kind == FILE:
            out.placed = local.Placed(dst)

    # ------------------------------------------------------------ main loop

    def run(self) -> TransferReport:
        started = time.monotonic()
        throttle.set_limit(self.opt.bwlimit)
        try:
            # A stop requested late (the copies were all handed out) still ends the run
            # before the next phase: above all, nothing is removed after Ctrl-C.
            for phase in (self._walk_and_copy, self._link_later, self._finish_dirs,
                          self._remove_extra, self._settle):  # fmt: skip
                interrupt.check()
                phase()
        finally:
            throttle.set_limit(None)
            for held in (self.first_link, self.placed_ino, self.later_links):
                held.close()
            self.dirs.close()
            self.manifest.close()
            self.source.close()
            self.target.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _walk_and_copy(self) -> None:
        jobs = max(1, self.opt.jobs)
        done: queue.SimpleQueue[Future[_Outcome]] = queue.SimpleQueue()
        window = threading.BoundedSemaphore(jobs * WINDOW_PER_JOB)
        # Local → local: copies in forked processes (where there is fork), unless the
        # rate is capped: then threads share one limiter, and CPUs are not the bound.
        procs = None
        if (
            self.quick
            and jobs > 1
            and not self.opt.preview
            and hasattr(os, "fork")
            and not self.opt.bwlimit
        ):
            procs = ProcessCopies(self.source.root, self.target.root, worker_count(jobs))
        self.procs = procs
        pool = None
        if jobs > 1 and (procs is None or self.opt.checksum):
            pool = ThreadPoolExecutor(jobs, thread_name_prefix="rehost-copy")

        def drain(block: bool, stopping: bool = False) -> None:
            while True:
                try:
                    fut = done.get(block=block, timeout=None)
                except queue.Empty:
                    return
                block = False
                if stopping and (fut.cancelled() or isinstance(fut.exception(), Interrupted)):
                    continue
                self._record(fut.result())

        def finished(fut: Future[_Outcome]) -> None:
            window.release()
            done.put(fut)

        stopping = False
        try:
            items = self.source.walk(batches=True) if self.quick else self.source.walk()
            for item in items:
                interrupt.check()
                if isinstance(item, Batch):
                    self.quick_check(item)
                    continue
                if isinstance(item, WalkError):
                    self._error(item.rel, item.message)
                    if item.rel == b"":
                        raise RehostError(
                            f"source {self.src.url!r}: {item.message}; nothing was copied."
                        )
                    continue
                if isinstance(item, Listing):
                    if item.rel not in self.pruned:
                        self._compare_listing(item)
                    continue
                entry = item
                if entry.rel and parent(entry.rel) in self.pruned:
                    self._count_skip(entry.rel, self.pruned[parent(entry.rel)])
                    if entry.kind == DIR:
                        self.pruned[entry.rel] = self.pruned[parent(entry.rel)]
                    continue
                if self.collide and entry.rel in self.collide:
                    self.report.collisions.append((entry.rel, self.collide.pop(entry.rel)))
                    self._count_skip(entry.rel, CASE_COLLISION)
                    if entry.kind == DIR:
                        self.pruned[entry.rel] = (
                            "inside a directory whose name differs only in case"
                        )
                    continue
                if entry.kind == DIR:
                    self._directory(entry)
                    continue
                if entry.kind == FILE and entry.nlink > 1 and self.caps.hardlinks:
                    key = (entry.dev, entry.ino)
                    first = self.first_link.get(key)
                    if first is not None:
                        self.later_links.append((entry, first))
                        continue
                    self.first_link[key] = entry.rel
                if pool is None and procs is None:
                    record = self.manifest.get(entry.rel) if self.opt.checksum else None
                    self._record(self.process(entry, record))
                    continue
                if self.opt.checksum and pool is not None:  # hashing is heavy: plan on a worker
                    record = self.manifest.get(entry.rel)
                    window.acquire()
                    pool.submit(self.process, entry, record).add_done_callback(finished)
                else:  # a quick check here; only copies go to the workers
                    out, dst, wanted = self.plan(entry, None)
                    if out.action is None or out.action.op != Op.COPY or self.opt.preview:
                        self._record(self.execute(out, dst, wanted))
                    elif procs is not None and out.src.kind == FILE:
                        procs.add(out, out.src.rel, out.src.size, wanted)
                        procs.drain(self._record_copy)
                        continue
                    elif pool is not None:
                        window.acquire()
                        pool.submit(self.execute, out, dst, wanted).add_done_callback(finished)
                    else:
                        self._record(self.execute(out, dst, wanted))
                drain(block=False)
        except BaseException:
            stopping = True
            raise
        finally:
            if procs is not None:  # on a stop: queued batches cancelled, those in flight end
                procs.close(self._record_copy, stopping=stopping)
            if pool is not None:  # on a stop: queued copies cancelled, those in flight end
                pool.shutdown(wait=True, cancel_futures=stopping)
                drain(block=False, stopping=stopping)

    def _record_copy(
        self, out: _Outcome | tuple[bytes, int, list[str]], result: local.Placed | str
    ) -> None:
        """Record a copy a worker process made (what ``_execute`` does for a file)."""
        if isinstance(out, tuple):  # sent by quick_check: a new file, nothing planned
            self._record_new(*out, result)
            return
        if isinstance(result, str):
            out.error = result
        else:
            out.placed, out.digest = result, result.digest
            out.notes += result.not_preserved
        self._record(out)

    def _record(self, out: _Outcome) -> None:
        """Count an outcome, keep its hash, report it (main thread only)."""
        rel = out.src.rel
        self.progress.update(1, out.src.size)
        for note in out.notes:
            self.report.not_preserved[note] += 1
        if out.error is not None:
            self._error(rel, out.error)
            return
        assert out.action is not None
        self._count(out.action, rel)
        if self.opt.preview and out.action.op == Op.COPY:
            self.report.bytes_copied += out.src.size  # what would be copied
            if out.src.nlink > 1:
                self.placed_ino[rel] = -1  # will be a new file: further names become links
        if out.placed is not None and out.src.kind == FILE:
            if out.src.nlink > 1:
                self.placed_ino[rel] = out.placed.entry.ino
            if out.action.op == Op.COPY:
                self.report.bytes_copied += out.placed.size
            if out.digest and not self.opt.preview:
                self.manifest.put(out.placed.entry, out.digest)
        elif out.action.op == Op.UNCHANGED and out.hashed_target is not None and out.digest:
            if not self.opt.preview:  # a target hash read anyway: recorded for next time
                self.manifest.put(out.hashed_target, out.digest)

    def _record_new(
        self, rel: bytes, size: int, notes: list[str], result: local.Placed | str
    ) -> None:
        """``_record`` for a new file copied without an outcome (see quick_check)."""
        self.progress.update(1, size)
        for note in notes:
            self.report.not_preserved[note] += 1
        if isinstance(result, str):
            self._error(rel, result)
            return
        for note in result.not_preserved:
            self.report.not_preserved[note] += 1
        self._count(_NEW, rel)
        self.report.bytes_copied += result.size
        if result.digest:
            self.manifest.put(result.entry, result.digest)

    def _count(self, action: Action, rel: bytes) -> None:
        if action.op == Op.SKIP:
            self._count_skip(rel, action.reason)
        else:
            self.report.counts[_COUNT_FOR[action.op]] += 1
        if action.op != Op.UNCHANGED:
            if self.opt.preview:
                self.report.actions.append((action.op.value, action.reason, rel))
            if self.observer is not None:
                self.observer.action(action.op.value, action.reason, rel)

    def _count_skip(self, rel: bytes, reason: str) -> None:
        self.report.counts["skipped"] += 1
        self.report.skipped[reason] += 1

    def _error(self, rel: bytes, message: str) -> None:
        self.report.counts["failed"] += 1
        self.report.errors.append(FileError(rel, message))

    # ---------------------------------------------------------- directories

    def _directory(self, src: Entry) -> None:
        notes: list[str] = []
        wanted = self.wanted(src, notes)
        try:
            dst = self.target.entry(src.rel, xattrs=self.opt.xattrs)
        except OSError as exc:
            self._error(src.rel, describe(exc))
            self.pruned[src.rel] = "its directory could not be read on the target"
            return
        action = decide(src, dst, wanted=wanted)
        if not self.caps.directories:  # S3: prefixes only, nothing to create or set
            action = Action(Op.UNCHANGED)
        if action.op == Op.SKIP:
            self.pruned[src.rel] = "inside a directory that was skipped"
            self._count(action, src.rel)
            return
        if action.op == Op.MKDIR and not self.opt.preview:
            try:
                if src.rel:
                    self.target.make_dir(src.rel)
                else:
                    self.target.make_root()
            except OSError as exc:
                self._error(src.rel, f"cannot create directory: {describe(exc)}")
                self.pruned[src.rel] = "its directory could not be created"
                return
        for note in notes:
            self.report.not_preserved[note] += 1
        self._count(action, src.rel)
        if self.caps.directories:
            self.dirs.append(src)
        if not src.rel and self.fold_case is None:
            self.fold_case = isinstance(self.target, local.LocalTree) and local.case_insensitive(
                self.target.root, write=not self.opt.preview
            )

    def _compare_listing(self, listing: Listing) -> None:
        """Find what is only on the target in this directory; clear our own temp files;
        on a case-insensitive target, the names that would land on one another."""
        folded: set[str] = set()
        if self.fold_case:
            for name, kept in case_collisions(listing.names).items():
                at = listing.rel + b"/" if listing.rel else b""
                self.collide[at + name] = at + kept
            folded = {fold(name) for name in listing.names}
        self._target_listing = None
        try:
            names = self.target.names(listing.rel)
        except OSError as exc:
            self._error(listing.rel, f"cannot list target directory: {describe(exc)}")
            return
        if names is not None:  # what --exclude leaves out is not extra, and never removed
            names = self.excludes.keep(listing.rel, names)
        if self.quick:  # for quick_check: what is not in it needs no lookup
            self._target_listing = (listing.rel, frozenset(name for name, _ in names or ()))
        if names is None:
            return
        for name, is_dir in names:
            if name in listing.names or (folded and fold(name) in folded):
                continue
            rel = listing.rel + b"/" + name if listing.rel else name
            if is_temp_name(name) and not is_dir:
                if not self.opt.preview and self.target.remove_temp(rel):
                    self.report.counts["temp files removed"] += 1
                continue
            self.report.counts["extra"] += 1
            self.report.extra.append((rel, DIR if is_dir else "file"))

    def _link_later(self) -> None:
        for src, first in self.later_links:
            out = _Outcome(src)
            try:
                notes: list[str] = []
                wanted = self.wanted(src, notes)
                dst = target_entry(self.target, self.caps, src, xattrs=False)
                out.action = decide_link(src, dst, self.placed_ino.get(first), wanted=wanted,
                                         overwrite=self.opt.overwrite)  # fmt: skip
                if out.action.op == Op.LINK and not self.opt.preview:
                    self.target.hardlink(first, src.rel)
                elif out.action.op != Op.LINK:
                    out = self.process(src, None)
            except OSError as exc:
                out.error = describe(exc)
            self._record(out)

    def _finish_dirs(self) -> None:
        """Directory metadata, deepest first, after everything inside was written."""
        if self.opt.preview:
            return
        for src in self.dirs.reversed():
            try:
                if self.opt.xattrs:
                    src = self.source.with_xattrs(src)
                src = fit(src, self.caps)
                dst = self.target.entry(src.rel, xattrs=self.opt.xattrs)
                if dst is None or dst.kind != DIR:
                    continue
                wanted = self.wanted(src, [])
                if _meta_diffs(src, dst, wanted):
                    self.target.set_metadata(src.rel, src, wanted, dst.xattrs)
            except OSError as exc:
                self._error(src.rel, f"cannot set directory metadata: {describe(exc)}")

    def _settle(self) -> None:
        """S3: record the LastModified of the objects PUT this run, from one listing per
        directory. Records still without one match by size and ETag, so a listing that
        fails here costs nothing but that."""
        settle = getattr(self.target, "settle", None)
        if settle is None or self.opt.preview:
            return
        with contextlib.suppress(OSError):
            self.manifest.settle(settle())

    def _holds_excluded(self, rel: bytes) -> bool:
        """Whether the target directory ``rel`` holds anything ``--exclude`` leaves out:
        excluded paths are never removed, so neither is the directory holding them."""
        if not self.excludes:
            return False
        try:
            todo = [rel]
            while todo:
                at = todo.pop()
                for name, is_dir in self.target.names(at) or ():  # all of it, excluded too
                    child = at + b"/" + name
                    if self.excludes.excluded(child, is_dir):
                        return True
                    if is_dir:
                        todo.append(child)
        except OSError:
            return True  # cannot tell: keep it
        return False

    def _remove_extra(self) -> None:
        if not self.opt.delete_extra:
            return
        for rel, kind in self.report.extra:
            interrupt.check()
            if kind == DIR and self._holds_excluded(rel):
                self.report.kept.append(rel)
                continue
            if self.observer is not None:
                self.observer.action("remove", "extra", rel)
            if self.opt.preview:
                self.report.actions.append(("remove", "extra", rel))
                continue
            try:
                self.target.remove(rel)
            except OSError as exc:
                self._error(rel, f"cannot remove: {describe(exc)}")
                continue
            self.manifest.forget(rel)
            self.report.removed.append(rel)
            self.report.counts["removed"] += 1
        if not self.opt.preview:
            parents = {parent(rel) for rel in self.report.removed}
            for src in self.dirs.reversed():  # removing changed these directories' mtimes
                if src.rel in parents:
                    self.target.set_times(src.rel, src)


def transfer(
    src_url: str,
    dst_url: str,
    options: TransferOptions | None = None,
    *,
    progress: TransferProgress | None = None,
    observer: Observer | None = None,
) -> TransferReport:
    """Copy the tree at ``src_url`` to ``dst_url``; on later runs only what changed.

    Per-file problems do not stop the run: they are in ``report.errors`` (and the
    command line exits 1). The source is never modified.
    """
    src, dst = resolve_pair(src_url, dst_url)
    opts = options or TransferOptions()
    if opts.jobs < 1:
        raise UsageError(f"--jobs {opts.jobs}: give 1 or more")
    return _Transfer(src, dst, opts, progress or _Silent(), observer).run()


def count_tree(
    root: bytes,
    on_count: Callable[[int, int], None],
    stop: threading.Event,
    excludes: Excludes = NONE,
) -> None:
    """Count files and bytes under ``root`` (for a progress bar's totals), in batches."""
    files = nbytes = 0
    for item in walk(root, excludes=excludes):
        if stop.is_set():
            return
        if isinstance(item, Entry) and item.kind in (FILE, SYMLINK):
            files += 1
            nbytes += item.size
            if files % 500 == 0:
                on_count(files, nbytes)
    on_count(files, nbytes)
