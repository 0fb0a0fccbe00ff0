"""Galleries as a task: add a folder of items (``add_gallery``), take the plugins' built-in ones
(``default_galleries`` hook: the mini world's held-out images, sounds and point clouds), keep
each gallery's rows per space (built on first use, rebuilt when that space's encoder
fingerprint changes), and search one with a query of any modality through the space the
planner chooses (``Shelf.search``). A ``Shelf`` keeps the built indexes in memory, so a server
pays for a gallery's rows and index once."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..store import galleries as store
from ..spaces.encoding import embed
from ..errors import DataError, MCRGraphError, UnknownGalleryError, UnknownModalityError
from ..store.galleries import GalleryCard, GallerySource
from ..planning.graph import MCRGraph
from ..planning.graph import graph as _build_graph
from ..ranking.index import GalleryIndex
from ..io.items import read_items
from ..spaces.mcr import split_pin
from ..planning.planner import Path as PlanPath
from ..planning.planner import pin_for


@dataclass(frozen=True)
class GalleryHit:
    index: int
    item: str
    label: str
    score: float


@dataclass(frozen=True)
class GallerySearch:
    """One query's answer: the path the planner chose, the gallery, the hits best first and
    how long the parts took (seconds: plan, rows, query, index)."""

    path: PlanPath
    gallery: GalleryCard
    hits: list[GalleryHit]
    seconds: dict[str, float]


def builtin_sources() -> dict[str, GallerySource]:
    """The galleries plugins offer out of the box, by name."""
    from ..spaces.plugins import hook

    out: dict[str, GallerySource] = {}
    for sources in hook().default_galleries():
        for s in sources or ():
            if s.name not in out:
                out[s.name] = s
    return out


def add_gallery(name: str, folder: str | Path, modality: str, *, overwrite: bool = False, labels: Sequence[str] | None = None,
                graph: MCRGraph | None = None, progress: bool = False) -> GalleryCard:
    """Store gallery ``name`` over the files of ``folder`` (for text: a file, one caption per line)
    of ``modality`` (may be pinned: ``image@clip``), and build its rows in the spaces that read
    that modality directly (the pinned one, else every plugin space that holds it and has its
    weights). Labels default to the files' paths inside the folder."""
    store.check_name(name)
    if name in builtin_sources():
        raise DataError(f"{name!r} is the name of a built-in gallery; choose another name")
    if store.exists(name) and not overwrite:
        raise DataError(f"a gallery named {name!r} exists already; pass --overwrite or choose another name")
    g = graph or _build_graph()
    base, pin = split_pin(modality)
    known = sorted({m for _, a in g.nx.nodes(data=True) for m in a["modalities"]})
    if base not in known:
        raise UnknownModalityError(f"no space has modality {base!r}; known modalities: {', '.join(known) or 'none'}")
    src = Path(folder).expanduser()
    files = read_items(src, base)
    if base == "text":
        root, items = None, files
    else:
        root = src.resolve()
        items = [str(Path(f).resolve().relative_to(root)) if Path(f).resolve().is_relative_to(root) else None for f in files]
        if None in items:
            raise DataError(f"{folder}: gallery items must be files inside the folder (a link leads out: {files[items.index(None)]})")
    labels = list(labels) if labels is not None else (items if base == "text" else [str(Path(i).with_suffix("")) for i in items])
    # text: the captions are the items themselves, kept in the card (no folder)
    card = GalleryCard(name=name, modality=modality, root=None if root is None else str(root), items=items, labels=labels,
                       source_fingerprint=store.source_fingerprint(modality, items, labels))
    spaces = [pin] if pin else [n for n, a in g.nx.nodes(data=True) if a["kind"] == "plugin" and base in a["modalities"]
                                and g.mcr(n).weights_present() is not False]
    if not spaces:
        raise DataError(f"no space with weights reads {base!r}; install one (mcrgraph plugins) or pin the modality to a space")
    if store.exists(name):
        store.remove(name)
    store.write_card(card)
    try:
        for s in spaces:
            card = _build_rows(card, g.mcr(s), pin_for(modality, s), progress=progress)[0]
    except BaseException:
        store.remove(name)  # nothing half-built is left under the name
        raise
    return card


def ensure_builtin(source: GallerySource) -> GalleryCard:
    """The stored card of a plugin's gallery, written (or rewritten, when the plugin's items or
    labels changed) first."""
    items = [str(i) for i in source.items]
    labels = list(source.labels) if source.labels is not None else None
    fp = store.source_fingerprint(source.modality, items, labels)
    if store.exists(source.name):
        try:
            card = store.read_card(source.name)
            if card.source_fingerprint == fp:
                return card
        except MCRGraphError:
            pass
        store.remove(source.name)
    card = GalleryCard(name=source.name, modality=source.modality, root=None, plugin=source.plugin or "plugin", items=items,
                       labels=labels, about=source.about, source_fingerprint=fp)
    store.write_card(card)
    return card


