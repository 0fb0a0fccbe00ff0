"""``mcrgraph eval hard``: the hard synthetic world (``synthetic_hard``), one world per via
coverage (all, half, few of the test concepts named by captions), every row trained afresh per
seed and measured per group: held-out audio->image R@1, the retention of each parent's own
retrieval (hard-clap's audio->text, hard-clip's image->text; ``mcrgraph.tasks.fidelity``) and, for
C-MCR rows, audio->3d R@1 over two hops (the connected space joined to hard-ulip via image, the
second hop trained with the row's options)."""
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
from mcrgraph.ranking.metrics import chance, retrieval
from mcrgraph.store.disk import atomic_write_bytes
from mcrgraph.tasks.fidelity import retention
from mcrgraph.tasks.preset_rows import CMCR_PRESET_ROWS, EXMCR_CROSS_ROWS, EXMCR_MEMORY_ROWS, EXMCR_PRESET_ROWS

from . import synthetic_hard as hw

PAPER = dict(preset="paper")
ADAPTIVE = dict(bridge_neighbours=10.0, bridge_reach=10)  # preset mcrgraph's first issue-25 choice (reach 30 since)
ROWS = {  # row -> connect options (hard-clip is space A, the base for Ex-MCR)
    "C-MCR, preset paper": dict(method="c-mcr", **PAPER),
    "C-MCR, paper + bridging 0.7 (τ 0.05)": dict(method="c-mcr", **PAPER, bridge_weight=0.7),
    "C-MCR, paper + bridging 0.7, 10 neighbours": dict(method="c-mcr", **PAPER, bridge_weight=0.7, bridge_neighbours=10.0),
    "C-MCR, paper + bridging 0.7, 10 neighbours, reach 10": dict(method="c-mcr", **PAPER, bridge_weight=0.7, **ADAPTIVE),
    "C-MCR, paper + both-sides via 0.5": dict(method="c-mcr", **PAPER, via_mix=0.5),
    **CMCR_PRESET_ROWS,
    "C-MCR, preset mcrgraph (default: 10 neighbours, reach 2.5% of the memory, memory readout 0.3)": dict(method="c-mcr", preset="mcrgraph"),
    "Ex-MCR, preset paper": dict(method="ex-mcr", **PAPER),
    "Ex-MCR, paper + bridging 0.7 (τ 0.05)": dict(method="ex-mcr", **PAPER, bridge_weight=0.7),
    "Ex-MCR, paper + bridging 0.7, 10 neighbours": dict(method="ex-mcr", **PAPER, bridge_weight=0.7, bridge_neighbours=10.0),
    "Ex-MCR, preset mcrgraph (default: 10 neighbours, reach 20)": dict(method="ex-mcr", preset="mcrgraph"),
    **EXMCR_PRESET_ROWS,
    **EXMCR_CROSS_ROWS,
    **EXMCR_MEMORY_ROWS,
}
METRICS = ("audio->image R@1", "audio->text retention (hard-clap)", "image->text retention (hard-clip)")
HOP = "audio->3d R@1 (two hops: + hard-ulip via image)"  # C-MCR rows only, as in `eval mini`


def connect(coverage: str, seed: int, memory: int = hw.MEMORY_PER_CONCEPT, **options) -> mcrgraph.MCR:
    """hard-clip + hard-clap via the captions ``coverage`` allows, with unpaired image and audio
    memories of ``memory`` instances per concept."""
    return mcrgraph.connect("hard-clip", "hard-clap", via="text", items=hw.via_items("text", coverage),
                            memories={"image": hw.memory_items("image", memory), "audio": hw.memory_items("audio", memory)},
                            save=False, seed=seed, **options)


def second_hop(space: mcrgraph.MCR, coverage: str, seed: int, memory: int = hw.MEMORY_PER_CONCEPT, **options) -> mcrgraph.MCR:
    """``space`` joined to hard-ulip via image (every concept's via images; the audio and 3d memories)."""
    return mcrgraph.connect(space, "hard-ulip", via="image", items=hw.via_items("image", coverage),
                            memories={"audio": hw.memory_items("audio", memory), "3d": hw.memory_items("3d", memory)},
                            save=False, seed=seed, **options)


def audio_3d(space: mcrgraph.MCR, coverage: str) -> dict[str, float]:
    """Held-out audio->3d R@1 per audio group through a two-hop space."""
    audio, a_lab = hw.held_out("audio")
    shapes, s_lab = hw.held_out("3d")
    return _per_group(mcrgraph.embed(space, "audio", audio), a_lab, mcrgraph.embed(space, "3d", shapes), s_lab, hw.groups(a_lab, coverage))


