"""The graph of spaces: plugin MCRs and stored connectors as nodes, shared modalities as
overlap edges, ``derived`` edges from a connected space to the two it joins. Planning and
similarity are plain functions over it, wrapped as methods for convenience."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import networkx as nx
import torch

from .connected import ConnectedMCR
from .encoding import embed
from .errors import NoPathError, UnknownMCRError, UnknownModalityError
from .mcr import MCR, split_pin
from .registry import get_mcr, list_mcrs

Weight = Union[None, str, Callable[[str, dict], Any]]


@dataclass(frozen=True)
class Path:
    """Where two modalities meet: the node whose space covers both, and each side's route
    from the plugin space that encodes it up to that node."""

    source: str
    target: str
    node: str
    source_route: tuple[str, ...]
    target_route: tuple[str, ...]
    cost: float

    def describe(self) -> str:
        """e.g. ``audio@clap -> clip+clap <- image@clip``."""
        a, b = split_pin(self.source)[0], split_pin(self.target)[0]
        if len(self.source_route) == 1 and len(self.target_route) == 1:
            return f"{a}@{self.node} <-> {b}@{self.node} (both in {self.node})"
        left = [f"{a}@{self.source_route[0]}", *self.source_route[1:]]
        right = [f"{b}@{self.target_route[0]}", *self.target_route[1:-1]]
        if len(self.source_route) == 1:  # the source is the node itself: a leaf of the right chain
            return " <- ".join([left[0], *reversed(right)])
        return " -> ".join(left) + " <- " + " <- ".join(reversed(right))


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
        )
    for name, attrs in g.nodes(data=True):
        for parent in attrs["parents"]:
            if parent in g:
                g.add_edge(name, parent, key="derived", kind="derived")
    for name, attrs in g.nodes(data=True):  # depth: how many connectors a node stacks
        attrs["hops"] = _hops(g, name)
        attrs["missing"] = sorted(_missing(g, name))
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


def _ancestors(g: nx.MultiGraph, name: str) -> set[str]:
    out, todo = set(), [name]
    while todo:
        for p in g.nodes[todo.pop()]["parents"]:
            if p in g and p not in out:
                out.add(p)
                todo.append(p)
    return out


def _leaves(g: nx.MultiGraph, name: str) -> set[str]:
    """The plugin spaces a node is built from (itself, for a plugin space)."""
    parents = [p for p in g.nodes[name]["parents"] if p in g]
    return {name} if not g.nodes[name]["parents"] else set().union(*(_leaves(g, p) for p in parents))


def _related(g: nx.MultiGraph, u: str, v: str) -> bool:
    """Connecting u and v adds nothing when one is built from a subset of the other's spaces."""
    lu, lv = _leaves(g, u), _leaves(g, v)
    return lu <= lv or lv <= lu


def _default_cost(name: str, attrs: dict) -> float:
    """Hops first; among equal hops the better validation score (in [0, 1]) wins."""
    if attrs["kind"] == "plugin":
        return 0.0
    score = attrs.get("score")
    return attrs["hops"] + 0.5 * (1.0 - (score if score is not None else 0.0))


def _cost_fn(weight: Weight) -> Callable[[str, dict], Any]:
    if weight is None or weight == "hops":
        return _default_cost if weight is None else (lambda n, a: a["hops"])
    if isinstance(weight, str):
        return lambda n, a: a.get(weight)
    return weight


def _check_known(g: nx.MultiGraph, modality: str) -> tuple[str, str | None]:
    base, pin = split_pin(modality)
    known = sorted({m for _, a in g.nodes(data=True) for m in a["modalities"]})
    if base not in known:
        from .plugins import state

        clash = sorted(state().conflicts)
        hint = f" (left out because two plugins give them one name: {', '.join(clash)}; see mcrgraph plugins)" if clash else ""
        raise UnknownModalityError(f"no space has modality {base!r}; known modalities: {', '.join(known) or 'none'}{hint}")
    if pin is not None:
        if pin not in g:
            raise UnknownMCRError(f"{modality!r}: no space named {pin!r}; known: {', '.join(g.nodes)}")
        if base not in g.nodes[pin]["modalities"]:
            raise UnknownModalityError(f"{modality!r}: space {pin!r} has no {base!r}; it has {', '.join(g.nodes[pin]['modalities'])}")
    return base, pin


