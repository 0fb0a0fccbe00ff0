"""What a node of the graph of spaces is built from: plain functions over the node attributes
that ``graph.build`` sets (``parents``, ``keeps_base``), shared by the graph and the planner."""
from __future__ import annotations

import networkx as nx


def ancestors(g: nx.MultiGraph, name: str) -> set[str]:
    """Every space ``name`` is built from, through its parents (not itself)."""
    out, todo = set(), [name]
    while todo:
        for p in g.nodes[todo.pop()]["parents"]:
            if p in g and p not in out:
                out.add(p)
                todo.append(p)
    return out


def leaves(g: nx.MultiGraph, name: str) -> set[str]:
    """The plugin spaces a node is built from (itself, for a plugin space)."""
    parents = [p for p in g.nodes[name]["parents"] if p in g]
    return {name} if not g.nodes[name]["parents"] else set().union(*(leaves(g, p) for p in parents))


def hops(g: nx.MultiGraph, name: str) -> int:
    """How many connectors a node stacks."""
    parents = g.nodes[name]["parents"]
    return 0 if not parents else 1 + sum(hops(g, p) for p in parents if p in g)


def missing(g: nx.MultiGraph, name: str) -> set[str]:
    """Spaces a connector needs (directly or through its parents) that are not installed."""
    out = set()
    for p in g.nodes[name]["parents"]:
        out |= missing(g, p) if p in g else {p}
    return out


def related(g: nx.MultiGraph, u: str, v: str) -> bool:
    """Connecting u and v adds nothing when one is built from a subset of the other's spaces."""
    lu, lv = leaves(g, u), leaves(g, v)
    return lu <= lv or lv <= lu


def frame(g: nx.MultiGraph, name: str) -> str:
    """The space whose coordinates a node's embeddings are in: its own, except for a node that
    keeps its base (Ex-MCR), whose embeddings are its base's."""
    attrs = g.nodes[name]
    if attrs["keeps_base"] and attrs["parents"][0] in g:
        return frame(g, attrs["parents"][0])
    return name
