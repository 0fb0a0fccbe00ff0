"""Planning over the graph of spaces: where can two modalities be compared, at what cost, and
which connects would make it possible when nothing can yet."""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Union

import networkx as nx

from ..errors import AmbiguousPathError, NoPathError, UnknownMCRError, UnknownModalityError
from ..spaces.lineage import ancestors, leaves
from ..spaces.mcr import split_pin

MAX_ROUTES = 2_000  # chains compared for the advice, shortest first
Weight = Union[None, str, Callable[[str, dict], Any]]


@dataclass(frozen=True)
class Path:
    """Where two modalities meet. ``node`` encodes the source, ``target_node`` the target (the
    same node, or another one in the same coordinates, ``frame``); each route lists the spaces
    an item passes through from the plugin space that encodes it up to its node."""

    source: str
    target: str
    node: str
    source_route: tuple[str, ...]
    target_route: tuple[str, ...]
    cost: float
    target_node: str = ""
    frame: str = ""

    def __post_init__(self):
        object.__setattr__(self, "target_node", self.target_node or self.node)
        object.__setattr__(self, "frame", self.frame or self.node)

    def describe(self) -> str:
        """e.g. ``audio@clap -> clip+clap <- image@clip``; across two nodes of one frame,
        ``audio@clap -> clap-into-clip => clip <= ulip-into-clip <- 3d@ulip``."""
        a, b = split_pin(self.source)[0], split_pin(self.target)[0]
        left = [f"{a}@{self.source_route[0]}", *self.source_route[1:]]
        right = [f"{b}@{self.target_route[0]}", *self.target_route[1:]]
        if self.node != self.target_node:
            return " -> ".join(left) + f" => {self.frame} <= " + " <- ".join(reversed(right))
        if len(left) == 1 and len(right) == 1:
            return f"{left[0]} <-> {right[0]} (both in {self.node})"
        if len(left) == 1:  # the source is the node itself: a leaf of the right chain
            return " <- ".join([left[0], *reversed(right[:-1])])
        return " -> ".join(left) + " <- " + " <- ".join(reversed(right[:-1]))


def _holds(g: nx.MultiGraph, node: str, base: str, pin: str | None) -> bool:
    """Whether ``node`` covers ``base`` (and, when pinned, reaches it through space ``pin``)."""
    if base not in g.nodes[node]["modalities"]:
        return False
    return pin is None or pin == node or pin in ancestors(g, node)


def _route(g: nx.MultiGraph, node: str, base: str, pin: str | None) -> tuple[list[str], int]:
    """The spaces ``base`` passes through up to ``node``, and how many heads transform it on
    the way (a frozen base side of an Ex-MCR node transforms nothing). Mirrors ConnectedMCR."""
    attrs = g.nodes[node]
    pin = None if pin == node else pin
    if not attrs["parents"]:
        return [node], 0
    for side, (parent, mods) in enumerate(attrs["sides"]):
        if base in mods and (pin is None or pin == parent or pin in ancestors(g, parent)):
            route, depth = _route(g, parent, base, pin)
            return route + [node], depth + (0 if attrs["keeps_base"] and side == 0 else 1)
    raise UnknownModalityError(f"{base}@{pin}: space {node!r} cannot reach {base} through {pin!r}")


def _cost(weight: Weight, g: nx.MultiGraph, nodes: set[str], depth: int) -> float | None:
    if weight is None:  # heads crossed first; the weakest connector's validation score (in [0, 1]) breaks ties
        scores = [g.nodes[n]["score"] or 0.0 for n in nodes if g.nodes[n]["kind"] == "connector"]
        return depth + (0.5 * (1.0 - min(scores)) if scores else 0.0)
    per_node = (lambda n, a: a["hops"]) if weight == "hops" else (lambda n, a: a.get(weight)) if isinstance(weight, str) else weight
    costs = [per_node(n, g.nodes[n]) for n in sorted(nodes)]
    return None if any(c is None for c in costs) else float(sum(costs))


ORDER = ("weights present", "not only demo spaces", "cost", "fewest nodes")


