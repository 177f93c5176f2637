"""Where the bundle password comes from: a file, the environment, or a prompt.

Never from the command line itself, where other users could read it.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from rehost.errors import UsageError

ENV_VAR = "REHOST_PASSWORD"

NO_PASSWORD = (
    "A bundle password is needed: give --password-file FILE, set REHOST_PASSWORD, "
    "or run in a terminal to be prompted."
)


def _from_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"The password file {path} cannot be read ({reason}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"The password file {path} is not UTF-8 text.") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise UsageError(f"The password file {path} is empty: write the bundle password in it.")
    return text


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # stdin closed
        return False


def _prompt(confirm: bool) -> str:
    try:
        password = getpass.getpass("Bundle password: ", stream=sys.stderr)
        if not password:
            raise UsageError("No bundle password was entered.")
        if confirm:
            again = getpass.getpass("Bundle password again: ", stream=sys.stderr)
            if again != password:
                raise UsageError("The two bundle passwords differ: nothing was done. Run again.")
    except EOFError:
        raise UsageError(NO_PASSWORD) from None
    return password


def read_password(
    password_file: Path | None, *, confirm: bool, interactive: bool | None = None
) -> str:
    """The bundle password: from ``password_file``, else ``REHOST_PASSWORD``, else a prompt.

    ``confirm`` asks twice when prompting (for a new bundle). ``interactive``
    defaults to whether standard input is a terminal.
    """
    if password_file is not None:
        return _from_file(Path(password_file))
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    if interactive is None:
        interactive = _stdin_is_terminal()
    if interactive:
        return _prompt(confirm)
    raise UsageError(NO_PASSWORD)
