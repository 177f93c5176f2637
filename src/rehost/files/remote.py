"""SFTP and S3 trees over fsspec's maintained backends: sshfs (on asyncssh) and s3fs.

Each provides what :class:`rehost.files.local.LocalTree` provides (walk, entry,
names, hash, copy_in, symlink, hardlink, set_metadata, remove …) and declares in
``capabilities`` what its store can hold, so transfer and verify treat every
pair of stores alike. The libraries are imported only when such a URL is used.

* **SFTP**: the connection and its channel pool are sshfs's; file operations use
  the pooled asyncssh SFTP channels directly, with ``bytes`` paths (names need not
  be UTF-8) and ``lstat`` semantics (links are never followed). A file is written
  under a temporary name, given its mode and mtime (SFTP keeps whole seconds),
  then renamed into place with ``posix-rename@openssh.com`` where the server has
  it (else remove, then rename). Where the server offers ``hardlink@openssh.com``,
  the further names of a hard-linked source file are hard links on the server too
  (linked under a temporary name, then renamed into place). SFTP gives no inode
  numbers: a file's names are taken for one file when a directory listing gives
  each of them a link count above 1 and the same size, mtime, mode and owner
  (:func:`link_id`; the long names of a listing carry the link count, as in
  ``ls -l``).
* **S3**: keys are ``prefix/relative path`` (UTF-8 only). A PUT is atomic per
  object (above :data:`PART_SIZE`, s3fs sends a multipart upload, one part in
  memory at a time, completed atomically), so no temporary names. mtime (ns),
  mode, owner and group names go in object metadata (``x-amz-meta-rehost-*``);
  the content hash goes in the manifest. Listings give size, ETag and
  LastModified; mtime and mode come from the manifest while those still match
  what was recorded, and from a HEAD request otherwise. An object below
  :data:`PART_SIZE` is one PUT whose response gives the ETag the manifest
  records, no HEAD after it; its LastModified (not in the response) is recorded
  from one listing per directory at the end of the run (until then the record
  matches by size and ETag). Symbolic links are not
  stored (S3 has no links; they are skipped and reported); hard links become
  separate objects; directories exist only as key prefixes (no empty ones).
  Reading an object, every ranged GET is pinned to the ETag of the listing
  (``If-Match``, and the response's ETag compared too), so an object rewritten
  while it is read fails with :class:`FileChanged` instead of mixing versions.

Network errors (a dropped connection, a refused one, a timeout) are retried with
exponential backoff, reconnecting first; then the operation fails with
:class:`NetworkError`, which the run reports for that file and goes on. A source
file that changed while it was read is read again once, then reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import secrets
import sqlite3
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from rehost.errors import RehostError
from rehost.files.entry import DIR, FILE, SYMLINK, Entry, kind_of, parent
from rehost.files.exclude import NONE, Excludes
from rehost.files.local import BUFFER_SIZE, FileChanged, Placed, stream_copy
from rehost.files.location import Capabilities, Location, RemoteOptions
from rehost.files.manifest import Record, select_sql
from rehost.files.plan import TEMP_PREFIX, TEMP_SUFFIX, Wanted
from rehost.files.walk import Listing, WalkError, WalkItem, describe

T = TypeVar("T")
S3_DIR_MODE = 0o755
META = "rehost-"  # x-amz-meta-rehost-*
HEAD_BATCH = 64  # HEAD requests in flight at once when a listing needs metadata
PART_SIZE = 8 << 20  # S3 multipart: part size and threshold (s3fs buffers one part; min 5 MiB)


class NetworkError(OSError):
    """The store could not be reached, after the retries."""


def _retrying(opts: RemoteOptions, is_network: Callable[[BaseException], bool],
              on_drop: Callable[[], None], op: Callable[[], T]) -> T:  # fmt: skip
    """Run ``op``; on a network error reconnect and retry with backoff, then give up.
    A source file that changed while it was read (:class:`FileChanged`) is read again
    once, at once, as a local copy is; a second change is raised."""
    delay = opts.backoff
    attempt = 0
    changed = False
    while True:
        try:
            return op()
        except FileChanged:
            if changed:
                raise
            changed = True
        except (FileNotFoundError, PermissionError):
            raise
        except Exception as exc:
            if not is_network(exc):
                raise
            on_drop()
            if attempt == opts.retries:
                tries = f"tried {attempt + 1} time{'s' if attempt else ''}"
                raise NetworkError(errno.ECONNRESET, f"network: {_reason(exc)} ({tries})") from exc
            attempt += 1
            time.sleep(delay)
            delay *= 2


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _sorted_walk(tree: Any) -> Iterator[WalkItem]:
    """Pre-order walk (as walk.walk does locally) over a tree's ``scan(rel)`` listings,
    without what the tree's ``excludes`` leave out."""
    try:
        root = tree.entry(b"", xattrs=False)
    except OSError as exc:
        yield WalkError(b"", describe(exc))
        return
    if root is None:
        yield WalkError(b"", "does not exist")
        return
    yield root
    if root.kind != DIR:
        return
    stack: list[Iterator[Entry]] = []

    def listed(rel: bytes) -> Iterator[WalkItem]:
        try:
            children = tree.scan(rel)
        except OSError as exc:
            yield WalkError(rel, f"cannot list directory: {describe(exc)}")
            return
        if tree.excludes:
            children = [e for e in children if not tree.excludes.excluded(e.rel, e.kind == DIR)]
        yield Listing(rel, frozenset(e.name for e in children))
        stack.append(iter(children))

    yield from listed(b"")
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        yield child
        if child.kind == DIR:
            yield from listed(child.rel)


