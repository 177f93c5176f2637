"""Dependency order between tables: strongly connected components, deferred
references that break cycles, and a deterministic topological order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import TopologicalSorter


@dataclass(frozen=True)
class Edge:
    """``table.column`` references ``ref_table``."""

    table: str
    column: str
    ref_table: str
    nullable: bool
    # A key column cannot be deferred: records are matched by it.
    in_key: bool = False


@dataclass(frozen=True)
class Ordering:
    order: tuple[str, ...]
    deferred: frozenset[tuple[str, str]]  # (table, column) set to NULL first, filled in last
    # Tables whose natural key goes through a reference to themselves (trees):
    # their rows are imported parents first.
    self_keyed: frozenset[str]
    unbreakable: tuple[tuple[str, ...], ...]  # cycles with no nullable reference to defer


def strongly_connected(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components come out in reverse topological order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                result.append(sorted(comp))
    return result


def order_tables(tables: Iterable[str], edges: Iterable[Edge]) -> Ordering:
    """Order tables so every table comes after the tables it references.

    References inside a cycle are deferred when their column is nullable (insert
    NULL, set it at the end, in the same transaction). A self-reference that is
    part of the natural key is not deferred: such a table is imported level by
    level instead.
    """
    nodes = sorted(set(tables))
    edge_list = [e for e in edges if e.table in nodes and e.ref_table in nodes]
    graph: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edge_list:
        graph[e.table].add(e.ref_table)
    comp_of: dict[str, int] = {}
    for i, comp in enumerate(strongly_connected(nodes, graph)):
        for n in comp:
            comp_of[n] = i
    deferred: set[tuple[str, str]] = set()
    self_keyed: set[str] = set()
    remaining: dict[str, set[str]] = {n: set() for n in nodes}
    for e in edge_list:
        if e.table == e.ref_table:
            if e.in_key:
                self_keyed.add(e.table)
            elif e.nullable:
                deferred.add((e.table, e.column))
            else:
                # Not nullable and not a key: imported level by level too.
                self_keyed.add(e.table)
            continue
        if comp_of[e.table] == comp_of[e.ref_table] and e.nullable and not e.in_key:
            deferred.add((e.table, e.column))
            continue
        remaining[e.table].add(e.ref_table)
    unbreakable: list[tuple[str, ...]] = []
    sub = {n: set(remaining[n]) for n in nodes}
    for comp in strongly_connected(nodes, sub):
        if len(comp) > 1:
            unbreakable.append(tuple(comp))
            # Break it arbitrarily so an order still exists for reporting.
            for n in comp:
                sub[n] -= set(comp)
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for n in nodes:
        sorter.add(n, *sorted(sub[n]))
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return Ordering(
        order=tuple(order),
        deferred=frozenset(deferred),
        self_keyed=frozenset(self_keyed),
        unbreakable=tuple(unbreakable),
    )
