"""Where a share lives: a URL or path → a location with its capabilities.

Local paths (and ``file://`` URLs), ``sftp://[user@]host[:port]/path`` and
``s3://bucket[/prefix]``. Other schemes are refused with a usage error naming
the URL. Each store declares in :class:`Capabilities` what it can hold; the
transfer compares and preserves only that, and its summary says what was not kept.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from rehost.errors import UsageError
from rehost.files.entry import display

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
REMOTE = ("sftp", "s3")


@dataclass(frozen=True)
class Capabilities:
    """What a store can hold; the summary reports what it could not."""

    name: str = "local"
    mtime_ns: bool = True  # False: whole seconds only
    mode: bool = True
    owners: bool = True
    xattrs: bool = True  # xattrs and POSIX ACLs
    hardlinks: bool = True
    symlinks: bool = True
    directories: bool = True  # real directories, with their own mode and times


LOCAL = Capabilities()
# SFTP (v3, as OpenSSH and asyncssh serve it): mode and mtime in whole seconds, links;
# hard links where the server offers the ``hardlink@openssh.com`` extension.
SFTP = Capabilities("SFTP", mtime_ns=False, owners=False, xattrs=False, hardlinks=False)
SFTP_HARDLINKS = Capabilities("SFTP", mtime_ns=False, owners=False, xattrs=False)
# S3 holds bytes under a key; rehost keeps mtime (ns), mode and owner names in object
# metadata (x-amz-meta-rehost-*). No links, no directories of their own.
S3 = Capabilities(
    "S3", owners=False, xattrs=False, hardlinks=False, symlinks=False, directories=False
)


@dataclass(frozen=True)
class RemoteOptions:
    """How to reach SFTP and S3 stores (from options and the environment)."""

    sftp_password: str | None = field(default=None, repr=False)
    sftp_known_hosts: str | None = None  # None: asyncssh's default (~/.ssh/known_hosts)
    sftp_key: str | None = None  # None: asyncssh's defaults (agent, ~/.ssh/id_*)
    s3_endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL or AWS itself
    s3_region: str | None = None
    retries: int = 3  # further tries of an operation after a network error
    backoff: float = 0.5  # seconds before the first retry; doubled each time


@dataclass(frozen=True)
class Location:
    url: str
    root: bytes  # local: absolute path; sftp: path on the server; s3: b"bucket/prefix"
    capabilities: Capabilities = LOCAL
    scheme: str = "file"
    host: str = ""
    port: int | None = None
    user: str | None = None

    def __str__(self) -> str:
        return self.url

    @property
    def label(self) -> str:
        """The URL as given, printable (bytes that are not UTF-8 as ``\\xNN``)."""
        return display(os.fsencode(self.url))

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def state_key(self) -> bytes:
        """What names this tree for its default manifest: its path, or its normalised URL."""
        if self.is_local:
            return self.root
        if self.scheme == "s3":
            return b"s3://" + self.root
        return f"sftp://{self.user or ''}@{self.host}:{self.port}".encode() + self.root

    def contains(self, other: Location) -> bool:
        """Whether ``other`` is this tree or inside it (same store)."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        mine = self.root.rstrip(b"/")
        return other.root == mine or other.root.startswith(mine + b"/")


def parse_location(url: str, role: str) -> Location:
    """``/srv/data``, ``file:///srv/data``, ``sftp://u@h:22/srv``, ``s3://bucket/prefix``."""
    match = _SCHEME.match(url)
    path = url
    if match:
        scheme = match.group(1).lower()
        if scheme in REMOTE:
            return _remote(url, scheme, role)
        if scheme != "file":
            raise UsageError(
                f"{role} {url!r}: {scheme}:// is not supported; give a local path, "
                "sftp://user@host:port/path or s3://bucket/prefix."
            )
        path = url[len(match.group(0)) :] or "/"
    if not path:
        raise UsageError(f"{role}: empty path")
    root = os.path.abspath(os.fsencode(path))
    return Location(url, root.rstrip(b"/") or b"/")


def _remote(url: str, scheme: str, role: str) -> Location:
    parts = urlsplit(url)
    if parts.password is not None:
        raise UsageError(
            f"{role} {url.replace(parts.password, '***')!r}: no password in the URL; use "
            "--sftp-password-file or REHOST_SFTP_PASSWORD, or a key."
        )
    if not parts.hostname:
        raise UsageError(f"{role} {url!r}: no {'host' if scheme == 'sftp' else 'bucket'}")
    path = unquote(parts.path).encode("utf-8", "surrogateescape")
    if scheme == "s3":
        root = (parts.netloc.encode() + b"/" + path.strip(b"/")).rstrip(b"/")
        return Location(url, root, S3, "s3", parts.netloc)
    if not path.startswith(b"/"):
        path = b"/" + path
    return Location(
        url,
        path.rstrip(b"/") or b"/",
        SFTP,
        "sftp",
        parts.hostname,
        parts.port or 22,
        unquote(parts.username) if parts.username else None,
    )
