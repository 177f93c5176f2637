"""Writing and reading bundles: determinism, layout, checksums, safe replacement."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from rehost.bundle.codec import short_hash
from rehost.bundle.reader import Bundle
from rehost.bundle.writer import MANIFEST, BundleWriter
from rehost.errors import BundleError

Doc = tuple[dict[str, Any], str, Any]  # document, label, identity


def manifest(**extra: Any) -> dict[str, Any]:
    return {"format": "rehost-bundle", "format_version": 1, "model": {}, "counts": {}, **extra}


def project(name: str, pid: int, **fields: Any) -> Doc:
    return ({"_id": pid, "name": name, **fields}, name, {"name": name})


def write(
    dest: Path, types: dict[str, Iterable[Doc]], layout: str = "files", **extra: Any
) -> BundleWriter:
    w = BundleWriter(dest)
    for table, docs in types.items():
        w.begin_type(table, layout)
        for doc, label, ident in docs:
            w.add(table, doc, label, ident)
        w.end_type(table)
    w.commit(manifest(**extra))
    return w


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (dotfiles included), by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


PROJECTS = [project("Web App", 1, env="prod"), project("api", 2), project("Docs", 3, tags=["a"])]
STEPS = [({"_id": 7, "n": i}, f"step {i}", {"n": i}) for i in range(3)]


# ------------------------------------------------------------------ writing


def test_layout_of_a_files_bundle(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"projects": PROJECTS, "steps": STEPS})
    files = snapshot(dest)
    assert sorted(files) == [
        "manifest.json",
        "projects/api.json",
        "projects/docs.json",
        "projects/web-app.json",
        "steps/step-0.json",
        "steps/step-1.json",
        "steps/step-2.json",
    ]
    assert files["projects/web-app.json"] == (
        b'{\n  "_id": 1,\n  "env": "prod",\n  "name": "Web App"\n}\n'
    )
    m = json.loads(files["manifest.json"])
    assert list(m["files"]) == sorted(m["files"])
    assert set(m["files"]) == set(files) - {"manifest.json"}
    for rel, digest in m["files"].items():
        assert hashlib.sha256(files[rel]).hexdigest() == digest
    assert m["format"] == "rehost-bundle"
    assert files["manifest.json"].endswith(b"}\n")
    assert leftovers(tmp_path, "bundle") == []


def test_writing_the_same_documents_twice_is_byte_identical(tmp_path: Path) -> None:
    write(tmp_path / "a", {"projects": PROJECTS, "steps": STEPS})
    first = snapshot(tmp_path / "a")
    write(tmp_path / "a", {"projects": PROJECTS, "steps": STEPS})  # over itself
    write(tmp_path / "b", {"steps": reversed(STEPS), "projects": reversed(PROJECTS)})
    assert snapshot(tmp_path / "a") == first
    assert snapshot(tmp_path / "b") == first


def test_changing_one_document_changes_that_file_and_the_manifest_only(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"projects": PROJECTS, "steps": STEPS})
    before = snapshot(dest)
    changed = [PROJECTS[0], project("api", 2, description="new"), PROJECTS[2]]
    write(dest, {"projects": changed, "steps": STEPS})
    after = snapshot(dest)
    assert set(after) == set(before)
    assert {f for f in after if after[f] != before[f]} == {"projects/api.json", MANIFEST}
    assert json.loads(after["projects/api.json"])["description"] == "new"


def test_a_removed_document_disappears_from_the_bundle(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"projects": PROJECTS})
    write(dest, {"projects": PROJECTS[:2]})
    assert not (dest / "projects" / "docs.json").exists()
    assert "projects/docs.json" not in json.loads((dest / MANIFEST).read_text())["files"]
    Bundle.open(dest).verify()


def test_lines_layout_writes_one_sorted_key_line_per_document_in_order(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    docs = [({"_id": i, "z": "é", "a": i * 2}, f"x{i}", i) for i in (1, 2, 10)]
    write(dest, {"events": docs}, layout="lines")
    assert sorted(snapshot(dest)) == ["events.jsonl", "manifest.json"]
    lines = (dest / "events.jsonl").read_bytes()
    assert lines == (
        '{"_id":1,"a":2,"z":"é"}\n{"_id":2,"a":4,"z":"é"}\n{"_id":10,"a":20,"z":"é"}\n'.encode()
    )
    m = json.loads((dest / MANIFEST).read_text())
    assert m["files"] == {"events.jsonl": hashlib.sha256(lines).hexdigest()}
    b = Bundle.open(dest)
    b.verify()
    assert [d["_id"] for d in b.documents("events")] == [1, 2, 10]


# ------------------------------------------------------------ file names


def test_colliding_slugs_all_get_a_short_hash_of_their_key(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    docs = [
        ({"name": "AC/DC"}, "AC/DC", {"name": "AC/DC"}),
        ({"name": "ac dc"}, "ac dc", {"name": "ac dc"}),
        ({"name": "AC-DC"}, "AC-DC", {"name": "AC-DC"}),
        ({"name": "Queen"}, "Queen", {"name": "Queen"}),
    ]
    write(dest, {"artists": docs})
    expected = {
        f"artists/ac-dc-{short_hash({'name': n})}.json" for n in ("AC/DC", "ac dc", "AC-DC")
    }
    expected.add("artists/queen.json")
    assert set(snapshot(dest)) - {MANIFEST} == expected
    for rel in expected:  # each file holds its own document
        name = json.loads((dest / rel).read_text())["name"]
        assert rel.endswith(f"-{short_hash({'name': name})}.json") or name == "Queen"
    Bundle.open(dest).verify()  # renamed files kept their checksums
    # and the names do not depend on the order documents came in
    write(tmp_path / "again", {"artists": reversed(docs)})
    assert snapshot(tmp_path / "again") == snapshot(dest)


def test_a_key_without_letters_or_digits_is_named_record(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"tags": [({"name": "日本"}, "日本", {"name": "日本"})]})
    assert (dest / "tags" / "record.json").is_file()


def test_two_documents_with_the_same_key_are_refused(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    w = BundleWriter(dest)
    w.begin_type("projects", "files")
    w.add("projects", {"_id": 1}, "web", {"name": "web"})
    w.add("projects", {"_id": 2}, "Web", {"name": "Web"})
    with pytest.raises(BundleError, match=r"projects/web-[0-9a-f]{8}\.json"):
        w.add("projects", {"_id": 3}, "web", {"name": "web"})
    w.abort()
    assert not dest.exists()
    assert leftovers(tmp_path, "bundle") == []


# ----------------------------------------------------- safe replacement


def test_abort_leaves_an_existing_bundle_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"projects": PROJECTS})
    before = snapshot(dest)
    w = BundleWriter(dest)
    w.begin_type("projects", "files")
    w.add("projects", *project("new", 9))
    w.begin_type("events", "lines")
    w.add("events", {"_id": 1}, "e", 1)
    w.abort()
    assert snapshot(dest) == before
    assert leftovers(tmp_path, "bundle") == []


def test_nothing_appears_at_the_destination_before_commit(tmp_path: Path) -> None:
    dest = tmp_path / "new" / "bundle"
    w = BundleWriter(dest)
    w.begin_type("projects", "files")
    w.add("projects", *project("web", 1))
    assert not dest.exists()
    w.commit(manifest())
    assert (dest / "projects" / "web.json").is_file()
    assert leftovers(dest.parent, "bundle") == []


def test_dotfiles_of_an_existing_bundle_are_kept(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"projects": PROJECTS})
    (dest / ".git").mkdir()
    (dest / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (dest / ".gitattributes").write_text("* -text\n")
    (dest / "stray.txt").write_text("left over\n")  # not a dotfile: replaced with the bundle
    write(dest, {"projects": PROJECTS[:1]})
    assert (dest / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (dest / ".gitattributes").read_text() == "* -text\n"
    assert not (dest / "stray.txt").exists()
    assert sorted(p.name for p in (dest / "projects").iterdir()) == ["web-app.json"]
    assert leftovers(tmp_path, "bundle") == []


def test_an_empty_or_dotfiles_only_directory_can_receive_a_bundle(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    (dest / ".git").mkdir(parents=True)
    write(dest, {"projects": PROJECTS})
    assert (dest / ".git").is_dir()
    Bundle.open(dest).verify()


def test_a_directory_that_is_not_a_bundle_is_never_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "home"
    dest.mkdir()
    (dest / "thesis.tex").write_text("precious")
    with pytest.raises(BundleError, match="does not hold a rehost bundle"):
        BundleWriter(dest)
    (dest / MANIFEST).write_text('{"format": "something-else"}')
    with pytest.raises(BundleError, match="does not hold a rehost bundle"):
        BundleWriter(dest)
    assert (dest / "thesis.tex").read_text() == "precious"
    assert leftovers(tmp_path, "home") == []


def test_a_file_is_not_a_bundle_destination(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    dest.write_text("x")
    with pytest.raises(BundleError, match="not a directory"):
        BundleWriter(dest)
    assert dest.read_text() == "x"


# ------------------------------------------------------------------ reading


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    dest = tmp_path / "bundle"
    write(dest, {"projects": PROJECTS, "steps": STEPS})
    write(tmp_path / "lines", {"events": [({"_id": 1}, "e", 1), ({"_id": 2}, "f", 2)]}, "lines")
    return dest


def test_a_fresh_bundle_opens_and_verifies(bundle: Path) -> None:
    b = Bundle.open(bundle)
    b.verify()
    assert [d["name"] for d in b.documents("projects")] == ["api", "Docs", "Web App"]
    assert b.files_of("steps") == ["steps/step-0.json", "steps/step-1.json", "steps/step-2.json"]
    assert list(b.documents("missing")) == []


def test_a_changed_file_is_named(bundle: Path) -> None:
    f = bundle / "projects" / "docs.json"
    f.write_bytes(f.read_bytes().replace(b'"Docs"', b'"Dogs"'))
    with pytest.raises(BundleError, match=r"projects/docs\.json does not match its checksum"):
        Bundle.open(bundle).verify()


def test_a_truncated_file_is_named(bundle: Path) -> None:
    f = bundle / "steps" / "step-1.json"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(BundleError, match=r"steps/step-1\.json .*truncated"):
        Bundle.open(bundle).verify()


def test_a_truncated_lines_file_is_named(bundle: Path) -> None:
    f = bundle.parent / "lines" / "events.jsonl"
    f.write_bytes(f.read_bytes().splitlines(keepends=True)[0])
    with pytest.raises(BundleError, match=r"events\.jsonl"):
        Bundle.open(f.parent).verify()


def test_a_missing_file_is_named(bundle: Path) -> None:
    (bundle / "projects" / "api.json").unlink()
    with pytest.raises(BundleError, match=r"projects/api\.json is missing"):
        Bundle.open(bundle).verify()


def test_an_extra_file_is_refused(bundle: Path) -> None:
    (bundle / "projects" / "intruder.json").write_text('{"name": "intruder"}\n')
    with pytest.raises(BundleError, match=r"projects/intruder\.json"):
        Bundle.open(bundle).verify()


def test_dotfiles_beside_a_bundle_are_not_extra_files(bundle: Path) -> None:
    (bundle / ".git").mkdir()
    (bundle / ".git" / "config").write_text("[core]\n")
    Bundle.open(bundle).verify()


def test_an_unsafe_path_in_the_manifest_is_refused(bundle: Path) -> None:
    m = json.loads((bundle / MANIFEST).read_text())
    m["files"]["../outside.json"] = "0" * 64
    (bundle / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"unsafe path: \.\./outside\.json"):
        Bundle.open(bundle).verify()


def test_a_directory_without_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(
        BundleError, match=r"photos is not a rehost bundle: it has no manifest\.json"
    ):
        Bundle.open(tmp_path / "photos")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "other-tool", "format_version": 1}', r"manifest\.json .*foreign directory"),
        ("[1, 2]", r"manifest\.json .*foreign directory"),
        ('{"format": "rehost-bundle"', r"manifest\.json is damaged"),
        (
            '{"format": "rehost-bundle", "format_version": 99, "model": {}, "files": {}, '
            '"counts": {}}',
            r"format version 99; this rehost reads up to 1",
        ),
        ('{"format": "rehost-bundle", "format_version": "1"}', r"format version '1'"),
        (
            '{"format": "rehost-bundle", "format_version": 1, "model": {}, "counts": {}}',
            r"manifest\.json is incomplete: it has no 'files'",
        ),
    ],
)
def test_foreign_or_damaged_manifests_are_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / MANIFEST).write_text(content)
    with pytest.raises(BundleError, match=message):
        Bundle.open(tmp_path)


def test_a_missing_bundle_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist or is not a directory"):
        Bundle.open(tmp_path / "nope")
    (tmp_path / "file").write_text("{}")
    with pytest.raises(BundleError, match="does not exist or is not a directory"):
        Bundle.open(tmp_path / "file")


def test_a_document_that_is_not_an_object_is_named_with_its_line(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    write(dest, {"events": [({"_id": 1}, "a", 1), ({"_id": 2}, "b", 2)]}, layout="lines")
    (dest / "events.jsonl").write_text('{"_id": 1}\n[2]\n')
    with pytest.raises(BundleError, match=r"events\.jsonl:2 is not a JSON object"):
        list(Bundle.open(dest).documents("events"))
    (dest / "events.jsonl").write_text('{"_id": 1}\n{"_id": \n')
    with pytest.raises(BundleError, match=r"events\.jsonl:2 is not valid JSON"):
        list(Bundle.open(dest).documents("events"))


# ------------------------------------------- layout switch during export (SQLite)


def _items_db(path: Path, n: int) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    # inserted out of ID order: the bundle must still come out in ID order
    ids = sorted(range(1, n + 1), key=lambda i: (i * 7919) % (n + 13))
    conn.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i:05d}") for i in ids])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def test_export_switches_to_json_lines_above_the_files_limit(tmp_path: Path) -> None:
    from rehost.export import FILES_LAYOUT_MAX, export

    small = _items_db(tmp_path / "small.db", FILES_LAYOUT_MAX)
    export(small, tmp_path / "small")
    files = snapshot(tmp_path / "small")
    assert len([f for f in files if f.startswith("items/")]) == FILES_LAYOUT_MAX
    assert "items.jsonl" not in files

    big = _items_db(tmp_path / "big.db", FILES_LAYOUT_MAX + 1)
    export(big, tmp_path / "big")
    files = snapshot(tmp_path / "big")
    assert sorted(files) == ["items.jsonl", MANIFEST]
    lines = files["items.jsonl"].decode().splitlines()
    assert len(lines) == FILES_LAYOUT_MAX + 1
    ids = [json.loads(line)["_id"] for line in lines]
    assert ids == list(range(1, FILES_LAYOUT_MAX + 2))
    assert all(
        line
        == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        for line in lines[:5]
    )
    b = Bundle.open(tmp_path / "big")
    b.verify()
    assert b.manifest["counts"]["items"] == FILES_LAYOUT_MAX + 1

    # exporting again gives the same bytes
    export(big, tmp_path / "big")
    assert snapshot(tmp_path / "big") == files
