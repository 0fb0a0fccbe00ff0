"""``connect``: train a connector between two spaces and store the connected space."""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from .fetch import corpora
from .spaces import plugins
from .store import connectors
from .version import __version__
from .store.card import ConnectorCard, DataRef, SpaceRef
from .store.checkpoints import Checkpointer
from .spaces.connected import ConnectedMCR
from .spaces.encoding import embed
from .errors import ConfigError, DataError, MCRGraphError, UnknownModalityError
from .spaces.fingerprint import items_fingerprint
from .spaces.mcr import MCR, split_pin
from .methods import TrainingData, get_method
from .spaces.registry import check_new_name, get_mcr

log = logging.getLogger(__name__)


def connect(
    a: str | MCR,
    b: str | MCR,
    via: str,
    items: Sequence[Any] | None = None,
    memories: Mapping[str, Sequence[Any]] | None = None,
    method: str = "c-mcr",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    save: bool = True,
    resume: bool = False,
    progress: bool = False,
    **options: Any,
) -> ConnectedMCR:
    """Connect spaces ``a`` and ``b`` through the modality ``via`` they share. With
    ``method="ex-mcr"``, ``a`` is the base space (kept exactly) and ``b`` the leaf extended into it.

    ``items`` are items of ``via`` (captions, for text); each is encoded by both spaces.
    ``memories`` maps a non-shared modality (``m`` or ``m@space``) to unpaired items of it.
    Without ``items``, plugins may offer defaults (the ``default_items`` hook).
    Method options go in ``config`` or as keywords (``epochs=10``). Returns the connected
    space, an MCR; with ``save`` it is stored (atomically) under ``name`` (default ``a+b``)."""
    space_a, space_b = get_mcr(a), get_mcr(b)
    if space_a.name == space_b.name:
        raise ConfigError(f"cannot connect {space_a.name!r} to itself")
    via, _ = split_pin(via)
    for s in (space_a, space_b):
        if via not in s.modalities:
            shared = sorted(set(space_a.modalities) & set(space_b.modalities))
            raise UnknownModalityError(
                f"{s.name!r} has no modality {via!r}; {space_a.name!r} and {space_b.name!r} share: {', '.join(shared) or 'nothing'}"
            )
    if save:  # a stored connector finds its spaces by name when it is loaded again
        for s in (space_a, space_b):
            try:
                get_mcr(s.name)
            except MCRGraphError:
                raise ConfigError(f"space {s.name!r} is neither registered nor stored; register it (mcrgraph.register) or store it first") from None
    module = get_method(method)
    name = name or module.default_name(space_a.name, space_b.name)
    check_new_name(name, save, overwrite)
    try:
        cfg = module.Config(**{**dict(config or {}), **options})
    except ValidationError as e:
        raise ConfigError(_first_error(e, method)) from None

    if items is None:
        items = _default(space_a, via, "via") or _default(space_b, via, "via")
        if items is None:
            raise DataError(f"give items of {via!r} to connect on (--items FILE); no plugin offers defaults for {space_a.name!r} or {space_b.name!r}"
                            + corpora.why_no_defaults(space_a, space_b, via))
        if memories is None:
            memories = _default_memories(space_a, space_b, via)
    sides = _assign_memories(space_a, space_b, via, memories or {})

    data = TrainingData(
        via_a=embed(space_a, via, items, progress=progress),
        via_b=embed(space_b, via, items, progress=progress),
    )
    via_fp = items_fingerprint(via, items)
    refs = [DataRef(space=s.name, modality=via, count=len(items), fingerprint=via_fp) for s in (space_a, space_b)]
    for i, (space, attr) in enumerate(((space_a, "memory_a"), (space_b, "memory_b"))):
        if i in sides:
            mod, mem = sides[i]
            setattr(data, attr, embed(space, mod, mem, progress=progress))
            refs.append(DataRef(space=space.name, modality=mod, count=len(mem), fingerprint=items_fingerprint(split_pin(mod)[0], mem)))

    spaces = [SpaceRef.of(s) for s in (space_a, space_b)]
    checkpoint = Checkpointer(name, _job(method, cfg, refs, spaces), resume=resume, every=getattr(cfg, "checkpoint_every", 1)) if save else None
    if resume and not save:
        raise ConfigError("resume needs a stored run (save=True)")
    with checkpoint or contextlib.nullcontext():  # the lock: one run per name at a time
        trained = module.train(data, cfg, progress=progress, checkpoint=checkpoint)
        weights = connectors.weights_bytes(trained.tensors)
        card = ConnectorCard(
            name=name,
            method=method,
            spaces=spaces,
            via=via,
            modalities=list(dict.fromkeys([*space_a.modalities, *space_b.modalities])),
            dim=trained.dim,
            config=cfg.model_dump(),
            data=refs,
            metrics=trained.metrics,
            weights_sha256=hashlib.sha256(weights).hexdigest(),
            mcrgraph_version=__version__,
        )
        folder = connectors.save(card, weights, overwrite=overwrite) if save else None
        if checkpoint:
            checkpoint.clear()
    return ConnectedMCR(card, folder, tensors=trained.tensors, parents=[space_a, space_b])


