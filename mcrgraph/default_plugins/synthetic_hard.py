"""A harder SYNTHETIC evaluation world (issue 25), built apart from the connector techniques:
``hard-clip`` (image, text), ``hard-clap`` (audio, text) and ``hard-ulip`` (3d, image).

What makes it harder than the demo world (``synthetic.py``), each from the issue's list:

- **instance-level structure shared across modalities**: an item ``c17#3`` is instance 3 of
  concept 17; its instance offset is the same in every modality and every space (the image and
  the sound of one instance share it), and concepts come in superclasses of near neighbours;
- **nonlinear per-modality distortions**: each space maps the latent through its own random
  tanh network, and each of its modalities adds a distortion of its own (another tanh network
  of the same latent) and its own offset (a modality gap);
- **nuisance dimensions**: every item carries random nuisance factors (speaker, lighting) that
  each modality's encoder mixes in and that say nothing about the concept;
- **parents from weak to strong**: test concepts come in three tiers whose audio items are
  observed with little, more or much noise, so ``hard-clap``'s own audio->text R@1 ranges from
  strong to weak by tier;
- **via items covering all, half or few test concepts**: ``coverage`` picks which test
  concepts have captions among the via items (``all``, ``half``, ``few``); the others never
  appear in the via set, only in the held-out gallery.

Items are strings ``c<concept>#<instance>``. Concepts ``0..TEST-1`` are the test concepts;
held-out items use instances the training data never does. The spaces join a registry only
through ``enable()`` (``mcrgraph eval hard`` calls it in its own process), which refuses to
shadow a space of the same name; like every demo space they never win a plan."""
from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.errors import DataError, DuplicateMCRError

CONCEPTS = 400  # test concepts 0..TEST-1, the rest only in training data
TEST = 200
LATENT = 32
SUPERCLASSES = 25
NUISANCE = 16
HIDDEN = 96
INSTANCE_NOISE = 0.4  # an instance's offset from its concept (shared by its modalities)
# each modality's item noise (not shared across modalities); audio's depends on the concept's tier
ITEM_NOISE = {"text": 0.2, "image": 0.45, "3d": 0.5}
AUDIO_NOISE = {"strong": 0.2, "medium": 0.7, "weak": 1.4}
TIERS = tuple(AUDIO_NOISE)
DISTORTION = 0.3  # weight of each modality's own non-linear distortion
NUISANCE_WEIGHT = 0.3
GAP = 1.0
COVERAGE = {"all": 1, "half": 2, "few": 8}  # every n-th test concept (within each tier) has captions
ITEM_RE = re.compile(r"^c(\d+)#(\d+)$")
_SEED = 20261225

SPACES = {"hard-clip": (("image", "text"), 64), "hard-clap": (("audio", "text"), 48), "hard-ulip": (("3d", "image"), 40)}
VIA_INSTANCES = range(0, 5)  # captions (and via images) of each covered concept
MEMORY_INSTANCES = {"image": range(10, 13), "audio": range(20, 23), "3d": range(30, 33)}
MEMORY_PER_CONCEPT = 3  # the world's memory size; `eval hard --memory N` grows it (a real memory is far larger)
EXTRA_MEMORY = {"image": 1000, "audio": 2000, "3d": 3000}  # where instances past the third start, apart per modality
HELD_OUT_INSTANCES = range(100, 105)  # one instance seen in every modality: image, audio, 3d
HELD_OUT_CAPTION = 200  # the gallery caption of each test concept (never a via item)


