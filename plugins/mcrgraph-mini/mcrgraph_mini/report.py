"""``mcrgraph eval mini``: held-out retrieval in the bundled mini world for every connector
variant, the paired oracle, a multi-hop path to 3d, and each mini encoder on its own."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import click
import numpy as np
import torch
from rich.console import Console

import mcrgraph
from mcrgraph.methods.common import PRECISIONS
from mcrgraph.ranking.metrics import retrieval
from mcrgraph.store.disk import atomic_write_bytes
from mcrgraph.tasks.preset_rows import CMCR_PRESET_ROWS, EXMCR_CROSS_ROWS, EXMCR_MEMORY_ROWS, EXMCR_PRESET_ROWS

from .evaluate import audio_3d, audio_image, caption_link, first_captions, in_space, retention
from .oracle import paired_oracle
from .world import World, bundled

PAPER = dict(preset="paper")  # today's methods exactly, as published
VARIANTS = {  # row -> connect options (mini-clip is space A, the base for Ex-MCR)
    "no connection (untrained C-MCR heads)": dict(method="c-mcr", epochs=0, **PAPER),
    "C-MCR, text-text loss only": dict(method="c-mcr", memories={}, **PAPER),
    "C-MCR, full": dict(method="c-mcr", **PAPER),
    "C-MCR, full + centring": dict(method="c-mcr", **PAPER, centre=True),
    "C-MCR, full + via noise 0.13 (C3)": dict(method="c-mcr", **PAPER, noise_std=0.13),
    "C-MCR, full + bridging 0.7 (τ 0.05)": dict(method="c-mcr", **PAPER, bridge_weight=0.7),
    "C-MCR, full + both-sides via 0.5": dict(method="c-mcr", **PAPER, via_mix=0.5),
    "C-MCR, full + LayerNorm heads": dict(method="c-mcr", **PAPER, norm="layer"),
    "C-MCR, full + per-modality BN statistics": dict(method="c-mcr", **PAPER, norm="modality"),
    "C-MCR, full + bridging 0.5 (τ 0.05)": dict(method="c-mcr", **PAPER, bridge_weight=0.5),
    "C-MCR, full + bridging 0.9 (τ 0.05)": dict(method="c-mcr", **PAPER, bridge_weight=0.9),
    "C-MCR, preset mcrgraph (default)": dict(method="c-mcr", preset="mcrgraph"),
    "C-MCR, preset mcrgraph + per-modality BN statistics": dict(method="c-mcr", preset="mcrgraph", norm="modality"),
    "Ex-MCR, full": dict(method="ex-mcr", **PAPER),
    "Ex-MCR, no f1": dict(method="ex-mcr", f1=False, **PAPER),
    "Ex-MCR, text-centric tuples only": dict(method="ex-mcr", centres=["via"], **PAPER),
    "Ex-MCR, text-text loss only (not dense)": dict(method="ex-mcr", dense=False, **PAPER),
    "Ex-MCR, full + centring": dict(method="ex-mcr", **PAPER, centre=True),
    "Ex-MCR, full + via noise 0.13 (C3)": dict(method="ex-mcr", **PAPER, noise_std=0.13),
    "Ex-MCR, full + bridging 0.7 (τ 0.05)": dict(method="ex-mcr", **PAPER, bridge_weight=0.7),
    "Ex-MCR, full + LayerNorm heads": dict(method="ex-mcr", **PAPER, norm="layer"),
    "Ex-MCR, full + per-modality BN statistics": dict(method="ex-mcr", **PAPER, norm="modality"),
    "Ex-MCR, preset mcrgraph (default)": dict(method="ex-mcr", preset="mcrgraph"),
    "Ex-MCR, preset mcrgraph + per-modality BN statistics": dict(method="ex-mcr", preset="mcrgraph", norm="modality"),
    # issue 25: bridging's sharpness and confidence from the data (the mcrgraph preset's since), and the preset before
    "C-MCR, full + bridging 0.7, 10 neighbours, reach 10": dict(method="c-mcr", **PAPER, bridge_weight=0.7, bridge_neighbours=10.0, bridge_reach=10),
    **CMCR_PRESET_ROWS,
    **EXMCR_PRESET_ROWS,
    **EXMCR_CROSS_ROWS,
    **EXMCR_MEMORY_ROWS,
}
#: the paired oracle's rows: the same C-MCR heads trained WITH audio-image pairs, under each preset
#: (issue 25: a row is compared with the oracle of its own preset, so the ceiling uses the same techniques)
ORACLES = {"paired oracle, preset paper": "paper", "paired oracle, preset mcrgraph": "mcrgraph"}
SHARE = "share of the oracle (same preset)"
#: C-MCR rows that also run the multi-hop path: both hops trained with the row's options
MULTI_HOP = ("C-MCR, full", "C-MCR, full + centring", "C-MCR, full + via noise 0.13 (C3)", "C-MCR, full + bridging 0.7 (τ 0.05)",
             "C-MCR, full + both-sides via 0.5", "C-MCR, full + LayerNorm heads", "C-MCR, full + per-modality BN statistics",
             "C-MCR, preset mcrgraph (default)", "C-MCR, preset mcrgraph + per-modality BN statistics",
             *CMCR_PRESET_ROWS)
HOP = "connect(connect(mini-clip, mini-clap), mini-ulip, via=image)"
QUICK = ("no connection (untrained C-MCR heads)", "C-MCR, text-text loss only", "C-MCR, full", "C-MCR, preset mcrgraph (default)",
         "Ex-MCR, full", "Ex-MCR, preset mcrgraph (default)")
PER_SEED = ("R@1", "retention", "same-side retention")  # metrics also shown seed by seed


def image_text(space: mcrgraph.MCR) -> float:
    """Held-out image->text R@1 (one caption per concept): what mini-clip's own retrieval
    becomes inside ``space``."""
    world = bundled()
    _, lab = world.arrays("heldout", "image")
    concepts = sorted(set(lab.tolist()))
    ei = mcrgraph.embed(space, "image", world.ids("heldout", "image"))
    et = mcrgraph.embed(space, "text", first_captions(world, "image_captions", concepts))
    return retrieval(ei @ et.T, lab, concepts)["r1"]


def _mean(runs: list[dict]) -> dict:
    """Means over seeds per group (counts stay counts); for PER_SEED metrics also each seed's
    value and their spread (max - min)."""
    if len(runs) == 1:
        return runs[0]
    out = {}
    for g in runs[0]:
        row = {}
        for k, v in runs[0][g].items():
            if isinstance(v, int):
                row[k] = v
                continue
            vals = [r[g][k] for r in runs]
            row[k] = float(np.mean(vals))
            if k in PER_SEED:
                row[f"{k} per seed"] = "/".join(f"{x:.3f}" for x in vals)
                row[f"{k} spread"] = float(np.max(vals) - np.min(vals))
        out[g] = row
    return out


GAP_PANELS = ("no connection (untrained C-MCR heads)", "C-MCR, full", "Ex-MCR, full")


def draw_gap(spaces: dict[str, mcrgraph.MCR], path: str | Path) -> None:
    """Held-out digits (real voice and festival) and digit images in 2-D, in each space."""
    from mcrgraph.cli.drawing import draw_embeddings

    world = bundled()
    _, a_lab = world.arrays("heldout", "audio")
    _, i_lab = world.arrays("heldout", "image")
    names = np.array([c.name for c in world.concepts])
    digit = np.array([c.kind == "digit" for c in world.concepts])
    a_ids = world.ids("heldout", "audio", digit[a_lab])
    i_ids = world.ids("heldout", "image", digit[i_lab])
    rng = np.random.default_rng(0)
    i_pick = sorted(rng.choice(len(i_ids), min(len(i_ids), 120), replace=False))
    i_ids = [i_ids[k] for k in i_pick]
    panels = {}
    for title, space in spaces.items():
        panels[title] = {
            "audio (held-out voices)": (mcrgraph.embed(space, "audio", a_ids), names[[world.label(x) for x in a_ids]]),
            "image (held-out digits)": (mcrgraph.embed(space, "image", i_ids), names[[world.label(x) for x in i_ids]]),
        }
    draw_embeddings(panels, path, title="mini world: audio and image embeddings of held-out digits (PCA per panel)")


def held_out_vocabulary(world: World, captions: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """The held-out-vocabulary split (issue 25): every other concept with held-out audio (by id)
    is a test concept that no via caption names (its own captions and any caption holding its
    name as a whole word, a letter's as "letter x", are dropped from ``captions``, default the
    world's). Returns (the captions kept, the test concepts)."""
    import re

    _, a_lab = world.arrays("heldout", "audio")
    unnamed = np.unique(a_lab)[::2]
    def naming(name: str) -> re.Pattern:  # a letter is named as "letter a": the word "a" is everywhere
        return re.compile(rf"\b{'letter ' if len(name) == 1 else ''}{re.escape(name)}\b", re.IGNORECASE)

    words = [naming(world.concepts[c].name) for c in unnamed]
    own = {t for c in unnamed for t in (*world.concepts[c].image_captions, *world.concepts[c].audio_captions)}
    own.update(world.joined_captions(unnamed))
    return [t for t in (captions or world.captions()) if t not in own and not any(w.search(t) for w in words)], unnamed


CAPTIONS = ("own", "joined")  # the via captions: the concepts' own, or also ones naming picture and sound at once


def run(seeds: list[int], quick: bool = False, progress: bool = False, keep: tuple[str, ...] = (),
        precision: str = "fp32", rows: tuple[str, ...] | None = None, vocabulary: str = "all", captions: str = "own") -> dict:
    """Every measurement; with ``keep``, also the first seed's spaces of those rows under "spaces".
    ``precision``: the training steps' compute type, for every trained row and the oracle.
    ``rows``: only these rows (names of VARIANTS or ORACLES). ``vocabulary="held-out"``: the via
    captions never name half of the test concepts, and only those concepts are queried.
    ``captions="joined"``: the via captions also hold ``World.joined_captions`` (the oracles too)."""
    clip = mcrgraph.get_mcr("mini-clip")
    world = bundled()
    data: dict = {}
    only, via = None, world.captions() + (world.joined_captions() if captions == "joined" else [])
    if vocabulary == "held-out":
        via, only = held_out_vocabulary(world, via)
    if vocabulary == "held-out" or captions != "own":
        data = dict(items=via, memories={"image": world.ids("memory", "image"), "audio": world.ids("memory", "audio")})
    results: dict = {"encoders": {n: in_space(n, mcrgraph.get_mcr(n), bundled()) for n in ("mini-clip", "mini-clap", "mini-ulip")},
                     "audio_image": {}, "image_text": {"mini-clip alone": image_text(clip)}, "seconds": {},
                     "retention": {}, "audio_3d": {},
                     "caption_link": {f"{n} alone": caption_link(mcrgraph.get_mcr(n), only=only) for n in ("mini-clip", "mini-clap")}}
    kept = {}
    variants = {k: v for k, v in VARIANTS.items() if (not quick or k in QUICK) and (rows is None or k in rows)}
    for row, options in variants.items():
        start, measured, hops, hop_kept = time.time(), [], [], []
        for s in seeds:
            space = mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False, seed=s, progress=progress,
                                     precision=precision, **{**data, **options})
            measured.append(_measure(space, only))
            if row in keep and row not in kept:
                kept[row] = space
            if row in MULTI_HOP and only is None:  # the second hop with the same options
                hop_opts = {k: v for k, v in options.items() if k not in ("memories", "epochs")}
                hop = mcrgraph.connect(space, "mini-ulip", via="image", save=False, seed=s, precision=precision, **hop_opts)
                hops.append(audio_3d(hop))
                hop_kept.append(retention(hop))
        _record(results, row, measured)
        if hops:
            results["audio_3d"][f"{HOP}, {row}"] = _mean(hops)
            results["retention"][f"{HOP}, {row}"] = {title: _mean([k[title] for k in hop_kept]) for title in hop_kept[0]}
        results["seconds"][row] = round((time.time() - start) / len(seeds), 1)
    for row, preset in ORACLES.items():
        if rows is not None and row not in rows:
            continue
        start = time.time()
        # one oracle at a time: each holds its own copy of the captions' bridging keys; the rows' via captions
        _record(results, row, [_measure(paired_oracle(seed=s, precision=precision, preset=preset, captions=via), only) for s in seeds])
        results["seconds"][row] = round((time.time() - start) / len(seeds), 1)
    return results, kept


