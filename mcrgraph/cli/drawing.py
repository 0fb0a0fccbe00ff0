"""Drawing to PNG: the graph, and embeddings in 2-D (needs matplotlib: pip install 'mcrgraph[plot]')."""
from __future__ import annotations

import io
from pathlib import Path

import networkx as nx

from ..errors import MCRGraphError
from ..store.disk import atomic_write_bytes


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MCRGraphError("drawing needs matplotlib: pip install 'mcrgraph[plot]'") from None
    return plt


def _save(fig, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())


def draw_graph(g: nx.MultiGraph, path: str | Path) -> None:
    """Spaces and modalities as two kinds of node (graph_picture.layout): grey modality
    ellipses at the bottom, blue plugin spaces linked to the modalities they hold, orange
    connected spaces above, an arrow to each space they join, labelled with the shared modality."""
    from ..planning.picture import layout

    plt = _pyplot()
    pic = layout(g)
    xs = [x for x, _ in pic.pos.values()] or [0.0]
    ys = [y for _, y in pic.pos.values()] or [0.0]
    width, height = max(xs) - min(xs) + 2, max(ys) - min(ys) + 1.5
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * width), max(3.5, 1.5 * height)), dpi=120)
    for space, modality in pic.holds:
        (x0, y0), (x1, y1) = pic.pos[("space", space)], pic.pos[("modality", modality)]
        ax.plot([x0, x1], [y0, y1], color="#b0b0b0", lw=1, zorder=1)
    for child, parent in pic.joins:
        (x0, y0), (x1, y1) = pic.pos[("space", child)], pic.pos[("space", parent)]
        ax.annotate("", xy=(x1, y1 + 0.18), xytext=(x0, y0 - 0.18), zorder=2,
                    arrowprops=dict(arrowstyle="->", color="#fb8500", lw=1.5))
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, g.nodes[child]["via"], fontsize=7, color="#b35c00", ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none"), zorder=3)
    for (kind, name), (x, y) in pic.pos.items():
        attrs = g.nodes[name] if kind == "space" else None
        if kind == "modality":
            style, label = dict(boxstyle="round,pad=0.4", fc="#eeeeee", ec="#888888"), name
        elif attrs["kind"] == "plugin":
            note = " (demo)" if attrs.get("demo") else ""
            absent = attrs["mcr"].weights_present() is False  # drawn dashed and pale: it cannot encode yet
            style = dict(boxstyle="square,pad=0.35", fc="#dcecf3" if absent else "#8ecae6", ec="#219ebc", ls="--" if absent else "-")
            label = f"{name}{note}\ndim {attrs['dim']}" + (", no weights" if absent else "")
        else:
            style, label = dict(boxstyle="round4,pad=0.35", fc="#ffb703", ec="#fb8500"), f"{name}\n{attrs['method']}"
        ax.text(x, y, label, ha="center", va="center", fontsize=7, bbox=style, zorder=4, wrap=True)
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_title("grey: modalities; blue: plugin spaces (dashed: weights missing), linked to the modalities they hold;\n"
                 "orange: connected spaces, an arrow to each space they join (label: the shared modality)", fontsize=8)
    ax.axis("off")
    _save(fig, path)