def _join(root: bytes, rel: bytes) -> bytes:
    if not rel:
        return root
    return (root.rstrip(b"/") + b"/" + rel) if root not in (b"", b"/") else b"/" + rel


class _Reader:
    """A source file opened for streaming: ``read(n)`` and ``finish()`` → its entry."""

    def read(self, n: int) -> bytes:
        raise NotImplementedError

    def finish(self) -> Entry:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _ManifestLookup:
    """Read-only look-ups in a manifest from any thread (S3 trees use it to skip HEADs)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._select = ""
        if path.exists():
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            self._select = select_sql(self._db)

    def get(self, rel: bytes) -> Record | None:
        if self._db is None:
            return None
        with self._lock:
            try:
                row = self._db.execute(self._select, (rel,)).fetchone()
            except sqlite3.Error:
                return None
        return Record(*row) if row else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# ===================================================================== SFTP


class _RemoteTree:
    """What SFTP and S3 trees share: the walk, hashing by streaming, retries."""

    opts: RemoteOptions
    excludes: Excludes = NONE  # left out of walk() (names() lists everything)

    def _is_network(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def _drop(self) -> None:
        pass

    def _retry(self, op: Callable[[], T]) -> T:
        return _retrying(self.opts, self._is_network, self._drop, op)

    def walk(self) -> Iterator[WalkItem]:
        return _sorted_walk(self)

    def with_xattrs(self, entry: Entry) -> Entry:
        return entry  # neither store carries xattrs; None means "not compared"

    def reader(self, rel: bytes) -> _Reader:
        raise NotImplementedError

    def hash(self, rel: bytes) -> str:
        def once() -> str:
            r = self.reader(rel)
            try:
                return stream_copy(r, lambda _: None)[0]
            finally:
                r.close()

        return self._retry(once)

    def use_manifest(self, path: Path) -> None:
        pass


class SFTPTree(_RemoteTree):
    """A tree on an SFTP server (sshfs's connection pool, asyncssh's SFTP client)."""

    def __init__(self, loc: Location, opts: RemoteOptions) -> None:
        self.loc, self.opts, self.root = loc, opts, loc.root
        self._fs: Any = None
        self._lock = threading.Lock()
        self._posix_rename: bool | None = None
        self._hardlinks: bool | None = None  # hardlink@openssh.com offered: asked once
        # Directory listings (with attributes) from names(), kept so that looking up
        # each file of that directory costs no round trip; writes update them.
        self._listed: OrderedDict[bytes, dict[bytes, Entry]] = OrderedDict()

    def _cached(self, rel: bytes) -> tuple[bool, Entry | None]:
        """(known, entry) from the listing of ``rel``'s directory. A directory's entry
        there holds until something is written inside it or its times are set
        (:meth:`_touched` marks it, as make_dir marks a new one: mtime -1); then it is
        asked for again."""
        with self._lock:
            listing = self._listed.get(parent(rel)) if rel else None
            if listing is None:
                return False, None
            found = listing.get(rel.rsplit(b"/", 1)[-1])
        return (found is None or found.kind != DIR or found.mtime_ns >= 0), found

    def _touched(self, dir_rel: bytes) -> None:
        """The directory ``dir_rel`` changes (written into, or given times): its entry
        in its parent's listing is no longer to be trusted."""
        if not dir_rel:
            return
        with self._lock:
            listing = self._listed.get(parent(dir_rel))
            name = dir_rel.rsplit(b"/", 1)[-1]
            found = listing.get(name) if listing is not None else None
            if listing is not None and found is not None and found.kind == DIR:
                listing[name] = replace(found, mtime_ns=-1)

    def _remember(self, rel: bytes, entry: Entry | None) -> None:
        with self._lock:
            listing = self._listed.get(parent(rel))
            if listing is not None:
                name = rel.rsplit(b"/", 1)[-1]
                if entry is None:
                    listing.pop(name, None)
                else:
                    listing[name] = entry

    def _keep_listing(self, rel: bytes, entries: list[Entry]) -> None:
        with self._lock:
            self._listed[rel] = {e.name: e for e in entries}
            while len(self._listed) > 64:
                self._listed.popitem(last=False)

    @property
    def capabilities(self) -> Capabilities:
        """SFTP's, with hard links where the server offers ``hardlink@openssh.com``
        (asked once, on connecting; an unreachable server is taken to lack it, and
        the walk then reports it)."""
        from rehost.files.location import SFTP, SFTP_HARDLINKS

        if self._hardlinks is None:
            try:
                self._hardlinks = self._call(self._can_link)
            except Exception as exc:
                if not self._is_network(exc):
                    raise
                return SFTP
        return SFTP_HARDLINKS if self._hardlinks else SFTP

    async def _can_link(self, ch: Any) -> bool:
        """Whether the server makes hard links: a link request for a name that does not
        exist fails on the server if it has the extension, and in asyncssh, before
        anything is sent, if not."""
        import asyncssh

        missing = self.path(TEMP_PREFIX + secrets.token_hex(8).encode() + b".probe")
        try:
            await ch.link(missing, missing + b"-link")
        except asyncssh.SFTPOpUnsupported:
            return False
        except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection):
            raise
        except asyncssh.SFTPError:
            return True
        return True

    # --------------------------------------------------------- connection

    def _connect(self) -> Any:
        with self._lock:
            if self._fs is None:
                from sshfs import SSHFileSystem

                kwargs: dict[str, Any] = {"port": self.loc.port, "skip_instance_cache": True}
                if self.loc.user:
                    kwargs["username"] = self.loc.user
                if self.opts.sftp_password is not None:
                    kwargs["password"] = self.opts.sftp_password
                if self.opts.sftp_key:
                    kwargs["client_keys"] = [self.opts.sftp_key]
                # sshfs turns host-key checking off by default; rehost keeps it on.
                kwargs["known_hosts"] = self.opts.sftp_known_hosts or _default_known_hosts()
                kwargs["connect_timeout"] = 10
                kwargs["encryption_algs"] = _ENCRYPTION
                self._fs = SSHFileSystem(self.loc.host, **kwargs)
            return self._fs

    def _drop(self) -> None:
        with self._lock:
            fs, self._fs = self._fs, None
        if fs is not None:
            with contextlib.suppress(Exception):
                fs._client.abort()

    def _is_network(self, exc: BaseException) -> bool:
        import asyncssh

        if isinstance(exc, asyncssh.SFTPError):
            return isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection)
        return isinstance(
            exc, asyncssh.Error | ConnectionError | TimeoutError | asyncio.TimeoutError | OSError
        ) and not isinstance(exc, asyncssh.PermissionDenied | asyncssh.HostKeyNotVerifiable)

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(channel)`` (a coroutine function) on the connection's loop; map errors."""
        import asyncssh
        from fsspec.asyn import sync

        fs = self._connect()

        async def go() -> Any:
            async with fs._pool.get() as channel:
                return await fn(channel)

        try:
            return sync(fs.loop, go)
        except asyncssh.SFTPError as exc:
            raise _sftp_oserror(exc) from exc
        except (asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable) as exc:
            raise RehostError(f"{self.loc.label}: {exc}") from exc

    def path(self, rel: bytes) -> bytes:
        return _join(self.root, rel)

    # ------------------------------------------------------------ reading

    def _entry(
        self, rel: bytes, attrs: Any, link: bytes | None = None, longname: Any = None
    ) -> Entry:
        """An entry from SFTP attributes; ``ino`` is :func:`link_id` (0: one name, or
        not known: only a listing's long name gives the link count before SFTP v6)."""
        mode = attrs.permissions or 0
        mtime_ns = (attrs.mtime or 0) * 1_000_000_000 + (attrs.mtime_ns or 0)
        entry = Entry(
            rel, kind_of(mode), attrs.size or 0 if stat.S_ISREG(mode) else 0, mtime_ns,
            stat.S_IMODE(mode), attrs.uid or 0, attrs.gid or 0, link=link,
        )  # fmt: skip
        if entry.kind != FILE:
            return entry
        return replace(entry, ino=link_id(entry, attrs.nlink or listed_nlink(longname)))

    def entry(self, rel: bytes, *, xattrs: bool) -> Entry | None:
        known, found = self._cached(rel)
        if known:
            return found
        path = self.path(rel)

        async def get(ch: Any) -> tuple[Any, bytes | None]:
            attrs = await ch.lstat(path)
            link = await ch.readlink(path) if stat.S_ISLNK(attrs.permissions or 0) else None
            return attrs, link

        try:
            attrs, link = self._retry(lambda: self._call(get))
        except FileNotFoundError:
            return None
        return self._entry(rel, attrs, link)

    def scan(self, rel: bytes) -> list[Entry]:
        path = self.path(rel)

        async def get(ch: Any) -> list[Entry]:
            out = []
            for name in await ch.readdir(path):
                if name.filename in (b".", b".."):
                    continue
                child = rel + b"/" + name.filename if rel else name.filename
                link = None
                if stat.S_ISLNK(name.attrs.permissions or 0):
                    link = await ch.readlink(_join(path, name.filename))
                out.append(self._entry(child, name.attrs, link, name.longname))
            return sorted(out, key=lambda e: e.rel)

        return self._retry(lambda: self._call(get))

    def names(self, rel: bytes) -> list[tuple[bytes, bool]] | None:
        try:
            entries = self.scan(rel)
        except (FileNotFoundError, NotADirectoryError):
            return None
        self._keep_listing(rel, entries)
        return [(e.name, e.kind == DIR) for e in entries]

    def link_entry(self, rel: bytes) -> Entry | None:
        """:meth:`entry` with what tells a file's names apart (``ino``, see
        :func:`link_id`), which only a listing gives: the directory is listed again
        if its listing is no longer kept."""
        known, found = self._cached(rel)
        if not known and rel:
            self.names(parent(rel))
            known, found = self._cached(rel)
        return found if known else self.entry(rel, xattrs=False)

    def reader(self, rel: bytes) -> _Reader:
        return _SFTPReader(self, rel)

    # ------------------------------------------------------------ writing

    def make_root(self) -> None:
        path = self.root
        self._retry(lambda: self._call(lambda ch: ch.makedirs(path, exist_ok=True)))

    def make_dir(self, rel: bytes) -> None:
        import asyncssh

        path = self.path(rel)
        attrs = asyncssh.SFTPAttrs(permissions=0o700)
        self._touched(parent(rel))
        self._retry(lambda: self._call(lambda ch: ch.mkdir(path, attrs)))
        self._remember(rel, Entry(rel, DIR, 0, -1, 0o700, 0, 0))  # a dir, looked up afresh

    def _temp(self, rel: bytes) -> bytes:
        name = TEMP_PREFIX + secrets.token_hex(8).encode() + TEMP_SUFFIX
        return self.path(parent(rel) + b"/" + name if parent(rel) else name)

    def _rename(self, ch: Any, tmp: bytes, path: bytes) -> Any:
        async def go() -> None:
            if self._posix_rename is None:
                self._posix_rename = ch.supports_posix_rename() if hasattr(
                    ch, "supports_posix_rename") else True  # fmt: skip
            if self._posix_rename:
                try:
                    await ch.posix_rename(tmp, path)
                    return
                except Exception as exc:
                    import asyncssh

                    if not isinstance(exc, asyncssh.SFTPOpUnsupported):
                        raise
                    self._posix_rename = False
            with contextlib.suppress(Exception):
                await ch.remove(path)
            await ch.rename(tmp, path)

        return go()

    def copy_in(self, source: Any, rel: bytes, wanted: Wanted) -> Placed:
        """Write a file under a temporary name, then rename it into place.

        Round trips per file: the open (created private, with O_EXCL semantics), one
        batch of requests sent together — the writes, the mode and times set on the
        open handle, the close (one handle's requests are processed in order) — then
        the rename, sent only once all of those succeeded, so the real name never
        holds a partial file. A file up to :data:`BUFFER_SIZE` is read (and hashed)
        before the open and goes in that batch; a larger one is streamed between the
        open and the batch. No stat after the rename: the entry is what was set."""
        from fsspec.asyn import sync

        path = self.path(rel)
        self._touched(parent(rel))

        def once() -> Placed:
            tmp = self._temp(rel)
            reader = source.reader(rel)
            try:
                if reader.entry.size <= BUFFER_SIZE:
                    chunks: list[bytes] = []
                    digest, copied, src = stream_copy(reader, chunks.append)
                    data = b"".join(chunks)

                    async def put(ch: Any) -> None:
                        f = await ch.open(tmp, _CREATE, _private(), encoding=None)
                        await self._complete(ch, f, tmp, path, src, data)

                    self._call(put)
                else:
                    f = self._call(lambda ch: ch.open(tmp, _CREATE, _private(), encoding=None))
                    loop = self._connect().loop
                    try:
                        digest, copied, src = stream_copy(reader, lambda b: sync(loop, f.write, b))
                        self._call(lambda ch: self._complete(ch, f, tmp, path, src, b""))
                    finally:
                        with contextlib.suppress(Exception):
                            sync(loop, f.close)  # nothing to do once completed
            except BaseException:
                self._discard(tmp)
                raise
            finally:
                reader.close()
            secs = src.mtime_ns // 1_000_000_000
            placed = Entry(rel, FILE, copied, secs * 1_000_000_000, src.mode, 0, 0)
            self._remember(rel, placed)
            return Placed(placed, digest, copied)

        return self._retry(once)

    async def _complete(
        self, ch: Any, f: Any, tmp: bytes, path: bytes, src: Entry, data: bytes
    ) -> None:
        """Send ``data`` (at the start of the file), mode and times, and the close as
        one batch; rename into place once every one of them succeeded."""
        import asyncssh

        secs = src.mtime_ns // 1_000_000_000
        attrs = asyncssh.SFTPAttrs(permissions=src.mode, atime=secs, mtime=secs)
        # Requests no larger than the server takes in one go are sent as they are
        # created, so they reach the server in this order.
        step = f.write_len or len(data) or 1
        writes = [f.write(data[i : i + step], i) for i in range(0, len(data), step)]
        results = await asyncio.gather(*writes, f.setstat(attrs), f.close(),
                                       return_exceptions=True)  # fmt: skip
        for result in results:
            if isinstance(result, BaseException):
                raise result
        await self._rename(ch, tmp, path)

    def _discard(self, tmp: bytes) -> None:
        with contextlib.suppress(Exception):
            self._call(lambda ch: ch.remove(tmp))

    def symlink(self, src: Entry, wanted: Wanted) -> Placed:
        assert src.link is not None
        path, link = self.path(src.rel), src.link
        self._touched(parent(src.rel))

        def once() -> Placed:
            tmp = self._temp(src.rel)

            async def go(ch: Any) -> Any:
                await ch.symlink(link, tmp)
                notes = await self._link_times(ch, tmp, src)
                await self._rename(ch, tmp, path)
                return notes, await ch.lstat(path)

            try:
                notes, attrs = self._call(go)
            except BaseException:
                self._discard(tmp)
                raise
            self._remember(src.rel, self._entry(src.rel, attrs, link))
            return Placed(src, not_preserved=notes)

        return self._retry(once)

    async def _link_times(self, ch: Any, path: bytes, src: Entry) -> list[str]:
        import asyncssh

        secs = src.mtime_ns // 1_000_000_000
        try:
            await ch.setstat(path, asyncssh.SFTPAttrs(atime=secs, mtime=secs),
                             follow_symlinks=False)  # fmt: skip
        except asyncssh.SFTPError:
            return ["symbolic link times: refused by the SFTP server"]
        return []

    def hardlink(self, first_rel: bytes, rel: bytes) -> None:
        """Make ``rel`` another name of the file at ``first_rel`` (``hardlink@openssh.com``):
        linked under a temporary name, then renamed into place."""
        first, path = self.path(first_rel), self.path(rel)
        self._touched(parent(rel))

        def once() -> None:
            tmp = self._temp(rel)

            async def go(ch: Any) -> None:
                await ch.link(first, tmp)
                await self._rename(ch, tmp, path)

            try:
                self._call(go)
            except BaseException:
                self._discard(tmp)
                raise

        self._retry(once)
        with self._lock:  # the link counts listed in this directory have changed
            self._listed.pop(parent(rel), None)

    def set_metadata(
        self, rel: bytes, src: Entry, wanted: Wanted, dst_xattrs: dict[str, bytes] | None
    ) -> tuple[list[str], Entry]:
        import asyncssh

        path = self.path(rel)
        secs = src.mtime_ns // 1_000_000_000

        async def go(ch: Any) -> tuple[list[str], Any]:
            notes: list[str] = []
            if src.kind == SYMLINK:
                notes = await self._link_times(ch, path, src)
            else:
                await ch.setstat(path, asyncssh.SFTPAttrs(permissions=src.mode, atime=secs,
                                                          mtime=secs))  # fmt: skip
            return notes, await ch.lstat(path)

        self._touched(rel)
        notes, attrs = self._retry(lambda: self._call(go))
        now = self._entry(rel, attrs, src.link)
        self._remember(rel, now)
        return notes, now

    def set_times(self, rel: bytes, src: Entry) -> None:
        import asyncssh

        path, secs = self.path(rel), src.mtime_ns // 1_000_000_000
        attrs = asyncssh.SFTPAttrs(atime=secs, mtime=secs)
        self._touched(rel)
        self._retry(lambda: self._call(lambda ch: ch.setstat(path, attrs)))

    def remove(self, rel: bytes) -> None:
        path = self.path(rel)

        async def go(ch: Any) -> None:
            attrs = await ch.lstat(path)
            if stat.S_ISDIR(attrs.permissions or 0):
                await ch.rmtree(path)
            else:
                await ch.remove(path)

        self._touched(parent(rel))
        self._retry(lambda: self._call(go))
        self._remember(rel, None)

    def remove_temp(self, rel: bytes) -> bool:
        path = self.path(rel)
        self._touched(parent(rel))
        try:
            self._retry(lambda: self._call(lambda ch: ch.remove(path)))
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        self._drop()


