"""Default recipes: which public corpora a connect between the papers' spaces trains on when the
user gives no items. Data only, like open_clip's model configs: a new corpus is one ``Corpus``
entry in ``CORPORA``, a new recipe one ``Recipe`` entry in ``RECIPES``. Fetching lives in
corpora.py; docs/real-encoders.md ("Default recipes") says where each corpus comes from.

The papers' repositories publish inference code only, so the corpora follow the papers' text
(C-MCR, arXiv 2305.14381; Ex-MCR, arXiv 2310.08884), taken from copies on the Hugging Face hub
pinned to a commit; where the paper's corpus has no such copy, a substitute is named as such."""
from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
IMAGE_EXTENSIONS = "webp;png;jpg;jpeg"  # what CLIP_benchmark's own webdataset loader accepts (datasets/builder.py)


class Corpus(BaseModel):
    """One pinned dataset repository on the hub, read shard by shard in order.

    ``fields`` maps a modality to where its item is in a record: a webdataset member's
    extension (``txt``, ``flac``; alternatives as webdataset's ``to_tuple`` takes them,
    ``webp;png;jpg;jpeg``) or a parquet column (text, or a struct with ``bytes``).
    ``bytes_per_record`` and ``records`` are estimates for ``--dry-run``, from the hub's file
    listing (shard sizes) and the dataset card (record counts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    repo: str
    revision: str
    format: Literal["webdataset", "parquet"]
    shards: tuple[str, ...] = Field(min_length=1)
    fields: dict[str, str]
    bytes_per_record: int = Field(gt=0)
    records: int = Field(gt=0, description="about how many records all shards hold")
    licence: str
    paper: str = Field(description="what the paper used, and whether this is it or a substitute")

    @field_validator("revision")
    @classmethod
    def _pinned(cls, v: str) -> str:
        if not SHA_RE.match(v):
            raise ValueError(f"revision must be a full 40-hex commit sha (pinned), got {v!r}")
        return v

    def shard_bytes(self) -> int:
        return self.records * self.bytes_per_record // len(self.shards)


class Recipe(BaseModel):
    """A connection the papers made: spaces ``a`` and ``b`` joined through ``via`` by
    ``method``; the corpora of the via items and of each side's memory (modality -> corpora)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    paper: str
    a: str
    b: str
    via: str
    method: Literal["c-mcr", "ex-mcr"]
    via_corpora: tuple[str, ...]
    memories: dict[str, dict[str, tuple[str, ...]]] = Field(default_factory=dict, description="space -> {modality: corpora}")
    via_limit: int = 20_000
    memory_limit: int = 10_000

    def limit(self, role: str) -> int:
        """How many items it takes by default in ``role`` (``via`` or ``memory``)."""
        return self.via_limit if role == "via" else self.memory_limit


def shards(pattern: str, first: int, last: int, width: int) -> tuple[str, ...]:
    """``shards("train/{}.tar", 0, 13, 0)`` -> train/0.tar ... train/13.tar (webdataset's brace range)."""
    return tuple(pattern.format(str(i).zfill(width)) for i in range(first, last + 1))


