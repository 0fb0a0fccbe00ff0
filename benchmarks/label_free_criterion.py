"""Issue 25 item 2: do label-free criteria (``mcrgraph.tasks.selection``) rank connector
configurations like the labelled metric, on every world?

Worlds: the mini world, its held-out vocabulary, and the hard synthetic world at via coverage
all / half / few. Per (world, configuration, seed) one C-MCR connect of the world's clip-like and
clap-like spaces; from that connector the labelled metric (held-out audio->image R@1, every
held-out audio query pooled, gallery: the held-out images of the queries' concepts; also the mean
of the world's group R@1s) and every label-free criterion. With ``--split``, a second connector
per run is trained on 80% of the via items and scored on the 20% it never saw (the held-out-via
criteria: pseudo-pair R@1 and via alignment); that doubles the training time.

    python -m benchmarks.label_free_criterion --seeds 0,1,2 --split --out docs/results/label-free-criterion

Each finished run is written to ``runs.json`` in ``--out`` at once (atomically); a re-run with the
same ``--out`` skips the runs it holds. Then ``results.json`` and ``results.md``: per world and
criterion, Spearman and Kendall correlations over the configurations (means over seeds, and the
range of the per-seed correlations), and whether the criterion's top choice is within the seed
spread of the labelled best."""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from scipy import stats

import mcrgraph
from mcrgraph.ranking.metrics import retrieval
from mcrgraph.tasks import selection

from .common import machine, write_atomic

PAPER = dict(method="c-mcr", preset="paper")
MCRGRAPH = dict(method="c-mcr", preset="mcrgraph")
CONFIGS = {  # the configurations (C-MCR; connect options)
    "paper": PAPER,
    "paper + bridging 0.7 (τ 0.05)": dict(PAPER, bridge_weight=0.7),
    "paper + bridging 0.7, 10 neighbours": dict(PAPER, bridge_weight=0.7, bridge_neighbours=10.0),
    "paper + bridging 0.7, 10 neighbours, reach 10": dict(PAPER, bridge_weight=0.7, bridge_neighbours=10.0, bridge_reach=10),
    "mcrgraph (default)": MCRGRAPH,
    "mcrgraph, reach 0": dict(MCRGRAPH, bridge_reach=0),
    "mcrgraph, reach 30": dict(MCRGRAPH, bridge_reach=30),
    "mcrgraph before issue 25 (neighbours 0, reach 0)": dict(MCRGRAPH, bridge_neighbours=0.0, bridge_reach=0),
}
WORLDS = ("mini", "mini held-out vocabulary", "hard all", "hard half", "hard few")
SPLIT = 0.2  # share of the via items the second connector never sees
LABELLED = "audio->image R@1 (pooled)"


class World:
    """What connect gets in one world, and the labelled metric of a connected space."""

    def __init__(self, name: str):
        self.name = name
        if name.startswith("mini"):
            from mcrgraph_mini.evaluate import audio_image
            from mcrgraph_mini.report import held_out_vocabulary
            from mcrgraph_mini.world import bundled

            w = bundled()
            self.a, self.b = "mini-clip", "mini-clap"
            self.items, self.only = (held_out_vocabulary(w) if name == "mini held-out vocabulary" else (w.captions(), None))
            self.memories = {"image": w.ids("memory", "image"), "audio": w.ids("memory", "audio")}
            _, a_lab = w.arrays("heldout", "audio")
            _, i_lab = w.arrays("heldout", "image")
            self.queries, self.q_lab = w.ids("heldout", "audio"), a_lab
            self.gallery, self.g_lab = w.ids("heldout", "image"), i_lab
            self._groups = lambda space: {g: m["R@1"] for g, m in audio_image(space, only=self.only).items()}
        else:
            from mcrgraph.default_plugins import synthetic_hard as hw

            hw.enable()
            coverage = name.split()[1]
            self.a, self.b = "hard-clip", "hard-clap"
            self.items, self.only = hw.via_items("text", coverage), None
            self.memories = {"image": hw.memory_items("image"), "audio": hw.memory_items("audio")}
            (self.queries, self.q_lab), (self.gallery, self.g_lab) = hw.held_out("audio"), hw.held_out("image")
            groups = {k: v for k, v in hw.groups(self.q_lab, coverage).items() if k != "all"}
            self._groups = lambda space: self._by_group(space, groups)
        if self.only is not None:
            keep = np.isin(self.q_lab, self.only)
            self.queries, self.q_lab = [q for q, k in zip(self.queries, keep) if k], self.q_lab[keep]

    def connect(self, seed: int, items=None, **options) -> mcrgraph.MCR:
        return mcrgraph.connect(self.a, self.b, via="text", items=items or self.items, memories=self.memories,
                                save=False, seed=seed, **options)

    def _r1(self, space, mask=None) -> float:
        q_lab = self.q_lab if mask is None else self.q_lab[mask]
        queries = self.queries if mask is None else [q for q, k in zip(self.queries, mask) if k]
        keep = np.isin(self.g_lab, q_lab)
        ea = mcrgraph.embed(space, "audio", queries)
        ei = mcrgraph.embed(space, "image", [g for g, k in zip(self.gallery, keep) if k])
        return retrieval(ea @ ei.T, q_lab, self.g_lab[keep], ks=(1,))["r1"]

    def _by_group(self, space, groups) -> dict[str, float]:
        return {g: self._r1(space, m) for g, m in groups.items()}

    def labelled(self, space) -> dict[str, float]:
        groups = self._groups(space)
        return {LABELLED: self._r1(space), "audio->image R@1 (mean of groups)": float(np.mean(list(groups.values()))),
                **{f"group {g}": v for g, v in groups.items()}}