def _holds(g: nx.MultiGraph, node: str, base: str, pin: str | None) -> bool:
    """Whether ``node`` covers ``base`` (and, when pinned, reaches it through space ``pin``)."""
    if base not in g.nodes[node]["modalities"]:
        return False
    return pin is None or pin == node or pin in _ancestors(g, node)


def plan(g: nx.MultiGraph, a: str, b: str, weight: Weight = None) -> Path:
    """The cheapest node that covers modalities ``a`` and ``b`` (each ``m`` or ``m@space``).

    ``weight`` is None (hops, refined by validation score), ``"hops"``, a node attribute name,
    or ``f(name, attrs) -> cost`` (None excludes the node). Raises NoPathError, listing the
    connect commands that would create such a node, when none exists."""
    (ba, pa), (bb, pb) = _check_known(g, a), _check_known(g, b)
    cost = _cost_fn(weight)
    best = None
    for name, attrs in g.nodes(data=True):
        if attrs["missing"] or not (_holds(g, name, ba, pa) and _holds(g, name, bb, pb)):
            continue
        c = cost(name, attrs)
        if c is None:
            continue
        key = (c, attrs["hops"], name)
        if best is None or key < best[0]:
            best = (key, name)
    if best is None:
        steps = suggest(g, a, b)
        if not steps:
            stranded = [n for n, at in g.nodes(data=True) if at["missing"] and _holds(g, n, ba, pa) and _holds(g, n, bb, pb)]
            if stranded:
                need = sorted({m for n in stranded for m in g.nodes[n]["missing"]})
                raise NoPathError(f"connector {stranded[0]} covers {a} and {b} but needs {', '.join(need)}, which is not installed")
            raise NoPathError(f"no space covers {a} and {b}, and no chain of shared modalities links them; add a plugin that bridges them")
        lines = "\n".join(f"  {s}" for s in steps)
        raise NoPathError(f"no trained space covers {a} and {b}; the cheapest chain to create one is:\n{lines}", steps)
    node = best[1]
    space = g.nodes[node]["mcr"]
    return Path(a, b, node, tuple(space.route(_pin_for(a, node))), tuple(space.route(_pin_for(b, node))), float(best[0][0]))


def _pin_for(modality: str, node: str) -> str:
    base, pin = split_pin(modality)
    return base if pin in (None, node) else modality


def suggest(g: nx.MultiGraph, a: str, b: str) -> list[str]:
    """The fewest ``mcrgraph connect`` commands that would create a node covering a and b."""
    (ba, pa), (bb, pb) = split_pin(a), split_pin(b)
    h = nx.Graph()
    for u, v, attrs in g.edges(data=True):
        if attrs["kind"] == "overlap" and not h.has_edge(u, v):
            h.add_edge(u, v, via=attrs["via"])
    starts = [n for n in g if _holds(g, n, ba, pa)]
    ends = {n for n in g if _holds(g, n, bb, pb)}
    h.add_nodes_from(g.nodes)
    h.add_edges_from(("__start__", n) for n in starts)
    h.add_edges_from((n, "__end__") for n in ends)
    try:
        route = nx.shortest_path(h, "__start__", "__end__")[1:-1]
    except nx.NetworkXNoPath:
        return []
    steps, current = [], route[0]
    for prev, nxt in zip(route, route[1:]):
        via = h.edges[prev, nxt]["via"]
        items = "" if _offers_defaults(g, (prev, nxt), via) else f" --items {via.upper()}_ITEMS"
        steps.append(f"mcrgraph connect {current} {nxt} --via {via}{items}")
        current = f"{current}+{nxt}"
    return steps


def _offers_defaults(g: nx.MultiGraph, names, via: str) -> bool:
    from .plugins import hook

    return any(hook().default_items(mcr=g.nodes[n]["mcr"], modality=via, role="via") is not None for n in names)


def similarity(g: nx.MultiGraph, a: str, items_a: Sequence[Any], b: str, items_b: Sequence[Any], *, path: Path | None = None, weight: Weight = None, progress: bool = False) -> torch.Tensor:
    """Cosine similarities (len(items_a), len(items_b)) in the space ``plan`` picks."""
    path = path or plan(g, a, b, weight=weight)
    space = g.nodes[path.node]["mcr"] if path.node in g else get_mcr(path.node)
    ea = embed(space, _pin_for(a, path.node), items_a, progress=progress)
    eb = embed(space, _pin_for(b, path.node), items_b, progress=progress)
    return ea @ eb.T