def _job(method: str, cfg, refs: list[DataRef], spaces: list[SpaceRef]) -> str:
    """What a checkpoint must match to be resumed: data, encoders and every option that
    changes the numbers (not the device or how often checkpoints are written)."""
    options = cfg.model_dump(exclude={"device", "checkpoint_every"})
    blob = json.dumps([method, options, [r.model_dump() for r in refs], [s.model_dump() for s in spaces]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _first_error(e: ValidationError, method: str) -> str:
    err = e.errors()[0]
    field = ".".join(str(x) for x in err["loc"]) or "config"
    return f"{method} option {field}: {err['msg'].removeprefix('Value error, ')}"


def _default(space: MCR, modality: str, role: str):
    got = plugins.hook().default_items(mcr=space, modality=modality, role=role)
    return list(got) if got is not None else None


def _default_memories(a: MCR, b: MCR, via: str) -> dict[str, Sequence[Any]]:
    """One offered memory per side, or none at all: C-MCR needs both sides or neither."""
    out = {}
    for space in (a, b):
        for m in space.modalities:
            got = _default(space, m, "memory") if m != via else None
            if got is not None:
                out[f"{m}@{space.name}"] = got
                break
    if len(out) < 2:
        if out:
            log.warning("only one space offers default memories; training without memories")
        return {}
    return out


def _assign_memories(a: MCR, b: MCR, via: str, memories: Mapping[str, Sequence[Any]]) -> dict[int, tuple[str, Sequence[Any]]]:
    """Give each memory to the side that has its modality: ``{side: (modality, items)}``."""
    sides: dict[int, tuple[str, Sequence[Any]]] = {}
    for key, mem in memories.items():
        base, pin = split_pin(key)
        if base == via:
            raise ConfigError(f"memory {key!r}: memories are items of a modality other than the via modality {via!r}")
        owners = [i for i, s in enumerate((a, b)) if base in s.modalities and (pin is None or pin in s.pin_targets(base))]
        if not owners:
            raise UnknownModalityError(f"memory {key!r}: neither {a.name!r} nor {b.name!r} has that modality")
        if len(owners) > 1:
            raise ConfigError(f"memory {key!r}: both spaces have {base!r}; pin it, e.g. {base}@{a.name} or {base}@{b.name}")
        side = owners[0]
        if side in sides:
            raise ConfigError(f"a connector takes one memory modality per space; {(a, b)[side].name!r} got {sides[side][0]!r} and {key!r}")
        mem = list(mem)
        if not mem:
            raise DataError(f"memory {key!r} is empty")
        space = (a, b)[side]
        sides[side] = (base if pin in (None, space.name) else key, mem)
    return sides