def _measure(space: mcrgraph.MCR, only) -> dict:
    """What every row and oracle is judged on, for one trained space."""
    return {"audio_image": audio_image(space, only=only), "image_text": image_text(space),
            "retention": retention(space, only=only), "caption_link": caption_link(space, only=only)}


def _record(results: dict, row: str, measured: list[dict]) -> None:
    """The means over seeds of ``_measure``'s values, into ``results`` under ``row``."""
    results["audio_image"][row] = _mean([m["audio_image"] for m in measured])
    results["image_text"][row] = float(np.mean([m["image_text"] for m in measured]))
    results["retention"][row] = {title: _mean([m["retention"][title] for m in measured]) for title in measured[0]["retention"]}
    results["caption_link"][row] = _mean([m["caption_link"] for m in measured])


def preset_of(row: str) -> str:
    """The preset a row was trained with (an oracle's own; a row that names none: the default)."""
    from mcrgraph.methods.inputs import InputConfig

    if row in ORACLES:
        return ORACLES[row]
    return VARIANTS[row].get("preset", InputConfig.model_fields["preset"].default)


def share_of_oracle(group_rows: dict[str, dict]) -> dict[str, float]:
    """Per row of one audio->image group, its R@1 over the R@1 of the paired oracle trained with the
    row's own preset; rows whose oracle was not run (or scored 0) get none."""
    ceiling = {preset: group_rows[row]["R@1"] for row, preset in ORACLES.items() if row in group_rows}
    return {row: m["R@1"] / ceiling[preset_of(row)] for row, m in group_rows.items()
            if row not in ORACLES and ceiling.get(preset_of(row))}


