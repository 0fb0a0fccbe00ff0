"""What a connector does to embeddings before its heads, to keep what each encoder knows
(issue 16): a preset that names a whole behaviour, modality centring, encode-time bridging
over the via items, and the heads' normalisation. ``preset="paper"`` is the published
methods exactly (every technique off); a card without a preset means ``paper``."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn
from pydantic import Field, PrivateAttr, model_validator

from .common import TrainConfig
from .losses import memory_readout

Preset = Literal["mcrgraph", "paper"]

#: the value each technique field takes under each preset, unless set explicitly.
#: "mcrgraph" holds the winners measured by ``mcrgraph eval mini --seeds 0,1,2`` and, since issue 25, on the
#: hard synthetic world (one and two hops) and the mini world's held-out vocabulary too (docs/architecture.md).
PRESETS: dict[str, dict[str, object]] = {
    "paper": {"centre": False, "bridge_weight": 0.0, "bridge_temperature": 0.05, "bridge_neighbours": 0.0, "bridge_reach": 0, "bridge_reach_fraction": 0.0, "norm": "batch", "via_mix": 1.0,
              "memory_weight": 0.0, "memory_neighbours": 0.0},
    "mcrgraph": {"centre": False, "bridge_weight": 0.7, "bridge_temperature": 0.05, "bridge_neighbours": 10.0, "bridge_reach": 0, "bridge_reach_fraction": 0.025, "norm": "batch", "via_mix": 0.5,
                 "memory_weight": 0.3, "memory_neighbours": 5.0},
}
#: fields added after cards were written with a preset: a card without one behaves as before
ABSENT_MEANS: dict[str, object] = {"bridge_neighbours": 0.0, "bridge_reach": 0, "bridge_reach_fraction": 0.0, "memory_weight": 0.0, "memory_neighbours": 0.0}


class InputConfig(TrainConfig):
    """Fields of the knowledge-keeping techniques; a field left at None takes its preset's value."""

    preset: Preset = Field("mcrgraph", description="paper: the published method exactly (every technique below off); mcrgraph: the measured winners. Fields set explicitly override the preset")
    centre: bool | None = Field(None, description="subtract each modality's centroid in its own space (from the via items and memories; stored in the connector) before the head, in training and at encode time, then re-normalise (Mind the Gap; C3; TextME)")
    bridge_weight: float | None = Field(None, ge=0, le=1, description="encode-time bridging: a non-via item is read out over the via items of its own space (stored with the connector) and the readout gets this weight in the blend with the item itself before the head; 0: off")
    bridge_temperature: float | None = Field(None, gt=0, description="softmax temperature of the bridging readout")
    bridge_neighbours: float | None = Field(None, ge=0, description="adaptive sharpness: each item's bridging temperature is set from its own scores so that its softmax over the via items has this many effective neighbours (exp of its entropy), whatever the space's similarity scale; 0: the fixed bridge_temperature")
    bridge_reach: int | None = Field(None, ge=0, description="bridging by confidence: an item bridges only through the via items it is a near neighbour of, among the `bridge_reach` items of its side's memory most similar to that via item (thresholds stored with the connector); its blend weight is bridge_weight times the share of its readout on such via items, so items whose concept the via items do not name, or name with another concept's items, keep themselves. 0: bridge_reach_fraction decides (off when it is 0 too)")
    bridge_reach_fraction: float | None = Field(None, ge=0, le=1, description="bridge_reach as a fraction of each side's memory (the count is this times the memory's size, at least 1), so the neighbourhood it stands for keeps its width as a memory grows; a bridge_reach above 0 wins, and setting bridge_reach alone turns this off")
    bridge_top_k: int | None = Field(None, ge=1, description="bridging reads out over each item's top-k via items only (opt-in, for large via sets); None: all of them, exactly")
    memory_weight: float | None = Field(None, ge=0, le=1, description="encode-time memory readout (issue 25): a non-via item's softmax weights over its own side's memory, in its own space, applied to this connector's encodings of the same items (both stored with the connector: 2 x memory x dim floats a side), get this weight in a blend with the item's own encoding, so an item the heads never saw lands where they put its neighbours; off without memories when the preset chose it (the card then says 0)")
    memory_neighbours: float | None = Field(None, ge=0, description="the memory readout's sharpness: each item's temperature set so its softmax over the memory has this many effective neighbours; 0: memory_temperature")
    norm: Literal["batch", "layer", "modality"] | None = Field(None, description="the heads' normalisation layers: batch (BatchNorm, statistics learned on the via modality) or layer (LayerNorm, per row); modality: BatchNorm whose statistics for each side's non-via modality are re-estimated after training from that side's memory, as the head sees it at encode time (AdaBN), and used for that modality")

    ABSENT_MEANS: ClassVar[dict[str, object]] = ABSENT_MEANS
    #: a method's own values under a preset, where its measured winner differs from PRESETS'
    METHOD_PRESETS: ClassVar[dict[str, dict[str, object]]] = {}

    _preset_fields: set[str] = PrivateAttr(default_factory=set)  # the fields the preset chose, not the user

    @model_validator(mode="after")
    def _from_preset(self):
        if "bridge_reach" in self.model_fields_set and "bridge_reach_fraction" not in self.model_fields_set:
            self.bridge_reach_fraction = 0.0  # a count the user gives is the reach, 0 included (off)
        for key, value in (PRESETS[self.preset] | self.METHOD_PRESETS.get(self.preset, {})).items():
            if key in type(self).model_fields and getattr(self, key) is None:
                setattr(self, key, value)
                self._preset_fields.add(key)
        return self

    def from_preset(self, field: str) -> bool:
        """Whether ``field`` holds its preset's value because the user left it unset."""
        return field in self._preset_fields


