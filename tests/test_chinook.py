"""Chinook, real data no one here wrote, exported and imported by name across engines.

Each target is an empty database whose schema is created from the source's
reflected metadata; after an import the two databases are compared row by row,
with every ID that may differ replaced by the natural key of the row it points
to (see :func:`snapshot`), so the comparison holds whatever IDs the target hands
out. Decimals are compared as :class:`~decimal.Decimal`, datetimes as naive
:class:`~datetime.datetime`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.pool import NullPool
from typer.testing import CliRunner

from rehost.cli import app
from tests.conftest import DatabaseFactory, chinook_dir, engines, require_server

DATA = Path(__file__).parent / "data"
SQLITE_PROFILE = DATA / "chinook_sqlite.yaml"
PG_PROFILE = DATA / "chinook_postgresql.yaml"

# Chinook's row counts (SQLite naming); the PostgreSQL dump holds the same rows.
CHINOOK_ROWS = {
    "Album": 347,
    "Artist": 275,
    "Customer": 59,
    "Employee": 8,
    "Genre": 25,
    "Invoice": 412,
    "InvoiceLine": 2240,
    "MediaType": 5,
    "Playlist": 18,
    "PlaylistTrack": 8715,
    "Track": 3503,
}
PG_NAMES = {
    "Album": "album",
    "Artist": "artist",
    "Customer": "customer",
    "Employee": "employee",
    "Genre": "genre",
    "Invoice": "invoice",
    "InvoiceLine": "invoice_line",
    "MediaType": "media_type",
    "Playlist": "playlist",
    "PlaylistTrack": "playlist_track",
    "Track": "track",
}
NO_CHANGES = {"create": 0, "update": 0, "unchanged": 0, "skip": 0, "merge": 0, "delete": 0}

runner = CliRunner()


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"REHOST_PASSWORD": "pw-for-tests"})
    assert result.exit_code == 0, result.output
    return result.stdout


# --------------------------------------------------------------------------- helpers


def create_schema_like(source_url: str, target_url: str) -> None:
    """Create the source's tables (columns, keys, foreign keys, indexes) on an empty target,
    from the source's reflected SQLAlchemy metadata."""
    source = sa.create_engine(source_url, poolclass=NullPool)
    try:
        md = sa.MetaData()
        md.reflect(source)
    finally:
        source.dispose()
    target = sa.create_engine(target_url, poolclass=NullPool)
    try:
        if target.dialect.name != source.dialect.name:
            # Reflected types are the source dialect's own, and some do not carry over:
            # PostgreSQL has neither SQLite's NVARCHAR nor its DATETIME; MariaDB renders
            # NVARCHAR as NATIONAL VARCHAR (utf8mb3: no 4-byte characters) and PostgreSQL's
            # TIMESTAMP as its own TIMESTAMP (1970-2038 only, auto-updated; Chinook has
            # birth dates in the 1940s). as_generic() maps each to its portable type
            # (Unicode, DateTime, Numeric, Integer), which every dialect renders natively.
            for table in md.tables.values():
                for column in table.columns:
                    column.type = column.type.as_generic()
        md.create_all(target)
    finally:
        target.dispose()


