"""The graph of spaces: plugin MCRs and stored connectors as nodes, shared modalities as
overlap edges, ``derived`` edges from a connected space to the two it joins. Planning
(planner.py) and similarity are plain functions over it, wrapped as methods for convenience."""
from __future__ import annotations

from typing import Any, Sequence

import networkx as nx
import torch

from .connected import ConnectedMCR
from .encoding import embed
from .errors import UnknownMCRError
from .mcr import MCR
from .methods import get_method
from .planner import Path, Weight, pin_for, plan, suggest  # noqa: F401 - re-exported
from .registry import get_mcr, list_mcrs


class MCRGraph:
    """``g = mcrgraph.graph()``; ``g.nx`` is the networkx MultiGraph underneath."""

    def __init__(self, mcrs: Sequence[MCR]):
        self.nx = build(mcrs)

    @property
    def spaces(self) -> list[str]:
        return list(self.nx.nodes)

    def mcr(self, name: str) -> MCR:
        if name not in self.nx:
            raise UnknownMCRError(f"no space named {name!r} in the graph; known: {', '.join(self.nx.nodes)}")
        return self.nx.nodes[name]["mcr"]

    def plan(self, a: str, b: str, weight: Weight = None) -> Path:
        return plan(self.nx, a, b, weight=weight)

    def similarity(self, a: str, items_a: Sequence[Any], b: str, items_b: Sequence[Any], *, path: Path | None = None, weight: Weight = None, progress: bool = False) -> torch.Tensor:
        return similarity(self.nx, a, items_a, b, items_b, path=path, weight=weight, progress=progress)


def graph() -> MCRGraph:
    """The graph of every plugin MCR and every stored connector."""
    return MCRGraph(list_mcrs())


def build(mcrs: Sequence[MCR]) -> nx.MultiGraph:
    g = nx.MultiGraph()
    for m in mcrs:
        connected = isinstance(m, ConnectedMCR)
        g.add_node(
            m.name,
            mcr=m,
            kind="connector" if connected else "plugin",
            modalities=tuple(m.modalities),
            dim=m.dim,
            parents=tuple(m.parent_names()) if connected else (),
            method=m.card.method if connected else None,
            via=m.card.via if connected else None,
            score=m.card.score() if connected else None,
            keeps_base=bool(connected and getattr(get_method(m.card.method), "KEEPS_BASE", False)),
            sides=tuple((ref.name, tuple(ref.modalities)) for ref in m.card.spaces) if connected else (),
        )
    for name, attrs in g.nodes(data=True):
        for parent in attrs["parents"]:
            if parent in g:
                g.add_edge(name, parent, key="derived", kind="derived")
    for name, attrs in g.nodes(data=True):  # depth: how many connectors a node stacks
        attrs["hops"] = _hops(g, name)
        attrs["missing"] = sorted(_missing(g, name))
        attrs["frame"] = _frame(g, name)
    trained = {(frozenset(a["parents"]), a["via"]) for _, a in g.nodes(data=True) if a["kind"] == "connector"}
    names = list(g.nodes)
    for i, u in enumerate(names):
        for v in names[i + 1 :]:
            if _related(g, u, v) or g.nodes[u]["missing"] or g.nodes[v]["missing"]:
                continue
            for m in sorted(set(g.nodes[u]["modalities"]) & set(g.nodes[v]["modalities"])):
                g.add_edge(u, v, key=m, kind="overlap", via=m, trained=(frozenset((u, v)), m) in trained)
    return g


def _hops(g: nx.MultiGraph, name: str) -> int:
    parents = g.nodes[name]["parents"]
    return 0 if not parents else 1 + sum(_hops(g, p) for p in parents if p in g)


def _missing(g: nx.MultiGraph, name: str) -> set[str]:
    """Spaces a connector needs (directly or through its parents) that are not installed."""
    out = set()
    for p in g.nodes[name]["parents"]:
        out |= _missing(g, p) if p in g else {p}
    return out


def _leaves(g: nx.MultiGraph, name: str) -> set[str]:
    """The plugin spaces a node is built from (itself, for a plugin space)."""
    parents = [p for p in g.nodes[name]["parents"] if p in g]
    return {name} if not g.nodes[name]["parents"] else set().union(*(_leaves(g, p) for p in parents))


def _related(g: nx.MultiGraph, u: str, v: str) -> bool:
    """Connecting u and v adds nothing when one is built from a subset of the other's spaces."""
    lu, lv = _leaves(g, u), _leaves(g, v)
    return lu <= lv or lv <= lu


def _frame(g: nx.MultiGraph, name: str) -> str:
    """The space whose coordinates a node's embeddings are in: its own, except for a node that
    keeps its base (Ex-MCR), whose embeddings are its base's."""
    attrs = g.nodes[name]
    if attrs["keeps_base"] and attrs["parents"][0] in g:
        return _frame(g, attrs["parents"][0])
    return name


def similarity(g: nx.MultiGraph, a: str, items_a: Sequence[Any], b: str, items_b: Sequence[Any], *, path: Path | None = None,
               weight: Weight = None, progress: bool = False) -> torch.Tensor:
    """Cosine similarities (len(items_a), len(items_b)) in the frame ``plan`` picks: both in one
    node, or each in its own node when the two nodes share coordinates (Ex-MCR into one base)."""
    path = path or plan(g, a, b, weight=weight)

    def space(name):
        return g.nodes[name]["mcr"] if name in g else get_mcr(name)

    ea = embed(space(path.node), pin_for(a, path.node), items_a, progress=progress)
    eb = embed(space(path.target_node), pin_for(b, path.target_node), items_b, progress=progress)
    return ea @ eb.T
