"""The rehost command line: parses options, calls the library, renders results.

Each command group lives in a module of its own that registers its commands on
import. The ``rehost`` program imports only the module of the command it runs
(``rehost files …`` needs neither SQLAlchemy nor the database drivers, about
0.2 s of start-up); ``rehost --help``, an unknown command or ``from rehost.cli
import app`` import them all.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

MODULES = ("clone", "database", "demo", "files", "migrate")

# The module that registers each top-level command (a test keeps this complete).
COMMANDS = {
    "clone": "clone",
    "inspect": "database",
    "validate": "database",
    "export": "database",
    "import": "database",
    "demo": "demo",
    "files": "files",
    "init": "migrate",
    "check": "migrate",
    "run": "migrate",
    "status": "migrate",
    "log": "migrate",
    "ack": "migrate",
    "cutover": "migrate",
}


def register(modules: tuple[str, ...] | list[str] = MODULES) -> None:
    for name in modules:
        importlib.import_module(f"rehost.cli.{name}")


def modules_for(argv: list[str]) -> list[str]:
    """The command modules a command line needs: the named command's, none for
    ``--version`` alone, all of them otherwise (help, no command, a typo)."""
    for arg in argv:
        if arg == "--":
            break
        if not arg.startswith("-"):
            module = COMMANDS.get(arg)
            return [module] if module else list(MODULES)
    if "--version" in argv and not {"-h", "--help"} & set(argv):
        return []
    return list(MODULES)


def main() -> None:
    from rehost.cli import core

    register(modules_for(sys.argv[1:]))
    core.main()


def __getattr__(name: str) -> Any:
    if name == "app":
        register()
        from rehost.cli.core import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMMANDS", "MODULES", "app", "main", "modules_for", "register"]