def one_run(world: World, config: dict, seed: int, split: bool) -> dict:
    start = time.time()
    space = world.connect(seed, **config)
    out = {"labelled": world.labelled(space), "criteria": selection.scores(selection.views(space, world.items, world.memories))}
    if split:  # a second connector that never sees a fifth of the via items
        rng = np.random.default_rng(1000 + seed)
        held = np.zeros(len(world.items), bool)
        held[rng.choice(len(world.items), int(SPLIT * len(world.items)), replace=False)] = True
        other = world.connect(seed, items=[t for t, h in zip(world.items, held) if not h], **config)
        v = selection.views(other, world.items, world.memories)
        rows = torch.from_numpy(np.flatnonzero(held))
        out["criteria"]["held-out via: pseudo-pair R@1 (second connector)"] = selection.pseudo_pair_recall(v, rows)
        out["criteria"]["held-out via: via alignment R@1 (second connector)"] = selection.via_alignment(v, rows)
    out["seconds"] = round(time.time() - start, 1)
    return out


#: criteria that are exact functions of recorded ones, filled in for runs recorded before they were added
DERIVED = {"confidence (1 - SND, τ 0.05)": lambda c: 1.0 - c["SND (τ 0.05)"]}


def _spread(values) -> float:
    return float(np.max(values) - np.min(values))


def analyse(runs: dict, worlds, configs, seeds, labelled: str = LABELLED) -> dict:
    """Per world: each configuration's means and spreads; per criterion the rank correlations with
    the labelled metric (of the means, and per seed), and its top choice against the labelled best."""
    for r in runs.values():
        for name, fn in DERIVED.items():
            if name not in r["criteria"]:
                r["criteria"][name] = fn(r["criteria"])
    out = {}
    for w in worlds:
        table = {c: [runs[f"{w}|{c}|{s}"] for s in seeds if f"{w}|{c}|{s}" in runs] for c in configs}
        table = {c: r for c, r in table.items() if r}
        if len(table) < 3:
            continue
        names = list(next(iter(table.values()))[0]["criteria"])
        lab = {c: [r["labelled"][labelled] for r in rs] for c, rs in table.items()}
        rows = {c: {"labelled mean": float(np.mean(lab[c])), "labelled spread": _spread(lab[c]),
                    "criteria": {n: {"mean": float(np.mean([r["criteria"][n] for r in rs])),
                                     "spread": _spread([r["criteria"][n] for r in rs])} for n in names}}
                for c, rs in table.items()}
        cs = list(rows)
        lm = np.array([rows[c]["labelled mean"] for c in cs])
        best = cs[int(lm.argmax())]
        crit = {}
        for n in names:
            cm = np.array([rows[c]["criteria"][n]["mean"] for c in cs])
            per_seed = []
            for i in range(min(len(table[c]) for c in cs)):
                x = [table[c][i]["criteria"][n] for c in cs]
                y = [table[c][i]["labelled"][labelled] for c in cs]
                per_seed.append(float(stats.spearmanr(x, y).statistic))
            top = cs[int(cm.argmax())]
            tol = max(rows[best]["labelled spread"], rows[top]["labelled spread"])
            crit[n] = {"spearman": float(stats.spearmanr(cm, lm).statistic), "kendall": float(stats.kendalltau(cm, lm).statistic),
                       "spearman per seed": per_seed, "top choice": top,
                       "labelled mean of top choice": rows[top]["labelled mean"],
                       "top within seed spread of best": bool(rows[best]["labelled mean"] - rows[top]["labelled mean"] <= tol)}
        out[w] = {"configs": rows, "labelled best": best, "criteria": crit}
    return out


GROUP_MEAN = "audio->image R@1 (mean of groups)"