def cheapest(g: nx.MultiGraph, paths: list[Path]) -> Path:
    """The best of ``paths``, in this order (``ORDER``): its encoders have their weights on
    disk (a path that cannot run loses to any that can); it is not built only from built-in
    demo spaces (they never win over a user's or a real plugin's space); the lowest cost; the
    fewest nodes. Paths equal in all four are a real tie: AmbiguousPathError names them and the
    pins that choose, rather than choosing by name."""
    if len(paths) == 1:
        return paths[0]
    absent = _lacks_weights(g)

    def rank(p: Path) -> tuple:
        nodes = {p.node, p.target_node}
        return (any(absent(leaf) for n in nodes for leaf in leaves(g, n)), all(g.nodes[n]["demo"] for n in nodes), p.cost, len(nodes))

    ranked = [(rank(p), p) for p in paths]
    best = min(r for r, _ in ranked)
    left = sorted({(p.node, p.target_node): p for r, p in ranked if r == best}.values(), key=lambda p: (p.node, p.target_node))
    if len(left) == 1:
        return left[0]
    pins = [(_pinned(p.source, p.node), _pinned(p.target, p.target_node)) for p in left]
    where = ", ".join(p.node if p.node == p.target_node else f"{p.node} with {p.target_node}" for p in left)
    raise AmbiguousPathError(
        f"{left[0].source} and {left[0].target} meet equally well in {len(left)} spaces ({where}), and mcrgraph does not choose "
        f"between them by name: pin one, e.g. {' or '.join(_choice(p, s, t) for p, (s, t) in zip(left, pins))}", pins)


def _choice(path: Path, source: str, target: str) -> str:
    """The fewest pins that select ``path``: the source's when that alone picks the node."""
    if path.node == path.target_node and split_pin(path.source)[1] is None:
        return source
    if path.node == path.target_node:
        return target
    return f"{source} with {target}"


def _pinned(modality: str, node: str) -> str:
    base, pin = split_pin(modality)
    return modality if pin is not None else f"{base}@{node}"


def _lacks_weights(g: nx.MultiGraph):
    """leaf -> whether its weights are missing, asked once per leaf (a plugin may need a moment to tell)."""
    return functools.cache(lambda leaf: g.nodes[leaf]["mcr"].weights_present() is False)


def _check_known(g: nx.MultiGraph, modality: str) -> tuple[str, str | None]:
    base, pin = split_pin(modality)
    known = sorted({m for _, a in g.nodes(data=True) for m in a["modalities"]})
    if base not in known:
        from ..spaces.plugins import state

        clash = sorted(state().conflicts)
        hint = f" (left out because two plugins give them one name: {', '.join(clash)}; see mcrgraph plugins)" if clash else ""
        raise UnknownModalityError(f"no space has modality {base!r}; known modalities: {', '.join(known) or 'none'}{hint}")
    if pin is not None:
        if pin not in g:
            raise UnknownMCRError(f"{modality!r}: no space named {pin!r}; known: {', '.join(g.nodes)}")
        if base not in g.nodes[pin]["modalities"]:
            raise UnknownModalityError(f"{modality!r}: space {pin!r} has no {base!r}; it has {', '.join(g.nodes[pin]['modalities'])}")
    return base, pin