def _by_group(table: dict) -> dict[str, dict[str, dict]]:
    """{variant: {group: metrics}} -> {group: {variant: metrics}}."""
    out: dict = {}
    for variant, groups in table.items():
        for group, m in groups.items():
            out.setdefault(group, {})[variant] = m
    return out


def _chance_row(group_rows: dict) -> dict:
    m = next(iter(group_rows.values()))
    return {"R@1": m["chance R@1"], "queries": m["queries"], "gallery": m["gallery"]}


def tables(results: dict) -> dict[str, dict[str, dict]]:
    """Every result as ``{title: {row: {column: value}}}``."""
    out = {}
    for group, rows in _by_group(results["audio_image"]).items():
        share = share_of_oracle(rows)
        out[f"audio->image, {group}"] = {"chance": _chance_row(rows)} | {
            v: {k: x for k, x in m.items() if k != "chance R@1"} | ({SHARE: share[v]} if v in share else {}) for v, m in rows.items()}
    for group, rows in _by_group(results["audio_3d"]).items():
        out[f"audio->3d (multi-hop), {group}"] = {"chance": _chance_row(rows)} | {v: {k: x for k, x in m.items() if k != "chance R@1"} for v, m in rows.items()}
    by_title: dict = {}
    for variant, titles in results.get("retention", {}).items():
        for title, groups in titles.items():
            for group, m in groups.items():
                by_title.setdefault(f"{title}, {group}", {})[variant] = m
    out.update(by_title)
    for group, rows in _by_group(results.get("caption_link", {})).items():  # the text link audio->image crosses
        out[f"sound caption -> image caption (first of each; the link an audio->image crossing needs), {group}"] = rows
    out["mini-clip's image->text R@1 inside each space"] = {k: {"R@1": v} for k, v in results["image_text"].items()}
    for name, m in results["encoders"].items():
        out[f"{name} on its own (held-out, in-space)"] = {k: {"value": v} for k, v in m.items()}
    return out


