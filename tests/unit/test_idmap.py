"""The ID map keeps answering the same once it has moved to disk."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from rehost.idmap import IdMap

targets = st.one_of(st.integers(-(2**63), 2**63 - 1), st.tuples(st.integers(), st.text()))


@settings(max_examples=50)
@given(pairs=st.dictionaries(st.integers(-(2**63), 2**63 - 1), targets, max_size=60))
def test_spilled_map_answers_like_a_dict(pairs: dict) -> None:
    m = IdMap(limit=7)
    for s, t in pairs.items():
        m[s] = t
    try:
        assert len(m) == len(pairs)
        for s, t in pairs.items():
            assert m.get(s) == t
        assert m.get("not-an-id") is None
        missing = next(i for i in range(10**6) if i not in pairs)
        assert m.get(missing, "none") == "none"
    finally:
        m.close()


def test_overwrite_after_spill_and_file_removed_on_close() -> None:
    m = IdMap(limit=2)
    m[1], m[2], m[3] = 10, 20, 30
    m[1] = 11
    assert [m.get(i) for i in (1, 2, 3)] == [11, 20, 30]
    path = m._path
    assert path is not None and os.path.exists(path)
    m.close()
    assert not os.path.exists(path)
