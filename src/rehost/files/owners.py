"""Owner and group mapping: by name (default), by number, or not at all.

By name, a source uid is looked up in the source's user database, the name is
mapped (``--map-user alice=alice2``), and the target's uid for that name is
used. Here source and target are both this machine, so both lookups use its
``pwd``/``grp`` databases; remote backends will bring their own name tables.
An id without a name on the source is kept as a number (as rsync does); a name
the target does not know is reported as not preserved.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rehost.errors import UsageError
from rehost.files.plan import Wanted

OWNER_MODES = ("name", "numeric", "none")


def parse_map(pairs: Iterable[str], what: str) -> dict[str, str]:
    """``["a=b", …]`` → ``{"a": "b"}``; a malformed pair is a usage error."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src or not dst:
            raise UsageError(
                f"--map-{what} {pair!r}: expected SOURCE=TARGET, e.g. --map-{what} alice=alice2"
            )
        mapping[src] = dst
    return mapping


_LOOKUP = {
    "user name": lambda uid: pwd.getpwuid(uid).pw_name,
    "user id": lambda name: pwd.getpwnam(name).pw_uid,
    "group name": lambda gid: grp.getgrgid(gid).gr_name,
    "group id": lambda name: grp.getgrnam(name).gr_gid,
}


@lru_cache(maxsize=16384)
def _lookup(what: str, key: int | str) -> Any:
    """A name for an id or an id for a name in this machine's databases; None if unknown."""
    try:
        return _LOOKUP[what](key)
    except KeyError:
        return None


def user_name(uid: int) -> str:
    return _lookup("user name", uid) or str(uid)


def group_name(gid: int) -> str:
    return _lookup("group name", gid) or str(gid)


@dataclass(frozen=True)
class OwnerMap:
    mode: str = "name"
    users: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in OWNER_MODES:
            raise UsageError(f"--owners {self.mode!r}: expected one of {', '.join(OWNER_MODES)}")
        if self.mode != "name" and (self.users or self.groups):
            raise UsageError("--map-user and --map-group need --owners name (the default)")

    def wanted(
        self, src_uid: int, src_gid: int, *, xattrs: bool = True
    ) -> tuple[Wanted, list[str]]:
        """The owner a target entry should get, and why parts of it cannot be kept.

        Without root, chown to another user fails; rehost then leaves the owner
        alone (and says so) rather than retrying on every run.
        """
        notes: list[str] = []
        uid, why_u = self.uid(src_uid)
        gid, why_g = self.gid(src_gid)
        notes += [f"owner: {why}" for why in (why_u, why_g) if why]
        if os.geteuid() != 0:
            if uid is not None and uid != os.geteuid():
                notes.append("owner: not running as root")
                uid = None
            if gid is not None and gid != os.getegid() and gid not in os.getgroups():
                notes.append("group: not running as root")
                gid = None
        return Wanted(uid, gid, xattrs), notes

    def uid(self, src_uid: int) -> tuple[int | None, str | None]:
        """(target uid or None to leave it, a reason when it cannot be preserved)."""
        return self._map(src_uid, self.users, "user")

    def gid(self, src_gid: int) -> tuple[int | None, str | None]:
        return self._map(src_gid, self.groups, "group")

    def _map(self, src_id: int, table: dict[str, str], what: str) -> tuple[int | None, str | None]:
        if self.mode == "none":
            return None, None
        if self.mode == "numeric":
            return src_id, None
        name = _lookup(f"{what} name", src_id)
        if name is None:
            return src_id, None
        name = table.get(name, name)
        target = _lookup(f"{what} id", name)
        if target is None:
            return None, f"no {what} named {name!r} on the target"
        return target, None
