"""Galleries on disk: a named, indexed collection of items of one modality, kept in
``$MCRGRAPH_HOME/galleries/NAME/``: ``gallery.json`` (the card: modality, where the items are,
their labels, and one entry per space whose rows are stored) and ``rows/*.safetensors`` (the
items' embeddings in that space, float32). Rows are keyed by the space and its encoder
fingerprint, so a changed space never serves stale rows. Nothing here encodes (tasks/galleries
does); this module reads and writes, atomically, and finds a gallery's files without ever
leaving its folder."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import DataError, StoreError, UnknownGalleryError
from ..names import NAME_RE
from .disk import atomic_write_bytes, home

FORMAT = "mcrgraph-gallery"
FORMAT_VERSION = 1
CARD = "gallery.json"


@dataclass(frozen=True)
class GallerySource:
    """A gallery a plugin offers out of the box (the ``default_galleries`` hook): ``items`` are
    anything the space's ``encode`` takes (bundled ids such as ``mini:heldout/image/3``),
    ``labels`` a name per item (shown under each result), ``modality`` may be pinned to the
    space that encodes them (``image@mini-clip``); the plugin's ``item_media`` hook gives what
    each item shows."""

    name: str
    modality: str
    items: Sequence[Any]
    labels: Sequence[str] | None = None
    about: str = ""
    plugin: str = ""
    extra: dict = field(default_factory=dict)


class RowsRef(BaseModel):
    """The gallery's rows in one space: which space (and pinned modality) made them, that
    space's encoder fingerprint then, and the file holding them."""

    model_config = ConfigDict(extra="forbid")
    space: str
    modality: str = Field(description="the modality string the rows were embedded with (pinned as embed takes it)")
    fingerprint: str
    file: str
    count: int
    dim: int
    built: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


class GalleryCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["mcrgraph-gallery"] = FORMAT
    format_version: int = FORMAT_VERSION
    name: str
    modality: str = Field(description="the items' modality, optionally pinned to a space (image@mini-clip)")
    root: str | None = Field(None, description="the folder the item files are in (None: a plugin's ids, or captions)")
    plugin: str | None = Field(None, description="the plugin whose items these are (built-in galleries)")
    items: list[str] = Field(description="file paths relative to root, or the plugin's item ids")
    labels: list[str] | None = None
    about: str = ""
    source_fingerprint: str = Field(description="sha256 of modality, items and labels: a changed source rebuilds the gallery")
    rows: list[RowsRef] = Field(default_factory=list)
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def builtin(self) -> bool:
        return self.plugin is not None

    def label(self, i: int) -> str:
        return self.labels[i] if self.labels else self.items[i]


def galleries_dir() -> Path:
    return home() / "galleries"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > 100:
        raise DataError(f"bad gallery name {name!r}: letters, digits and . _ + - only (up to 100, not starting with . _ + -)")
    return name


def gallery_dir(name: str) -> Path:
    return galleries_dir() / check_name(name)


def source_fingerprint(modality: str, items: Sequence[str], labels: Sequence[str] | None) -> str:
    return hashlib.sha256(json.dumps([modality, list(items), list(labels) if labels else None]).encode()).hexdigest()


def names() -> list[str]:
    """The stored galleries' names, sorted (folders without a card are skipped)."""
    d = galleries_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if NAME_RE.match(p.name) and (p / CARD).is_file())


def exists(name: str) -> bool:
    return (gallery_dir(name) / CARD).is_file()


def read_card(name: str) -> GalleryCard:
    path = gallery_dir(name) / CARD
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        known = ", ".join(names()) or "none yet"
        raise UnknownGalleryError(f"no gallery named {name!r} (stored: {known}); add one with mcrgraph gallery add NAME FOLDER --modality MODALITY") from None
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}") from None
    try:
        card = GalleryCard.model_validate_json(data)
    except ValidationError as e:
        raise StoreError(f"{path} is not a gallery card ({e.errors()[0]['msg']}); remove the gallery and add it again") from None
    if card.name != name:
        raise StoreError(f"{path} holds gallery {card.name!r}, not {name!r}; remove it and add it again")
    return card


def write_card(card: GalleryCard) -> None:
    atomic_write_bytes(gallery_dir(card.name) / CARD, card.model_dump_json(indent=1).encode())


def rows_key(space: str, modality: str) -> str:
    """The rows file of (space, modality): a hash, so no name ever becomes a path."""
    return hashlib.sha256(f"{space}|{modality}".encode()).hexdigest()[:24] + ".safetensors"


def find_rows(card: GalleryCard, space: str, modality: str) -> RowsRef | None:
    return next((r for r in card.rows if r.space == space and r.modality == modality), None)


def read_rows(card: GalleryCard, ref: RowsRef) -> torch.Tensor | None:
    """The stored rows of ``ref``; None when the file is missing or does not match its entry
    (then they are built again)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        rows = load((gallery_dir(card.name) / "rows" / ref.file).read_bytes())["rows"]
    except (OSError, SafetensorError, KeyError, ValueError, RuntimeError):
        return None
    if rows.dtype != torch.float32 or tuple(rows.shape) != (ref.count, ref.dim) or ref.count != len(card.items):
        return None
    return rows


def write_rows(card: GalleryCard, space: str, modality: str, fingerprint: str, rows: torch.Tensor) -> GalleryCard:
    """Store ``rows`` for (space, modality) and return the card that lists them (written too)."""
    from safetensors.torch import save

    if tuple(rows.shape[:1]) != (len(card.items),) or rows.dim() != 2:
        raise DataError(f"gallery {card.name!r} has {len(card.items)} items; got rows of shape {tuple(rows.shape)}")
    file = rows_key(space, modality)
    atomic_write_bytes(gallery_dir(card.name) / "rows" / file,
                       save({"rows": rows.detach().float().contiguous()}, metadata={"space": space, "fingerprint": fingerprint}))
    ref = RowsRef(space=space, modality=modality, fingerprint=fingerprint, file=file, count=len(rows), dim=rows.shape[1])
    card = card.model_copy(update={"rows": [r for r in card.rows if (r.space, r.modality) != (space, modality)] + [ref]})
    write_card(card)
    return card


def remove(name: str) -> None:
    d = gallery_dir(name)
    if not (d / CARD).is_file():
        read_card(name)  # the one-line "no gallery named" error
    try:
        shutil.rmtree(d)
    except OSError as e:
        raise StoreError(f"cannot remove {d}: {e.strerror}") from None


def item_file(card: GalleryCard, index: int) -> Path:
    """The file of item ``index`` of a folder gallery, only when it lies inside the gallery's
    folder (symbolic links that lead out of it are refused), so no request reaches other files."""
    if card.root is None:
        raise DataError(f"gallery {card.name!r} holds no files (a plugin's items, or captions)")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(card.items):
        raise DataError(f"gallery {card.name!r} has items 0 to {len(card.items) - 1}, not {index!r}")
    root = Path(card.root).resolve()
    path = (root / card.items[index]).resolve()
    if not path.is_relative_to(root):
        raise DataError(f"item {index} of gallery {card.name!r} lies outside its folder; it is not served")
    if not path.is_file():
        raise DataError(f"item {index} of gallery {card.name!r} ({card.items[index]}) is gone from {card.root}")
    return path


def media_dir(card: GalleryCard) -> Path:
    """Where media made for a gallery's items (rendered views, re-synthesised sounds) are kept."""
    return gallery_dir(card.name) / "media"
