"""The graph of spaces as a picture people can read at 20 spaces: spaces and modalities are the
two kinds of node. A plugin space is linked to the modalities it holds (bottom row), a connected
space to the two it joins (one row up per connector it stacks), so no line is drawn per pair
of spaces that share a modality. ``layout`` places the nodes (drawing.py draws them);
``mermaid`` writes the same picture as Mermaid text for docs and READMEs."""
from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx

MIN_GAP = 1.0  # horizontal room per node in a row, in layout units


@dataclass(frozen=True)
class Picture:
    """Nodes ``("modality", name)`` or ``("space", name)`` with their (x, y); ``holds`` links a
    plugin space to its modalities, ``joins`` a connected space to its parents."""

    pos: dict[tuple[str, str], tuple[float, float]]
    holds: list[tuple[str, str]]
    joins: list[tuple[str, str]]


def layout(g: nx.MultiGraph) -> Picture:
    """Rows: modalities (y 0), plugin spaces (y 1), connectors by depth (y 1 + hops). In each
    row a node sits near the mean x of what it links to, then the row is spread to ``MIN_GAP``."""
    plugins = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "plugin")
    modalities = sorted({m for n in plugins for m in g.nodes[n]["modalities"]}, key=_modality_order)
    holds = [(n, m) for n in plugins for m in g.nodes[n]["modalities"]]
    joins = [(n, p) for n, a in g.nodes(data=True) for p in a["parents"] if p in g]
    pos: dict[tuple[str, str], tuple[float, float]] = {}
    width = max(len(plugins), 1)
    step = width / max(len(modalities), 1)
    for i, m in enumerate(modalities):
        pos[("modality", m)] = ((i + 0.5) * step, 0.0)
    _place_row(pos, 1.0, {n: [pos[("modality", m)][0] for m in g.nodes[n]["modalities"] if ("modality", m) in pos] for n in plugins})
    depth = max((g.nodes[n]["hops"] for n in g), default=0)
    for h in range(1, depth + 1):
        row = sorted(n for n in g if g.nodes[n]["hops"] == h and g.nodes[n]["kind"] != "plugin")
        _place_row(pos, 1.0 + h, {n: [pos[("space", p)][0] for p in g.nodes[n]["parents"] if ("space", p) in pos] for n in row})
    stranded = [n for n in g if ("space", n) not in pos]  # connectors whose parents are missing: a row at the top
    if stranded:
        _place_row(pos, 2.0 + depth, {n: [] for n in stranded})
    return Picture(pos, holds, joins)


def _place_row(pos, y: float, anchors: dict[str, list[float]]) -> None:
    """Order a row by where its links point, then push apart nodes closer than MIN_GAP."""
    want = {n: (sum(xs) / len(xs) if xs else 0.0) for n, xs in anchors.items()}
    row = sorted(want, key=lambda n: (want[n], n))
    xs: list[float] = []
    for n in row:
        xs.append(max(want[n], xs[-1] + MIN_GAP) if xs else want[n])
    shift = (sum(want.values()) - sum(xs)) / len(xs) if xs else 0.0  # keep the row centred on its anchors
    for n, x in zip(row, xs):
        pos[("space", n)] = (x + shift, y)


def _modality_order(m: str):
    known = ("text", "image", "audio", "3d")
    return (known.index(m), m) if m in known else (len(known), m)


def mermaid(g: nx.MultiGraph) -> str:
    """Mermaid flowchart text: modalities as rounded nodes, plugin spaces as boxes linked to the
    modalities they hold, connected spaces as hexagons with an arrow to each parent labelled
    with the method and the shared modality."""
    pic = layout(g)
    ids: dict[tuple[str, str], str] = {}

    def node_id(kind: str, name: str) -> str:
        return ids.setdefault((kind, name), f"{kind[0]}{len(ids)}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}")

    lines = ["flowchart BT"]
    for kind, name in sorted(pic.pos, key=lambda k: (pic.pos[k][1], pic.pos[k][0])):
        nid = node_id(kind, name)
        if kind == "modality":
            lines.append(f'    {nid}(["{name}"])')
        elif g.nodes[name]["kind"] == "plugin":
            lines.append(f'    {nid}["{name}"]')
        else:
            a = g.nodes[name]
            lines.append(f'    {nid}{{{{"{name}<br/>{a["method"]}"}}}}')
    for space, modality in pic.holds:
        lines.append(f"    {node_id('space', space)} --- {node_id('modality', modality)}")
    for child, parent in pic.joins:
        lines.append(f'    {node_id("space", child)} -->|"via {g.nodes[child]["via"]}"| {node_id("space", parent)}')
    lines += ["    classDef modality fill:#eeeeee,stroke:#888888", "    classDef connector fill:#ffb703,stroke:#fb8500"]
    mods = [ids[k] for k in ids if k[0] == "modality"]
    conns = [ids[("space", n)] for n in g if g.nodes[n]["kind"] != "plugin" and ("space", n) in ids]
    if mods:
        lines.append(f"    class {','.join(mods)} modality")
    if conns:
        lines.append(f"    class {','.join(conns)} connector")
    return "\n".join(lines) + "\n"