def draw_embeddings(panels: dict[str, dict[str, tuple]], path: str | Path, title: str = "") -> None:
    """One scatter per panel: ``{panel: {group: (embeddings (n, d), labels)}}``, each panel
    projected to 2-D by its own PCA; labels are written at their points, groups get colours."""
    import torch

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 5), dpi=110, squeeze=False)
    colours = ["#d62828", "#1d3557", "#2a9d8f", "#f4a261"]
    for ax, (name, groups) in zip(axes[0], panels.items()):
        allx = torch.cat([torch.as_tensor(e, dtype=torch.float32) for e, _ in groups.values()])
        mean = allx.mean(0)
        _, _, v = torch.pca_lowrank(allx - mean, q=2, center=False)
        for colour, (group, (emb, labels)) in zip(colours, groups.items()):
            xy = ((torch.as_tensor(emb, dtype=torch.float32) - mean) @ v).numpy()
            ax.scatter(xy[:, 0], xy[:, 1], s=14, c=colour, alpha=0.35, label=group)
            for (x, y), lab in zip(xy, labels):
                ax.annotate(str(lab), (x, y), fontsize=6, color=colour, ha="center", va="center")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _thumbnail(item, size: int = 160):
    """The picture in ``item`` (an image file's path) as an RGB array, or None when it is not one."""
    import os

    if not isinstance(item, (str, os.PathLike)):
        return None
    p = Path(item)
    if p.suffix.lower() not in {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"} or not p.is_file():
        return None
    try:
        import numpy as np
        from PIL import Image

        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            return np.asarray(im)
    except Exception:  # noqa: BLE001 - an unreadable picture is shown by name instead
        return None


def _short_name(item, width: int = 18) -> str:
    import os
    import textwrap

    text = (os.path.basename(os.fspath(item)) or str(item)) if isinstance(item, (str, os.PathLike)) else f"<{type(item).__name__}>"
    text = text if len(text) <= 3 * width else text[: 3 * width - 1] + "…"
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def draw_retrieval(queries, results, path: str | Path, title: str = "", max_rows: int = 20) -> None:
    """A retrieval grid: one row per query (the first ``max_rows``), the query first, then its
    hits best first, each titled with its rank and score. Hits are objects with ``.item`` and
    ``.score`` (mcrgraph.Hit); image files are drawn as thumbnails, other items by name."""
    from ..errors import DataError

    rows = list(zip(queries, results))[:max_rows]
    if not rows:
        raise DataError("nothing to draw: no queries")
    plt = _pyplot()
    cols = 1 + max(len(hits) for _, hits in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.8 * cols, 1.9 * len(rows) + 0.4), dpi=100, squeeze=False)
    for r, (query, hits) in enumerate(rows):
        cells = [(query, "query")] + [(h.item, f"#{rank}  {h.score:.3f}") for rank, h in enumerate(hits, 1)]
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            item, head = cells[c]
            picture = _thumbnail(item)
            if picture is not None:
                ax.imshow(picture)
                ax.set_xlabel(_short_name(item), fontsize=6)
            else:
                ax.text(0.5, 0.5, _short_name(item), ha="center", va="center", fontsize=7, transform=ax.transAxes)
            if c == 0:
                ax.set_facecolor("#eef4f8")
                for spine in ax.spines.values():
                    spine.set_edgecolor("#219ebc")
                    spine.set_linewidth(2)
            ax.set_title(head, fontsize=8)
    if len(queries) > len(rows):
        title = f"{title} (first {len(rows)} of {len(queries)} queries)".strip()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def draw_heatmap(image_rgb, scores, path: str | Path, title: str = "", alpha: float = 0.5) -> None:
    """A localization heat map (mcrgraph.tasks.localize): ``scores`` (h, w) upsampled bilinearly over
    ``image_rgb`` (uint8 (H, W, 3); None draws the map alone), coloured with a colour map at
    ``alpha``, with a colour bar of the cosine scores and a cross at the best patch."""
    import numpy as np
    import torch

    from ..errors import DataError

    s = torch.as_tensor(scores, dtype=torch.float32)
    if s.ndim != 2 or s.numel() == 0 or not torch.isfinite(s).all():
        raise DataError(f"a heat map is a finite (h, w) array of scores, got shape {tuple(s.shape)}")
    img = None if image_rgb is None else np.asarray(image_rgb)
    if img is not None and (img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8):
        raise DataError(f"the image under a heat map is uint8 (H, W, 3), got {img.dtype} {img.shape}")
    if img is not None and not 256 <= max(img.shape[:2]) <= 1024:  # drawn 256 to 1024 px wide or high
        from PIL import Image

        scale = (1024 if max(img.shape[:2]) > 1024 else 256) / max(img.shape[:2])
        size = (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale)))
        img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    h, w = img.shape[:2] if img is not None else (256, max(1, round(256 * s.shape[1] / s.shape[0])))
    big = torch.nn.functional.interpolate(s[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0].numpy()
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5 * h / w + 0.4), dpi=110)
    if img is not None:
        ax.imshow(img)
    shown = ax.imshow(big, cmap="jet", alpha=alpha if img is not None else 1.0, vmin=float(s.min()), vmax=float(s.max()),
                      interpolation="nearest")
    i = int(torch.argmax(s))
    r, c = i // s.shape[1], i % s.shape[1]
    ax.plot([(c + 0.5) * w / s.shape[1] - 0.5], [(r + 0.5) * h / s.shape[0] - 0.5], marker="+", color="white", markersize=14, mew=2)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label="cosine")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    _save(fig, path)
