"""Scratch: the group's own unlabelled recordings (one half) added to the connector's audio memory
at training, judged on the other half; beside the plain connector and adapt(first half)."""
import sys, time, logging
import numpy as np, torch
import mcrgraph
from benchmarks.domain_offset import r1, adapted_audio
from mcrgraph_mini.evaluate import audio_groups, audio_items, first_captions
from mcrgraph_mini.world import bundled

logging.getLogger("mcrgraph.adapt").setLevel(logging.ERROR)
methods = sys.argv[1].split(",")
seeds = [int(s) for s in sys.argv[2].split(",")]
extra = dict(a.split("=") for a in sys.argv[3:])
world = bundled()
clap = mcrgraph.get_mcr("mini-clap")
ids, lab = audio_items(world)
images, i_lab = world.ids("heldout", "image"), world.arrays("heldout", "image")[1]
mem = {m: world.ids("memory", m) for m in ("image", "audio")}
groups = {g: np.flatnonzero(m) for g, m in audio_groups(world).items()}
out = {}
for method in methods:
    for seed in seeds:
        plain = mcrgraph.connect("mini-clip", "mini-clap", via="text", memories=mem, method=method, save=False, seed=seed, **{k: float(v) for k, v in extra.items()})
        for g, rows in groups.items():
            train_rows, test_rows = rows[0::2], rows[1::2]
            src = "real voice, all words" if g == "real voice, digits" else g
            corpus = [ids[i] for i in groups[src][0::2]]
            q_ids, q_lab = [ids[i] for i in test_rows], lab[test_rows]
            concepts = np.array(sorted(set(q_lab.tolist())))
            caps = first_captions(world, "audio_captions", concepts)
            alone = r1(mcrgraph.embed(clap, "audio", q_ids).float(), mcrgraph.embed(clap, "text", caps).float(), q_lab, concepts)
            keep = np.isin(i_lab, concepts)
            t = time.time()
            withc = mcrgraph.connect("mini-clip", "mini-clap", via="text", memories={"image": mem["image"], "audio": mem["audio"] + corpus},
                                     method=method, save=False, seed=seed, **{k: float(v) for k, v in extra.items()})
            dt = time.time() - t
            for row, space, q in (("plain", plain, None), ("adapt(half)", plain, "adapt"), ("memory+half", withc, None), ("memory+half, adapt", withc, "adapt")):
                gi = mcrgraph.embed(space, "image", [x for x, k in zip(images, keep) if k]).float()
                gt = mcrgraph.embed(space, "text", caps).float()
                if q == "adapt":
                    qa = mcrgraph.embed(mcrgraph.adapt(space, "audio", corpus, memory=mem["audio"] if space is plain else mem["audio"] + corpus, save=False), "audio", q_ids).float()
                else:
                    qa = mcrgraph.embed(space, "audio", q_ids).float()
                out.setdefault((method, row, g), []).append((r1(qa, gi, q_lab, i_lab[keep]), r1(qa, gt, q_lab, concepts) / alone))
            print(method, seed, g, f"connect {dt:.0f}s", {r: np.round(out[method, r, g][-1], 3).tolist() for r in ("plain", "adapt(half)", "memory+half", "memory+half, adapt")}, flush=True)
gs = list(groups)
for i, what in ((0, "a->i"), (1, "retention")):
    print(f"\n{what}: " + " | ".join(gs))
    for m in methods:
        for row in ("plain", "adapt(half)", "memory+half", "memory+half, adapt"):
            print(f"| {m} {row} | " + " | ".join(f"{np.mean([c[i] for c in out[m, row, g]]):.3f} ± {np.ptp([c[i] for c in out[m, row, g]]):.3f}" for g in gs) + " |")