def memory_readout_on(cfg: InputConfig, has_memory: bool, method: str, needs: str) -> bool:
    """Whether a connector's memory readout runs. Without the memory it reads, a readout the preset
    chose is off and the card says ``memory_weight`` 0 (as bridging's reach is off without a
    memory); one the user asked for is an error that says what it ``needs``. Called before training."""
    from ..errors import DataError

    if not cfg.memory_weight:
        return False
    if has_memory:
        return True
    if cfg.from_preset("memory_weight"):
        cfg.memory_weight = 0.0
        return False
    raise DataError(f"{method}: memory_weight needs {needs}; give it, or set memory_weight 0")


def centre_rows(x: torch.Tensor, centroid: torch.Tensor | None) -> torch.Tensor:
    return x if centroid is None else F.normalize(x - centroid.to(x), dim=-1)


def centroids(cfg: InputConfig, via: torch.Tensor, memory: torch.Tensor | None, side: str) -> dict[str, torch.Tensor]:
    """The side's stored centroids (keys ``centre_<side>.via`` / ``.other``), none when centring is off."""
    if not cfg.centre:
        return {}
    out = {f"centre_{side}.via": via.mean(0).detach().cpu()}
    if memory is not None:
        out[f"centre_{side}.other"] = memory.mean(0).detach().cpu()
    return out