CORPORA: dict[str, Corpus] = {c.name: c for c in [
    Corpus(
        name="coco-captions",
        repo="clip-benchmark/wds_mscoco_captions",
        revision="3bf9ad5d280b03126293bcc691585015e29ce691",
        format="webdataset",
        shards=shards("train/{}.tar", 0, 13, 0),  # 13 x 1.02 GB + 525 MB: 13.79 GB over 82,783 records
        # CLIP_benchmark's builder (webdataset_builder.py, convert_retrieval_dataset): .txt = the image's
        # 5-7 captions, one a line; the image member is named by the source file's extension (jpg
        # for COCO's JPEGs) or by the builder's --image-format (webp by default)
        fields={"text": "txt", "image": IMAGE_EXTENSIONS},
        bytes_per_record=167_000,
        records=82_783,
        licence="COCO: annotations CC BY 4.0; images under their Flickr owners' terms (COCO terms of use)",
        paper="COCO captions and images: used by C-MCR (texts, image memory) and Ex-MCR",
    ),
    Corpus(
        name="cc3m",
        repo="pixparse/cc3m-wds",
        revision="46f3d69f840e59d77d52e8decfe5baec97e94c7f",
        format="webdataset",
        shards=shards("cc3m-train-{}.tar", 0, 575, 4),  # 576 shards of 480-493 MB (2,905,954 records, the card says)
        fields={"text": "txt", "image": IMAGE_EXTENSIONS},
        bytes_per_record=96_000,
        records=2_905_954,
        licence="Conceptual Captions licence (Google: free to use with attribution); images under their owners' terms",
        paper="CC3M captions and images: used by C-MCR (texts, image memory) and Ex-MCR",
    ),
    Corpus(
        name="audiocaps",
        repo="OpenSound/AudioCaps",
        revision="e1ea86ceff428149125a6ced72fcd4b7472d5cc6",
        format="parquet",
        shards=shards("data/train-{}-of-00412.parquet", 0, 411, 5),
        fields={"text": "caption", "audio": "audio"},
        bytes_per_record=850_000,  # 412 shards of about 93 MB over about 45,200 rows
        records=45_200,
        licence="AudioCaps captions MIT; audio clipped from YouTube (AudioSet), under the uploaders' terms",
        paper="AudioCaps captions and audio: used by C-MCR (texts, audio memory) and Ex-MCR",
    ),
    Corpus(
        name="audioset-balanced",
        repo="agkphysics/AudioSet",
        revision="c2f9c5b3e3211790680f2890608af7dc73ddc540",
        format="webdataset",
        shards=shards("data/bal_train0{}.tar", 0, 9, 0),  # 9 x ~2.8 GB + 969 MB: 26.0 GB over 18,685 clips
        fields={"audio": "flac"},
        bytes_per_record=1_390_000,
        records=18_685,
        licence="AudioSet labels CC BY 4.0 (as the repository states); audio from YouTube, under the uploaders' terms",
        paper="AudioSet audio (balanced train): C-MCR's audio memory; the paper's own AudioSet subset is not published",
    ),
]}


# What each side of the papers' connections trains on. Every (space, modality, role) names the
# same corpora in every recipe (tests/test_recipes.py checks it), so the default_items hook,
# which sees one space at a time, answers the same whichever recipe is meant.
TEXTS = ("coco-captions", "cc3m", "audiocaps")       # C-MCR: COCO, CC3M, AudioCaps, Clotho (no pinned hub copy of Clotho)
IMAGES = ("coco-captions", "cc3m")                     # C-MCR's image memory: COCO, CC3M
AUDIO = ("audioset-balanced", "audiocaps")             # C-MCR's audio memory: AudioSet, AudioCaps
VIA_IMAGES = ("coco-captions",)                        # CLIP-ULIP via images: ImageNet in the paper (gated on the hub): COCO substitutes

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(name="c-mcr clip+clap", paper="C-MCR", a="clip", b="clap", via="text", method="c-mcr",
           via_corpora=TEXTS, memories={"clip": {"image": IMAGES}, "clap": {"audio": AUDIO}}),
    Recipe(name="c-mcr clip+ulip", paper="C-MCR", a="clip", b="ulip", via="image", method="c-mcr",
           via_corpora=VIA_IMAGES, memories={"clip": {"text": TEXTS}}),  # no pinned hub copy of ULIP's point clouds
    Recipe(name="ex-mcr clap-into-clip", paper="Ex-MCR", a="clip", b="clap", via="text", method="ex-mcr",
           via_corpora=TEXTS, memories={"clip": {"image": IMAGES}, "clap": {"audio": AUDIO}}),
    Recipe(name="ex-mcr ulip-into-clip", paper="Ex-MCR", a="clip", b="ulip", via="image", method="ex-mcr",
           via_corpora=VIA_IMAGES, memories={"clip": {"text": TEXTS}}),
]}


def find(a: str, b: str, via: str, method: str = "c-mcr") -> Optional[Recipe]:
    """The recipe that joins plugin spaces ``a`` and ``b`` (either order) through ``via``."""
    for r in RECIPES.values():
        if {r.a, r.b} == {a, b} and r.via == via and r.method == method:
            return r
    return None


def corpora_for(space: str, modality: str, role: str) -> Optional[tuple[Recipe, tuple[str, ...]]]:
    """The corpora a recipe takes for plugin space ``space``'s ``modality`` in ``role``
    (``via`` or ``memory``), with the recipe (for its limits); None when no recipe names them."""
    for r in RECIPES.values():
        if role == "via" and space in (r.a, r.b) and modality == r.via:
            return r, r.via_corpora
        if role == "memory" and modality in r.memories.get(space, {}):
            return r, r.memories[space][modality]
    return None
