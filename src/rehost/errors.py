"""Errors a user can meet. Each says what happened, to what, and what to do.

The command line prints the message (no traceback unless ``--debug``) and exits
with ``exit_code``: 2 for usage mistakes, 1 when the work found errors.
"""

from __future__ import annotations


class RehostError(Exception):
    """Base class: a problem a user can fix; ``str()`` is the whole message."""

    exit_code = 1


class UsageError(RehostError):
    """The command was called wrongly (bad option, bad URL, password on the command line)."""

    exit_code = 2


class ConnectionFailed(RehostError):
    """A database or share could not be reached."""


class ProfileError(RehostError):
    """The profile names something that does not exist, or is not valid."""


class SchemaError(RehostError):
    """The schema cannot be exported as documents (no natural key, unbreakable cycle …)."""


class BundleError(RehostError):
    """The bundle is missing, foreign, tampered with, truncated or of another version."""


class WrongPassword(RehostError):
    """The bundle password does not open this bundle."""


class SecretError(RehostError):
    """A secret could not be decrypted or encrypted with an application key."""


class VersionMismatch(RehostError):
    """Source and target application versions differ."""


class KeyCollision(RehostError):
    """Two records share a natural key that must be unique."""


class DanglingReference(RehostError):
    """A record references a record that is in neither the bundle nor the target."""


class TargetWriteError(RehostError):
    """The target refused a write (constraint violation …); everything was rolled back."""
