"""The file transfer planner and the small pure helpers around it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rehost.errors import UsageError
from rehost.files.entry import DIR, FILE, SPECIAL_KINDS, SYMLINK, Entry, display
from rehost.files.inventory import extension, leaves_tree
from rehost.files.local import temp_path
from rehost.files.location import parse_location
from rehost.files.owners import OwnerMap, parse_map
from rehost.files.plan import Op, Wanted, decide, decide_link, is_temp_name

T0 = 1_700_000_000_123_456_789


def entry(kind: str = FILE, **kw: object) -> Entry:
    base: dict[str, object] = dict(
        rel=b"a/b.txt", kind=kind, size=10, mtime_ns=T0, mode=0o644, uid=1000, gid=1000
    )
    if kind == SYMLINK:
        base.update(size=0, mode=0o777, link=b"../x")
    if kind == DIR:
        base.update(size=0, mode=0o755)
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


OWNER = Wanted(uid=1000, gid=1000)


def test_new_file_is_copied_and_new_dir_created() -> None:
    assert decide(entry(), None).op == Op.COPY
    assert decide(entry(), None).reason == "new"
    assert decide(entry(DIR), None).op == Op.MKDIR


def test_same_size_and_mtime_is_unchanged() -> None:
    assert decide(entry(), entry(), wanted=OWNER).op == Op.UNCHANGED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"mode": 0o600}, "mode"),
        ({"uid": 0}, "owner"),
        ({"gid": 0}, "owner"),
        ({"xattrs": {"user.a": b"2"}}, "xattrs"),
    ],
)
def test_metadata_only_differences(change: dict[str, object], reason: str) -> None:
    src = entry(xattrs={"user.a": b"1"})
    dst = dataclasses.replace(entry(xattrs={"user.a": b"1"}), **change)
    action = decide(src, dst, wanted=OWNER)
    assert (action.op, action.reason) == (Op.METADATA, reason)


def test_owner_not_compared_when_not_wanted() -> None:
    assert decide(entry(), entry(uid=0, gid=0), wanted=Wanted()).op == Op.UNCHANGED


def test_older_target_is_replaced_newer_is_kept() -> None:
    src = entry(size=11)
    assert decide(src, entry(mtime_ns=T0 - 1)).reason == "changed"
    newer = decide(src, entry(mtime_ns=T0 + 1))
    assert (newer.op, newer.reason) == (Op.SKIP, "target newer")
    assert decide(src, entry(mtime_ns=T0 + 1), overwrite=True).reason == "overwrite"
    assert decide(src, entry()).op == Op.SKIP  # same mtime, other size: not older


def test_checksum_decides_content() -> None:
    assert decide(entry(), entry(), content_equal=False).op == Op.SKIP
    assert decide(entry(), entry(), content_equal=False, overwrite=True).op == Op.COPY
    # Same content, different mtime: only the time needs fixing.
    action = decide(entry(), entry(mtime_ns=T0 + 5), content_equal=True)
    assert (action.op, action.reason) == (Op.METADATA, "mtime")


def test_never_replaces_across_directories() -> None:
    assert decide(entry(), entry(DIR)).op == Op.SKIP
    assert decide(entry(DIR), entry()).op == Op.SKIP
    assert decide(entry(DIR), entry(DIR, mtime_ns=1)).op == Op.UNCHANGED  # dir times set last


def test_symlinks_compare_their_target_text() -> None:
    assert decide(entry(SYMLINK), entry(SYMLINK)).op == Op.UNCHANGED
    assert decide(entry(SYMLINK), entry(SYMLINK, link=b"/etc", mtime_ns=1)).op == Op.COPY
    # A link replacing an older regular file of the same name:
    assert decide(entry(SYMLINK), entry(FILE, mtime_ns=1)).op == Op.COPY


def test_hard_links() -> None:
    src = entry(nlink=2)
    assert decide_link(src, None, 42).op == Op.LINK
    assert decide_link(src, entry(ino=42), 42).op == Op.UNCHANGED
    assert decide_link(src, entry(ino=7), 42).op == Op.LINK  # a separate copy becomes a link
    assert decide_link(src, None, None).op == Op.COPY  # first name not placed: copy on its own


entries = st.builds(
    entry,
    kind=st.sampled_from([FILE, SYMLINK, DIR, *SPECIAL_KINDS]),
    size=st.integers(0, 1 << 40),
    mtime_ns=st.integers(0, 2**62),
    mode=st.integers(0, 0o7777),
    uid=st.integers(0, 70000),
    gid=st.integers(0, 70000),
    link=st.binary(min_size=1, max_size=20),
    xattrs=st.dictionaries(st.sampled_from(["user.a", "user.b"]), st.binary(max_size=4)),
)


def _as_placed(src: Entry) -> Entry:
    """The target entry after rehost wrote ``src`` with its own owner."""
    return dataclasses.replace(src, ino=99)


@given(entries)
def test_what_was_written_is_unchanged_next_time(src: Entry) -> None:
    wanted = Wanted(src.uid, src.gid)
    first = decide(src, None, wanted=wanted)
    if src.kind in SPECIAL_KINDS:
        assert first.op == Op.SKIP and src.kind in first.reason
        return
    assert first.op in (Op.COPY, Op.MKDIR)
    assert decide(src, _as_placed(src), wanted=wanted).op == Op.UNCHANGED


@given(entries, entries, st.booleans())
def test_newer_target_content_is_never_replaced_without_overwrite(
    src: Entry, dst: Entry, checksum: bool
) -> None:
    action = decide(src, dst, content_equal=False if checksum else None)
    if action.op == Op.COPY:
        assert dst.mtime_ns < src.mtime_ns
    if DIR in (src.kind, dst.kind) and src.kind != dst.kind:
        assert action.op == Op.SKIP


@given(entries, entries)
def test_decisions_are_total(src: Entry, dst: Entry) -> None:
    action = decide(src, dst, overwrite=True)
    assert action.op in Op
    if action.op == Op.SKIP and src.kind not in SPECIAL_KINDS:
        assert DIR in (src.kind, dst.kind) or dst.kind in SPECIAL_KINDS


@given(st.binary(max_size=64))
def test_display_is_one_line(name: bytes) -> None:
    text = display(name)
    assert "\n" not in text and "\r" not in text
    text.encode("utf-8")  # always printable and JSON-safe


def test_display_examples() -> None:
    assert display(b"a b/c") == "a b/c"
    assert display(b"bad\xffname") == "bad\\xffname"
    assert display(b"new\nline") == "new\\nline"
    assert display("é".encode()) == "é"
    assert display(b"") == "."


def test_temp_names_are_recognised() -> None:
    name = temp_path(b"/t/dir/file.txt").rsplit(b"/", 1)[1]
    assert is_temp_name(name)
    assert not is_temp_name(b"file.txt") and not is_temp_name(b".rehost-tmp-notes.txt")


def test_links_leaving_the_tree() -> None:
    assert leaves_tree(b"a/l", b"/etc/passwd")
    assert leaves_tree(b"a/l", b"../../x")
    assert not leaves_tree(b"a/l", b"../x")
    assert not leaves_tree(b"l", b"a/./b")


def test_extensions() -> None:
    assert extension(b"photo.JPG") == ".jpg"
    assert extension(b".bashrc") == "(none)"
    assert extension(b"README") == "(none)"


@pytest.mark.parametrize("url", ["ftp://h/x", "gs://bucket/x", "sftp:///no-host"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_location(url, "source")
    assert url in str(exc.value)


def test_remote_locations() -> None:
    sftp = parse_location("sftp://u@h:2222/srv/x/", "source")
    assert (sftp.scheme, sftp.user, sftp.host, sftp.port, sftp.root) == (
        "sftp",
        "u",
        "h",
        2222,
        b"/srv/x",
    )
    assert sftp.capabilities.mtime_ns is False and sftp.capabilities.symlinks
    assert parse_location("sftp://h/", "source").port == 22
    s3 = parse_location("s3://bucket/a/b/", "target")
    assert (s3.host, s3.root, s3.capabilities.symlinks) == ("bucket", b"bucket/a/b", False)
    assert s3.state_key == b"s3://bucket/a/b"
    assert s3.contains(parse_location("s3://bucket/a/b/c", "target"))
    assert not s3.contains(parse_location("s3://bucket/a/bc", "target"))


def test_local_locations() -> None:
    assert parse_location("file:///srv/x/", "target").root == b"/srv/x"
    assert parse_location("/srv/x", "target").root == b"/srv/x"


def test_owner_options() -> None:
    assert parse_map(["alice=alice2"], "user") == {"alice": "alice2"}
    with pytest.raises(UsageError, match="SOURCE=TARGET"):
        parse_map(["alice"], "user")
    with pytest.raises(UsageError, match="--owners"):
        OwnerMap("names")
    with pytest.raises(UsageError, match="--owners name"):
        OwnerMap("numeric", users={"a": "b"})
    assert OwnerMap("none").uid(0) == (None, None)
    assert OwnerMap("numeric").uid(123456) == (123456, None)
    assert OwnerMap("name").uid(0) == (0, None)
    assert OwnerMap("name").uid(987654) == (987654, None)  # no name on the source: by number
    assert OwnerMap("name", users={"root": "no-such-user-x"}).uid(0)[1] == (
        "no user named 'no-such-user-x' on the target"
    )


def test_with_xattrs_keeps_every_field() -> None:
    e = entry(nlink=3, dev=1, ino=2, ctime_ns=4, atime_ns=5, link=b"x")
    x = e.with_xattrs({"user.a": b"1"})
    assert x.xattrs == {"user.a": b"1"}
    assert {f: getattr(x, f) for f in Entry.__slots__ if f != "xattrs"} == {
        f: getattr(e, f) for f in Entry.__slots__ if f != "xattrs"
    }


def test_case_collisions() -> None:
    from rehost.files.plan import case_collisions

    assert case_collisions([b"a", b"b", b"c"]) == {}
    assert case_collisions([b"readme", b"README", b"Readme", b"x"]) == {
        b"Readme": b"README",
        b"readme": b"README",
    }
    # Composed and decomposed accents are one name on macOS; bytes that are not UTF-8 survive.
    assert case_collisions(["Café".encode(), "cafe\u0301".encode()]) == {
        "cafe\u0301".encode(): "Café".encode()
    }
    assert case_collisions([b"\xff", b"\xfe"]) == {}


def test_case_probe_of_a_local_target(tmp_path: Path) -> None:
    from rehost.files.local import case_insensitive

    (tmp_path / "empty").mkdir()
    assert case_insensitive(bytes(tmp_path / "empty"), write=False) is False
    assert case_insensitive(bytes(tmp_path / "empty"), write=True) is False  # this machine
    assert list((tmp_path / "empty").iterdir()) == []  # the probe file is gone
    (tmp_path / "empty" / "Name").write_text("x")
    assert case_insensitive(bytes(tmp_path / "empty"), write=False) is False
    assert case_insensitive(bytes(tmp_path / "missing"), write=True) is False
