"""Where an audio->image crossing loses, concept by concept (issue 25 item 4):
``python -m mcrgraph_mini.crossing --seeds 0,1,2`` prints, for each event sound, its R@1 and the
concept its sounds land on most, for the default connector, the default with joined captions and
the paired oracle of the same preset, beside whether mini-clip's own text links the concept's sound
caption to its image caption."""
from __future__ import annotations

import argparse

import numpy as np
import torch

import mcrgraph

from .evaluate import audio_groups, audio_items, first_captions
from .world import World, bundled


def per_concept(space: mcrgraph.MCR, group: str, world: World | None = None) -> dict[int, tuple[float, int]]:
    """Per concept of an audio group: (audio->image R@1 of its sounds, the concept whose image
    its sounds rank first most often), the gallery holding the group's concepts' held-out images."""
    world = world or bundled()
    a_ids, a_lab = audio_items(world)
    _, i_lab = world.arrays("heldout", "image")
    mask = audio_groups(world)[group]
    keep = np.isin(i_lab, np.unique(a_lab[mask]))
    ea = mcrgraph.embed(space, "audio", [x for x, m in zip(a_ids, mask) if m])
    ei = mcrgraph.embed(space, "image", world.ids("heldout", "image", keep))
    top, q = i_lab[keep][(ea @ ei.T).argmax(1).numpy()], a_lab[mask]
    return {int(c): (float((top[q == c] == c).mean()), int(np.bincount(top[q == c]).argmax())) for c in np.unique(q)}


def linked(space: mcrgraph.MCR, concepts: np.ndarray, world: World) -> np.ndarray:
    """Per concept, whether its first sound caption's nearest first image caption (among
    ``concepts``) in ``space``'s text is its own."""
    sound = mcrgraph.embed(space, "text", first_captions(world, "audio_captions", concepts))
    picture = mcrgraph.embed(space, "text", first_captions(world, "image_captions", concepts))
    return (sound @ picture.T).argmax(1).numpy() == np.arange(len(concepts))


def main(argv: list[str] | None = None) -> None:
    from .oracle import paired_oracle

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--group", default="event sounds vs emoji")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    world = bundled()
    joined = dict(items=world.captions() + world.joined_captions(),
                  memories={"image": world.ids("memory", "image"), "audio": world.ids("memory", "audio")})
    columns = {"default": lambda s: mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False, seed=s, progress=False),
               "default, --captions joined": lambda s: mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False, seed=s,
                                                                        progress=False, **joined),
               "paired oracle, preset mcrgraph": lambda s: paired_oracle(seed=s, preset="mcrgraph")}
    runs = {name: [per_concept(make(s), args.group, world) for s in seeds] for name, make in columns.items()}
    concepts = np.array(sorted(runs["default"][0]))
    link = linked(mcrgraph.get_mcr("mini-clip"), concepts, world)
    names = [c.name for c in world.concepts]
    print(f"| concept | sound caption / image caption | linked in mini-clip's text | " + " | ".join(columns) + " |")
    print("|---|---|---|" + "---|" * len(columns))
    for k, c in enumerate(concepts):
        cells = []
        for name in columns:
            r1 = np.mean([run[c][0] for run in runs[name]])
            lands = np.bincount([run[c][1] for run in runs[name]]).argmax()
            cells.append(f"{r1:.2f}" + ("" if lands == c else f" ({names[lands]})"))
        con = world.concepts[c]
        print(f"| {con.name} | {con.audio_captions[0]} / {con.image_captions[0]} | {'yes' if link[k] else 'no'} | " + " | ".join(cells) + " |")
    for name in columns:
        r1 = np.array([[run[c][0] for c in concepts] for run in runs[name]]).mean(0)
        print(f"{name}: mean over concepts, linked {r1[link].mean():.3f} ({link.sum()}), not linked {r1[~link].mean():.3f} ({(~link).sum()})")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
