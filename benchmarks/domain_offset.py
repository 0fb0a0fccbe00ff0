"""Issue 25: `mcrgraph adapt` (a label-free domain offset, mcrgraph/spaces/domain.py) on every world.

``python -m benchmarks.domain_offset --worlds mini,mini-heldout,hard,synthetic`` connects each world's audio
space to its image space (C-MCR and Ex-MCR, preset mcrgraph, seeds 0-2) and encodes every held-out
audio group twice: through the connector as it is, and through ``mcrgraph.adapt(connector, "audio",
<the group's own recordings, unlabelled>)``. In the mini world each group is one recording domain
(the real voice's recordings, the festival voices, the event sounds, FSDD's six speakers); in the
hard world, whose held-out items come from the memory's own distribution, the whole held-out audio is
the corpus. It prints held-out audio->image R@1 and audio->text retention (of the audio parent's own
R@1) per group. Results: docs/results/domain-offset."""
from __future__ import annotations

import argparse
import json
import logging

import numpy as np
import torch

import mcrgraph
from mcrgraph.ranking.metrics import retrieval

from .common import cpu_model


def adapted_audio(space, ids: list, corpus: list, neighbours: int, memory: list | None = None) -> torch.Tensor:
    """``ids`` encoded through ``mcrgraph.adapt(space, "audio", corpus)`` (not stored)."""
    return mcrgraph.embed(mcrgraph.adapt(space, "audio", corpus, memory=memory, neighbours=neighbours, save=False), "audio", ids).float()


def r1(q, g, q_lab, g_lab) -> float:
    return retrieval(q @ g.T, q_lab, g_lab, ks=(1,))["r1"]


def mini(seeds, methods, ks, held_out: bool, config: dict) -> dict:
    """{(method, k, group): [(a->i, retention) per seed]}; k 0 is the connector as it is."""
    from mcrgraph_mini.evaluate import audio_groups, audio_items, first_captions
    from mcrgraph_mini.oracle import paired_oracle
    from mcrgraph_mini.report import held_out_vocabulary
    from mcrgraph_mini.world import bundled

    world = bundled()
    clap = mcrgraph.get_mcr("mini-clap")
    ids, lab = audio_items(world)
    images, i_lab = world.ids("heldout", "image"), world.arrays("heldout", "image")[1]
    via, unnamed = held_out_vocabulary(world) if held_out else (None, None)
    memories = {m: world.ids("memory", m) for m in ("image", "audio")} if held_out else None  # as `eval mini --vocabulary held-out`
    groups = {g: m & (np.isin(lab, unnamed) if held_out else True) for g, m in audio_groups(world).items()}
    groups = {g: np.flatnonzero(m) for g, m in groups.items() if m.any()}
    out = {}
    for method in methods:
        for seed in seeds:
            if method == "oracle":  # the fair ceiling of issue 25 item 4: trained with pairs and the same preset, adapted the same way
                space, memory = paired_oracle(seed=seed, world=world, captions=via, preset="mcrgraph"), world.ids("memory", "audio")
            else:
                space, memory = mcrgraph.connect("mini-clip", "mini-clap", via="text", items=via, memories=memories, method=method,
                                                 save=False, seed=seed, config=config), None
            for g, rows in groups.items():
                q_ids, q_lab = [ids[i] for i in rows], lab[rows]
                concepts = np.array(sorted(set(q_lab.tolist())))
                caps = first_captions(world, "audio_captions", concepts)
                alone = r1(mcrgraph.embed(clap, "audio", q_ids).float(), mcrgraph.embed(clap, "text", caps).float(), q_lab, concepts)
                keep = np.isin(i_lab, concepts)
                gi = mcrgraph.embed(space, "image", [x for x, k in zip(images, keep) if k]).float()
                gt = mcrgraph.embed(space, "text", caps).float()
                for k in (0, *ks):
                    q = adapted_audio(space, q_ids, q_ids, k, memory) if k else mcrgraph.embed(space, "audio", q_ids).float()
                    out.setdefault((method, k, g), []).append((r1(q, gi, q_lab, i_lab[keep]), r1(q, gt, q_lab, concepts) / alone))
    return out