def listed_nlink(longname: bytes | str | None) -> int:
    """The link count in a directory listing's long name (``ls -l`` style, as OpenSSH's
    and asyncssh's servers write it: mode, link count, owner …); 0 when it has none."""
    fields = longname.split(None, 2) if longname else []
    if len(fields) < 3 or len(fields[0]) < 10 or not fields[1].isdigit():
        return 0  # not that shape (a server may send the name alone)
    return int(fields[1])


def link_id(entry: Entry, nlink: int) -> int:
    """What stands in for an SFTP file's inode number (SFTP gives none): for a file
    with more than one name, a number from its size, mtime, mode and owner, which all
    its names share (not the link count, which a run changes as it links names); 0
    (not known) for a file with one name."""
    if nlink < 2:
        return 0
    key = f"{entry.size} {entry.mtime_ns} {entry.mode} {entry.uid} {entry.gid}"
    return int(hashlib.sha256(key.encode()).hexdigest()[:15], 16) or 1


# asyncssh's defaults with AES-GCM first: per packet it costs the client a fraction
# of ChaCha20-Poly1305 (a cipher object, not three, per packet); the server picks
# the first one it also has, so nothing is refused that was accepted before.
_ENCRYPTION = [
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
    "aes256-ctr", "aes192-ctr", "aes128-ctr",
]  # fmt: skip
_CREATE = 0x02 | 0x08 | 0x20  # SSH_FXF_WRITE | SSH_FXF_CREAT | SSH_FXF_EXCL