def _profile_keys(profile: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(natural key columns, owner column) per table, as the profile declares them."""
    entities = yaml.safe_load(profile.read_text())["entities"]
    keys = {t: e["key"] for t, e in entities.items() if e.get("key")}
    owners = {t: e["owner"] for t, e in entities.items() if e.get("owner")}
    return keys, owners


def _normalize(column: sa.Column[Any], value: Any) -> Any:
    """A driver's value in a form equal across engines (SQLite hands out floats and
    strings where PostgreSQL and MariaDB hand out Decimal and datetime)."""
    if value is None:
        return None
    if isinstance(column.type, sa.DateTime | sa.Date):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(column.type, sa.Numeric):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return number.normalize()  # one spelling per value: 0.99, not 0.990 (see snapshot)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


Row = tuple[tuple[str, Any], ...]


def snapshot(url: str, profile: Path) -> dict[str, Counter[Row]]:
    """Every table's rows as ((column, value), …) tuples, equal across servers.

    A surrogate ID (a single-column primary key that is not a reference) is left out;
    a reference is replaced by the identity of the row it points to: its natural key
    from the profile (references inside the key resolved the same way) or, for a
    table without a key (Chinook's Playlist), its content together with the content
    of the rows it owns. A dangling reference raises KeyError.
    """
    keys, owners = _profile_keys(profile)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        md = sa.MetaData()
        md.reflect(engine)
        quote = engine.dialect.identifier_preparer.quote
        data: dict[str, list[dict[str, Any]]] = {}
        with engine.connect() as conn:
            for table in md.sorted_tables:
                cols = list(table.columns)
                query = f"SELECT {', '.join(quote(c.name) for c in cols)} FROM {quote(table.name)}"
                data[table.name] = [
                    {c.name: _normalize(c, v) for c, v in zip(cols, row, strict=True)}
                    for row in conn.exec_driver_sql(query)
                ]
    finally:
        engine.dispose()

    refs = {
        t.name: {fk.parent.name: (fk.column.table.name, fk.column.name) for fk in t.foreign_keys}
        for t in md.tables.values()
    }
    surrogate: dict[str, str] = {}
    for t in md.tables.values():
        pk = [c.name for c in t.primary_key.columns]
        if len(pk) == 1 and pk[0] not in refs[t.name]:
            surrogate[t.name] = pk[0]
    owned_by: dict[str, list[tuple[str, str]]] = defaultdict(list)  # parent -> [(child, column)]
    for child, column in owners.items():
        owned_by[refs[child][column][0]].append((child, column))

    indexes: dict[tuple[str, str], dict[Any, list[dict[str, Any]]]] = {}

    def rows_where(table: str, column: str, value: Any) -> list[dict[str, Any]]:
        if (table, column) not in indexes:
            index: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            for r in data[table]:
                index[r[column]].append(r)
            indexes[table, column] = index
        return indexes[table, column].get(value, [])

    memo: dict[tuple[str, int], Any] = {}

    def identity(table: str, row: dict[str, Any]) -> Any:
        k = (table, id(row))
        if k not in memo:
            if table in keys:
                memo[k] = tuple(value(table, c, row[c]) for c in keys[table])
            else:
                children = []
                for child, column in sorted(owned_by[table]):
                    kids = rows_where(child, column, row[refs[child][column][1]])
                    contents = sorted((content(child, kid, skip=column) for kid in kids), key=repr)
                    children.append((child, contents))
                # A digest stands in for the owned rows: the identity is hashed once per
                # referencing row, and a playlist owns thousands of entries.
                digest = hashlib.sha256(repr(children).encode()).hexdigest()[:16]
                memo[k] = (content(table, row), f"owns #{digest}")
        return memo[k]

    def value(table: str, column: str, v: Any) -> Any:
        if v is None or column not in refs[table]:
            return v
        ref_table, ref_column = refs[table][column]
        (target,) = rows_where(ref_table, ref_column, v)  # exactly one row: else a broken FK
        return identity(ref_table, target)

    def content(table: str, row: dict[str, Any], skip: str | None = None) -> Row:
        return tuple(
            (c, value(table, c, v))
            for c, v in row.items()
            if c != surrogate.get(table) and c != skip
        )

    return {t: Counter(content(t, r) for r in rows) for t, rows in data.items()}


def row_counts(snap: dict[str, Counter[Row]]) -> dict[str, int]:
    return {t: rows.total() for t, rows in snap.items()}


def assert_same_content(actual: dict[str, Counter[Row]], expected: dict[str, Counter[Row]]):
    assert row_counts(actual) == row_counts(expected)
    for table, rows in expected.items():
        missing, extra = rows - actual[table], actual[table] - rows
        assert not missing and not extra, (
            f"{table}: {missing.total()} source row(s) missing on the target, "
            f"{extra.total()} unexpected; e.g. missing {list(missing)[:2]}, "
            f"unexpected {list(extra)[:2]}"
        )


def as_dicts(rows: Counter[Row]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows.elements()]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sqlite_chinook(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict[str, Any]]:
    """(URL of a private copy of the SQLite Chinook, its full export with the profile,
    the export's JSON report).

    Module-wide: the tests only read the copy, and export once saves time."""
    where = tmp_path_factory.mktemp("chinook")
    path = where / "chinook.sqlite"
    shutil.copyfile(chinook_dir() / "Chinook_Sqlite.sqlite", path)
    path.chmod(0o644)
    url = f"sqlite:///{path}"
    bundle = where / "bundle"
    report = json.loads(ok("export", url, str(bundle), "--profile", str(SQLITE_PROFILE), "--json"))
    return url, bundle, report


@pytest.fixture(scope="module")
def sqlite_chinook_snapshot(sqlite_chinook: tuple[str, Path, Any]) -> dict[str, Counter[Row]]:
    snap = snapshot(sqlite_chinook[0], SQLITE_PROFILE)
    assert row_counts(snap) == CHINOOK_ROWS  # the comparison has something to compare
    return snap


def imported_target(make_db: Any, kind: str, source: str, bundle: Path) -> str:
    """An empty target of ``kind`` with the source's schema, then the bundle imported."""
    target = make_db(kind)
    create_schema_like(source, target)
    report = json.loads(ok("import", str(bundle), target, "--json"))
    assert report["status"] == "succeeded", report
    return target


@pytest.fixture(scope="module", params=engines, ids=engines)
def sqlite_chinook_imported(
    request: pytest.FixtureRequest,
    sqlite_chinook: tuple[str, Path, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(target URL, import report): the full SQLite Chinook bundle imported into an
    empty target of each engine (skipped, under CI=true failed, without its server).

    Module-wide, so that the import test and the re-import test share one import."""
    kind: str = request.param
    require_server(kind)
    source, bundle, _ = sqlite_chinook
    factory = DatabaseFactory(tmp_path_factory.mktemp(f"target-{kind}"))
    try:
        target = factory(kind)
        create_schema_like(source, target)
        report = json.loads(ok("import", str(bundle), target, "--json"))
        yield target, report
    finally:
        factory.close()


# --------------------------------------------------------------------------- tests


def test_sqlite_chinook_imports_row_for_row(
    sqlite_chinook, sqlite_chinook_snapshot, sqlite_chinook_imported
):
    _, bundle, _ = sqlite_chinook
    target, report = sqlite_chinook_imported
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["counts"] == CHINOOK_ROWS
    assert report["status"] == "succeeded"
    assert report["totals"] == NO_CHANGES | {"create": sum(CHINOOK_ROWS.values())}
    assert_same_content(snapshot(target, SQLITE_PROFILE), sqlite_chinook_snapshot)


def test_reimport_preview_is_unchanged_except_keyless_playlists(
    sqlite_chinook, sqlite_chinook_snapshot, sqlite_chinook_imported
):
    _, bundle, export_report = sqlite_chinook
    target, _ = sqlite_chinook_imported
    model = json.loads((bundle / "manifest.json").read_text())["model"]["entities"]

    report = json.loads(
        ok("import", str(bundle), target, "--on-conflict", "overwrite", "--preview", "--json")
    )
    assert report["status"] == "preview"
    counts = {t: v["counts"] for t, v in report["tables"].items()}
    assert set(counts) == set(CHINOOK_ROWS)

    # Playlist is the only entity type without a natural key (Chinook has two
    # playlists named "Music", two "Movies", two "TV Shows" …): nothing on the target
    # can match its records, so a re-import creates every playlist again, each with
    # all its entries. The report must say so, not pass it off as unchanged.
    keyless = {t for t, e in model.items() if e["key"] is None and e["owner"] is None}
    assert keyless == {"Playlist"}
    assert ("NO_NATURAL_KEY", "Playlist") in {
        (f["code"], f["subject"]) for f in export_report["findings"]
    }  # the export warned
    assert model["PlaylistTrack"]["owner"] == "PlaylistId"
    assert counts["Playlist"] == NO_CHANGES | {"create": CHINOOK_ROWS["Playlist"]}
    assert counts["PlaylistTrack"] == NO_CHANGES | {"create": CHINOOK_ROWS["PlaylistTrack"]}
    # … and the preview itself warns that these would be duplicates.
    assert any(
        w.startswith("Playlist has no natural key, so its 18 record(s) would be created")
        for w in report["warnings"]
    ), report["warnings"]

    # Everything else is matched by its natural key (invoice lines as part of their
    # invoice) and is the same as on the target: only "unchanged".
    for table in sorted(set(CHINOOK_ROWS) - {"Playlist", "PlaylistTrack"}):
        assert counts[table] == NO_CHANGES | {"unchanged": CHINOOK_ROWS[table]}, table
    recreated = CHINOOK_ROWS["Playlist"] + CHINOOK_ROWS["PlaylistTrack"]
    assert report["totals"] == NO_CHANGES | {
        "create": recreated,
        "unchanged": sum(CHINOOK_ROWS.values()) - recreated,
    }
    # A preview writes nothing.
    assert_same_content(snapshot(target, SQLITE_PROFILE), sqlite_chinook_snapshot)


@pytest.mark.parametrize("engine_kind", ["sqlite", "mariadb"], indirect=True)
def test_postgresql_chinook_imports_row_for_row(chinook_url, make_db, engine_kind, tmp_path):
    source = chinook_url("postgresql")
    expected = snapshot(source, PG_PROFILE)
    assert row_counts(expected) == {PG_NAMES[t]: n for t, n in CHINOOK_ROWS.items()}
    bundle = tmp_path / "bundle"
    ok("export", source, str(bundle), "--profile", str(PG_PROFILE))
    target = imported_target(make_db, engine_kind, source, bundle)
    assert_same_content(snapshot(target, PG_PROFILE), expected)


def test_partial_export_of_an_artist_takes_what_it_needs_only(sqlite_chinook, tmp_path):
    # --only takes the chosen records, the records they own and those they reference,
    # never records that merely reference them: with the standard profile an artist
    # owns and references nothing, so its albums stay behind.
    source, _, _ = sqlite_chinook
    bundle = tmp_path / "audioslave"
    ok(
        "export",
        source,
        str(bundle),
        "--only",
        "Artist=Audioslave",
        "--profile",
        str(SQLITE_PROFILE),
    )
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["scope"] == {"only": ["Artist=Audioslave"]}
    assert {t: n for t, n in manifest["counts"].items() if n} == {"Artist": 1}
    assert sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*.json")) == [
        "Artist/audioslave.json",
        "manifest.json",
    ]


def test_partial_export_of_an_artist_with_its_albums_and_tracks(
    sqlite_chinook, sqlite_chinook_snapshot, make_db, engine_kind, tmp_path
):
    source, _, _ = sqlite_chinook
    # To take an artist's albums and tracks along, the profile makes them owned:
    # albums by their artist, tracks by their album (keys unchanged).
    profile_data = yaml.safe_load(SQLITE_PROFILE.read_text())
    profile_data["entities"]["Album"]["owner"] = "ArtistId"
    profile_data["entities"]["Track"]["owner"] = "AlbumId"
    profile = tmp_path / "owned.yaml"
    profile.write_text(yaml.safe_dump(profile_data))

    # What the bundle must hold, from the source's content (references as natural keys).
    src = sqlite_chinook_snapshot
    artist = ("Audioslave",)
    albums = [a for a in as_dicts(src["Album"]) if a["ArtistId"] == artist]
    tracks = [t for t in as_dicts(src["Track"]) if t["AlbumId"] and t["AlbumId"][0] == artist]
    genres = {t["GenreId"] for t in tracks}
    media_types = {t["MediaTypeId"] for t in tracks}
    assert (len(albums), len(tracks), len(genres), len(media_types)) == (3, 40, 3, 3)

    bundle = tmp_path / "audioslave"
    ok("export", source, str(bundle), "--only", "Artist=Audioslave", "--profile", str(profile))
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {t: n for t, n in manifest["counts"].items() if n} == {
        "Artist": 1,
        "Album": 3,
        "Track": 40,
        "Genre": 3,
        "MediaType": 3,
    }
    assert sorted(p.name for p in (bundle / "Artist").iterdir()) == ["audioslave.json"]
    doc = json.loads((bundle / "Artist" / "audioslave.json").read_text())
    assert doc["Name"] == "Audioslave"
    assert sorted(a["Title"] for a in doc["_owned"]["Album"]) == sorted(a["Title"] for a in albums)
    assert sorted(
        (a["Title"], t["Name"]) for a in doc["_owned"]["Album"] for t in a["_owned"]["Track"]
    ) == sorted((t["AlbumId"][1], t["Name"]) for t in tracks)
    assert sorted(json.loads(p.read_text())["Name"] for p in (bundle / "Genre").iterdir()) == (
        sorted(g[0] for g in genres)
    )
    assert sorted(json.loads(p.read_text())["Name"] for p in (bundle / "MediaType").iterdir()) == (
        sorted(m[0] for m in media_types)
    )

    target = imported_target(make_db, engine_kind, source, bundle)
    expected = {t: Counter() for t in src}
    expected["Artist"] = Counter(r for r in src["Artist"] if dict(r)["Name"] == "Audioslave")
    expected["Album"] = Counter(r for r in src["Album"] if dict(r)["ArtistId"] == artist)
    expected["Track"] = Counter(
        r for r in src["Track"] if (dict(r)["AlbumId"] or ((),))[0] == artist
    )
    expected["Genre"] = Counter(r for r in src["Genre"] if (dict(r)["Name"],) in genres)
    expected["MediaType"] = Counter(
        r for r in src["MediaType"] if (dict(r)["Name"],) in media_types
    )
    assert_same_content(snapshot(target, SQLITE_PROFILE), expected)
