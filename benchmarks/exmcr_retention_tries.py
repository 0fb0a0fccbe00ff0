"""Issue 25 item 3: Ex-MCR training options against mini-clap's audio->text retention on the mini world.

``python -m benchmarks.exmcr_retention_tries --variants default,no-f1,...`` connects mini-clip (base) and
mini-clap (leaf) with Ex-MCR, preset mcrgraph plus each variant's options, seeds 0-2, and prints per voice
group the retention (same-side in brackets) and held-out audio->image R@1. Results and what they showed:
docs/results/exmcr-retention-tries."""
from __future__ import annotations

import argparse

import numpy as np

import mcrgraph

VARIANTS = {"default": {}, "no-f1": dict(f1=False), "bridge weight 1.0": dict(bridge_weight=1.0), "120 epochs": dict(epochs=120),
            "temperature 0.02": dict(temperature=0.02), "hidden x4": dict(hidden_factor=4), "via-centred tuples only": dict(centres=["via"])}


def main(argv: list[str] | None = None) -> None:
    from mcrgraph_mini.evaluate import audio_image, retention

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.variants.split(","):
        kept, found = [], []
        for seed in seeds:
            space = mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False, seed=seed, method="ex-mcr", preset="mcrgraph", **VARIANTS[name])
            kept.append(retention(space)["audio->text retention (mini-clap)"])
            found.append(audio_image(space))
        cells = " | ".join(f"{np.mean([k[g]['retention'] for k in kept]):.2f} ({np.mean([k[g]['same-side retention'] for k in kept]):.2f})" for g in kept[0])
        print(f"| {name} | {cells} | " + " / ".join(f"{np.mean([f[g]['R@1'] for f in found]):.3f}" for g in found[0]) + " |", flush=True)


if __name__ == "__main__":
    main()
