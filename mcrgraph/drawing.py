"""Drawing the graph to a PNG (needs matplotlib: pip install 'mcrgraph[plot]')."""
from __future__ import annotations

import io
from pathlib import Path

import networkx as nx

from .errors import MCRGraphError
from .store import atomic_write_bytes


def draw_graph(g: nx.MultiGraph, path: str | Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MCRGraphError("drawing needs matplotlib: pip install 'mcrgraph[plot]'") from None
    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    pos = nx.spring_layout(nx.Graph(g), seed=0)
    plugins = [n for n, a in g.nodes(data=True) if a["kind"] == "plugin"]
    derived = [n for n in g if n not in plugins]
    nx.draw_networkx_nodes(g, pos, nodelist=plugins, node_color="#8ecae6", node_size=1800, ax=ax)
    nx.draw_networkx_nodes(g, pos, nodelist=derived, node_color="#ffb703", node_size=1800, node_shape="s", ax=ax)
    labels = {n: f"{n}\n{'/'.join(a['modalities'])}" for n, a in g.nodes(data=True)}
    nx.draw_networkx_labels(g, pos, labels=labels, font_size=8, ax=ax)
    overlap = [(u, v) for u, v, a in g.edges(data=True) if a["kind"] == "overlap"]
    trained = [(u, v) for u, v, a in g.edges(data=True) if a["kind"] == "overlap" and a["trained"]]
    der = [(u, v) for u, v, a in g.edges(data=True) if a["kind"] == "derived"]
    nx.draw_networkx_edges(g, pos, edgelist=overlap, style="dashed", edge_color="#999999", ax=ax)
    nx.draw_networkx_edges(g, pos, edgelist=trained, width=2.5, edge_color="#219ebc", ax=ax)
    nx.draw_networkx_edges(g, pos, edgelist=der, width=1.5, edge_color="#fb8500", ax=ax)
    edge_labels = {}
    for u, v, a in g.edges(data=True):
        if a["kind"] == "overlap":
            edge_labels[(u, v)] = ", ".join(sorted(set(edge_labels.get((u, v), "").split(", ")) - {""} | {a["via"]}))
    nx.draw_networkx_edge_labels(g, pos, edge_labels=edge_labels, font_size=7, ax=ax)
    ax.set_title("circles: plugin spaces; squares: connected spaces; orange: built from;\n"
                 "blue: trained connection; dashed grey: shared modality, not yet connected", fontsize=9)
    ax.margins(0.25)  # room for the labels of nodes at the edges
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
