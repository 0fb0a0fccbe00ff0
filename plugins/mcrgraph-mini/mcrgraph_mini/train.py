"""Training the mini spaces on a built world: CLIP-style symmetric InfoNCE with a learnable
temperature. A batch holds one pair from each of B distinct concepts, so no two rows of a
batch are true matches. No step ever sees an audio-image pair.

    python -m mcrgraph_mini.train --data build/mini --out plugins/mcrgraph-mini/mcrgraph_mini/weights
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mcrgraph.io.progress import progress_bar
from mcrgraph.store.disk import atomic_write_bytes

from .space import build_towers
from .text import sentence_features
from .towers import SPACES, canonical_pose
from .world import World

# steps and batch per space, sized to train all three in well under 20 minutes on 2 cores
PLAN = {"mini-clip": (900, 128), "mini-clap": (2700, 128), "mini-ulip": (900, 64)}
TRAIN_POINTS = 512  # points per cloud during training: cheaper, and a sampling augmentation


class Pool:
    """Inputs of one modality grouped by concept, to draw one item of each asked concept."""

    def __init__(self, inputs: torch.Tensor, concept: np.ndarray):
        self.inputs = inputs
        self.by_concept = {int(c): np.flatnonzero(concept == c) for c in np.unique(concept)}

    def draw(self, concepts: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        idx = [self.by_concept[int(c)][rng.integers(len(self.by_concept[int(c)]))] for c in concepts]
        return self.inputs[torch.as_tensor(idx)]


def augment(modality: str, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Training-time augmentation on top of what the builder already varied."""
    b = len(x)
    if modality == "image":  # shift by up to 3 pixels, edge-padded
        pad = F.pad(x.permute(0, 3, 1, 2).float(), (3, 3, 3, 3), mode="replicate")
        dx, dy = rng.integers(0, 7, b), rng.integers(0, 7, b)
        out = torch.stack([pad[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(b)])
        return out.permute(0, 2, 3, 1).round().to(torch.uint8)
    if modality == "audio":  # time shift, then one frequency and one time mask (SpecAugment)
        x = x.clone()
        for i in range(b):
            x[i] = torch.roll(x[i], int(rng.integers(-8, 9)), dims=1)
            f0, fw = rng.integers(0, 40), rng.integers(0, 7)
            t0, tw = rng.integers(0, 128), rng.integers(0, 17)
            x[i, f0:f0 + fw, :] = 0
            x[i, :, t0:t0 + tw] = 0
        return x
    if modality == "3d":  # a random subset of points, canonical pose, random axis signs, jitter
        keep = torch.as_tensor(np.stack([rng.choice(x.shape[1], TRAIN_POINTS, replace=False) for _ in range(b)]))
        p = canonical_pose(torch.gather(x.float(), 1, keep[:, :, None].expand(-1, -1, 3)))
        signs = torch.as_tensor(rng.choice([-1.0, 1.0], size=(b, 1, 3)), dtype=torch.float32)
        return p * signs + 0.01 * torch.as_tensor(rng.standard_normal(p.shape), dtype=torch.float32)
    return x + 0.01 * torch.as_tensor(rng.standard_normal(tuple(x.shape)), dtype=torch.float32)  # text features


def pools(name: str, world: World, split: str = "train") -> dict[str, Pool]:
    """The two sides of ``name``'s training pairs, each grouped by concept."""
    out = {}
    for modality in SPACES[name]:
        if modality == "text":
            caption_kind = "image_captions" if "image" in SPACES[name] else "audio_captions"
            texts, concept = [], []
            for cid, c in enumerate(world.concepts):
                for t in getattr(c, caption_kind):
                    texts.append(t)
                    concept.append(cid)
            out[modality] = Pool(torch.from_numpy(sentence_features(texts)), np.asarray(concept))
        else:
            inputs, concept = world.arrays(split, modality)
            out[modality] = Pool(torch.from_numpy(inputs.astype(np.float32) if modality == "3d" else inputs), concept)
    return out


def train_space(name: str, world: World, steps: int, batch: int, seed: int = 0, progress: bool = True) -> tuple[torch.nn.ModuleDict, dict]:
    """Train ``name``'s two towers; returns the EMA of their weights and training stats."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    side = pools(name, world)
    m_a, m_b = SPACES[name]
    concepts = np.array(sorted(set(side[m_a].by_concept) & set(side[m_b].by_concept)))
    batch = min(batch, len(concepts))
    towers = build_towers(name)
    ema = copy.deepcopy(towers).eval()
    logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / 0.07)))
    opt = torch.optim.AdamW([*towers.parameters(), logit_scale], lr=2e-3, weight_decay=0.01)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    decay = 1 - 1 / max(10, steps / 10)  # EMA over roughly the last tenth of training
    labels = torch.arange(batch)
    start, losses = time.time(), []
    towers.train()
    with progress_bar(steps, f"training {name}", unit="step", enabled=progress) as bar:
        for step in range(steps):
            pick = rng.permutation(concepts)[:batch]
            xa = augment(m_a, side[m_a].draw(pick, rng), rng)
            xb = augment(m_b, side[m_b].draw(pick, rng), rng)
            za = F.normalize(towers[m_a](xa, canonical=False) if m_a == "3d" else towers[m_a](xa), dim=-1)
            zb = F.normalize(towers[m_b](xb), dim=-1)
            logits = logit_scale.exp().clamp(max=100) * za @ zb.T
            loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                d = 0.0 if step < warmup else decay
                for e, p in zip(ema.state_dict().values(), towers.state_dict().values()):
                    e.copy_(p) if not e.dtype.is_floating_point else e.mul_(d).add_(p.detach(), alpha=1 - d)
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    stats = {"steps": steps, "batch": batch, "seed": seed, "concepts": int(len(concepts)), "seconds": round(time.time() - start, 1),
             "final_loss": round(float(np.mean(losses[-50:])), 4), "temperature": round(float(1 / logit_scale.detach().exp().clamp(max=100)), 4),
             "items": {m: int(len(side[m].inputs)) for m in (m_a, m_b)}}
    return ema, stats


def save_space(name: str, towers: torch.nn.ModuleDict, out: Path) -> str:
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in towers.state_dict().items()}, metadata={"space": name})
    atomic_write_bytes(out / f"{name}.safetensors", data)
    return hashlib.sha256(data).hexdigest()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("build/mini"), help="a built world (python -m mcrgraph_mini.build --out DIR)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "weights", help="where the .safetensors and card.json go")
    ap.add_argument("--only", choices=sorted(SPACES), action="append", help="train only these spaces")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every space's steps (e.g. 0.01 for a smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    world = World(args.data)
    card_path = args.out / "card.json"
    card = json.loads(card_path.read_text()) if card_path.exists() else {"format": "mcrgraph-mini-weights", "version": 1, "spaces": {}}
    for name in args.only or SPACES:
        steps, batch = PLAN[name]
        towers, stats = train_space(name, world, max(1, round(steps * args.scale)), batch, args.seed, progress=args.progress)
        from .evaluate import in_space

        stats["held_out"] = in_space(name, towers, World(args.data))
        stats["sha256"] = save_space(name, towers, args.out)
        stats["machine"] = f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
        card["spaces"][name] = stats
        print(name, json.dumps(stats["held_out"]), f"{stats['seconds']} s")
        atomic_write_bytes(card_path, (json.dumps(card, indent=2) + "\n").encode())


if __name__ == "__main__":
    main()
