"""Table dependency order: components, deferred references, self-keyed tables, cycles."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rehost.graph import Edge, order_tables, strongly_connected


def ref(
    table: str, column: str, ref_table: str, *, nullable: bool = False, in_key: bool = False
) -> Edge:
    return Edge(table=table, column=column, ref_table=ref_table, nullable=nullable, in_key=in_key)


# ------------------------------------------------------------ strongly_connected


def test_components_come_out_referenced_first() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": set()}
    assert strongly_connected(["a", "b", "c"], edges) == [["c"], ["b"], ["a"]]


def test_cycle_is_one_sorted_component() -> None:
    edges = {"z": {"y"}, "y": {"x"}, "x": {"z"}, "w": {"x"}}
    comps = strongly_connected(["w", "x", "y", "z"], edges)
    assert comps == [["x", "y", "z"], ["w"]]


def test_components_ignore_node_input_order() -> None:
    edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}, "d": set()}
    assert strongly_connected(["d", "c", "b", "a"], edges) == strongly_connected(
        ["a", "b", "c", "d"], edges
    )


def test_deep_chain_does_not_recurse() -> None:
    n = 5000  # far beyond the default recursion limit
    names = [f"t{i:05d}" for i in range(n)]
    edges = {names[i]: {names[i + 1]} for i in range(n - 1)}
    comps = strongly_connected(names, edges)
    assert comps == [[name] for name in reversed(names)]


# ------------------------------------------------------------------ order_tables


def test_chain_is_ordered_dependencies_first() -> None:
    edges = [
        ref("tracks", "album_id", "albums"),
        ref("albums", "artist_id", "artists"),
    ]
    o = order_tables(["tracks", "albums", "artists"], edges)
    assert o.order == ("artists", "albums", "tracks")
    assert o.deferred == frozenset()
    assert o.self_keyed == frozenset()
    assert o.unbreakable == ()


def test_ties_are_broken_alphabetically_level_by_level() -> None:
    edges = [
        ref("invoices", "customer_id", "customers"),
        ref("customers", "rep_id", "employees"),
        ref("tracks", "genre_id", "genres"),
    ]
    tables = ["tracks", "invoices", "genres", "employees", "customers", "artists"]
    o = order_tables(tables, edges)
    # Level 0: no references; level 1: only level-0 references; level 2 …
    assert o.order == ("artists", "employees", "genres", "customers", "tracks", "invoices")
    assert order_tables(list(reversed(tables)), list(reversed(edges))) == o


def test_edges_to_unknown_tables_are_ignored() -> None:
    o = order_tables(["a"], [ref("a", "x_id", "excluded"), ref("ghost", "a_id", "a")])
    assert o.order == ("a",)


def test_two_table_cycle_defers_the_nullable_edge() -> None:
    edges = [
        ref("users", "team_id", "teams", nullable=True),
        ref("teams", "owner_id", "users", nullable=False),
    ]
    o = order_tables(["teams", "users"], edges)
    assert o.deferred == {("users", "team_id")}
    assert o.order == ("users", "teams")
    assert o.unbreakable == ()


def test_nullable_edge_outside_a_cycle_is_not_deferred() -> None:
    o = order_tables(["a", "b"], [ref("a", "b_id", "b", nullable=True)])
    assert o.deferred == frozenset()
    assert o.order == ("b", "a")


def test_nullable_edge_in_key_is_not_deferred() -> None:
    edges = [
        ref("a", "b_id", "b", nullable=True, in_key=True),
        ref("b", "a_id", "a", nullable=True),
    ]
    o = order_tables(["a", "b"], edges)
    assert o.deferred == {("b", "a_id")}
    assert o.order == ("b", "a")


def test_nullable_self_reference_is_deferred() -> None:
    o = order_tables(["employees"], [ref("employees", "reports_to", "employees", nullable=True)])
    assert o.deferred == {("employees", "reports_to")}
    assert o.self_keyed == frozenset()
    assert o.order == ("employees",)


def test_self_reference_in_key_makes_table_self_keyed() -> None:
    edges = [ref("folders", "parent_id", "folders", nullable=True, in_key=True)]
    o = order_tables(["folders"], edges)
    assert o.self_keyed == {"folders"}
    assert o.deferred == frozenset()
    assert o.unbreakable == ()


def test_not_null_self_reference_makes_table_self_keyed() -> None:
    o = order_tables(["nodes"], [ref("nodes", "root_id", "nodes", nullable=False)])
    assert o.self_keyed == {"nodes"}
    assert o.deferred == frozenset()


def test_cycle_without_nullable_edge_is_unbreakable() -> None:
    edges = [
        ref("a", "b_id", "b"),
        ref("b", "c_id", "c"),
        ref("c", "a_id", "a"),
        ref("d", "a_id", "a"),
    ]
    o = order_tables(["a", "b", "c", "d"], edges)
    assert o.unbreakable == (("a", "b", "c"),)
    assert o.deferred == frozenset()
    # Still a complete order for reporting, with d after the cycle it references.
    assert sorted(o.order) == ["a", "b", "c", "d"]
    assert o.order[-1] == "d"


def test_cycle_with_only_key_edges_nullable_is_unbreakable() -> None:
    edges = [
        ref("a", "b_id", "b", nullable=True, in_key=True),
        ref("b", "a_id", "a", nullable=False),
    ]
    o = order_tables(["a", "b"], edges)
    assert o.unbreakable == (("a", "b"),)


# -------------------------------------------------------------- random DAG


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], list[Edge]]:
    n = draw(st.integers(min_value=1, max_value=25))
    names = draw(st.permutations([f"t{i:02d}" for i in range(n)]))
    # Edges only from later to earlier positions: acyclic whatever the names are.
    pairs = draw(
        st.sets(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] > p[1]),
            max_size=60,
        )
    )
    edges = [
        Edge(names[i], f"{names[j]}_id", names[j], nullable=draw(st.booleans()))
        for i, j in sorted(pairs)
    ]
    return list(names), edges


@settings(max_examples=150, deadline=None)
@given(dags(), st.randoms(use_true_random=False))
def test_random_dag_order_respects_every_reference(
    dag: tuple[list[str], list[Edge]], rnd: object
) -> None:
    names, edges = dag
    o = order_tables(names, edges)
    assert sorted(o.order) == sorted(names)
    pos = {t: i for i, t in enumerate(o.order)}
    for e in edges:
        assert pos[e.ref_table] < pos[e.table], e
    # Nothing to defer or report in an acyclic graph.
    assert o.deferred == frozenset()
    assert o.unbreakable == ()
    # Input order does not matter.
    shuffled_names, shuffled_edges = list(names), list(edges)
    rnd.shuffle(shuffled_names)  # type: ignore[attr-defined]
    rnd.shuffle(shuffled_edges)  # type: ignore[attr-defined]
    assert order_tables(shuffled_names, shuffled_edges) == o
