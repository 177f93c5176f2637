"""rehost: move a self-hosted application's data to a new home."""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rehost.migration import Migration as Migration


def __getattr__(name: str) -> object:
    # rehost.Migration is loaded on first use: 'import rehost' stays light.
    if name == "Migration":
        from rehost.migration import Migration

        return Migration
    raise AttributeError(f"module 'rehost' has no attribute {name!r}")