def plan(g: nx.MultiGraph, a: str, b: str, weight: Weight = None) -> Path:
    """The cheapest way to compare modalities ``a`` and ``b`` (each ``m`` or ``m@space``): one
    node covering both, or two nodes in the same coordinates (Ex-MCR connectors into one base).

    ``weight`` None: heads crossed by both items, refined by validation score. ``"hops"``, a
    node attribute name, or ``f(name, attrs) -> cost`` (None excludes the node) sum over the
    nodes used. Raises NoPathError, listing the connect commands that would make a node
    covering both, when there is none."""
    (ba, pa), (bb, pb) = _check_known(g, a), _check_known(g, b)
    usable = [n for n, at in g.nodes(data=True) if not at["missing"]]
    src = {n: _route(g, n, ba, pa) for n in usable if _holds(g, n, ba, pa)}
    dst = {n: _route(g, n, bb, pb) for n in usable if _holds(g, n, bb, pb)}
    found: list[Path] = []
    for n1, (r1, d1) in src.items():
        for n2, (r2, d2) in dst.items():
            if g.nodes[n1]["frame"] != g.nodes[n2]["frame"]:
                continue
            c = _cost(weight, g, {n1, n2}, d1 + d2)
            if c is not None:
                found.append(Path(a, b, n1, tuple(r1), tuple(r2), float(c), n2, g.nodes[n1]["frame"]))
    if found:
        return cheapest(g, found)
    steps = suggest(g, a, b)
    if not steps:
        stranded = [n for n, at in g.nodes(data=True) if at["missing"] and _holds(g, n, ba, pa) and _holds(g, n, bb, pb)]
        if stranded:
            need = sorted({m for n in stranded for m in g.nodes[n]["missing"]})
            raise NoPathError(f"connector {stranded[0]} covers {a} and {b} but needs {', '.join(need)}, which is not installed")
        raise NoPathError(f"no space covers {a} and {b}, and no chain of shared modalities links them; add a plugin that bridges them")
    lines = "\n".join(f"  {s}" for s in steps)
    raise NoPathError(f"no trained space covers {a} and {b}; the cheapest chain to create one is:\n{lines}", steps)


def pin_for(modality: str, node: str) -> str:
    base, pin = split_pin(modality)
    return base if pin in (None, node) else modality


@dataclass(frozen=True)
class Step:
    """One connect of a chain: ``a`` (a space, or the name the previous step's result will
    have) joined to space ``b`` through ``via``; ``defaults`` says whether a plugin offers
    default items of ``via`` for it (else the user must give them)."""

    a: str
    b: str
    via: str
    defaults: bool

    @property
    def name(self) -> str:
        return f"{self.a}+{self.b}"

    def command(self) -> str:
        items = "" if self.defaults else f" --items {self.via.upper()}_ITEMS"
        return f"mcrgraph connect {self.a} {self.b} --via {self.via}{items}"


def suggest(g: nx.MultiGraph, a: str, b: str) -> list[str]:
    """The fewest ``mcrgraph connect`` commands that would create a node covering a and b."""
    return [s.command() for s in chain(g, a, b)]


def chain(g: nx.MultiGraph, a: str, b: str) -> list[Step]:
    """The fewest connects that would create a node covering a and b, in order; each step
    joins the previous one's result to the next space ([] when no chain links them)."""
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
    absent = _lacks_weights(g)

    def rank(route: list[str]) -> tuple:  # ORDER, with the chain's length as its cost; then names
        return (any(absent(leaf) for n in route for leaf in leaves(g, n)), all(g.nodes[n]["demo"] for n in route), len(route), route)

    best = None
    try:  # shortest first: once a chain that can run and is not only demo spaces is found, no longer one can beat it
        for r in itertools.islice(nx.shortest_simple_paths(h, "__start__", "__end__"), MAX_ROUTES):
            if best and not best[0] and not best[1] and len(r) - 2 > best[2]:
                break
            best = min(best, rank(r[1:-1])) if best else rank(r[1:-1])
    except nx.NetworkXNoPath:
        return []
    route = list(best[3])
    vias = [h.edges[u, v]["via"] for u, v in zip(route, route[1:])]
    if len(route) > 2 and vias[1] not in g.nodes[route[0]]["modalities"]:
        # the first two spaces in the order that reads as built: the one the next step goes
        # through first ((clip+clap)+ulip, not (clap+clip)+ulip)
        route[0], route[1] = route[1], route[0]
    steps, current = [], route[0]
    for i, (nxt, via) in enumerate(zip(route[1:], vias)):
        # the spaces that exist now and hold via: the next one, and those the chain so far is built from
        built = [n for n in route[: i + 1] if via in g.nodes[n]["modalities"]]
        steps.append(Step(current, nxt, via, _offers_defaults(g, (*built, nxt), via)))
        current = f"{current}+{nxt}"
    return steps


def _offers_defaults(g: nx.MultiGraph, names, via: str) -> bool:
    from ..spaces.plugins import hook

    return any(hook().default_items(mcr=g.nodes[n]["mcr"], modality=via, role="via") is not None for n in names)
