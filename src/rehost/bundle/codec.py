"""Deterministic JSON text for documents, and file names from natural keys."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

import orjson

_FILE = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
_LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE

# orjson writes what the standard library's json.dumps writes with sort_keys
# and ensure_ascii=False (indent 2, or compact), much faster; only some floats
# are spelled differently (1e-7, not 1e-07), the same number either way. It
# refuses integers beyond 64 bits: those documents take the slower path, which
# is as deterministic.
# (Reading stays with json.loads: orjson.loads turns such integers into floats.)


def dumps_file_bytes(doc: Any) -> bytes:
    """One document per file: sorted keys, two-space indent, trailing newline (UTF-8)."""
    try:
        return orjson.dumps(doc, option=_FILE)
    except TypeError:
        text = json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        return text.encode("utf-8")


def dumps_line_bytes(doc: Any) -> bytes:
    """One document per line (JSON Lines): sorted keys, compact (UTF-8)."""
    try:
        return orjson.dumps(doc, option=_LINE)
    except TypeError:
        return canonical(doc).encode("utf-8") + b"\n"


def dumps_file(doc: Any) -> str:
    return dumps_file_bytes(doc).decode("utf-8")


def dumps_line(doc: Any) -> str:
    return dumps_line_bytes(doc).decode("utf-8")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str, limit: int = 80) -> str:
    """A file-name-safe, lower-case form: 'AC/DC — Live' → 'ac-dc-live'."""
    norm = unicodedata.normalize("NFKD", text)
    ascii_text = norm.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NON_WORD.sub("-", ascii_text).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rstrip("-")
    return slug


def short_hash(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:8]


def key_label(key: Any) -> str:
    """A person-readable form of a natural key value (nested references flattened)."""
    if isinstance(key, dict):
        parts = [key_label(v) for k, v in sorted(key.items()) if k != "_id"]
        if not parts and "_id" in key:
            return f"#{key['_id']}"
        return " / ".join(parts)
    if isinstance(key, list):
        return " / ".join(key_label(v) for v in key)
    if key is None:
        return "∅"
    return str(key)
