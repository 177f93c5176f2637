"""The rehost command line: parses options, calls the library, renders results."""

from rehost.cli import (  # noqa: E402,F401  (registers the commands)
    clone,
    database,
    demo,
    files,
    migrate,
)
from rehost.cli.app import app, main

__all__ = ["app", "main"]
