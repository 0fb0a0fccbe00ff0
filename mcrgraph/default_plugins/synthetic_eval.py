"""``mcrgraph synthetic-eval``: held-out audio->image retrieval in the synthetic demo world."""
from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

import mcrgraph
from mcrgraph.metrics import chance, retrieval

from .synthetic import CONCEPTS, held_out, parse_item


def evaluate(space: mcrgraph.MCR, concepts: int = 200) -> dict[str, float]:
    """Audio->image retrieval of held-out items (one image per concept) in ``space``."""
    audio, image = held_out(concepts)
    sim = mcrgraph.embed(space, "audio", audio) @ mcrgraph.embed(space, "image", image).T
    labels = [parse_item(i)[0] for i in audio]
    return retrieval(sim, labels, labels)


@click.command("synthetic-eval")
@click.argument("connector", default="synth-clip+synth-clap")
@click.option("--concepts", type=click.IntRange(2, CONCEPTS), default=200, show_default=True, help="Held-out concepts (one audio and one image item each).")
def command(connector, concepts):
    """Held-out audio->image retrieval in the SYNTHETIC demo world: chance, no connection
    (the same heads, untrained) and CONNECTOR (default synth-clip+synth-clap)."""
    space = mcrgraph.get_mcr(connector)
    untrained = mcrgraph.connect(*space.parent_names(), via=space.card.via, method=space.card.method, epochs=0, save=False)
    labels = list(range(concepts))
    rows = [("chance", chance(labels, labels)), ("no connection (untrained heads)", evaluate(untrained, concepts)), (connector, evaluate(space, concepts))]
    table = Table(title=f"held-out audio -> image retrieval, {concepts} concepts (SYNTHETIC demo world)", title_justify="left")
    for col in ("space", "R@1", "R@5"):
        table.add_column(col)
    for name, m in rows:
        table.add_row(name, f"{m['r1']:.3f}", f"{m['r5']:.3f}")
    Console(highlight=False).print(table)
