"""The graph of spaces: plugin MCRs and stored connectors as nodes, shared modalities as
overlap edges, ``derived`` edges from a connected space to the two it joins. Planning
(planner.py) and similarity are plain functions over it, wrapped as methods for convenience."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import networkx as nx
import torch

from ..spaces import lineage
from ..spaces.connected import ConnectedMCR
from ..spaces.encoding import embed
from ..errors import ConfigError, DataError, NoPathError
from ..spaces.mcr import MCR, split_pin
from ..methods import get_method
from .planner import Path, Step, Weight, chain, pin_for, plan, suggest  # noqa: F401 - re-exported
from ..spaces.registry import get_mcr, list_mcrs


class MCRGraph:
    """``g = mcrgraph.graph()``; ``g.nx`` is the networkx MultiGraph underneath."""

    def __init__(self, mcrs: Sequence[MCR]):
        self.nx = build(mcrs)

    @property
    def spaces(self) -> list[str]:
        return list(self.nx.nodes)

    def mcr(self, name: str) -> MCR:
        """The space called ``name``: this graph's node, else any installed or stored space
        (a path planned on another graph may name one); UnknownMCRError when there is none."""
        return space(self.nx, name)

    def path_for(self, a: str, b: str, path: Path | None = None, weight: Weight = None) -> tuple[Path, str, str]:
        return path_for(self.nx, a, b, path, weight)

    def plan(self, a: str, b: str, weight: Weight = None, connect: bool = False, **options: Any) -> Path:
        """Where ``a`` and ``b`` meet (planner.plan). With ``connect=True``, when no space
        covers both yet, first run the cheapest chain of connects on default items (``join``;
        ``options`` go to each connect); this graph then holds the new spaces."""
        if not connect:
            return plan(self.nx, a, b, weight=weight)
        path = join(self.nx, a, b, weight=weight, **options)
        self.nx = build(list_mcrs())
        return path

    def similarity(self, a: str, items_a: Sequence[Any], b: str, items_b: Sequence[Any], *, path: Path | None = None, weight: Weight = None, progress: bool = False) -> torch.Tensor:
        return similarity(self.nx, a, items_a, b, items_b, path=path, weight=weight, progress=progress)


def graph() -> MCRGraph:
    """The graph of every plugin MCR and every stored connector."""
    return MCRGraph(list_mcrs())


def summary(g: nx.MultiGraph) -> dict[str, list[dict[str, Any]]]:
    """The graph as plain data (``mcrgraph graph --json``, the server's ``GET /graph``): its
    spaces and the overlaps between them (candidate connections, trained or not)."""
    spaces = [{"name": n, "kind": a["kind"], "modalities": list(a["modalities"]), "dim": a["dim"], "hops": a["hops"],
               "parents": list(a["parents"]), "method": a["method"], "via": a["via"], "score": a["score"],
               "missing": a["missing"], "demo": a["demo"]} for n, a in g.nodes(data=True)]
    overlaps = [{"a": u, "b": v, "via": a["via"], "trained": a["trained"]} for u, v, a in g.edges(data=True) if a["kind"] == "overlap"]
    return {"spaces": spaces, "overlaps": overlaps}


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
        attrs["hops"] = lineage.hops(g, name)
        attrs["missing"] = sorted(lineage.missing(g, name))
        attrs["frame"] = lineage.frame(g, name)
        # demo: built only from demo spaces (a user's space joined to a demo one is the user's)
        attrs["demo"] = all(bool(getattr(g.nodes[leaf]["mcr"], "demo", False)) for leaf in lineage.leaves(g, name))
    trained = {(frozenset(a["parents"]), a["via"]) for _, a in g.nodes(data=True) if a["kind"] == "connector"}
    names = list(g.nodes)
    for i, u in enumerate(names):
        for v in names[i + 1 :]:
            if lineage.related(g, u, v) or g.nodes[u]["missing"] or g.nodes[v]["missing"]:
                continue
            for m in sorted(set(g.nodes[u]["modalities"]) & set(g.nodes[v]["modalities"])):
                g.add_edge(u, v, key=m, kind="overlap", via=m, trained=(frozenset((u, v)), m) in trained)
    return g


def join(g: nx.MultiGraph, a: str, b: str, *, weight: Weight = None, on_step: Callable[[int, int, Step], None] | None = None,
         progress: bool = False, **options: Any) -> Path:
    """The path comparing ``a`` and ``b``, creating it first when none exists: each step of the
    cheapest chain (planner.chain) is trained by ``connect`` on the plugins' default items
    (``options`` go to every connect, e.g. ``epochs=5``) and stored, one after another.
    ``on_step(i, n, step)`` is called before step i of n. When a space already covers both,
    nothing is trained. DataError, before anything is trained, when a step has no default items."""
    from ..connect import connect

    try:
        return plan(g, a, b, weight=weight)
    except NoPathError as e:
        if not e.steps:
            raise
    steps = chain(g, a, b)
    lacking = [s for s in steps if not s.defaults]
    if lacking:
        s = lacking[0]
        raise DataError(f"cannot join {a} and {b} on demand: step {steps.index(s) + 1} of {len(steps)} ({s.a} with {s.b} via "
                        f"{s.via}) has no default items of {s.via} from any plugin; run the chain with your own items:\n"
                        + "\n".join(f"  {t.command()}" for t in steps))
    for i, step in enumerate(steps):
        if on_step:
            on_step(i, len(steps), step)
        connect(step.a, step.b, via=step.via, progress=progress, **options)
    return plan(build(list_mcrs()), a, b, weight=weight)


def space(g: nx.MultiGraph, name: str) -> MCR:
    """Node ``name`` of ``g``, else any installed or stored space of that name."""
    return g.nodes[name]["mcr"] if name in g else get_mcr(name)


def path_for(g: nx.MultiGraph, a: str, b: str, path: Path | None = None, weight: Weight = None) -> tuple[Path, str, str]:
    """The path that compares ``a`` and ``b``, and the modality strings to embed with: the
    planned one, or ``path`` checked against ``a`` and ``b`` (its pins win where they have none)."""
    if path is None:
        return plan(g, a, b, weight=weight), a, b
    if not isinstance(path, Path):
        raise ConfigError(f"path must be a mcrgraph.Path from graph().plan(...), got {type(path).__name__}")
    for asked, planned in ((a, path.source), (b, path.target)):
        (ba, pa), (bp, pp) = split_pin(asked), split_pin(planned)
        if ba != bp or (pa is not None and pa != pp):
            raise ConfigError(f"the path compares {path.source} and {path.target}, not {a} and {b}; "
                              f"plan one with mcrgraph.graph().plan({a!r}, {b!r})")
    return path, path.source, path.target


def similarity(g: nx.MultiGraph, a: str, items_a: Sequence[Any], b: str, items_b: Sequence[Any], *, path: Path | None = None,
               weight: Weight = None, progress: bool = False) -> torch.Tensor:
    """Cosine similarities (len(items_a), len(items_b)) in the frame ``plan`` picks: both in one
    node, or each in its own node when the two nodes share coordinates (Ex-MCR into one base).
    The tensor's ``path`` attribute is the Path used (``scores.path.describe()``)."""
    path, a, b = path_for(g, a, b, path, weight)
    ea = embed(space(g, path.node), pin_for(a, path.node), items_a, progress=progress)
    eb = embed(space(g, path.target_node), pin_for(b, path.target_node), items_b, progress=progress)
    return Scores.of(ea @ eb.T, path)


class Scores(torch.Tensor):
    """``similarity``'s tensor, with ``path``: the Path that answered (no silent choice). It is
    a plain tensor in every other way: results of operations on it are tensors without a path,
    and it saves (``torch.save``) as a plain tensor, loadable with ``weights_only=True``."""

    path: Path

    @classmethod
    def of(cls, t: torch.Tensor, path: Path) -> "Scores":
        out = t.as_subclass(cls)
        out.path = path
        return out

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        with torch._C.DisableTorchFunctionSubclass():  # every result is a plain tensor
            return func(*args, **(kwargs or {}))

    def __reduce_ex__(self, protocol):
        return self.as_subclass(torch.Tensor).__reduce_ex__(protocol)