def _items(card: GalleryCard) -> list[Any]:
    """What the space's encode takes: the files' absolute paths, or the plugin's ids."""
    if card.root is None:
        return list(card.items)
    root = Path(card.root)
    return [str(root / i) for i in card.items]


def _build_rows(card: GalleryCard, mcr, modality: str, progress: bool = False) -> tuple[GalleryCard, torch.Tensor]:
    fp = mcr.fingerprint()
    ref = store.find_rows(card, mcr.name, modality)
    if ref is not None and ref.fingerprint == fp:
        rows = store.read_rows(card, ref)
        if rows is not None:
            return card, rows
    rows = embed(mcr, modality, _items(card), progress=progress)
    return store.write_rows(card, mcr.name, modality, fp, rows), rows


class Shelf:
    """The galleries a process searches, their built indexes kept in memory (keyed by gallery,
    space and its fingerprint, so a rebuilt space gets new rows). Thread-safe."""

    def __init__(self, names: Sequence[str] | None = None, index: str = "exact"):
        self._only = list(names) if names else None
        self._index_kind = index
        self._indexes: dict[tuple, GalleryIndex] = {}
        self._cards: dict[str, GalleryCard] = {}
        self._lock = threading.Lock()
        self._build_locks: dict[str, threading.Lock] = {}

    def names(self) -> list[str]:
        builtin = builtin_sources()
        every = sorted(set(builtin) | set(store.names()))
        if self._only is None:
            return every
        missing = [n for n in self._only if n not in every]
        if missing:
            raise UnknownGalleryError(f"no gallery named {missing[0]!r} (known: {', '.join(every) or 'none'}); "
                            "add one with mcrgraph gallery add NAME FOLDER --modality MODALITY")
        return list(self._only)

    def card(self, name: str) -> GalleryCard:
        store.check_name(name)
        if self._only is not None and name not in self._only:
            raise UnknownGalleryError(f"no gallery named {name!r} here (served: {', '.join(self._only)})")
        builtin = builtin_sources()
        if name in builtin:
            with self._lock:
                card = self._cards.get(name)
                if card is None:
                    card = self._cards[name] = ensure_builtin(builtin[name])
            return card
        return store.read_card(name)

    def rows(self, card: GalleryCard, mcr, modality: str) -> torch.Tensor:
        with self._lock:
            lock = self._build_locks.setdefault(card.name, threading.Lock())
        with lock:
            new_card, rows = _build_rows(store.read_card(card.name) if store.exists(card.name) else card, mcr, modality)
            with self._lock:
                if new_card.name in self._cards:
                    self._cards[new_card.name] = new_card
            return rows

    def index(self, card: GalleryCard, mcr, modality: str) -> GalleryIndex:
        key = (card.name, card.source_fingerprint, mcr.name, modality, mcr.fingerprint(), self._index_kind)
        with self._lock:
            hit = self._indexes.get(key)
        if hit is not None:
            return hit
        built = GalleryIndex(self.rows(card, mcr, modality), self._index_kind)
        with self._lock:
            for k in [k for k in self._indexes if k[0] == card.name and k[2:4] == key[2:4]]:
                del self._indexes[k]  # the same space's older rows
            self._indexes[key] = built
        return built

    def search(self, query_modality: str, query: Any, name: str, k: int = 10, *, graph: MCRGraph | None = None,
               use_cache: bool = False) -> GallerySearch:
        """The ``k`` best items of gallery ``name`` for one ``query`` of ``query_modality``
        (``m`` or ``m@space``), through ``graph.plan(query_modality, gallery modality)``."""
        t0 = time.perf_counter()
        card = self.card(name)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise DataError(f"k must be a whole number of at least 1, got {k!r}")
        k = min(k, len(card.items))
        g = graph or _build_graph()
        path, qm, gm = g.path_for(query_modality, card.modality)
        t1 = time.perf_counter()
        index = self.index(card, g.mcr(path.target_node), pin_for(gm, path.target_node))
        t2 = time.perf_counter()
        q = embed(g.mcr(path.node), pin_for(qm, path.node), [query], use_cache=use_cache)
        t3 = time.perf_counter()
        scores, order = index.search(q, k)
        t4 = time.perf_counter()
        hits = [GalleryHit(int(j), card.items[int(j)], card.label(int(j)), float(s)) for s, j in zip(scores[0], order[0]) if int(j) >= 0]
        return GallerySearch(path, card, hits, {"plan": t1 - t0, "rows": t2 - t1, "query": t3 - t2, "index": t4 - t3})