def chance_3d(coverage: str, groups: list[str]) -> dict[str, float]:
    """Chance audio->3d R@1 per group (each group ranks the 3d items of its own concepts)."""
    a_lab, s_lab = hw.held_out("audio")[1], hw.held_out("3d")[1]
    masks = hw.groups(a_lab, coverage)
    return {g: chance(a_lab[masks[g]], s_lab[np.isin(s_lab, a_lab[masks[g]])], ks=(1,))["r1"] for g in groups}


def _per_group(q: torch.Tensor, q_lab: np.ndarray, g: torch.Tensor, g_lab: np.ndarray, groups: dict) -> dict[str, float]:
    """R@1 per query group, each ranking the gallery items of its own concepts."""
    out = {}
    for name, mask in groups.items():
        keep = np.isin(g_lab, q_lab[mask])
        out[name] = retrieval(q[torch.from_numpy(mask)] @ g[torch.from_numpy(keep)].T, q_lab[mask], g_lab[keep], ks=(1,))["r1"]
    return out


def measure(space: mcrgraph.MCR, coverage: str) -> dict[str, dict[str, float]]:
    """``{metric: {group: value}}`` for one connected space of the world ``coverage``."""
    audio, a_lab = hw.held_out("audio")
    image, i_lab = hw.held_out("image")
    text, t_lab = hw.held_out("text")
    a_groups, i_groups = hw.groups(a_lab, coverage), hw.groups(i_lab, coverage)
    ea, ei = mcrgraph.embed(space, "audio", audio), mcrgraph.embed(space, "image", image)
    clip, clap = mcrgraph.get_mcr("hard-clip"), mcrgraph.get_mcr("hard-clap")
    kept_a = retention(space, clap, "audio", "text", audio, a_lab, text, t_lab, a_groups)
    kept_i = retention(space, clip, "image", "text", image, i_lab, text, t_lab, i_groups)
    return {METRICS[0]: _per_group(ea, a_lab, ei, i_lab, a_groups),
            METRICS[1]: {g: m["retention"] for g, m in kept_a.items()},
            METRICS[2]: {g: m["retention"] for g, m in kept_i.items()}}


def parents(coverage: str) -> dict[str, dict[str, float]]:
    """Each parent's own held-out R@1 per group (what retention divides by) and chance."""
    audio, a_lab = hw.held_out("audio")
    image, i_lab = hw.held_out("image")
    text, t_lab = hw.held_out("text")
    clip, clap = mcrgraph.get_mcr("hard-clip"), mcrgraph.get_mcr("hard-clap")
    a_groups = hw.groups(a_lab, coverage)
    ea, et = mcrgraph.embed(clap, "audio", audio), mcrgraph.embed(clap, "text", text)
    ei, eit = mcrgraph.embed(clip, "image", image), mcrgraph.embed(clip, "text", text)
    return {"hard-clap audio->text R@1 (alone)": _per_group(ea, a_lab, et, t_lab, a_groups),
            "hard-clip image->text R@1 (alone)": _per_group(ei, i_lab, eit, t_lab, hw.groups(i_lab, coverage)),
            "chance audio->image R@1": {g: chance(a_lab[m], i_lab[np.isin(i_lab, a_lab[m])], ks=(1,))["r1"] for g, m in a_groups.items()}}


def run(seeds: list[int], coverages: list[str], rows: dict[str, dict], echo=None, memory: int = hw.MEMORY_PER_CONCEPT) -> dict:
    """``{coverage: {"parents": ..., "rows": {row: {metric: {group: {mean, spread, per seed}}}}}}``."""
    hw.enable()
    out: dict = {}
    for coverage in coverages:
        world = out[coverage] = {"parents": parents(coverage), "rows": {}}
        for row, options in rows.items():
            start = time.time()
            runs = []
            for s in seeds:
                space = connect(coverage, s, memory, **options)
                runs.append(measure(space, coverage))
                if options.get("method") == "c-mcr":
                    runs[-1][HOP] = audio_3d(second_hop(space, coverage, s, memory, **options), coverage)
            world["rows"][row] = {metric: {g: _summary([r[metric][g] for r in runs]) for g in runs[0][metric]} for metric in runs[0]}
            if echo:
                echo(f"{coverage}: {row} ({(time.time() - start) / len(seeds):.1f} s a seed)")
    return out