def _private() -> Any:
    """Attributes of a new temporary file: readable by its owner only until complete."""
    import asyncssh

    return asyncssh.SFTPAttrs(permissions=0o600)


def _default_known_hosts() -> Any:
    import os

    path = os.path.expanduser("~/.ssh/known_hosts")
    return path if os.path.exists(path) else ()


def _sftp_oserror(exc: Any) -> OSError:
    import asyncssh

    reason = exc.reason or type(exc).__name__
    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return FileNotFoundError(errno.ENOENT, "vanished (no longer exists)")
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return PermissionError(errno.EACCES, "permission denied")
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return OSError(errno.ENOSPC, f"target full: {reason}")
    if isinstance(exc, asyncssh.SFTPFileAlreadyExists):
        return FileExistsError(errno.EEXIST, reason)
    if isinstance(exc, asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return ConnectionError(errno.ECONNRESET, reason)
    return OSError(errno.EIO, f"SFTP: {reason}")


class _SFTPReader(_Reader):
    def __init__(self, tree: SFTPTree, rel: bytes) -> None:
        from fsspec.asyn import sync

        self.tree, self.rel, self._sync = tree, rel, sync
        path = tree.path(rel)

        async def open_(ch: Any) -> tuple[Any, Any]:
            attrs = await ch.lstat(path)
            if not stat.S_ISREG(attrs.permissions or 0):
                raise FileChanged("is no longer a regular file")
            return attrs, await ch.open(path, "rb")

        self.before, self.f = tree._call(open_)
        self.entry = tree._entry(rel, self.before)  # as opened (S3 uploads need it first)
        self.loop = tree._connect().loop

    def read(self, n: int) -> bytes:
        return self._sync(self.loop, self.f.read, n)

    def finish(self) -> Entry:
        after = self._sync(self.loop, self.f.stat)
        if (after.size, after.mtime) != (self.before.size, self.before.mtime):
            raise FileChanged("changed while it was being copied")
        return self.entry

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._sync(self.loop, self.f.close)


# ======================================================================= S3


def _etag_ino(etag: str) -> int:
    """A stand-in for an inode from an object's ETag: any rewrite with other bytes changes it."""
    return int(hashlib.sha256(etag.encode()).hexdigest()[:15], 16)


class S3Tree(_RemoteTree):
    """A tree of objects under ``s3://bucket/prefix`` (s3fs)."""

    def __init__(self, loc: Location, opts: RemoteOptions) -> None:
        from rehost.files.location import S3

        self.capabilities = S3
        self.loc, self.opts = loc, opts
        self.root = loc.root.decode("utf-8", "surrogateescape")
        self.bucket = loc.host
        self._fs: Any = None
        self._lock = threading.Lock()
        self._listings: OrderedDict[bytes, dict[bytes, dict[str, Any]]] = OrderedDict()
        self._records: _ManifestLookup | None = None
        self.dir_mtime_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000
        self.heads = 0  # HEAD requests made for metadata (the manifest spares them)
        self._unsettled: set[bytes] = set()  # directories PUT into, LastModified not seen

    def _connect(self) -> Any:
        with self._lock:
            if self._fs is None:
                from s3fs import S3FileSystem

                client: dict[str, Any] = {}
                if self.opts.s3_region:
                    client["region_name"] = self.opts.s3_region
                self._fs = S3FileSystem(
                    endpoint_url=self.opts.s3_endpoint_url,
                    client_kwargs=client,
                    config_kwargs={
                        "retries": {"total_max_attempts": 1, "mode": "standard"},
                        "connect_timeout": 10,
                    },
                    use_listings_cache=False,
                    skip_instance_cache=True,
                    # Reads compare each response's ETag with the listed one (as well
                    # as sending If-Match, which some S3-compatible stores ignore).
                    local_expiry_check=True,
                )
                self._fs.retries = 1  # rehost retries, reconnecting first
            return self._fs

    # _drop: nothing; aiohttp opens new connections by itself, a new client costs ~0.5 s

    def _is_network(self, exc: BaseException) -> bool:
        import aiohttp
        from botocore import exceptions as bx

        return isinstance(
            exc,
            bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ReadTimeoutError
            | bx.ConnectTimeoutError | aiohttp.ClientError | ConnectionError | TimeoutError
            | asyncio.TimeoutError,
        ) or (isinstance(exc, OSError) and exc.errno in (errno.ECONNRESET, errno.ECONNREFUSED))  # fmt: skip

    def key(self, rel: bytes) -> str:
        try:
            text = rel.decode("utf-8")
        except UnicodeDecodeError:
            raise OSError(errno.EILSEQ, "name is not UTF-8; S3 keys must be") from None
        return self.root + "/" + text if text else self.root

    def check(self) -> None:
        """The bucket must exist and be reachable (rehost does not create buckets)."""
        try:
            self._retry(lambda: self._connect().call_s3("head_bucket", Bucket=self.bucket))
        except FileNotFoundError:
            raise RehostError(
                f"{self.loc.label}: bucket {self.bucket!r} does not exist; create it first."
            ) from None
        except Exception as exc:
            raise RehostError(f"{self.loc.label}: {_reason(exc)}") from exc

    def use_manifest(self, path: Path) -> None:
        self._records = _ManifestLookup(path)

    def close(self) -> None:
        if self._records is not None:
            self._records.close()

    # ------------------------------------------------------------ reading

    def _dir(self, rel: bytes) -> Entry:
        return Entry(rel, DIR, 0, self.dir_mtime_ns, S3_DIR_MODE, 0, 0)

    def _list(self, rel: bytes) -> dict[bytes, dict[str, Any]]:
        """{name: s3fs info} for one "directory"; kept for the look-ups that follow."""
        with self._lock:
            found = self._listings.get(rel)
            if found is not None:
                self._listings.move_to_end(rel)
                return found
        fs = self._connect()
        prefix = self.key(rel)
        try:
            infos = self._retry(lambda: fs.ls(prefix, detail=True, refresh=True))
        except FileNotFoundError:
            infos = []  # no key under this prefix (yet)
        cut = len(prefix) + 1
        listing = {}
        for info in infos:
            name = info["name"][cut:].rstrip("/").encode("utf-8")
            if name and b"/" not in name:
                listing[name] = info
        with self._lock:
            self._listings[rel] = listing
            while len(self._listings) > 256:
                self._listings.popitem(last=False)
        return listing

    def _remember(self, rel: bytes, info: dict[str, Any] | None) -> None:
        with self._lock:
            listing = self._listings.get(parent(rel))
            if listing is not None:
                if info is None:
                    listing.pop(rel.rsplit(b"/", 1)[-1], None)
                else:
                    listing[rel.rsplit(b"/", 1)[-1]] = info

    @staticmethod
    def _identity(info: dict[str, Any]) -> tuple[int, int, int]:
        """(size, LastModified in ns, ETag as a number): what any rewrite changes."""
        size = int(info.get("size") or info.get("Size") or 0)
        modified = info.get("LastModified")
        lm_ns = int(modified.timestamp() * 1e9) if modified is not None else 0
        return size, lm_ns, _etag_ino(str(info.get("ETag", "")))

    def _recorded(self, rel: bytes, info: dict[str, Any]) -> Entry | None:
        """The entry from the manifest, while the object is still the one recorded."""
        rec = self._records.get(rel) if self._records is not None else None
        size, lm_ns, ino = self._identity(info)
        if rec is None or (rec.size, rec.ino) != (size, ino):
            return None
        if rec.ctime_ns != lm_ns and rec.ctime_ns != 0:  # 0: PUT, LastModified not yet seen
            return None
        return Entry(rel, FILE, size, rec.mtime_ns, rec.mode, 0, 0, ctime_ns=rec.ctime_ns, ino=ino)

    def _file(self, rel: bytes, info: dict[str, Any], meta: dict[str, str] | None = None) -> Entry:
        size, lm_ns, ino = self._identity(info)
        if meta is None:
            recorded = self._recorded(rel, info)
            if recorded is not None:
                return recorded
            meta = self._head(rel)
        mtime_ns = int(meta.get(META + "mtime-ns", lm_ns))
        mode = int(meta.get(META + "mode", "644"), 8)
        return Entry(rel, FILE, size, mtime_ns, mode, 0, 0, ctime_ns=lm_ns, ino=ino)

    def _head(self, rel: bytes) -> dict[str, str]:
        fs = self._connect()
        self.heads += 1
        return self._retry(lambda: fs.metadata(self.key(rel)))

    def _info(self, rel: bytes) -> dict[str, Any] | None:
        """s3fs's info on ``rel`` from the listing of its directory."""
        return self._list(parent(rel)).get(rel.rsplit(b"/", 1)[-1])

    def _forget_listing(self, rel: bytes) -> None:
        with self._lock:
            self._listings.pop(rel, None)

    def entry(self, rel: bytes, *, xattrs: bool) -> Entry | None:
        if not rel:
            return self._dir(rel)
        info = self._info(rel)
        if info is None:
            return None
        if info.get("type") == "directory":
            return self._dir(rel)
        return self._file(rel, info)

    def scan(self, rel: bytes) -> list[Entry]:
        listing = self._list(rel)
        out: list[Entry] = []
        need: list[tuple[bytes, dict[str, Any]]] = []
        for name, info in sorted(listing.items()):
            child = rel + b"/" + name if rel else name
            if info.get("type") == "directory":
                out.append(self._dir(child))
                continue
            entry = self._recorded(child, info)
            if entry is None:
                need.append((child, info))
            else:
                out.append(entry)
        out += self._heads(need)
        return sorted(out, key=lambda e: e.rel)

    def _heads(self, items: list[tuple[bytes, dict[str, Any]]]) -> list[Entry]:
        """Entries whose metadata needs a HEAD: asked for concurrently, in batches."""
        if not items:
            return []
        from fsspec.asyn import sync

        fs = self._connect()
        out = []
        for i in range(0, len(items), HEAD_BATCH):
            batch = items[i : i + HEAD_BATCH]

            async def heads(batch: list[tuple[bytes, dict[str, Any]]] = batch) -> list[Any]:
                return await asyncio.gather(*(fs._metadata(self.key(r)) for r, _ in batch))

            metas: list[Any] = self._retry(functools.partial(sync, fs.loop, heads))
            self.heads += len(batch)
            out += [self._file(r, info, meta) for (r, info), meta in zip(batch, metas, strict=True)]
        return out

    def names(self, rel: bytes) -> list[tuple[bytes, bool]] | None:
        if rel and self.entry(rel, xattrs=False) is None:
            return None
        listing = self._list(rel)
        return sorted((n, i.get("type") == "directory") for n, i in listing.items())

    def reader(self, rel: bytes) -> _Reader:
        return _S3Reader(self, rel)

    # ------------------------------------------------------------ writing

    def make_root(self) -> None:
        pass  # prefixes need no creating

    def make_dir(self, rel: bytes) -> None:
        pass

    def copy_in(self, source: Any, rel: bytes, wanted: Wanted) -> Placed:
        key = self.key(rel)

        def once() -> Placed:
            fs = self._connect()
            reader = source.reader(rel)
            try:
                # Metadata goes with the upload's first request: it comes from the source
                # as opened, and finish() checks that the file did not change since.
                if reader.entry.size < PART_SIZE:
                    digest, copied, src, info = self._put(fs, rel, reader)
                else:
                    with fs.open(
                        key, "wb", Metadata=_object_meta(reader.entry), block_size=PART_SIZE
                    ) as f:
                        digest, copied, src = stream_copy(reader, f.write)
                    info = fs.info(key, refresh=True)
            finally:
                reader.close()
            self._remember(rel, info)
            return Placed(self._file(rel, info, {META + "mtime-ns": str(src.mtime_ns),
                                                 META + "mode": f"{src.mode:o}"}),
                          digest, copied)  # fmt: skip

        return self._retry(once)

    def _put(self, fs: Any, rel: bytes, reader: Any) -> tuple[str, int, Entry, dict[str, Any]]:
        """A file below the multipart threshold in one PUT, whose response gives the
        ETag: no HEAD after it. The LastModified is not in the response; it is left
        0 (the manifest then matches size and ETag) until ``settle`` lists it."""
        chunks: list[bytes] = []
        total = 0

        def keep(chunk: bytes) -> None:
            nonlocal total
            total += len(chunk)
            if total >= PART_SIZE:  # it was smaller when opened: it is growing
                raise FileChanged("changed while it was being copied")
            chunks.append(chunk)

        digest, copied, src = stream_copy(reader, keep)
        key = self.key(rel)
        bucket, path, _ = fs.split_path(key)
        put = fs.call_s3(
            "put_object", Bucket=bucket, Key=path, Body=b"".join(chunks),
            Metadata=_object_meta(reader.entry),
        )  # fmt: skip
        with self._lock:
            self._unsettled.add(parent(rel))
        info = {"name": key, "size": copied, "type": "file", "ETag": put["ETag"]}
        return digest, copied, src, info

    def settle(self) -> list[tuple[bytes, int, int, int]]:
        """(rel, size, LastModified in ns, ETag as a number) of the objects in the
        directories this run PUT into, from one fresh listing each (not a HEAD per
        object): what the manifest records in place of the LastModified left 0."""
        with self._lock:
            dirs, self._unsettled = sorted(self._unsettled), set()
            for rel in dirs:
                self._listings.pop(rel, None)
        out = []
        for rel in dirs:
            for name, info in self._list(rel).items():
                if info.get("type") != "directory":
                    out.append((rel + b"/" + name if rel else name, *self._identity(info)))
        return out

    def symlink(self, src: Entry, wanted: Wanted) -> Placed:
        raise AssertionError("symbolic links are not stored on S3")

    def hardlink(self, first_rel: bytes, rel: bytes) -> None:
        raise AssertionError("S3 targets get copies, not hard links")

    def set_metadata(
        self, rel: bytes, src: Entry, wanted: Wanted, dst_xattrs: dict[str, bytes] | None
    ) -> tuple[list[str], Entry]:
        """Rewrite the object's metadata (a server-side copy onto itself)."""
        if src.kind == DIR:
            return [], self._dir(rel)
        key = self.key(rel)
        meta = _object_meta(src)

        def once() -> dict[str, Any]:
            fs = self._connect()
            old = fs.metadata(key)
            if any(old.get(k) != v for k, v in meta.items()):
                fs.setxattr(key, copy_kwargs={}, **meta)
            return fs.info(key, refresh=True)

        info = self._retry(once)
        self._remember(rel, info)
        return [], self._file(rel, info, meta)

    def set_times(self, rel: bytes, src: Entry) -> None:
        pass  # directories only: S3 has none

    def remove(self, rel: bytes) -> None:
        key = self.key(rel)

        def once() -> None:
            fs = self._connect()
            info = self._list(parent(rel)).get(rel.rsplit(b"/", 1)[-1])
            fs.rm(key, recursive=bool(info and info.get("type") == "directory"))

        self._retry(once)
        self._remember(rel, None)

    def remove_temp(self, rel: bytes) -> bool:
        self.remove(rel)
        return True


def _object_meta(src: Entry) -> dict[str, str]:
    from rehost.files.owners import group_name, user_name

    meta = {META + "mtime-ns": str(src.mtime_ns), META + "mode": f"{src.mode:o}"}
    if src.uid or src.gid:
        meta[META + "owner"] = user_name(src.uid)
        meta[META + "group"] = group_name(src.gid)
    return meta


class _S3Reader(_Reader):
    """An object read in ranged GETs, each pinned to the ETag of the listing: sent as
    ``If-Match`` (412 when the object was rewritten since) and compared with the
    response's. A rewritten object fails the read with :class:`FileChanged`, and its
    directory is listed again for the next try."""

    def __init__(self, tree: S3Tree, rel: bytes) -> None:
        self.tree, self.rel = tree, rel
        info = tree._info(rel) if rel else None
        if info is None or info.get("type") == "directory":
            raise FileNotFoundError(errno.ENOENT, "vanished (no longer exists)")
        self.entry = entry = tree._file(rel, info)
        # The size and ETag from the listing spare s3fs a HEAD request before the GETs.
        f = tree._connect().open(
            tree.key(rel), "rb", cache_type="none", block_size=BUFFER_SIZE, size=entry.size
        )
        etag = info.get("ETag")
        if etag:
            f.details = {"name": f.path, "size": entry.size, "type": "file", "ETag": etag}
            f.read_kw = {**f.read_kw, "IfMatch": etag}
        self.f = f

    def read(self, n: int) -> bytes:
        from s3fs.utils import FileExpired

        try:
            return self.f.read(n)  # type: ignore[no-any-return]
        except FileExpired as exc:
            self.tree._forget_listing(parent(self.rel))
            raise FileChanged("changed while it was being copied") from exc

    def finish(self) -> Entry:
        return self.entry

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.f.close()


# ====================================================================== open


def open_tree(loc: Location, opts: RemoteOptions | None = None, excludes: Excludes = NONE) -> Any:
    """The tree at ``loc``: a LocalTree, an SFTPTree or an S3Tree."""
    from rehost.files.local import LocalTree

    opts = opts or RemoteOptions()
    tree: Any
    if loc.scheme == "sftp":
        tree = SFTPTree(loc, opts)
    elif loc.scheme == "s3":
        tree = S3Tree(loc, opts)
        tree.check()
    else:
        return LocalTree(loc.root, excludes)
    tree.excludes = excludes
    return tree
