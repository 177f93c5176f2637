"""Bundles: deterministic directories of JSON documents plus a manifest."""

from rehost.bundle.codec import dumps_file, dumps_line, slugify
from rehost.bundle.reader import Bundle
from rehost.bundle.writer import BundleWriter

FORMAT = "rehost-bundle"
FORMAT_VERSION = 1

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Bundle",
    "BundleWriter",
    "dumps_file",
    "dumps_line",
    "slugify",
]
