"""Encode-time readouts a connector stores with its weights (issue 25): an item's softmax weights
over stored embeddings of its own space (``keys``) applied to stored rows in the connected space
(``values``, row for row), blended with the item's own encoding. Ex-MCR's cross readout (keys: the
leaf's via items; values: the base's embeddings of them) and both methods' memory readouts (keys:
a side's memory as given; values: the connector's own encoding of it, ``memory_store``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import ConnectorFileError, DataError
from .inputs import ROW_ELEMENTS, neighbour_temperatures
from .losses import memory_readout


@dataclass(frozen=True)
class Kind:
    """What one stored readout is called in options, tensor keys and messages."""

    option: str  # the config prefix: <option>_weight, <option>_neighbours, <option>_reach
    what: str  # "cross readout"
    keys_are: str  # "leaf via items"
    values_are: str  # "base ones"
    keys: str  # tensor key of the keys
    values: str  # tensor key of the values
    reach: str  # tensor key of the keys' reach thresholds


def readout(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, temperature: float,
            neighbours: float = 0.0, kind: Kind | None = None) -> torch.Tensor:
    """``normalize(softmax(q · keysᵀ / τ) · values)``; with ``neighbours``, τ is each row's own."""
    what, k_are, v_are = (kind.what, kind.keys_are, kind.values_are) if kind else ("readout", "keys", "values")
    if queries.dim() != 2 or keys.dim() != 2 or values.dim() != 2:
        raise DataError(f"ex-mcr {what}: queries, keys and values must be 2-D (rows x dim), got "
                        f"{tuple(queries.shape)}, {tuple(keys.shape)}, {tuple(values.shape)}")
    if queries.shape[1] != keys.shape[1]:
        raise DataError(f"ex-mcr {what}: the items have dim {queries.shape[1]} but the {k_are} have dim {keys.shape[1]}; "
                        "give embeddings of the leaf space")
    if len(keys) != len(values) or not len(keys):
        raise DataError(f"ex-mcr {what}: {len(keys)} {k_are} but {len(values)} {v_are}; give one value row per key row (at least one)")
    q, keys = queries.float(), keys.to(queries.device).float()
    if neighbours:
        q, temperature = q / neighbour_temperatures(q, keys, neighbours).to(q), 1.0  # each row its own τ
    return memory_readout(q, keys, temperature, values=values.to(q))


def share(queries: torch.Tensor, keys: torch.Tensor, reach: torch.Tensor, temperature: float,
          neighbours: float = 0.0) -> torch.Tensor:
    """Per row (n, 1), the share of its readout softmax on the keys whose ``reach`` its score
    attains (it is among their nearest leaf memory items), rows at a time."""
    if len(reach) != len(keys):
        raise DataError(f"ex-mcr readout: {len(keys)} keys but {len(reach)} reach thresholds")
    q, keys, reach = queries.float(), keys.to(queries.device).float(), reach.to(queries.device).float()
    tau = neighbour_temperatures(q, keys, neighbours).to(q) if neighbours else torch.full((len(q), 1), float(temperature))
    out = torch.empty(len(q), 1)
    rows = max(1, ROW_ELEMENTS // max(1, len(keys)))
    for start in range(0, len(q), rows):
        s = q[start : start + rows] @ keys.T
        p = torch.softmax(s / tau[start : start + rows], dim=1)
        out[start : start + rows] = (p * (s >= reach).float()).sum(1, keepdim=True)
    return out


def memory_store(kind: Kind, memory: torch.Tensor, encode) -> dict[str, torch.Tensor]:
    """A memory readout's tensors: ``memory`` as given (keys) and, row for row, ``encode`` of it
    (values: the connector's own encoding without this readout), chunk by chunk."""
    with torch.inference_mode():
        mapped = torch.cat([encode(chunk) for chunk in memory.float().split(8192)])
    return {kind.keys: memory.detach().float().cpu().contiguous(), kind.values: mapped.float().cpu().contiguous()}


@dataclass
class StoredReadout:
    """``normalize(w · readout(x) + (1 − w) · mapped)`` for the leaf's non-via items; the base
    side is never touched."""

    kind: Kind
    keys: torch.Tensor
    values: torch.Tensor
    weight: float
    temperature: float
    neighbours: float = 0.0
    reach: torch.Tensor | None = None  # with a reach: the weight is scaled by ``share``

    @classmethod
    def of(cls, kind: Kind, cfg, tensors: dict[str, torch.Tensor], name: str, keys: torch.Tensor | None = None) -> "StoredReadout | None":
        """From a connector's config and tensors; None when its weight is 0. ``keys``: the keys
        when another part stores them (the cross readout's are bridging's own via items)."""
        weight = getattr(cfg, f"{kind.option}_weight") or 0.0
        if not weight:
            return None
        keys = tensors.get(kind.keys, keys)
        missing = [k for k, v in ((kind.keys, keys), (kind.values, tensors.get(kind.values))) if v is None]
        again = "train it again (mcrgraph connect ... --overwrite)"
        if missing:
            raise ConnectorFileError(f"connector {name!r}: its card sets {kind.option}_weight {weight} but its weights lack "
                                     f"{', '.join(missing)}; {again}")
        values = tensors[kind.values]
        if len(keys) != len(values):
            raise ConnectorFileError(f"connector {name!r}: its {kind.what} holds {len(keys)} {kind.keys_are} but "
                                     f"{len(values)} {kind.values_are}; {again}")
        reach_on = getattr(cfg, f"{kind.option}_reach", 0)
        reach = tensors.get(kind.reach) if reach_on else None
        if reach_on and reach is None:
            raise ConnectorFileError(f"connector {name!r}: its card sets {kind.option}_reach {reach_on} but its weights lack "
                                     f"{kind.reach}; {again}")
        return cls(kind, keys, values, weight, cfg.memory_temperature, getattr(cfg, f"{kind.option}_neighbours") or 0.0, reach)

    def blend(self, raw: torch.Tensor, mapped: torch.Tensor) -> torch.Tensor:
        r = readout(raw, self.keys, self.values, self.temperature, self.neighbours, self.kind).to(mapped)
        w = self.weight
        if self.reach is not None:
            w = w * share(raw, self.keys, self.reach, self.temperature, self.neighbours).to(mapped)
        return F.normalize(w * r + (1 - w) * mapped, dim=-1)
