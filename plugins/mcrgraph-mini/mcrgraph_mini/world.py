"""The bundled mini world: concepts with captions (``world.json``), unpaired memories
(``memory.npz``) and the held-out test (``heldout.npz``), shipped under ``mcrgraph_mini/data``.
Bundled items are addressed by strings like ``"mini:heldout/audio/17"``, so they can be passed
anywhere an item can, cached, and fingerprinted like any path."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcrgraph.errors import DataError

DATA = Path(__file__).parent / "data"
#: "fsdd": real voices (build_fsdd.py), audio only, shipped apart from the built splits
SPLITS = ("memory", "heldout", "fsdd")
ARRAY = {"image": "image", "audio": "audio", "3d": "points"}  # modality -> npz key
ITEM_RE = re.compile(rf"^mini:({'|'.join(SPLITS)})/(image|audio|3d)/(\d+)$")


@dataclass(frozen=True)
class Concept:
    name: str
    kind: str
    image_captions: tuple[str, ...]
    audio_captions: tuple[str, ...]


class World:
    """One built world (a folder with world.json and the split .npz files)."""

    def __init__(self, folder: Path = DATA):
        self.folder = Path(folder)
        try:
            meta = json.loads((self.folder / "world.json").read_text())
        except FileNotFoundError:
            raise DataError(f"no mini world in {self.folder}: build one with python -m mcrgraph_mini.build --out DIR") from None
        self.meta = meta
        self.concepts = [Concept(c["name"], c["kind"], tuple(c["image_captions"]), tuple(c["audio_captions"])) for c in meta["concepts"]]

    @functools.lru_cache(maxsize=None)
    def split(self, split: str) -> dict[str, np.ndarray]:
        path = self.folder / f"{split}.npz"
        if not path.exists():
            raise DataError(f"the mini world in {self.folder} has no {split} split ({path.name})")
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def has(self, split: str) -> bool:
        return (self.folder / f"{split}.npz").exists()

    def arrays(self, split: str, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, concept ids) of one split and modality."""
        key = ARRAY[modality]
        data = self.split(split)
        if key not in data:
            raise DataError(f"the mini world's {split} split has no {modality} items")
        return data[key], data[f"{key}_concept"].astype(np.int64)

    def ids(self, split: str, modality: str, mask: np.ndarray | None = None) -> list[str]:
        """Bundled item ids of a split (optionally where ``mask`` is true)."""
        n = len(self.arrays(split, modality)[1])
        idx = np.arange(n) if mask is None else np.flatnonzero(mask)
        return [f"mini:{split}/{modality}/{i}" for i in idx]

    def captions(self) -> list[str]:
        """Every caption of every concept, images' then sounds', without repeats."""
        seen = dict.fromkeys(t for c in self.concepts for t in (*c.image_captions, *c.audio_captions))
        return list(seen)

    def joined_captions(self, concepts=None) -> list[str]:
        """Captions that name a concept's picture and its sound at once ("a picture of an open
        padlock and a login chime"): each concept's k-th image caption joined with its k-th sound
        caption, for concepts with both. Opt-in via items for ``mcrgraph eval mini --captions
        joined`` (issue 25 item 4): an event's own captions describe the picture or the sound,
        never both, so nothing in the text links the two."""
        chosen = self.concepts if concepts is None else [self.concepts[i] for i in concepts]
        return [f"{c.image_captions[k]} and {c.audio_captions[k]}" for c in chosen
                for k in range(min(len(c.image_captions), len(c.audio_captions)))]

    def lookup(self, modality: str, item: str) -> np.ndarray:
        m = ITEM_RE.match(item)
        if not m or m.group(2) != modality:
            raise DataError(f"{item!r} is not a bundled {modality} item (mini:SPLIT/{modality}/N, SPLIT one of {', '.join(SPLITS)})")
        inputs, _ = self.arrays(m.group(1), modality)
        i = int(m.group(3))
        if i >= len(inputs):
            raise DataError(f"{item!r}: the bundled {m.group(1)} split has {len(inputs)} {modality} items")
        return inputs[i]

    def label(self, item: str) -> int:
        m = ITEM_RE.match(item)
        if not m:
            raise DataError(f"{item!r} is not a bundled item")
        return int(self.arrays(m.group(1), m.group(2))[1][int(m.group(3))])


@functools.lru_cache(maxsize=1)
def bundled() -> World:
    return World(DATA)


def is_bundled(item) -> bool:
    return isinstance(item, str) and item.startswith("mini:")


@functools.lru_cache(maxsize=1)
def bundled_fingerprint() -> str:
    """A hash of the shipped data: bundled item ids mean other inputs after a rebuild, so
    cached embeddings of them must not outlive it."""
    import hashlib

    h = hashlib.sha256()
    for name in ("world.json", *(f"{s}.npz" for s in SPLITS)):
        path = DATA / name
        h.update(path.read_bytes() if path.exists() else b"missing")
    return h.hexdigest()
