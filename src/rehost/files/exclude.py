"""``--exclude`` patterns: which paths of a tree a transfer, verify or inventory leaves out.

The rules are rsync's and .gitignore's, in the common subset:

* ``*.tmp`` — a pattern without ``/`` matches a name at any depth;
* ``cache/`` — a trailing ``/`` matches directories only;
* ``/tmp`` — a leading ``/`` anchors the pattern at the tree's root;
* ``thumbs/*.jpg`` — a pattern with a ``/`` inside is matched against the
  whole path from the root;
* ``*`` and ``?`` match within one name (never ``/``), ``[abc]`` one of a set,
  ``**`` any number of directories (``logs/**/old``, ``**/build``).

A directory that is excluded is not entered: nothing below it is seen. An
excluded path is invisible on both sides: never copied, compared, reported as
extra on the target, or removed by ``--delete-extra`` (rsync's default, which
protects what the patterns leave out).

Pure: paths are the relative paths (bytes) the walks yield; patterns are
matched on their file-system bytes, so names that are not UTF-8 can be
excluded too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rehost.errors import UsageError


@dataclass(frozen=True)
class _Rule:
    text: str
    regex: re.Pattern[bytes]
    dirs_only: bool
    whole_path: bool  # matched against the path from the root, not the last name


def _translate(glob: bytes, text: str) -> bytes:
    """A glob (no leading or trailing ``/``) as a regular expression over bytes."""
    out = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i : i + 1]
        if glob.startswith(b"**", i):
            end = i + 2
            if end < n and glob[end : end + 1] == b"/":  # "**/": zero or more directories
                out.append(b"(?:.*/)?")
                end += 1
            else:
                out.append(b".*")
            i = end
            continue
        if c == b"*":
            out.append(b"[^/]*")
        elif c == b"?":
            out.append(b"[^/]")
        elif c == b"[":
            close = glob.find(b"]", i + 2 if glob[i + 1 : i + 2] in (b"!", b"^") else i + 1)
            if close < 0:
                raise UsageError(f"--exclude {text!r}: '[' without a closing ']'.")
            body = glob[i + 1 : close]
            if body[:1] in (b"!", b"^"):
                body = b"^" + body[1:]
            out.append(b"[" + body.replace(b"\\", b"\\\\") + b"]")
            i = close + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return b"".join(out)


def _rule(text: str) -> _Rule:
    raw = os.fsencode(text)
    dirs_only = raw.endswith(b"/")
    anchored = raw.startswith(b"/")
    glob = raw.strip(b"/")
    if not glob:
        raise UsageError(f"--exclude {text!r} names nothing (it would exclude the whole tree).")
    whole_path = anchored or b"/" in glob
    try:
        regex = re.compile(_translate(glob, text) + b"\\Z", re.DOTALL)
    except re.error as exc:
        raise UsageError(f"--exclude {text!r} is not a valid pattern: {exc}.") from None
    return _Rule(text, regex, dirs_only, whole_path)


class Excludes:
    """Compiled ``--exclude`` patterns; ``excluded(rel, is_dir)`` decides one path."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self._rules = [_rule(p) for p in self.patterns]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def excluded(self, rel: bytes, is_dir: bool) -> bool:
        """True when the path ``rel`` (relative to the root) is left out."""
        if not rel:
            return False  # the root itself is what the user asked for
        name = rel.rsplit(b"/", 1)[-1]
        for rule in self._rules:
            if rule.dirs_only and not is_dir:
                continue
            if rule.regex.match(rel if rule.whole_path else name):
                return True
        return False

    def keep(self, rel: bytes, names: Iterable[tuple[bytes, bool]]) -> list[tuple[bytes, bool]]:
        """The (name, is_dir) children of directory ``rel`` that are not excluded."""
        if not self._rules:
            return list(names)
        at = rel + b"/" if rel else b""
        return [(n, d) for n, d in names if not self.excluded(at + n, d)]


NONE = Excludes()
