"""Scratch: where Ex-MCR loses mini-clap's audio->text R@1: by the leaf's own margin per clip."""
import numpy as np, torch, mcrgraph
from mcrgraph_mini.evaluate import audio_groups, audio_items, first_captions
from mcrgraph_mini.world import bundled

world = bundled(); clap = mcrgraph.get_mcr("mini-clap")
ids, lab = audio_items(world)
groups = {g: np.flatnonzero(m) for g, m in audio_groups(world).items()}
spaces = {s: mcrgraph.connect("mini-clip", "mini-clap", via="text", method="ex-mcr", save=False, seed=s) for s in (0, 1, 2)}
for g, rows in groups.items():
    q_ids, q_lab = [ids[i] for i in rows], lab[rows]
    concepts = np.array(sorted(set(q_lab.tolist())))
    caps = first_captions(world, "audio_captions", concepts)
    col = np.searchsorted(concepts, q_lab)
    s_leaf = (mcrgraph.embed(clap, "audio", q_ids).float() @ mcrgraph.embed(clap, "text", caps).float().T).numpy()
    right = s_leaf.argmax(1) == col
    own = s_leaf[np.arange(len(col)), col]
    other = np.where(np.eye(len(concepts), dtype=bool)[col], -np.inf, s_leaf).max(1)
    margin = own - other
    kept, same = [], []
    for s, sp in spaces.items():
        s_con = (mcrgraph.embed(sp, "audio", q_ids).float() @ mcrgraph.embed(sp, "text", caps).float().T).numpy()
        kept.append(s_con.argmax(1) == col)
        with torch.inference_mode():
            lt = sp.heads().apply(1, "text", mcrgraph.embed(clap, "text", caps).float()).float()
        s_same = (mcrgraph.embed(sp, "audio", q_ids).float() @ torch.nn.functional.normalize(lt, dim=-1).T).numpy()
        same.append(s_same.argmax(1) == col)
    kept = np.mean(kept, 0)
    same = np.mean(same, 0)  # per clip, share of seeds it is right in the connected space
    m = margin[right]
    qs = np.quantile(m, [0.25, 0.5, 0.75])
    bins = np.digitize(m, qs)
    per_bin = [kept[right][bins == b].mean() for b in range(4)]
    # spread of the leaf's caption sims: how far apart the captions sit for this group's clips
    spread = np.std(s_leaf, 1).mean()
    print(f"{g}: clips {len(col)}, leaf right {right.mean():.3f}, kept of those {kept[right].mean():.3f}, "
          f"wrong-made-right {kept[~right].mean() if (~right).any() else float('nan'):.3f}; margin of right clips median {np.median(m):.4f} "
          f"(quartiles {np.round(qs, 4).tolist()}), row std of sims {spread:.4f}, margin/std {np.median(m)/spread:.2f}; "
          f"kept by margin quartile {np.round(per_bin, 3).tolist()}; same-side kept {same[right].mean():.3f}", flush=True)
