"""``adapt``: a connected space whose heads see one modality's items moved from a user's own
recording domain toward the memory its connector was trained on, by an offset measured on an
unlabelled corpus of that domain (``spaces/domain.py``; docs/results/domain-offset). Nothing is
trained and the connector it starts from is left as it is."""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any, Sequence

from .errors import ConfigError, DataError, UnknownModalityError
from .fetch.corpora import leaf_space
from .spaces import plugins
from .spaces.connected import ConnectedMCR
from .spaces.domain import domain_offset
from .spaces.encoding import embed
from .spaces.fingerprint import items_fingerprint
from .spaces.mcr import MCR, split_pin
from .spaces.registry import check_new_name, get_mcr
from .store import connectors
from .store.card import OFFSETS_VERSION, DataRef, OffsetRef

log = logging.getLogger(__name__)
FEW = 50  # fewer corpus items than this: the offset is noisy, and said so


def adapt(
    space: str | MCR,
    modality: str,
    items: Sequence[Any],
    memory: Sequence[Any] | None = None,
    neighbours: int = 10,
    name: str | None = None,
    save: bool = True,
    overwrite: bool = False,
    progress: bool = False,
) -> ConnectedMCR:
    """The connected space ``space`` with ``modality`` (a non-via modality, e.g. ``audio``) moved
    by the offset of ``items`` (unlabelled items of the user's domain, at least a few dozen) to the
    connector's training memory of that modality. ``memory``: that memory's items, when no plugin
    offers them (the connector's card checks they are the ones it was trained on). Stored under
    ``name`` (default ``<space>.adapted``); adapting a modality again replaces its offset."""
    conn = get_mcr(space) if isinstance(space, str) else space
    if not isinstance(conn, ConnectedMCR):
        raise ConfigError(f"{conn.name!r} is not a connected space: adapt a stored connector (see: mcrgraph connectors), "
                          "whose heads were trained on a memory the offset is measured against")
    base = split_pin(modality)[0]
    if base not in conn.modalities:
        raise UnknownModalityError(f"space {conn.name!r} has no modality {base!r}; it has: {', '.join(conn.modalities)}")
    if base == conn.card.via:
        raise ConfigError(f"{base!r} is {conn.name!r}'s via modality, encoded by both parents; adapt a modality of one parent "
                          f"({', '.join(m for m in conn.modalities if m != conn.card.via)})")
    side, sub = conn.side(modality)
    parent = conn.parents()[side]
    items = list(items)
    if not items:
        raise DataError(f"adapt: no {base} items given; give an unlabelled corpus of the domain to adapt to")
    if len(items) < FEW:
        log.warning("the offset is measured on %d %s items; with fewer than %d it is noisy", len(items), base, FEW)
    name = name or f"{conn.name}.adapted"
    check_new_name(name, save, overwrite)
    memory, memory_ref = _memory(conn, parent, base, memory)
    offset = domain_offset(embed(parent, sub, items, progress=progress).float(), embed(parent, sub, memory, progress=progress).float(), neighbours)

    ref = OffsetRef(modality=base, space=parent.name, neighbours=neighbours, norm=round(float(offset.norm()), 6), memory=memory_ref,
                    corpus=DataRef(space=parent.name, modality=base, count=len(items), fingerprint=items_fingerprint(base, items)))
    tensors = {**conn.tensors(), f"offset.{base}": offset.contiguous()}
    weights = connectors.weights_bytes(tensors)
    card = conn.card.model_copy(update={
        "name": name, "format_version": OFFSETS_VERSION, "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "offsets": [o for o in conn.card.offsets if (o.space, o.modality) != (parent.name, base)] + [ref],
        "created": datetime.now(timezone.utc),
        "origin": conn.card.origin if conn.card.offsets else f"{conn.card.origin}; adapted from {conn.name} (mcrgraph adapt)",
    })
    folder = connectors.save(card, weights, overwrite=overwrite) if save else None
    return ConnectedMCR(card, folder, tensors=tensors, parents=conn.parents())


def _memory(conn: ConnectedMCR, parent_mcr: MCR, modality: str, given: Sequence[Any] | None) -> tuple[list[Any], DataRef]:
    """The items the offset is measured against, and their record: the connector's training
    memory of ``modality``, given or offered by a plugin, checked against the card's fingerprint."""
    parent = parent_mcr.name
    trained = next((r for r in conn.card.data if r.space == parent and split_pin(r.modality)[0] == modality), None)
    if given is None:
        if trained is None:
            raise DataError(f"connector {conn.name!r} was trained without a memory of {modality} for {parent!r}; give memory= "
                            f"(--memory FILE): {modality} items of the domain its heads were trained on")
        offered = _offered_memory(parent_mcr, modality)
        if offered is None:
            raise DataError(f"no plugin offers {parent!r}'s {modality} memory that {conn.name!r} was trained on "
                            f"({trained.count} items); give it with memory= (--memory FILE)")
        given, source = list(offered), "the plugins' default"
    else:
        given, source = list(given), "the given"
    if not given:
        raise DataError(f"adapt: the {modality} memory is empty")
    fingerprint = items_fingerprint(modality, given)
    if trained is not None and trained.fingerprint and fingerprint != trained.fingerprint:
        raise DataError(f"{source} {modality} memory of {parent!r} ({len(given)} items) is not the one {conn.name!r} was trained on "
                        f"({trained.count} items, fingerprint {trained.fingerprint[:12]}…); give that memory (--memory FILE)")
    return given, DataRef(space=parent, modality=modality, count=len(given), fingerprint=fingerprint)


def _offered_memory(parent: MCR, modality: str) -> Sequence[Any] | None:
    """A plugin's default memory of ``modality`` for ``parent``, or, for a connected parent, for
    the plugin space that encodes the modality in it (where a two-hop connect took it from)."""
    offered = plugins.hook().default_items(mcr=parent, modality=modality, role="memory")
    if offered is None and isinstance(parent, ConnectedMCR):
        leaf = leaf_space(parent, modality)
        offered = plugins.hook().default_items(mcr=get_mcr(leaf), modality=modality, role="memory") if leaf else None
    return offered
