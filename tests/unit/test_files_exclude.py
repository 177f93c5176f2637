"""--exclude patterns (pure): rsync/.gitignore rules on relative paths."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rehost.errors import UsageError
from rehost.files.exclude import Excludes


def ex(*patterns: str) -> Excludes:
    return Excludes(patterns)


def test_a_name_pattern_matches_at_any_depth():
    e = ex("*.tmp")
    assert e.excluded(b"a.tmp", False)
    assert e.excluded(b"x/y/z/a.tmp", False)
    assert e.excluded(b"x/dir.tmp", True)
    assert not e.excluded(b"a.tmp.keep", False)
    assert not e.excluded(b"x.tmp/keep", False)  # only the last name is matched


def test_a_trailing_slash_matches_directories_only():
    e = ex("cache/")
    assert e.excluded(b"cache", True)
    assert e.excluded(b"a/b/cache", True)
    assert not e.excluded(b"cache", False)  # a file called cache stays


def test_a_leading_slash_anchors_at_the_root():
    e = ex("/tmp")
    assert e.excluded(b"tmp", True)
    assert e.excluded(b"tmp", False)
    assert not e.excluded(b"a/tmp", True)


def test_a_slash_inside_matches_the_whole_path():
    e = ex("thumbs/*.jpg")
    assert e.excluded(b"thumbs/a.jpg", False)
    assert not e.excluded(b"x/thumbs/a.jpg", False)
    assert not e.excluded(b"thumbs/sub/a.jpg", False)  # * stays within one name


def test_double_star_spans_directories():
    e = ex("logs/**/old")
    assert e.excluded(b"logs/old", True)
    assert e.excluded(b"logs/a/b/old", True)
    assert not e.excluded(b"x/logs/old", True)
    assert ex("**/build").excluded(b"a/b/build", True)
    assert ex("**/build").excluded(b"build", True)
    assert ex("/data/**").excluded(b"data/x/y", False)


def test_sets_question_marks_and_non_utf8_names():
    e = ex("[!a]?.log")
    assert e.excluded(b"b1.log", False)
    assert not e.excluded(b"a1.log", False)
    assert not e.excluded(b"b12.log", False)
    latin1 = "caf\udce9.txt"  # the name b"caf\xe9.txt" as Python spells undecodable bytes
    assert ex(latin1).excluded(b"d/caf\xe9.txt", False)


def test_the_root_is_never_excluded_and_keep_filters_children():
    e = ex("*")
    assert not e.excluded(b"", True)
    kept = ex("*.tmp", "cache/").keep(b"d", [(b"a.tmp", False), (b"cache", True), (b"b", False)])
    assert kept == [(b"b", False)]
    assert not Excludes()
    assert Excludes().keep(b"", [(b"x", True)]) == [(b"x", True)]


@pytest.mark.parametrize("bad", ["", "/", "//", "a[b"])
def test_patterns_that_name_nothing_or_do_not_parse_are_refused(bad):
    with pytest.raises(UsageError):
        Excludes([bad])


_name = st.text(alphabet="ab.*?", min_size=1, max_size=6)
_plain = st.text(alphabet="ab.", min_size=1, max_size=8)


@given(pattern=_name, name=_plain)
def test_name_patterns_agree_with_fnmatch(pattern, name):
    expected = fnmatch.fnmatchcase(name, pattern)
    assert ex(pattern).excluded(b"some/dir/" + name.encode(), False) == expected
