"""Scratch: Ex-MCR with a linear head (layers=1) vs the preset's MLP: mini groups, 3 seeds."""
import sys, logging, numpy as np, torch, mcrgraph
from benchmarks.domain_offset import r1
from mcrgraph_mini.evaluate import audio_groups, audio_items, first_captions
from mcrgraph_mini.world import bundled
logging.getLogger("mcrgraph.adapt").setLevel(logging.ERROR)
world = bundled(); clap = mcrgraph.get_mcr("mini-clap")
ids, lab = audio_items(world)
images, i_lab = world.ids("heldout", "image"), world.arrays("heldout", "image")[1]
groups = {g: np.flatnonzero(m) for g, m in audio_groups(world).items()}
rows = {"mlp": {}, "linear": {"layers": 1}, "linear, bn_relu": {"layers": 1, "bn_relu": True}}
out = {}
for name, cfg in rows.items():
    for seed in (0, 1, 2):
        sp = mcrgraph.connect("mini-clip", "mini-clap", via="text", method="ex-mcr", save=False, seed=seed, config=cfg or None)
        for g, r in groups.items():
            q_ids, q_lab = [ids[i] for i in r], lab[r]
            concepts = np.array(sorted(set(q_lab.tolist())))
            caps = first_captions(world, "audio_captions", concepts)
            alone = r1(mcrgraph.embed(clap, "audio", q_ids).float(), mcrgraph.embed(clap, "text", caps).float(), q_lab, concepts)
            keep = np.isin(i_lab, concepts)
            gi = mcrgraph.embed(sp, "image", [x for x, k in zip(images, keep) if k]).float()
            gt = mcrgraph.embed(sp, "text", caps).float()
            for ad in (False, True):
                s2 = mcrgraph.adapt(sp, "audio", q_ids, save=False) if ad else sp
                q = mcrgraph.embed(s2, "audio", q_ids).float()
                out.setdefault((name + (", adapted" if ad else ""), g), []).append((r1(q, gi, q_lab, i_lab[keep]), r1(q, gt, q_lab, concepts) / alone))
        print(name, seed, "done", flush=True)
gs = list(groups)
for i, what in ((0, "a->i"), (1, "retention")):
    print(f"\n{what}: " + " | ".join(gs))
    for row in dict.fromkeys(k for k, _ in out):
        print(f"| {row} | " + " | ".join(f"{np.mean([c[i] for c in out[row, g]]):.3f} ± {np.ptp([c[i] for c in out[row, g]]):.3f}" for g in gs) + " |")
