"""SYNTHETIC demo spaces, not trained models: ``synth-clip`` (image, text), ``synth-clap``
(audio, text) and ``synth-ulip`` (3d, image) embed numbered concepts of a random world so that
the full pipeline runs anywhere in seconds. They join a user's graph only when asked for
(``MCRGRAPH_SYNTHETIC=1``, as the tests set it, or ``mcrgraph synthetic-eval``). Like CLIP,
CLAP and ULIP, the spaces do not agree on the modalities they share, and inside each space the
modalities sit apart (a modality gap). Items are concept ids: ``"c17"`` or, for distinct items of one concept, ``"c17#3"``."""
from __future__ import annotations

import hashlib
import os
import re
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.errors import DataError

CONCEPTS = 600
LATENT = 24
ITEM_NOISE = 0.5  # spread of items of one concept around it, in latent units
GAP = 1.2  # size of each modality's offset inside a space, relative to the signal
ITEM_RE = re.compile(r"^c(\d+)(?:#(\d+))?$")
_SEED = 20261127


def _rng(*key) -> np.random.Generator:
    digest = hashlib.sha256(repr((_SEED, *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


_CONCEPTS = _rng("concepts").standard_normal((CONCEPTS, LATENT)).astype(np.float32)
_CONCEPTS /= np.linalg.norm(_CONCEPTS, axis=1, keepdims=True)


def parse_item(item) -> tuple[int, int]:
    m = ITEM_RE.match(str(item).strip())
    if not m or int(m.group(1)) >= CONCEPTS:
        raise DataError(f"synthetic items are concept ids c0..c{CONCEPTS - 1}, optionally with a variant (c17#3); got {item!r}")
    return int(m.group(1)), int(m.group(2) or 0)


class SyntheticMCR(mcrgraph.MCR):
    batch_size = 4096
    demo = True

    def __init__(self, name: str, modalities: Sequence[str], dim: int):
        self.name, self.modalities, self.dim = name, tuple(modalities), dim
        rng = _rng("space", name)
        self.world = torch.tensor([CONCEPTS, LATENT, ITEM_NOISE, GAP])  # part of the fingerprint
        self.weight = torch.from_numpy((rng.standard_normal((LATENT, dim)) / np.sqrt(LATENT)).astype(np.float32))
        self.mix = torch.from_numpy((rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32))
        self.gaps = {}
        for m in self.modalities:
            gap = _rng("gap", name, m).standard_normal(dim).astype(np.float32)
            self.gaps[m] = torch.from_numpy((GAP * gap / np.linalg.norm(gap)).astype(np.float32))

    def encode(self, modality, items):
        latents = np.stack([self._latent(modality, item) for item in items])
        h = torch.tanh(torch.from_numpy(latents) @ self.weight * 2.0)
        h = h + 0.3 * torch.tanh(h @ self.mix)  # a space-specific non-linear distortion
        return F.normalize(F.normalize(h, dim=1) + self.gaps[modality], dim=1)

    def _latent(self, modality: str, item) -> np.ndarray:
        concept, variant = parse_item(item)
        # the same item looks alike in every space: its noise depends on the item, not the space
        noise = _rng("item", modality, concept, variant).standard_normal(LATENT).astype(np.float32)
        return (_CONCEPTS[concept] + ITEM_NOISE * noise / np.sqrt(LATENT)).astype(np.float32)


def ids(concepts, variant: int) -> list[str]:
    return [f"c{k}#{variant}" for k in concepts]


VIA_VARIANTS = {"text": 0, "image": 30}  # first of 5 variants per concept offered as via items
MEMORY_VARIANTS = {"image": 10, "audio": 20, "text": 40, "3d": 50}  # first of 3, shuffled
HELD_OUT_VARIANT = {"audio": 100, "image": 101, "text": 102, "3d": 103}  # never offered for training


def default_data(modality: str, role: str) -> list[str] | None:
    """Via items: 5 variants of every concept. Memories: 3 other variants, shuffled (unpaired)."""
    if role == "via" and modality in VIA_VARIANTS:
        start = VIA_VARIANTS[modality]
        return [f"c{k}#{v}" for v in range(start, start + 5) for k in range(CONCEPTS)]
    if role == "memory" and modality in MEMORY_VARIANTS:
        start = MEMORY_VARIANTS[modality]
        items = [f"c{k}#{v}" for v in range(start, start + 3) for k in range(CONCEPTS)]
        order = _rng("memory", modality).permutation(len(items))
        return [items[i] for i in order]
    return None


def held_out_items(modality: str, concepts: int = 200) -> list[str]:
    """One item per concept that no default training data contains."""
    return ids(range(concepts), HELD_OUT_VARIANT[modality])


def held_out(concepts: int = 200) -> tuple[list[str], list[str]]:
    """Held-out audio and image items."""
    return held_out_items("audio", concepts), held_out_items("image", concepts)


SPACES = {"synth-clip": (("image", "text"), 64), "synth-clap": (("audio", "text"), 48), "synth-ulip": (("3d", "image"), 40)}


ENV = "MCRGRAPH_SYNTHETIC"


def enabled() -> bool:
    """Whether the synthetic spaces are asked for (``MCRGRAPH_SYNTHETIC=1``)."""
    return os.environ.get(ENV, "").strip().lower() in ("1", "true", "yes", "on")


def spaces() -> list[SyntheticMCR]:
    return [SyntheticMCR(name, mods, dim) for name, (mods, dim) in SPACES.items()]


def enable() -> None:
    """Add the synthetic spaces to this process's registry if they are not in it yet."""
    from mcrgraph.spaces.plugins import plugin_mcrs

    for mcr in spaces():
        if mcr.name not in plugin_mcrs():
            mcrgraph.register(mcr)


@mcrgraph.hookimpl
def register_mcrs(register):
    if enabled():
        for mcr in spaces():
            register(mcr)


@mcrgraph.hookimpl
def default_items(mcr, modality, role):
    if isinstance(mcr, SyntheticMCR):
        return default_data(modality, role)
    return None