def bridge_items(cfg: InputConfig, via: torch.Tensor, side: str, memory: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The via items one side's bridging reads out over (key ``bridge_<side>``), none when off;
    with ``bridge_reach`` and a memory, each via item's reach (``bridge_<side>.reach``): its
    ``bridge_reach``-th highest similarity to the memory's items."""
    if not cfg.bridge_weight:
        return {}
    out = {f"bridge_{side}": via.detach().cpu().contiguous()}
    k = reach_count(cfg, memory)
    if k:
        out[f"bridge_{side}.reach"] = reaches(via, memory, k).cpu()
    return out


def reach_count(cfg: InputConfig, memory: torch.Tensor | None) -> int:
    """The reach one side's bridging uses: ``bridge_reach`` when above 0, else
    ``bridge_reach_fraction`` of the memory's rows (at least 1); 0 (off) without a memory."""
    if memory is None or not len(memory):
        return 0
    if cfg.bridge_reach:
        return cfg.bridge_reach
    return max(1, round(cfg.bridge_reach_fraction * len(memory))) if cfg.bridge_reach_fraction else 0


def reaches(via: torch.Tensor, memory: torch.Tensor, k: int) -> torch.Tensor:
    """Per via row, its k-th highest similarity to the memory rows (the lowest when k exceeds them)."""
    from ..ranking.topk import topk

    k = min(k, len(memory))
    return topk(via.float(), memory.float(), k)[0][:, k - 1].contiguous()


NEIGHBOUR_STEPS = 30  # bisection steps on log τ: 2^-30 of the bracket's width, far below float32's rounding
TAU_RANGE = (1e-6, 1e2)
ROW_ELEMENTS = 1 << 21  # scores held at a time by the temperature search (16 MiB of float64)


def neighbour_temperatures(queries: torch.Tensor, keys: torch.Tensor, neighbours: float, top_k: int | None = None) -> torch.Tensor:
    """Per query row, the τ at which ``softmax(q·kᵀ/τ)`` has ``neighbours`` effective members
    (the exponential of its entropy, which grows with τ), found by bisection on log τ within
    TAU_RANGE; over the row's top-k scores when ``top_k`` is given (as the readout then is).
    In float64: at small similarity scales τ is small and the logits large, and float32's
    spacing of log τ alone would move the entropy by ~1e-3."""
    target = math.log(max(neighbours, 1.0))
    out = torch.empty(len(queries), 1)
    rows = max(1, ROW_ELEMENTS // max(1, min(len(keys), top_k or len(keys))))
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows].float()
        if top_k is not None and top_k < len(keys):
            from ..ranking.topk import topk

            s = topk(q, keys.float(), top_k)[0].double()
        else:
            s = (q @ keys.float().T).double()
        lo = torch.full((len(q), 1), math.log(TAU_RANGE[0]), dtype=torch.float64)
        hi = torch.full((len(q), 1), math.log(TAU_RANGE[1]), dtype=torch.float64)
        for _ in range(NEIGHBOUR_STEPS):
            mid = (lo + hi) / 2
            logp = torch.log_softmax(s / mid.exp(), dim=1)
            wide = -(logp.exp() * logp).sum(1, keepdim=True) > target
            hi, lo = torch.where(wide, mid, hi), torch.where(wide, lo, mid)
        out[start : start + rows] = ((lo + hi) / 2).exp().float()
    return out


def confident_readout(queries: torch.Tensor, keys: torch.Tensor, temperature: float, top_k: int | None,
                      neighbours: float, reach: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``readout`` and, per row, the share of its softmax on keys whose ``reach`` the row's score
    attains (the row is among that key's nearest memory items): ``(readout, share (n, 1))``.
    Rows at a time, every score of a row held (or its top-k)."""
    tau = neighbour_temperatures(queries, keys, neighbours, top_k) if neighbours else torch.full((len(queries), 1), float(temperature))
    keys_f, reach = keys.float(), reach.float().to(keys.device)
    out, share = torch.empty(len(queries), keys.shape[1]), torch.empty(len(queries), 1)
    k = top_k if top_k is not None and top_k < len(keys) else None
    rows = max(1, ROW_ELEMENTS // (k or len(keys)))
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows].float()
        if k is None:
            s = q @ keys_f.T
            p = torch.softmax(s / tau[start : start + rows], dim=1)
            out[start : start + rows] = p @ keys_f
            share[start : start + rows] = (p * (s >= reach).float()).sum(1, keepdim=True)
        else:
            from ..ranking.topk import topk

            s, idx = topk(q, keys_f, k)
            p = torch.softmax(s / tau[start : start + rows], dim=1)
            out[start : start + rows] = torch.bmm(p.unsqueeze(1), keys_f[idx]).squeeze(1)
            share[start : start + rows] = (p * (s >= reach[idx]).float()).sum(1, keepdim=True)
    return F.normalize(out, dim=-1), share


def readout(queries: torch.Tensor, keys: torch.Tensor, temperature: float, top_k: int | None,
            neighbours: float = 0.0) -> torch.Tensor:
    """``normalize(softmax(q·kᵀ/τ)·k)``, exactly or over each query's top-k keys; with
    ``neighbours``, τ is each row's own (``neighbour_temperatures``): the rows are scaled by 1/τ
    and read out at τ = 1, the same softmax."""
    if neighbours:
        queries = queries / neighbour_temperatures(queries, keys, neighbours, top_k).to(queries)
        temperature = 1.0
    if top_k is None or top_k >= len(keys):
        return memory_readout(queries, keys, temperature)
    from .readout import topk_readout  # issue 16 item 4; loaded only when asked for; rows come normalised

    return topk_readout(queries, keys, keys, temperature, top_k)


@dataclass
class SideInputs:
    """One side's input transforms at encode time, from the connector's stored tensors."""

    via: str
    centre_via: torch.Tensor | None = None
    centre_other: torch.Tensor | None = None
    bridge: torch.Tensor | None = None
    bridge_weight: float = 0.0
    bridge_temperature: float = 0.05
    bridge_top_k: int | None = None
    bridge_neighbours: float = 0.0
    bridge_reach: torch.Tensor | None = None

    @classmethod
    def of(cls, cfg: InputConfig, via: str, tensors: dict[str, torch.Tensor], side: str) -> "SideInputs":
        return cls(via, tensors.get(f"centre_{side}.via"), tensors.get(f"centre_{side}.other"), tensors.get(f"bridge_{side}"),
                   cfg.bridge_weight or 0.0, cfg.bridge_temperature or 0.05, cfg.bridge_top_k, cfg.bridge_neighbours or 0.0,
                   tensors.get(f"bridge_{side}.reach") if cfg.bridge_reach or cfg.bridge_reach_fraction else None)

    def centred(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return centre_rows(x, self.centre_via if modality == self.via else self.centre_other)

    def bridged(self, modality: str, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x`` (the item as the head would take it) blended with the readout of ``raw`` over
        the via items, centred as via items are; ``x`` itself for via items or with bridging off."""
        if modality == self.via or self.bridge is None or not self.bridge_weight:
            return x
        keys = self.bridge.to(raw)
        if self.bridge_reach is None:
            r, w = readout(raw, keys, self.bridge_temperature, self.bridge_top_k, self.bridge_neighbours), self.bridge_weight
        else:
            r, share = confident_readout(raw, keys, self.bridge_temperature, self.bridge_top_k, self.bridge_neighbours, self.bridge_reach)
            r, w = r.to(raw), self.bridge_weight * share.to(raw)
        r = centre_rows(r, self.centre_via)
        return F.normalize(w * r + (1 - w) * x, dim=-1)


STATS = ("running_mean", "running_var")


def modality_stats(head: nn.Module, inputs: torch.Tensor, side: str) -> dict[str, torch.Tensor]:
    """AdaBN: the BatchNorm statistics of ``head`` re-estimated on ``inputs`` (one modality as
    the head takes it), keys ``bn_<side>.<layer>.running_mean/var``; the weights are unchanged."""
    probe = copy.deepcopy(head)
    for m in probe.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the chunks
    probe.train()
    with torch.no_grad():
        for chunk in inputs.split(8192):
            if len(chunk) > 1:
                probe(chunk)
    return {f"bn_{side}.{k}": v.detach().cpu() for k, v in probe.state_dict().items() if k.endswith(STATS)}


def with_stats(head: nn.Module, tensors: dict[str, torch.Tensor], side: str) -> nn.Module | None:
    """A copy of ``head`` with the side's stored per-modality statistics; None when there are none."""
    prefix = f"bn_{side}."
    stats = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not stats:
        return None
    other = copy.deepcopy(head)
    other.load_state_dict(stats, strict=False)
    other.eval()
    return other


def head_inputs(cfg: InputConfig, tensors: dict[str, torch.Tensor], side: str, raw: torch.Tensor,
                after_centring: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> torch.Tensor:
    """A side's non-via items as its head takes them at encode time: centred, passed through
    ``after_centring`` (Ex-MCR's f1), bridged."""
    inputs = SideInputs.of(cfg, "via", tensors, side)
    with torch.no_grad():
        return inputs.bridged("other", raw, after_centring(inputs.centred("other", raw)))
