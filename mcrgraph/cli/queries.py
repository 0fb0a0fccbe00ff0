"""The task commands: similarity, classify, search and localize (mcrgraph/tasks/retrieval.py,
mcrgraph/tasks/localize.py), each through the space where its two modalities meet."""
from __future__ import annotations

import json
import os

import click
from rich.table import Table

from .common import connect_flag, err, expand_items, modality_flags, out, planned
from ..ranking.index import KINDS as INDEX_KINDS


def _pairs(args: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in modality_flags(args, "--audio dog.wav --image dog.png"):
        found.setdefault(key, []).append(value)
    if len(found) != 2:
        raise click.UsageError(f"give items of exactly two modalities, e.g. --audio a.wav --image b.png (got {', '.join(found) or 'none'})")
    return found


@click.command("similarity", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@connect_flag
@click.pass_context
def similarity_cmd(ctx, join_first):
    """Cosine similarity between items of two modalities: --MOD ITEM --MOD ITEM.

    Repeat a flag for more items; MOD may be pinned to a space (--text@clip "a dog").

    \b
    Example:
      mcrgraph similarity --audio bark.wav --image dog.png --image cat.png"""
    from ..planning.graph import graph

    (ma, ia), (mb, ib) = _pairs(list(ctx.args)).items()
    g = graph()
    path = planned(g, ma, mb, join_first)
    sim = g.similarity(ma, ia, mb, ib, path=path)
    out.print(f"path: {path.describe()}")
    table = Table(title_justify="left")
    table.add_column(f"{ma} \\ {mb}")
    for item in ib:
        table.add_column(item, justify="right")
    for item, row in zip(ia, sim.tolist()):
        table.add_row(item, *(f"{v:.4f}" for v in row))
    out.print(table)


@click.command("classify", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--labels", "labels_file", type=click.Path(), metavar="FILE", help="Labels, one per line (no blank or repeated lines).")
@click.option("--label", "label_list", multiple=True, metavar="LABEL", help="A label (repeatable; adds to --labels).")
@click.option("--template", "templates", multiple=True, metavar="TEXT",
              help="Prompt with {} where the label goes, e.g. \"a point cloud of a {}\" (repeatable: each label's text is "
                   "the mean over templates). Default: \"a {}\".")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Labels shown per item.")
@click.option("--logit-scale", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Cosine similarities are multiplied by this before the softmax (CLIP's 100).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars while encoding.")
@connect_flag
@click.pass_context
def classify_cmd(ctx, labels_file, label_list, templates, top, logit_scale, as_json, progress, join_first):
    """Zero-shot classification: the most probable labels of items of any modality, through the
    space where it meets text (one space, or connected ones). Items: --MODALITY ITEM, repeatable
    (MODALITY may be pinned: --image@clip). Probabilities are a softmax over the labels.

    \b
    Example:
      mcrgraph classify --3d chair.ply --3d scans/ --labels labels.txt \\
          --template "a point cloud of a {}" --template "a 3D model of a {}"

    An ITEM may be a folder (its files), @list.txt (one item per line; for text, one caption
    per line) or @@x for an item that starts with @."""
    from rich.text import Text

    from ..planning.graph import graph
    from ..tasks.retrieval import check_labels, classify, read_labels

    flags = modality_flags(list(ctx.args), "--3d chair.ply")
    modalities = list(dict.fromkeys(k for k, _ in flags))
    if len(modalities) != 1:
        raise click.UsageError("give the items to classify as --MODALITY ITEM, all of one modality (e.g. --3d chair.ply --3d table.ply); "
                               f"got {', '.join(modalities) or 'none'}")
    modality = modalities[0]
    items = [it for _, value in flags for it in expand_items(modality, value)]
    if not labels_file and not label_list:
        raise click.UsageError("give the labels: --labels FILE (one per line) or --label NAME, repeated")
    labels = check_labels((read_labels(labels_file) if labels_file else []) + list(label_list))
    g = graph()
    path = planned(g, modality, "text", join_first, progress=progress)
    results = classify(modality, items, labels, templates=list(templates) or None, top=top, path=path,
                       logit_scale=logit_scale, graph=g, progress=progress)
    if as_json:
        click.echo(json.dumps({"path": path.describe(), "modality": modality, "labels": len(labels), "results": [
            {"item": r.item, "labels": [{"label": lab, "probability": p} for lab, p in r.ranked]} for r in results]}, indent=2))
        return
    out.print(f"path: {path.describe()}")
    for r in results:
        out.print(Text(f"{modality} {r.item}", style="bold"))
        table = Table()
        table.add_column("label")
        table.add_column("probability", justify="right")
        for lab, p in r.ranked:
            table.add_row(Text(lab), f"{p:.4f}")
        out.print(table)


def _search_flags(flags: list[tuple[str, str]], known: set[str]) -> tuple[str, list[str], str, list[str]]:
    """Split ``--MOD ITEM`` flags into the query modality and the gallery modality: a gallery flag
    is ``--gallery-MOD`` or the plural ``--MODs`` (when MOD is a modality and MODs is not)."""
    from ..errors import UnknownModalityError

    queries: dict[str, list[str]] = {}
    gallery: dict[str, list[str]] = {}
    for key, value in flags:
        base, at, pin = key.partition("@")
        if base.startswith("gallery-"):
            gallery.setdefault(base[len("gallery-"):] + at + pin, []).append(value)
        elif base not in known and base.endswith("s") and base[:-1] in known:
            gallery.setdefault(base[:-1] + at + pin, []).append(value)
        elif base not in known:
            raise UnknownModalityError(f"--{key}: no space has modality {base!r}; known modalities: {', '.join(sorted(known)) or 'none'} "
                                       "(a gallery flag is the plural, e.g. --images, or --gallery-MODALITY)")
        else:
            queries.setdefault(key, []).append(value)
    example = "e.g. --audio q.wav --images photos/"
    if len(queries) != 1:
        raise click.UsageError(f"give the queries as --MODALITY ITEM, all of one modality ({example}); got {', '.join(queries) or 'none'}")
    if len(gallery) != 1:
        raise click.UsageError("give the gallery as --MODALITYs DIR|@list.txt (plural: --images, --texts, --audios) or "
                               f"--gallery-MODALITY DIR|@list.txt, all of one modality ({example}); got {', '.join(gallery) or 'none'}")
    (qm, qv), (gm, gv) = next(iter(queries.items())), next(iter(gallery.items()))
    return qm, [it for v in qv for it in expand_items(qm, v)], gm, [it for v in gv for it in expand_items(gm, v)]


@click.command("search", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Gallery items shown per query.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw a grid (a row per query, its best matches left to right; "
              "image files as thumbnails) to this PNG file; needs matplotlib.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars while encoding.")
@click.option("--index", "index", type=click.Choice(list(INDEX_KINDS)), default="exact", show_default=True,
              help="How the gallery is scanned: exact float32, a half-precision copy, or FAISS (pip install 'mcrgraph[faiss]'): "
              "its exact scan, IVF cells, IVF cells with compressed rows (ivfpq: 1 byte per 8 dims), an 8-bit copy (sq8) or "
              "an HNSW graph. All but exact and faiss-flat are approximate.")
@click.option("--rerank", type=click.IntRange(min=1), default=None, metavar="N",
              help="With an approximate --index: score its first N candidates per query exactly (float32) and keep the "
              "best --top. Buys back recall (ivfpq's compressed rows lose most of it); the float32 gallery is kept.")
@connect_flag
@click.pass_context
def search_cmd(ctx, top, as_json, png, progress, index, rerank, join_first):
    """Retrieval: rank a gallery of one modality for queries of another (or the same), through
    the space where the two meet (one space, or connected ones).

    \b
    Queries: --MODALITY ITEM, repeatable (e.g. --audio q.wav).
    Gallery: the plural flag --MODALITYs SOURCE (--images, --texts, --audios, --3ds) or,
    for any modality, --gallery-MODALITY SOURCE (--gallery-3d); repeatable. Either may be
    pinned to a space: --text@clip, --images@clip.

    \b
    Example:
      mcrgraph search --audio q.wav --images photos/ --top 10 --png grid.png
      mcrgraph search --image dog.png --texts @captions.txt

    An ITEM or SOURCE may be a folder (its files), @list.txt (one item per line; for text, one
    caption per line) or @@x for an item that starts with @. Gallery embeddings are cached, so
    searching the same gallery again does not encode it again."""
    from rich.text import Text

    from ..planning.graph import graph
    from ..tasks.retrieval import search

    g = graph()
    known = {m for _, a in g.nx.nodes(data=True) for m in a["modalities"]}
    qm, queries, gm, gallery = _search_flags(modality_flags(list(ctx.args), "--audio q.wav --images photos/"), known)
    path = planned(g, qm, gm, join_first, progress=progress)
    results = search(qm, queries, gm, gallery, top=top, path=path, graph=g, progress=progress, index=index, rerank=rerank)
    if png:
        from .drawing import draw_retrieval

        draw_retrieval(queries, results, png, title=path.describe())
        err.print(f"wrote {png}")
    if as_json:
        click.echo(json.dumps({"path": path.describe(), "query_modality": qm, "gallery_modality": gm, "gallery": len(gallery), "results": [
            {"query": q, "hits": [{"rank": r, "index": h.index, "item": h.item, "score": h.score} for r, h in enumerate(hits, 1)]}
            for q, hits in zip(queries, results)]}, indent=2))
        return
    out.print(f"path: {path.describe()}")
    for q, hits in zip(queries, results):
        out.print(Text(f"{qm} {q}: best {len(hits)} of {len(gallery)} {gm} items", style="bold"))
        table = Table()
        table.add_column("rank", justify="right")
        table.add_column("score", justify="right")
        table.add_column("item")
        for r, h in enumerate(hits, 1):
            table.add_row(str(r), f"{h.score:.4f}", Text(str(h.item)))
        out.print(table)


@click.command("localize", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--png", type=click.Path(dir_okay=False), help="Draw the heat map over the image to this PNG file (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with every patch's score).")
@click.pass_context
def localize_cmd(ctx, png, as_json):
    """Where in an image a query is: the query's cosine similarity with each patch of the
    image, through the space where the two meet (one space, or connected ones). Needs a space
    with dense (patch-level) image features, such as mini-clip or mini-ulip.

    \b
    Query: --MODALITY ITEM, once (e.g. --audio a.wav, --text "a dog"; may be pinned: --text@clip).
    Image: --image ITEM, once (may be pinned: --image@mini-clip).

    \b
    Example:
      mcrgraph localize --audio a.wav --image b.jpg --png out.png
      mcrgraph localize --text "a handwritten seven" --image mini:heldout/image/800"""
    from rich.text import Text

    from ..planning.graph import graph
    from ..tasks.localize import localize, picture

    flags = modality_flags(list(ctx.args), "--audio a.wav --image b.jpg")
    images = [(k, v) for k, v in flags if k.split("@")[0] == "image"]
    queries = [(k, v) for k, v in flags if k.split("@")[0] != "image"]
    if len(images) != 1 or len(queries) != 1:
        raise click.UsageError("give one query and one image: --MODALITY ITEM --image ITEM (e.g. --audio a.wav --image b.jpg); "
                               f"got {len(queries)} query and {len(images)} image flags")
    (qm, query), (im, image) = queries[0], images[0]
    hm = localize(qm, query, image, image_modality=im, graph=graph())
    row, col, best = hm.peak
    h, w = hm.scores.shape
    if png:
        from .drawing import draw_heatmap

        def short(x):
            return os.path.basename(x) if os.path.exists(x) else x if len(x) <= 40 else x[:39] + "…"

        draw_heatmap(picture(image), hm.scores, png, title=f"{qm} {short(query)} on {short(image)}\n{hm.path.describe()}")
        err.print(f"wrote {png}")
    if as_json:
        click.echo(json.dumps({"path": hm.path.describe(), "space": hm.space, "query_modality": qm, "query": query, "image": image,
                               "grid": [h, w], "peak": {"row": row, "col": col, "score": best}, "score": hm.score,
                               "scores": [[round(v, 6) for v in r] for r in hm.scores.tolist()]}, indent=2))
        return
    out.print(f"path: {hm.path.describe()}")
    out.print(Text(f"peak: row {row}, column {col} of the {h}x{w} grid (0, 0 is the top left), cosine {best:.4f}; "
                   f"whole image {hm.score:.4f}; lowest patch {float(hm.scores.min()):.4f}"))
    table = Table(title=Text(f"{qm} {query} vs each patch of {image}"), title_justify="left")
    table.add_column("")
    for c in range(w):
        table.add_column(str(c), justify="right")
    for r, values in enumerate(hm.scores.tolist()):
        table.add_row(str(r), *(Text(f"{v:.3f}", style="bold" if (r, c) == (row, col) else "") for c, v in enumerate(values)))
    out.print(table)
