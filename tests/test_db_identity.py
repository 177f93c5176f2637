"""Two URLs that name one database are recognised as one, on every engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

from rehost.db.connect import open_engine
from rehost.db.identity import same_database


def _respelled(url: str) -> str:
    """The same database under another spelling: localhost for 127.0.0.1, the port
    written out, another driver name."""
    u = make_url(url)
    port = u.port or {"postgresql": 5432, "mysql": 3306}[u.get_backend_name()]
    scheme = {"postgresql": "postgres", "mysql": "mariadb"}[u.get_backend_name()]
    host = "localhost" if u.host == "127.0.0.1" else u.host
    return f"{scheme}://{u.username}@{host}:{port}/{u.database}"


def test_one_database_under_two_spellings_is_one(
    make_db: Callable[[str], str], engine_kind: str, tmp_path: Path
) -> None:
    url = make_db(engine_kind)
    other = make_db(engine_kind)
    if engine_kind == "sqlite":
        path = Path(make_url(url).database or "")
        alias = tmp_path / "alias.db"
        alias.symlink_to(path)
        spellings = [f"sqlite:///{path.parent}/./{path.name}", f"sqlite:///{alias}"]
    else:
        spellings = [_respelled(url)]
    engines = [open_engine(u) for u in (url, other, *spellings)]
    try:
        first, second, *same = engines
        for e in same:
            assert same_database(first, e)
            assert same_database(e, first)
            assert not same_database(second, e)
        assert not same_database(first, second)
    finally:
        for e in engines:
            e.dispose()


def test_a_sqlite_file_not_made_yet_is_not_an_existing_one(
    make_db: Callable[[str], str], tmp_path: Path
) -> None:
    existing = open_engine(make_db("sqlite"))
    new = open_engine(f"sqlite:///{tmp_path / 'new.db'}", must_exist=False)
    memory = open_engine("sqlite://", must_exist=False)
    try:
        assert not same_database(existing, new)
        assert not same_database(memory, memory)
    finally:
        for e in (existing, new, memory):
            e.dispose()
