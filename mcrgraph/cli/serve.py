"""``mcrgraph serve`` (the search page and HTTP API, mcrgraph/serve) and ``mcrgraph gallery``
(add, list, remove the galleries it searches; mcrgraph/tasks/galleries.py)."""
from __future__ import annotations

import json

import click

from ..ranking.index import KINDS as INDEX_KINDS
from .common import Group, err, out, table


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; other machines reach it only if you bind 0.0.0.0.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--gallery", "galleries", multiple=True, metavar="NAME", help="Serve only these galleries (repeatable). Default: all.")
@click.option("--index", type=click.Choice(list(INDEX_KINDS)), default="exact", show_default=True,
              help="How each gallery is scanned (as for mcrgraph search --index).")
def serve_cmd(host, port, galleries, index):
    """A local search page and HTTP API over the graph of spaces: search a gallery with a text,
    a sound, an image or a point cloud. API docs at /docs.

    \b
    Example:
      mcrgraph serve                 # then open http://127.0.0.1:8765/
      curl -F gallery=mini-images -F file=@dog.wav http://127.0.0.1:8765/search"""
    try:
        from ..serve import run
    except ImportError as e:
        raise click.ClickException(f"mcrgraph serve needs the serve extra: pip install 'mcrgraph[serve]' ({e.name} is missing)") from None

    def ready(url):
        err.print(f"serving on {url} (API docs: {url}docs); Ctrl-C stops")

    run(host=host, port=port, galleries=list(galleries) or None, index=index, on_ready=ready)


@click.group("gallery", cls=Group)
def gallery_group():
    """Galleries: named collections of items of one modality, indexed once and kept in
    $MCRGRAPH_HOME for mcrgraph serve. Plugins add some (the mini world's held-out items)."""


@gallery_group.command("add")
@click.argument("name")
@click.argument("folder", type=click.Path(exists=True))
@click.option("--modality", required=True, metavar="MODALITY", help="The items' modality, e.g. image (may be pinned: image@clip).")
@click.option("--overwrite", is_flag=True, help="Replace a gallery of that name.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars while encoding.")
def gallery_add(name, folder, modality, overwrite, progress):
    """Index the files of FOLDER (for text: a file, one caption per line) as gallery NAME."""
    from ..tasks.galleries import add_gallery

    card = add_gallery(name, folder, modality, overwrite=overwrite, progress=progress)
    out.print(f"gallery {card.name}: {len(card.items)} {card.modality} items, rows in {', '.join(r.space for r in card.rows)}")


@gallery_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def gallery_list(as_json):
    """The stored galleries and those plugins offer."""
    from ..tasks.galleries import Shelf

    shelf = Shelf()
    rows = []
    for name in shelf.names():
        card = shelf.card(name)
        rows.append({"name": name, "modality": card.modality, "items": len(card.items), "builtin": card.builtin,
                     "source": card.root or card.plugin or "captions", "spaces": sorted({r.space for r in card.rows})})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    out.print(table("galleries", ["name", "modality", "items", "from", "rows in"],
                    [[r["name"], r["modality"], str(r["items"]), r["source"], ", ".join(r["spaces"]) or "-"] for r in rows]))


@gallery_group.command("remove")
@click.argument("name")
def gallery_remove(name):
    """Delete a stored gallery (its rows and made media; a folder's own files are not touched)."""
    from ..store.galleries import remove

    remove(name)
    out.print(f"removed gallery {name}")