def _rng(*key) -> np.random.Generator:
    digest = hashlib.sha256(repr((_SEED, *key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


_super = _unit(_rng("super").standard_normal((SUPERCLASSES, LATENT)))
_own = _unit(_rng("own").standard_normal((CONCEPTS, LATENT)))
_CONCEPTS = _unit(0.45 * _super[np.arange(CONCEPTS) % SUPERCLASSES] + 0.89 * _own).astype(np.float32)


def tier(concept: int) -> str:
    """A test concept's tier: how clearly ``hard-clap`` hears it (strong, medium, weak)."""
    return TIERS[(concept // SUPERCLASSES) % 3] if concept < TEST else "strong"


def covered(concept: int, coverage: str) -> bool:
    """Whether a concept has captions among the via items under ``coverage``."""
    if coverage not in COVERAGE:
        raise DataError(f"coverage is one of {', '.join(COVERAGE)}, got {coverage!r}")
    return concept >= TEST or (concept // 3) % COVERAGE[coverage] == 0


def parse_item(item) -> tuple[int, int]:
    m = ITEM_RE.match(str(item).strip())
    if not m or int(m.group(1)) >= CONCEPTS:
        raise DataError(f"items of the hard synthetic world are c<concept>#<instance> with concept < {CONCEPTS}; got {item!r}")
    return int(m.group(1)), int(m.group(2))


def latent(modality: str, item) -> tuple[np.ndarray, np.ndarray]:
    """An item's observed latent (concept + shared instance offset + this modality's noise)
    and its nuisance factors."""
    concept, instance = parse_item(item)
    shared = _rng("instance", concept, instance).standard_normal(LATENT)
    own = _rng("item", modality, concept, instance).standard_normal(LATENT + NUISANCE)
    noise = AUDIO_NOISE[tier(concept)] if modality == "audio" else ITEM_NOISE[modality]
    x = _CONCEPTS[concept] + (INSTANCE_NOISE * shared + noise * own[:LATENT]) / np.sqrt(LATENT)
    return x.astype(np.float32), own[LATENT:].astype(np.float32)


def _matrix(rows: int, cols: int, *key) -> torch.Tensor:
    return torch.from_numpy((_rng(*key).standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32))


class HardSyntheticMCR(mcrgraph.MCR):
    batch_size = 4096
    demo = True

    def __init__(self, name: str, modalities: Sequence[str], dim: int):
        self.name, self.modalities, self.dim = name, tuple(modalities), dim
        self.world = torch.tensor([CONCEPTS, LATENT, NUISANCE, HIDDEN, INSTANCE_NOISE, DISTORTION, GAP])  # part of the fingerprint
        self.w1 = _matrix(LATENT, HIDDEN, "w1", name)
        self.w2 = _matrix(HIDDEN, dim, "w2", name)
        self.own = {m: _matrix(LATENT, dim, "own", name, m) for m in self.modalities}
        self.nuisance = {m: _matrix(NUISANCE, dim, "nuisance", name, m) for m in self.modalities}
        self.gaps = {m: torch.from_numpy(_unit(_rng("gap", name, m).standard_normal(dim)).astype(np.float32)) * GAP for m in self.modalities}

    def encode(self, modality, items):
        pairs = [latent(modality, item) for item in items]
        x = torch.from_numpy(np.stack([p[0] for p in pairs]))
        n = torch.from_numpy(np.stack([p[1] for p in pairs]))
        h = torch.tanh(torch.tanh(2.0 * x @ self.w1) @ self.w2 * 1.5)  # the space's own non-linear map
        h = F.normalize(h, dim=1) + DISTORTION * F.normalize(torch.tanh(2.0 * x @ self.own[modality]), dim=1) \
            + NUISANCE_WEIGHT * F.normalize(n @ self.nuisance[modality], dim=1)
        return F.normalize(F.normalize(h, dim=1) + self.gaps[modality], dim=1)


def spaces() -> list[HardSyntheticMCR]:
    return [HardSyntheticMCR(name, mods, dim) for name, (mods, dim) in SPACES.items()]


def ids(concepts, instances) -> list[str]:
    return [f"c{k}#{v}" for v in instances for k in concepts]


def via_items(modality: str, coverage: str) -> list[str]:
    """Via items: 5 instances of every covered concept (captions) or of every concept (images)."""
    concepts = [k for k in range(CONCEPTS) if modality != "text" or covered(k, coverage)]
    return ids(concepts, VIA_INSTANCES)


def memory_instances(modality: str, per_concept: int = MEMORY_PER_CONCEPT) -> list[int]:
    """The instances a modality's memory holds of each concept: the three of the base world,
    then instances of a block no other modality's memory, via or held-out items use (so a bigger
    memory adds no hidden pairs: a shared instance shares its offset across modalities)."""
    if per_concept < 1:
        raise DataError(f"the hard world's memory holds at least 1 instance of each concept, got {per_concept}")
    first = list(MEMORY_INSTANCES[modality])
    return first[:per_concept] + list(range(EXTRA_MEMORY[modality], EXTRA_MEMORY[modality] + per_concept - len(first)))


def memory_items(modality: str, per_concept: int = MEMORY_PER_CONCEPT) -> list[str]:
    """Unpaired memory: ``per_concept`` instances of every concept (3 by default), shuffled."""
    items = ids(range(CONCEPTS), memory_instances(modality, per_concept))
    return [items[i] for i in _rng("memory", modality).permutation(len(items))]


def held_out(modality: str) -> tuple[list[str], np.ndarray]:
    """Held-out items of the test concepts and their concept labels (one caption per concept
    for text, 5 instances otherwise)."""
    instances = [HELD_OUT_CAPTION] if modality == "text" else HELD_OUT_INSTANCES
    items = ids(range(TEST), instances)
    return items, np.array([parse_item(i)[0] for i in items])


def groups(labels: np.ndarray, coverage: str) -> dict[str, np.ndarray]:
    """Query groups: every test concept, each tier, and with partial coverage the concepts the
    via items name and those they do not."""
    out = {"all": np.ones(len(labels), bool)}
    tiers = np.array([tier(int(k)) for k in labels])
    out.update({f"{t} parent": tiers == t for t in TIERS})
    if COVERAGE[coverage] > 1:
        named = np.array([covered(int(k), coverage) for k in labels])
        out["named in via"], out["not in via"] = named, ~named
    return out


def enable() -> list[HardSyntheticMCR]:
    """Add the hard world's spaces to this process's registry (once); a space of the same name
    that is not this world's is never shadowed: that is an error naming it."""
    from mcrgraph.spaces.plugins import plugin_mcrs

    out = []
    for mcr in spaces():
        have = plugin_mcrs().get(mcr.name)
        if have is None:
            mcrgraph.register(mcr)
        elif not isinstance(have, HardSyntheticMCR):
            raise DuplicateMCRError(f"a space named {mcr.name!r} is already registered and is not the hard synthetic world's; "
                                    "the evaluation will not shadow it (unregister or rename that plugin to run it)")
        out.append(plugin_mcrs()[mcr.name])
    return out