def _summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "spread": float(np.max(values) - np.min(values)), "per seed": [float(v) for v in values]}


def markdown(results: dict, title: str, machine: dict) -> str:
    """One section per world (coverage) and metric: rows x groups, mean ± spread over seeds."""
    lines = [f"# {title}", "", f"Machine: {machine}", "",
             "Each cell: mean over seeds ± spread (max - min). Groups: every test concept; the parent's "
             "strength tier (hard-clap's own audio->text R@1 strong / medium / weak); with partial "
             "coverage, the concepts the via captions name and those they do not.", ""]
    for coverage, world in results.items():
        groups = list(next(iter(world["parents"].values())))
        lines += [f"## via captions cover {coverage} of the test concepts", "", "| parent alone | " + " | ".join(groups) + " |",
                  "|---|" + "---|" * len(groups)]
        lines += [f"| {name} | " + " | ".join(f"{v[g]:.3f}" for g in groups) + " |" for name, v in world["parents"].items()]
        lines.append("")
        for metric in (*METRICS, HOP):
            rows = {row: m for row, m in world["rows"].items() if metric in m}
            if not rows:
                continue
            lines += [f"### {metric}, coverage {coverage}", "", "| | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
            if metric == HOP:
                lines.append("| chance | " + " | ".join(f"{v:.3f}" for v in chance_3d(coverage, groups).values()) + " |")
            for row, m in rows.items():
                lines.append(f"| {row} | " + " | ".join(f"{m[metric][g]['mean']:.3f} ± {m[metric][g]['spread']:.3f}" for g in groups) + " |")
            lines.append("")
    return "\n".join(lines)


def _list(value: str, known, what: str, sep: str = ",") -> list[str]:
    items = [v.strip() for v in value.split(sep) if v.strip()]
    bad = [v for v in items if v not in known]
    if bad or not items:
        raise click.BadParameter(f"{what} are some of: {', '.join(known)}; got {value!r}")
    return items


@click.command("hard")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds; every cell is a mean over them.")
@click.option("--coverage", default="all,half,few", show_default=True, help="Worlds: which share of the test concepts the via captions name.")
@click.option("--rows", "row_names", help="Rows to run, separated by semicolons (default: every row); see --list.")
@click.option("--list", "list_rows", is_flag=True, help="Print the row names and exit.")
@click.option("--memory", type=click.IntRange(min=1), default=hw.MEMORY_PER_CONCEPT, show_default=True,
              help="Memory items per concept and modality (400 concepts): a bigger memory, as real ones are, to see which defaults keep.")
@click.option("--out", type=click.Path(file_okay=False), help="Also write results.json and results.md to this folder.")
def eval_hard(seeds, coverage, row_names, list_rows, memory, out):
    """Held-out retrieval in the hard SYNTHETIC world (instance structure shared across
    modalities, per-modality non-linear distortions, nuisance factors, parents from strong to
    weak, via captions covering all / half / few test concepts): audio->image R@1 and each
    parent's retention, per group, for each row trained afresh per seed. Nothing is stored but --out."""
    console = Console(highlight=False)
    if list_rows:
        for name in ROWS:
            console.print(name)
        return
    from mcrgraph.cli import seed_list as parse_seeds  # here, not at import: the cli loads this plugin

    seed_list = parse_seeds(seeds)
    coverages = _list(coverage, hw.COVERAGE, "coverages")
    rows = {k: ROWS[k] for k in _list(row_names, ROWS, "rows", sep=";")} if row_names else ROWS  # row names hold commas
    start = time.time()
    results = run(seed_list, coverages, rows, echo=lambda s: console.print(s, markup=False), memory=memory)
    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
               "threads": torch.get_num_threads(), "seconds": round(time.time() - start, 1)}
    title = f"mcrgraph eval hard (SYNTHETIC), seeds {','.join(map(str, seed_list))}, memory {memory} per concept ({memory * hw.CONCEPTS} items a modality)"
    text = markdown(results, title, machine)
    console.print(text, markup=False)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(Path(out) / "results.json", json.dumps({"title": title, "machine": machine, "results": results}, indent=2).encode())
        atomic_write_bytes(Path(out) / "results.md", text.encode())
        console.print(f"wrote {out}/results.json and results.md")


@mcrgraph.hookimpl
def register_commands(cli):
    cli.commands["eval"].add_command(eval_hard)
