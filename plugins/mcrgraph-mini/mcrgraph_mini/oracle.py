"""The paired oracle: C-MCR's projectors trained WITH audio-image pairs (held-out concepts'
memories matched by concept label) as well as the captions. It is the upper bound a connector
trained without pairs is measured against; no user-facing connector is built this way.
Trained with a row's own preset (issue 25), so each row is compared with a ceiling that uses
the same techniques: bridging then reads out over the captions alone (the via items of the
connector it bounds, not the paired images and sounds) with each caption's reach measured on
the memories, as ``mcrgraph.connect`` does."""
from __future__ import annotations

import numpy as np
import torch

import mcrgraph
from mcrgraph.version import __version__
from mcrgraph.store.card import ConnectorCard, SpaceRef
from mcrgraph.spaces.connected import ConnectedMCR
from mcrgraph.methods import TrainingData, cmcr
from mcrgraph.methods.inputs import bridge_items

from .world import World, bundled


def concept_pairs(a_lab: np.ndarray, b_lab: np.ndarray, per_concept: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) with a_lab[i] == b_lab[j]: ``per_concept`` random pairs per shared concept."""
    rng = np.random.default_rng(seed)
    ia, ib = [], []
    for c in np.intersect1d(a_lab, b_lab):
        a, b = np.flatnonzero(a_lab == c), np.flatnonzero(b_lab == c)
        ia.append(rng.choice(a, per_concept))
        ib.append(rng.choice(b, per_concept))
    return np.concatenate(ia), np.concatenate(ib)


def paired_oracle(seed: int = 0, world: World | None = None, per_concept: int = 20, captions: list[str] | None = None,
                  **options) -> ConnectedMCR:
    """mini-clip + mini-clap joined by C-MCR heads trained on captions (default: the world's) and
    audio-image pairs."""
    world = world or bundled()
    clip, clap = mcrgraph.get_mcr("mini-clip"), mcrgraph.get_mcr("mini-clap")
    captions = captions or world.captions()
    _, i_lab = world.arrays("memory", "image")
    _, a_lab = world.arrays("memory", "audio")
    ii, ia = concept_pairs(i_lab, a_lab, per_concept, seed)
    memory_i = mcrgraph.embed(clip, "image", world.ids("memory", "image"))
    memory_a = mcrgraph.embed(clap, "audio", world.ids("memory", "audio"))
    text_a, text_b = mcrgraph.embed(clip, "text", captions), mcrgraph.embed(clap, "text", captions)
    data = TrainingData(
        via_a=torch.cat([text_a, memory_i[torch.from_numpy(ii)]]),
        via_b=torch.cat([text_b, memory_a[torch.from_numpy(ia)]]),
    )
    cfg = cmcr.Config(seed=seed, **options)
    readout = cfg.memory_weight  # training without memories turns the preset's memory readout off: restored below
    trained = cmcr.train(data, cfg)
    # training stored the captions AND the paired items as bridging's keys (and no reach: no memories)
    trained.tensors.update({**bridge_items(cfg, text_a, "a", memory_i), **bridge_items(cfg, text_b, "b", memory_a)})
    card = ConnectorCard(
        name=f"paired-oracle-{cfg.preset}", method=cmcr.NAME, via="text",
        spaces=[SpaceRef(name=s.name, dim=s.dim, modalities=list(s.modalities), fingerprint=s.fingerprint()) for s in (clip, clap)],
        modalities=["image", "text", "audio"], dim=trained.dim, config=cfg.model_dump(), metrics=trained.metrics,
        weights_sha256="not stored", mcrgraph_version=__version__, origin="paired oracle (trained with audio-image pairs)",
    )
    space = ConnectedMCR(card, None, tensors=trained.tensors, parents=[clip, clap])
    if not readout:
        return space
    # the same readout over the same memories as the rows it is the ceiling of: keys as the parents
    # encode the memories, values as these heads do
    stored = {}
    for kind, mod, keys in zip(cmcr.MEMORY, ("image", "audio"), (memory_i, memory_a)):
        stored[kind.keys], stored[kind.values] = keys, space.encode(mod, world.ids("memory", mod))
    cfg.memory_weight = readout
    card = card.model_copy(update={"config": cfg.model_dump()})
    return ConnectedMCR(card, None, tensors={**trained.tensors, **stored}, parents=[clip, clap])
