"""``mcrgraph synthetic-eval``: held-out retrieval in the synthetic demo world, for a stored
connector or, with ``--ablations``, for every method variant trained afresh. A plugin of its
own (the command), so the synthetic spaces' module does not import it."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import click
import torch
from rich.console import Console
from rich.table import Table

import mcrgraph
from mcrgraph.ranking.metrics import chance, retrieval
from mcrgraph.store.disk import atomic_write_bytes

from .synthetic import CONCEPTS, HELD_OUT_VARIANT, SPACES, enable, held_out, held_out_items, parse_item

VARIANTS = {  # name -> connect options; "chance" and "synth-clip alone" are not trained
    "no connection (untrained C-MCR heads)": dict(method="c-mcr", epochs=0),
    "C-MCR, text only (no memories)": dict(method="c-mcr", memories={}),
    "C-MCR, no intra loss": dict(method="c-mcr", intra_weight=0.0),
    "C-MCR, full": dict(method="c-mcr"),
    "Ex-MCR, full": dict(method="ex-mcr"),
    "Ex-MCR, no f1": dict(method="ex-mcr", f1=False),
    "Ex-MCR, text-centric tuples only": dict(method="ex-mcr", centres=["via"]),
    "Ex-MCR, text-text loss only (not dense)": dict(method="ex-mcr", dense=False),
}
VARIANTS = {k: {**v, "preset": "paper"} for k, v in VARIANTS.items()}  # the published methods' parts (docs/architecture.md)


def evaluate(space: mcrgraph.MCR, concepts: int = 200) -> dict[str, float]:
    """Audio->image retrieval of held-out items (one image per concept) in ``space``."""
    audio, image = held_out(concepts)
    sim = mcrgraph.embed(space, "audio", audio) @ mcrgraph.embed(space, "image", image).T
    labels = [parse_item(i)[0] for i in audio]
    return retrieval(sim, labels, labels)


def evaluate_all(space: mcrgraph.MCR | None, concepts: int) -> dict[str, float]:
    """Audio<->image (if the space has audio) and image->text retrieval on held-out items."""
    labels = list(range(concepts))
    audio, image = held_out(concepts)
    text = held_out_items("text", concepts)
    out = {}
    if "audio" in space.modalities:
        ea, ei = mcrgraph.embed(space, "audio", audio), mcrgraph.embed(space, "image", image)
        a2i, i2a = retrieval(ea @ ei.T, labels, labels), retrieval(ei @ ea.T, labels, labels)
        out.update({"audio->image R@1": a2i["r1"], "audio->image R@5": a2i["r5"], "audio->image mAP": a2i["map"], "image->audio R@1": i2a["r1"]})
    i2t = retrieval(mcrgraph.embed(space, "image", image) @ mcrgraph.embed(space, "text", text).T, labels, labels)
    out["image->text R@1"] = i2t["r1"]
    return out


def run_ablations(concepts: int, seeds: list[int]) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    labels = list(range(concepts))
    c = chance(labels, labels)
    rows["chance"] = {"audio->image R@1": c["r1"], "audio->image R@5": c["r5"], "image->audio R@1": c["r1"], "image->text R@1": c["r1"]}
    rows["synth-clip alone"] = evaluate_all(mcrgraph.get_mcr("synth-clip"), concepts)
    for name, options in VARIANTS.items():
        runs = [evaluate_all(mcrgraph.connect("synth-clip", "synth-clap", via="text", save=False, seed=s, **options), concepts) for s in seeds]
        rows[name] = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
    return rows


def synthetic_graph() -> mcrgraph.MCRGraph:
    """The graph of the synthetic spaces and the connectors built only from them: the world's
    items mean nothing to other spaces, so no other space may answer."""
    from mcrgraph.spaces.lineage import leaves

    full = mcrgraph.graph().nx
    ours = [a["mcr"] for n, a in full.nodes(data=True) if leaves(full, n) <= set(SPACES) and not a["missing"]]
    return mcrgraph.MCRGraph(ours)


def evaluate_path(source: str, target: str, concepts: int) -> tuple[str, dict[str, float]]:
    """Held-out source->target retrieval along the path the planner picks."""
    g = synthetic_graph()
    path = g.plan(source, target)
    labels = list(range(concepts))
    sim = g.similarity(source, held_out_items(source.split("@")[0], concepts), target, held_out_items(target.split("@")[0], concepts), path=path)
    return path.describe(), retrieval(sim, labels, labels)


COLUMNS = ["audio->image R@1", "audio->image R@5", "audio->image mAP", "image->audio R@1", "image->text R@1"]


def markdown(rows: dict[str, dict[str, float]], title: str) -> str:
    lines = [f"# {title}", "", "| variant | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.3f}" if c in m else "-" for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


@click.command("synthetic-eval")
@click.argument("connector", default="synth-clip+synth-clap")
@click.option("--concepts", type=click.IntRange(2, CONCEPTS), default=200, show_default=True, help="Held-out concepts (one audio and one image item each).")
@click.option("--ablations", is_flag=True, help="Train every C-MCR and Ex-MCR variant afresh (not stored) and compare them; about a minute.")
@click.option("--seeds", default="0", show_default=True, help="With --ablations: comma-separated seeds; the table shows means.")
@click.option("--out", type=click.Path(file_okay=False), help="With --ablations: also write results.json and results.md to this folder.")
@click.option("--path", "pair", nargs=2, metavar="FROM TO", help="Instead: evaluate FROM->TO (e.g. audio 3d) along the path the planner picks.")
def command(connector, concepts, ablations, seeds, out, pair):
    """Held-out retrieval in the SYNTHETIC demo world (numbers about the pipeline, not about
    real encoders). Without --ablations: chance, no connection (the same heads, untrained)
    and CONNECTOR (default synth-clip+synth-clap). With --ablations: every method variant,
    and synth-clip's own image->text retrieval, which Ex-MCR must leave unchanged."""
    console = Console(highlight=False)
    enable()  # the synthetic spaces, kept out of a user's graph otherwise
    if pair:
        for mod in pair:
            if mod.split("@")[0] not in HELD_OUT_VARIANT:
                raise click.BadParameter(f"the synthetic world has {', '.join(HELD_OUT_VARIANT)}, not {mod!r}", param_hint="--path")
        described, m = evaluate_path(pair[0], pair[1], concepts)
        console.print(f"path: {described}")
        console.print(f"held-out {pair[0]} -> {pair[1]} over {concepts} concepts (SYNTHETIC): R@1 {m['r1']:.3f}, R@5 {m['r5']:.3f}, "
                      f"mAP {m['map']:.3f} (chance R@1 {1 / concepts:.3f})")
        return
    if not ablations:
        space = mcrgraph.get_mcr(connector)
        untrained = mcrgraph.connect(*space.parent_names(), via=space.card.via, method=space.card.method, epochs=0, save=False,
                                     preset="paper")
        labels = list(range(concepts))
        rows = [("chance", chance(labels, labels)), ("no connection (untrained heads)", evaluate(untrained, concepts)), (connector, evaluate(space, concepts))]
        table = Table(title=f"held-out audio -> image retrieval, {concepts} concepts (SYNTHETIC demo world)", title_justify="left")
        for col in ("space", "R@1", "R@5"):
            table.add_column(col)
        for name, m in rows:
            table.add_row(name, f"{m['r1']:.3f}", f"{m['r5']:.3f}")
        console.print(table)
        return
    from mcrgraph.cli import seed_list as parse_seeds  # here, not at import: the cli loads this plugin

    seed_list = parse_seeds(seeds)
    rows = run_ablations(concepts, seed_list)
    title = f"synthetic world: held-out retrieval, {concepts} concepts, seeds {','.join(map(str, seed_list))}"
    table = Table(title=title + " (SYNTHETIC)", title_justify="left")
    table.add_column("variant")
    for col in COLUMNS:
        table.add_column(col, justify="right")
    for name, m in rows.items():
        table.add_row(name, *(f"{m[c]:.3f}" if c in m else "-" for c in COLUMNS))
    console.print(table)
    if out:
        machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(out) / "results.json", json.dumps({"title": title, "machine": machine, "rows": rows}, indent=2).encode())
        atomic_write_bytes(Path(out) / "results.md", markdown(rows, title).encode())
        console.print(f"wrote {out}/results.json and results.md")


@mcrgraph.hookimpl
def register_commands(cli):
    cli.add_command(command)
