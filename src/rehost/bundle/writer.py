"""Writing a bundle: into a temporary directory, swapped in only when complete."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rehost.bundle.codec import dumps_file, dumps_file_bytes, dumps_line_bytes, short_hash, slugify
from rehost.errors import BundleError

MANIFEST = "manifest.json"


def _is_bundle_dir(path: Path) -> bool:
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == "rehost-bundle"


def check_destination(path: Path) -> None:
    """Refuse to replace a directory that holds anything but a bundle (dotfiles aside)."""
    if path.exists() and not path.is_dir():
        raise BundleError(f"{path} exists and is not a directory; choose another bundle path.")
    if path.is_dir():
        visible = [p for p in path.iterdir() if not p.name.startswith(".")]
        if visible and not _is_bundle_dir(path):
            raise BundleError(
                f"{path} is not empty and does not hold a rehost bundle; refusing to replace "
                "its contents. Choose an empty or new directory."
            )


class _FilesType:
    """One file per document, named from its natural key; collisions get a short hash."""

    def __init__(self, root: Path, table: str) -> None:
        self.dir = root / table
        self.dir.mkdir(parents=True, exist_ok=True)
        self.table = table
        # slug → (identity of the first document, whether the slug is shared)
        self.first: dict[str, tuple[Any, str]] = {}
        self.shared: set[str] = set()

    def add(self, doc: Any, label: str, identity: Any, files: dict[str, str]) -> None:
        slug = slugify(label) or "record"
        if slug in self.first:
            if slug not in self.shared:
                first_identity, first_name = self.first[slug]
                new_name = f"{slug}-{short_hash(first_identity)}.json"
                os.replace(self.dir / first_name, self.dir / new_name)
                files[f"{self.table}/{new_name}"] = files.pop(f"{self.table}/{first_name}")
                self.shared.add(slug)
            name = f"{slug}-{short_hash(identity)}.json"
        else:
            name = f"{slug}.json"
            self.first[slug] = (identity, name)
        rel = f"{self.table}/{name}"
        if rel in files:
            raise BundleError(
                f"Two {self.table} records would both be written to {rel}: their natural keys "
                "are identical. Check the key with 'rehost inspect'."
            )
        data = dumps_file_bytes(doc)
        (self.dir / name).write_bytes(data)
        files[rel] = hashlib.sha256(data).hexdigest()


class _LinesType:
    """JSON Lines, one document a line, in primary-key order."""

    def __init__(self, root: Path, table: str) -> None:
        self.rel = f"{table}.jsonl"
        self.fh = open(root / self.rel, "wb")  # noqa: SIM115 - closed in close()
        self.hash = hashlib.sha256()

    def add(self, doc: Any, label: str, identity: Any, files: dict[str, str]) -> None:
        data = dumps_line_bytes(doc)
        self.fh.write(data)
        self.hash.update(data)

    def close(self, files: dict[str, str]) -> None:
        self.fh.close()
        files[self.rel] = self.hash.hexdigest()


class BundleWriter:
    """Write documents, then ``commit(manifest)``; ``abort()`` leaves the destination as it was."""

    def __init__(self, dest: Path) -> None:
        self.dest = Path(dest)
        check_destination(self.dest)
        parent = self.dest.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.rehost-", dir=parent))
        self.files: dict[str, str] = {}
        self._types: dict[str, _FilesType | _LinesType] = {}

    def begin_type(self, table: str, layout: str) -> None:
        if layout == "lines":
            self._types[table] = _LinesType(self.tmp, table)
        else:
            self._types[table] = _FilesType(self.tmp, table)

    def add(self, table: str, doc: Any, label: str, identity: Any) -> None:
        self._types[table].add(doc, label, identity, self.files)

    def end_type(self, table: str) -> None:
        t = self._types.pop(table)
        if isinstance(t, _LinesType):
            t.close(self.files)

    def commit(self, manifest: dict[str, Any]) -> None:
        for t in list(self._types):
            self.end_type(t)
        manifest = dict(manifest)
        manifest["files"] = dict(sorted(self.files.items()))
        (self.tmp / MANIFEST).write_text(dumps_file(manifest), encoding="utf-8")
        self._swap()

    def _swap(self) -> None:
        if not self.dest.exists():
            os.replace(self.tmp, self.dest)
            return
        trash = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.old-", dir=self.tmp.parent))
        for entry in self.dest.iterdir():
            if not entry.name.startswith("."):
                os.replace(entry, trash / entry.name)
        for entry in self.tmp.iterdir():
            os.replace(entry, self.dest / entry.name)
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def abort(self) -> None:
        for t in list(self._types.values()):
            if isinstance(t, _LinesType):
                t.fh.close()
        self._types.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