def _summary(result: dict, names, what: str) -> list[str]:
    lines = [f"## Summary: Spearman per world against {what} (means over seeds)", "", "| criterion | " + " | ".join(result) + " | min |",
             "|---|" + "---|" * (len(result) + 1)]
    for n in names:
        rho = [result[w]["criteria"][n]["spearman"] for w in result]
        low = float("nan") if any(np.isnan(rho)) else min(rho)
        lines.append(f"| {n} | " + " | ".join(f"{r:.2f}" for r in rho) + f" | {low:.2f} |")
    return lines + [""]


def markdown(result: dict, title: str, meta: dict, by_groups: dict | None = None) -> str:
    command = "python -m benchmarks.label_free_criterion " + " ".join(f"'{a}'" if " " in a or ";" in a else a for a in meta.get("argv", []))
    lines = [f"# {title}", "", f"Command (from the project root; runs already in runs.json are not trained again): `{command}`", "",
             f"Machine: {meta}", "",
             f"Labelled metric: held-out {LABELLED} (every held-out audio query of the world pooled; gallery: the "
             "held-out images of the queries' concepts). Spearman / Kendall: rank correlation over the configurations "
             "between the criterion's mean over seeds and the labelled metric's mean; per seed: the range of the "
             "Spearman correlations computed seed by seed. Top within spread: the labelled mean of the criterion's top "
             "choice is at most max(seed spread of the two) below the labelled best. nan: the criterion is constant.", ""]
    names = list(next(iter(result.values()))["criteria"]) if result else []
    lines += _summary(result, names, LABELLED)
    if by_groups:
        lines += _summary(by_groups, names, GROUP_MEAN + " (the mini world: real voice digits, real voice words, festival voices, event sounds; the hard world: its tiers, and named / not named by the via items)")
    for w, r in result.items():
        lines += [f"## {w}", "", f"Labelled best: {r['labelled best']}", "",
                  "| configuration | " + LABELLED + " | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for c, row in r["configs"].items():
            lines.append(f"| {c} | {row['labelled mean']:.3f} ± {row['labelled spread']:.3f} | "
                         + " | ".join(f"{row['criteria'][n]['mean']:.3f} ± {row['criteria'][n]['spread']:.3f}" for n in names) + " |")
        lines += ["", "| criterion | Spearman | Kendall | Spearman per seed | top choice | its labelled mean | within spread of best |",
                  "|---|---|---|---|---|---|---|"]
        for n, m in r["criteria"].items():
            ps = m["spearman per seed"]
            lines.append(f"| {n} | {m['spearman']:.2f} | {m['kendall']:.2f} | {min(ps):.2f} .. {max(ps):.2f} | {m['top choice']} | "
                         f"{m['labelled mean of top choice']:.3f} | {'yes' if m['top within seed spread of best'] else 'no'} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--worlds", default=";".join(WORLDS), help="separated by semicolons: " + "; ".join(WORLDS))
    p.add_argument("--configs", default=None, help="separated by semicolons (default: all): " + "; ".join(CONFIGS))
    p.add_argument("--split", action="store_true", help="also the held-out-via criteria (a second connector per run)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    worlds = [w.strip() for w in args.worlds.split(";") if w.strip()]
    configs = [c.strip() for c in args.configs.split(";")] if args.configs else list(CONFIGS)
    for w in worlds:
        if w not in WORLDS:
            raise SystemExit(f"unknown world {w!r}; worlds: {', '.join(WORLDS)}")
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c!r}; configurations: {'; '.join(CONFIGS)}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "runs.json")
    runs = json.load(open(path)) if os.path.exists(path) else {}
    start = time.time()
    for w in worlds:
        world = World(w)
        for c in configs:
            for s in seeds:
                key = f"{w}|{c}|{s}"
                if key in runs and (not args.split or any(k.startswith("held-out via") for k in runs[key]["criteria"])):
                    continue
                runs[key] = one_run(world, CONFIGS[c], s, args.split)
                write_atomic(path, json.dumps(runs, indent=1))
                print(f"{key}: {runs[key]['labelled'][LABELLED]:.3f} ({runs[key]['seconds']} s)", flush=True)
    result = analyse(runs, worlds, configs, seeds)
    by_groups = analyse(runs, worlds, configs, seeds, GROUP_MEAN)
    meta = {**machine(), "seconds": round(time.time() - start, 1), "seeds": seeds, "split": args.split,
            "argv": list(argv if argv is not None else __import__("sys").argv[1:])}
    title = f"Label-free criteria against held-out audio->image R@1, seeds {args.seeds}"
    write_atomic(os.path.join(args.out, "results.json"), json.dumps({"title": title, "machine": meta, "configs": {c: CONFIGS[c] for c in configs},
                                                                       "results": result, "against the mean of groups": by_groups}, indent=1))
    text = markdown(result, title, meta, by_groups)
    write_atomic(os.path.join(args.out, "results.md"), text)
    print(text)


if __name__ == "__main__":
    main()
