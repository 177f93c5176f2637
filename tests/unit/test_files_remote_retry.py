"""Retries of SFTP and S3 operations: network errors with backoff, a changed file once."""

from __future__ import annotations

import pytest

from rehost.files.local import FileChanged
from rehost.files.location import RemoteOptions
from rehost.files.remote import NetworkError, _retrying

OPTS = RemoteOptions(retries=2, backoff=0.0)


def run(*outcomes: BaseException | str) -> tuple[str | BaseException, int, int]:
    """Call an operation failing with ``outcomes`` in turn: (result or error, calls, drops)."""
    calls, drops = [], []

    def op() -> str:
        calls.append(1)
        out = outcomes[len(calls) - 1]
        if isinstance(out, BaseException):
            raise out
        return out

    try:
        result: str | BaseException = _retrying(
            OPTS, lambda e: isinstance(e, ConnectionError), lambda: drops.append(1), op
        )
    except (FileChanged, OSError) as exc:
        result = exc
    return result, len(calls), len(drops)


def test_a_changed_file_is_read_again_once() -> None:
    assert run(FileChanged("changed"), "ok") == ("ok", 2, 0)
    result, calls, _ = run(FileChanged("changed"), FileChanged("again"), "never")
    assert isinstance(result, FileChanged) and str(result) == "again" and calls == 2


def test_network_errors_are_retried_then_reported() -> None:
    assert run(ConnectionError("down"), FileChanged("changed"), "ok") == ("ok", 3, 1)
    result, calls, drops = run(*[ConnectionError("down")] * 4)
    assert isinstance(result, NetworkError) and (calls, drops) == (3, 3)
    assert str(result) == "[Errno 104] network: down (tried 3 times)"


def test_other_errors_are_not_retried() -> None:
    for exc in (FileNotFoundError(2, "gone"), PermissionError(13, "no"), ValueError("bad")):
        if isinstance(exc, OSError):
            assert run(exc, "ok") == (exc, 1, 0)
        else:
            with pytest.raises(ValueError):
                run(exc, "ok")