def markdown(all_tables: dict, title: str, machine: dict) -> str:
    lines = [f"# {title}", "", f"Machine: {machine}", ""]
    for name, rows in all_tables.items():
        cols = list(dict.fromkeys(c for r in reversed(rows.values()) for c in r))  # the chance row lacks some
        lines += [f"## {name}", "", "| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for row, m in rows.items():
            lines.append(f"| {row} | " + " | ".join(f"{m[c]:.3f}" if isinstance(m.get(c), float) else str(m.get(c, "-")) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines)


@click.command("mini")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds; every trained row is a mean over them.")
@click.option("--quick", is_flag=True, help="Only chance, no connection, C-MCR (text-only, full, default), Ex-MCR (full, default), both oracles and multi-hop.")
@click.option("--out", type=click.Path(file_okay=False), help="Also write results.json and results.md to this folder.")
@click.option("--png", type=click.Path(dir_okay=False), help="Also draw held-out digit audio and images in 2-D before and after connection.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="Compute type of every training step (torch.autocast), to see what mixed precision costs in quality.")
@click.option("--rows", "row_names", help="Rows to run, separated by semicolons (names as printed; the oracles are "
              f"{' and '.join(map(repr, ORACLES))}); default: every row.")
@click.option("--vocabulary", type=click.Choice(["all", "held-out"]), default="all", show_default=True,
              help="held-out: the via captions never name half of the test concepts (every other one with held-out "
                   "audio), and only those concepts are queried.")
@click.option("--captions", type=click.Choice(CAPTIONS), default="own", show_default=True,
              help="joined: the via captions (of every row and the oracles) also hold captions naming a concept's "
                   "picture and its sound at once, e.g. 'a picture of an open padlock and a login chime'.")
@click.option("--progress/--no-progress", default=True, help="Progress bars while training.")
def eval_mini(seeds, quick, out, png, progress, precision, row_names, vocabulary, captions):
    """Held-out retrieval in the bundled mini world: audio<->image (real-voice digits, all
    real-voice words, festival voices, event sounds vs emoji) for chance, no connection,
    C-MCR and Ex-MCR with ablations, and the paired oracle (the same heads trained WITH
    audio-image pairs, the upper bound); multi-hop audio->3d; mini-clip's image->text before
    and after connection; and each mini encoder on its own. Nothing is stored but --out."""
    from mcrgraph.cli import seed_list as parse_seeds  # here, not at import: the cli loads this plugin

    seed_list = parse_seeds(seeds)
    from mcrgraph.cli import result_table

    console = Console(highlight=False)
    start = time.time()
    rows = None
    if row_names:
        rows = tuple(r.strip() for r in row_names.split(";") if r.strip())  # row names hold commas
        unknown = [r for r in rows if r not in VARIANTS and r not in ORACLES]
        if unknown:
            raise click.BadParameter(f"unknown rows {unknown}; rows are: {'; '.join([*VARIANTS, *ORACLES])}", param_hint="--rows")
    results, spaces = run(seed_list, quick=quick, progress=progress, keep=GAP_PANELS if png else (), precision=precision,
                          rows=rows, vocabulary=vocabulary, captions=captions)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "seconds": round(time.time() - start, 1), "precision": precision}
    title = f"mcrgraph eval mini, seeds {','.join(map(str, seed_list))}" + ("" if precision == "fp32" else f", precision {precision}") \
        + ("" if vocabulary == "all" else ", held-out vocabulary (queries: concepts no via caption names)") \
        + ("" if captions == "own" else ", via captions also naming picture and sound at once (--captions joined)")
    if out:  # the measurements first: a long run is not lost to a failure below
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(out) / "results.json", json.dumps({"title": title, "machine": machine, "results": results}, indent=2).encode())
    if png:
        draw_gap(spaces, png)
        console.print(f"wrote {png}")
    all_tables = tables(results)
    for name, rows in all_tables.items():
        console.print(result_table(name, rows))
    if out:
        atomic_write_bytes(Path(out) / "results.md", markdown(all_tables, title, machine).encode())
        console.print(f"wrote {out}/results.json and results.md")
