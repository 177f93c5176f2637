"""Reading a bundle: the manifest, checksums, and documents in order."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rehost.errors import BundleError

MANIFEST = "manifest.json"
SUPPORTED_VERSION = 1


class Bundle:
    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, path: Path | str) -> Bundle:
        p = Path(path)
        if not p.is_dir():
            raise BundleError(f"Bundle {p} does not exist or is not a directory.")
        mpath = p / MANIFEST
        try:
            text = mpath.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BundleError(
                f"{p} is not a rehost bundle: it has no {MANIFEST}. Give the directory that "
                "'rehost export' wrote."
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"Cannot read {mpath}: {exc}.") from None
        try:
            manifest = json.loads(text)
        except ValueError as exc:
            raise BundleError(
                f"{mpath} is damaged (not valid JSON: {exc}). Export the bundle again."
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != "rehost-bundle":
            raise BundleError(f"{mpath} does not describe a rehost bundle (foreign directory).")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > SUPPORTED_VERSION:
            raise BundleError(
                f"Bundle {p} has format version {version!r}; this rehost reads up to "
                f"{SUPPORTED_VERSION}. Upgrade rehost to import it."
            )
        for field in ("model", "files", "counts"):
            if field not in manifest:
                raise BundleError(f"{mpath} is incomplete: it has no '{field}'.")
        return cls(p, manifest)

    def verify(self) -> None:
        """Check every file against the manifest's SHA-256; name the first bad one."""
        files: dict[str, str] = self.manifest["files"]
        for rel, expected in files.items():
            fp = self.path / rel
            if ".." in Path(rel).parts or Path(rel).is_absolute():
                raise BundleError(f"Bundle manifest lists an unsafe path: {rel}.")
            h = hashlib.sha256()
            try:
                with open(fp, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
            except FileNotFoundError:
                raise BundleError(
                    f"Bundle file {rel} is missing from {self.path}; the bundle is incomplete. "
                    "Export it again."
                ) from None
            if h.hexdigest() != expected:
                raise BundleError(
                    f"Bundle file {rel} does not match its checksum in the manifest: it was "
                    "changed or truncated after export. Export the bundle again (or restore it "
                    "from version control)."
                )
        for rel in sorted(self._present_files()):
            if rel != MANIFEST and rel not in files:
                raise BundleError(
                    f"Bundle file {rel} is not listed in the manifest: it was added after "
                    "export and would be ignored. Remove it, or export the bundle again."
                )

    def _present_files(self) -> Iterator[str]:
        """Files in the bundle directory; dotfiles and dot-directories (.git) aside."""
        for top, dirs, names in os.walk(self.path):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            base = Path(top).relative_to(self.path)
            for n in names:
                if not n.startswith("."):
                    yield (base / n).as_posix()

    def files_of(self, table: str) -> list[str]:
        prefix = f"{table}/"
        lines = f"{table}.jsonl"
        return sorted(r for r in self.manifest["files"] if r.startswith(prefix) or r == lines)

    def documents(self, table: str) -> Iterator[dict[str, Any]]:
        """Documents of a root entity type, in a stable order."""
        for rel in self.files_of(table):
            fp = self.path / rel
            if rel.endswith(".jsonl"):
                with open(fp, encoding="utf-8") as fh:
                    for n, line in enumerate(fh, 1):
                        if line.strip():
                            yield _parse(line, f"{rel}:{n}")
            else:
                yield _parse(fp.read_text(encoding="utf-8"), rel)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BundleError(f"Bundle document {where} is not valid JSON: {exc}.") from None
    if not isinstance(doc, dict):
        raise BundleError(f"Bundle document {where} is not a JSON object.")
    return doc
