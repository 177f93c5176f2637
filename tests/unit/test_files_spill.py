"""Maps and lists that move to disk past a limit give back what was put in them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rehost.files.entry import Entry
from rehost.files.spill import SpillList, SpillMap

keys = st.one_of(st.binary(max_size=12), st.tuples(st.integers(0, 2**64), st.integers(0, 2**64)))


@given(pairs=st.lists(st.tuples(keys, st.integers()), max_size=60), limit=st.integers(1, 8))
def test_a_map_that_spills_answers_as_a_dict(pairs, limit):
    m: SpillMap = SpillMap(limit)
    d = {}
    for k, v in pairs:
        m[k] = v
        d[k] = v
    try:
        for k, v in d.items():
            assert k in m and m[k] == v and m.get(k) == v
        assert m.get(b"not a key") is None and b"not a key" not in m
    finally:
        m.close()


@given(values=st.lists(st.binary(max_size=8), max_size=50), limit=st.integers(1, 8))
def test_a_list_that_spills_keeps_the_order(values, limit):
    spilled: SpillList = SpillList(limit)
    for v in values:
        spilled.append(v)
    try:
        assert list(spilled) == values
    finally:
        spilled.close()


def test_entries_come_back_whole():
    e = Entry(b"a/\xffname", "file", 12, 1_700_000_000_123_456_789, 0o100644, 1000, 1000)
    spilled: SpillList = SpillList(1)
    spilled.append(e)
    assert list(spilled) == [e]
    spilled.close()