def hard(seeds, methods, ks, coverages, config: dict) -> dict:
    """As ``mini``: the hard world's whole held-out audio is the corpus; groups per coverage."""
    from mcrgraph.default_plugins import synthetic_hard as hw
    from mcrgraph.default_plugins import synthetic_hard_eval as H

    hw.enable()
    clap = mcrgraph.get_mcr("hard-clap")
    audio, a_lab = hw.held_out("audio")
    image, i_lab = hw.held_out("image")
    text, t_lab = hw.held_out("text")
    memory = hw.memory_items("audio", hw.MEMORY_PER_CONCEPT)
    out = {}
    for cov in coverages:
        groups = hw.groups(a_lab, cov)
        alone = H._per_group(mcrgraph.embed(clap, "audio", audio).float(), a_lab, mcrgraph.embed(clap, "text", text).float(), t_lab, groups)
        for method in methods:
            for seed in seeds:
                space = H.connect(cov, seed, method=method, preset="mcrgraph", config=config)
                ei, et = mcrgraph.embed(space, "image", image).float(), mcrgraph.embed(space, "text", text).float()
                for k in (0, *ks):
                    q = adapted_audio(space, audio, audio, k, memory) if k else mcrgraph.embed(space, "audio", audio).float()
                    ai, at = H._per_group(q, a_lab, ei, i_lab, groups), H._per_group(q, a_lab, et, t_lab, groups)
                    for g in groups:
                        out.setdefault((method, k, f"{cov}: {g}"), []).append((ai[g], at[g] / alone[g]))
    return out


def synthetic(seeds, methods, ks, config: dict, concepts: int = 200) -> dict:
    """The synthetic demo world (synth-clip + synth-clap, their default items and memories): its
    held-out audio of ``concepts`` concepts is the corpus; one image and one caption per concept."""
    from mcrgraph.default_plugins import synthetic as sw

    sw.enable()
    clap = mcrgraph.get_mcr("synth-clap")
    audio, image = sw.held_out(concepts)
    text = sw.held_out_items("text", concepts)
    lab = np.arange(concepts)
    alone = r1(mcrgraph.embed(clap, "audio", audio).float(), mcrgraph.embed(clap, "text", text).float(), lab, lab)
    out = {}
    for method in methods:
        for seed in seeds:
            space = mcrgraph.connect("synth-clip", "synth-clap", via="text", method=method, save=False, seed=seed, config=config)
            ei, et = mcrgraph.embed(space, "image", image).float(), mcrgraph.embed(space, "text", text).float()
            for k in (0, *ks):
                q = adapted_audio(space, audio, audio, k) if k else mcrgraph.embed(space, "audio", audio).float()
                out.setdefault((method, k, f"{concepts} held-out concepts"), []).append((r1(q, ei, lab, lab), r1(q, et, lab, lab) / alone))
    return out


def table(title: str, results: dict) -> str:
    groups = list(dict.fromkeys(g for _, _, g in results))
    rows = list(dict.fromkeys((m, k) for m, k, _ in results))
    lines = [f"### {title}", "", "audio->image R@1, then audio->text retention; mean ± spread (max − min) over seeds", "",
             "| row | offset | " + " | ".join(groups) + " |", "|---|---|" + "---|" * len(groups)]
    for i, what in ((0, "a->i"), (1, "retention")):
        for m, k in rows:
            cells = [results[m, k, g] for g in groups]
            lines.append(f"| {m} {what} | {f'adapt, k {k}' if k else 'none'} | "
                         + " | ".join(f"{np.mean([c[i] for c in v]):.3f} ± {np.ptp([c[i] for c in v]):.3f}" for v in cells) + " |")
    return "\n".join(lines)


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", default="mini,mini-heldout,hard,synthetic", help="comma-separated, of: mini, mini-heldout, hard, synthetic")
    ap.add_argument("--methods", default="c-mcr,ex-mcr", help="c-mcr, ex-mcr; for the mini worlds also oracle (the paired oracle, preset mcrgraph)")
    ap.add_argument("--neighbours", default="10", help="k values, comma-separated")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--coverage", default="all,half,few", help="the hard world's via coverages")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a method option for every connector but the oracle (JSON value), e.g. --set layers=1; repeatable")
    args = ap.parse_args(argv)
    config = {k: _value(v) for k, _, v in (kv.partition("=") for kv in args.set)}
    seeds, methods = [int(s) for s in args.seeds.split(",")], args.methods.split(",")
    ks = [int(k) for k in args.neighbours.split(",")]
    logging.getLogger("mcrgraph.adapt").setLevel(logging.ERROR)  # the few-items warning, once per small group and seed
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}\n", flush=True)
    for world in args.worlds.split(","):
        if world == "hard":
            res = hard(seeds, methods, ks, args.coverage.split(","), config)
        elif world == "synthetic":
            res = synthetic(seeds, methods, ks, config)
        elif world in ("mini", "mini-heldout"):
            res = mini(seeds, methods, ks, held_out=world == "mini-heldout", config=config)
        else:
            raise SystemExit(f"unknown world {world!r}: mini, mini-heldout, hard or synthetic")
        print(table(world, res) + "\n", flush=True)


if __name__ == "__main__":
    main()
