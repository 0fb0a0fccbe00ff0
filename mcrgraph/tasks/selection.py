"""Label-free criteria for choosing a connector's configuration (issue 25 item 2): scores that use
only what ``connect`` has (the via items, the unpaired memories, the two parents and the trained
connector), never labels or held-out pairs, so they can rank configurations where no labelled
metric exists. Higher is better for every criterion.

``views`` embeds what connect had, in each parent and in the connected space; each criterion is a
function of those ``Views``; ``criterion`` scores one connected space. Whether a criterion ranks
configurations like the labelled metric (held-out audio->image R@1) is measured on five worlds in
docs/results/label-free-criterion (``python -m benchmarks.label_free_criterion``): none reached
Spearman 0.7 on every world (criteria of alignment confidence rise with any bridging and miss
where bridging pulls unnamed concepts to the wrong captions; criteria of kept neighbourhoods fall
with any bridging), so ``connect`` does not choose by any of them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from ..errors import ConfigError, DataError
from ..spaces.encoding import embed
from ..spaces.mcr import MCR, split_pin

K = 10  # neighbours: the size of a "near neighbourhood" in every criterion below


@dataclass
class Views:
    """What connect had, as rows (L2-normalised): side 0 is space A, side 1 space B.
    ``via[s]`` / ``memory[s]``: side s's via items and its memory in its own parent;
    ``via_c[s]`` / ``memory_c[s]``: the same items as the connected space encodes them
    (via items pinned to side s)."""

    via: tuple[torch.Tensor, torch.Tensor]
    memory: tuple[torch.Tensor, torch.Tensor]
    via_c: tuple[torch.Tensor, torch.Tensor]
    memory_c: tuple[torch.Tensor, torch.Tensor]


def views(space: MCR, items: Sequence[Any], memories: Mapping[str, Sequence[Any]]) -> Views:
    """Embed ``items`` (of the connector's via modality) and one memory per parent (``{modality:
    items}``, as given to connect) in each parent and in the connected ``space``."""
    card = getattr(space, "card", None)
    if card is None or not hasattr(space, "parents"):
        raise ConfigError(f"{space.name!r} is not a connected space: a label-free criterion scores a connector")
    parents = space.parents()
    sides: list[tuple[str, Sequence[Any]] | None] = [None, None]
    for key, mem in memories.items():
        base, pin = split_pin(key)
        owners = [i for i, p in enumerate(parents) if base in p.modalities and base != card.via and pin in (None, p.name)]
        if len(owners) != 1:
            raise DataError(f"memory {key!r}: it must be a non-via modality of exactly one of {', '.join(p.name for p in parents)}")
        sides[owners[0]] = (base, list(mem))
    if None in sides:
        raise DataError("a label-free criterion needs one memory for each parent (the unpaired items connect trained on)")
    via = tuple(embed(p, card.via, items) for p in parents)
    via_c = tuple(embed(space, f"{card.via}@{p.name}", items) for p in parents)
    memory = tuple(embed(p, m, mem) for p, (m, mem) in zip(parents, sides))
    memory_c = tuple(embed(space, f"{m}@{p.name}", mem) for p, (m, mem) in zip(parents, sides))
    return Views(via, memory, via_c, memory_c)  # type: ignore[arg-type]


def _knn(x: torch.Tensor, k: int, exclude_self: bool = True) -> torch.Tensor:
    s = x @ x.T
    if exclude_self:
        s.fill_diagonal_(-float("inf"))
    return s.topk(min(k, len(x) - exclude_self), dim=1).indices


def neighbourhood_kept(parent: torch.Tensor, connected: torch.Tensor, k: int = K) -> float:
    """Mean share of each row's ``k`` nearest neighbours (itself excluded) in ``parent`` that are
    also among its ``k`` nearest in ``connected`` (same rows, same order): 1 when the connection
    keeps every neighbourhood, about k/n for an unrelated map."""
    a, b = _knn(parent.float(), k), _knn(connected.float(), k)
    hit = (a.unsqueeze(2) == b.unsqueeze(1)).any(2).float()
    return float(hit.mean())


def knowledge_kept(v: Views, k: int = K) -> float:
    """``neighbourhood_kept`` averaged over both memories and both sides' via items."""
    pairs = [(v.memory[s], v.memory_c[s]) for s in (0, 1)] + [(v.via[s], v.via_c[s]) for s in (0, 1)]
    return sum(neighbourhood_kept(p, c, k) for p, c in pairs) / len(pairs)


def memories_kept(v: Views, k: int = K) -> float:
    """``neighbourhood_kept`` averaged over the two memories (the items bridging changes)."""
    return sum(neighbourhood_kept(v.memory[s], v.memory_c[s], k) for s in (0, 1)) / 2


def cycle_consistency(v: Views, k: int = K) -> float:
    """Memory item -> its nearest memory item of the other side (in the connected space) -> that
    one's nearest item of the first side: the share of cycles that land among the start's ``k``
    nearest neighbours in its own parent (itself included), averaged over both starting sides."""
    rates = []
    for s in (0, 1):
        x, y = v.memory_c[s].float(), v.memory_c[1 - s].float()
        there = (x @ y.T).argmax(1)
        back = (y[there] @ x.T).argmax(1)
        near = torch.cat([torch.arange(len(x)).unsqueeze(1), _knn(v.memory[s].float(), k)], 1)
        rates.append(float((near == back.unsqueeze(1)).any(1).float().mean()))
    return sum(rates) / 2


def via_distributions(rows: torch.Tensor, via: torch.Tensor, neighbours: float = K) -> torch.Tensor:
    """Each row's softmax over the via items, its temperature set so it has ``neighbours``
    effective members (``methods.inputs.neighbour_temperatures``)."""
    from ..methods.inputs import neighbour_temperatures

    tau = neighbour_temperatures(rows.float(), via.float(), neighbours)
    return torch.softmax((rows.float() @ via.float().T) / tau, dim=1)


def pseudo_label_agreement(v: Views, neighbours: float = K) -> float:
    """Each memory item's distribution over the via items in its own parent (``via_distributions``)
    serves as its pseudo-label; a cross-modal pair agrees by the overlap of the two (their inner
    product). Score: for each item of side s, the overlap with its nearest item of the other side in
    the connected space, over the best overlap any item of the other side has; averaged over both
    sides. Rewards bridging to the wrong concept where the via items do not cover it."""
    p = [via_distributions(v.memory[s], v.via[s], neighbours) for s in (0, 1)]
    out = []
    for s in (0, 1):
        overlap = p[s] @ p[1 - s].T
        nn = (v.memory_c[s].float() @ v.memory_c[1 - s].float().T).argmax(1)
        got = overlap.gather(1, nn.unsqueeze(1)).squeeze(1)
        out.append(float((got / overlap.max(1).values.clamp_min(1e-12)).mean()))
    return sum(out) / 2


def pseudo_pairs(v: Views) -> tuple[torch.Tensor, torch.Tensor]:
    """Per via item, its nearest memory item on each side, in each parent: (index on side 0,
    index on side 1). The pairs a via item vouches for, without labels."""
    return ((v.via[0].float() @ v.memory[0].float().T).argmax(1), (v.via[1].float() @ v.memory[1].float().T).argmax(1))


def pseudo_pair_recall(v: Views, rows: torch.Tensor | None = None) -> float:
    """R@1 of the pseudo pairs (``pseudo_pairs``) of the via items ``rows`` (default all):
    each side-1 memory item retrieves among the side-0 items of those pairs in the connected
    space, a hit when it lands on its own pair's item; the mean of both directions. With the
    via items the connector trained on (and bridged over), it favours bridging; ``rows`` held out of
    training (a second connector) measures what the connector learned."""
    i0, i1 = pseudo_pairs(v)
    if rows is not None:
        i0, i1 = i0[rows], i1[rows]
    pairs = torch.unique(torch.stack([i0, i1], 1), dim=0)
    g0, g1 = torch.unique(pairs[:, 0]), torch.unique(pairs[:, 1])
    out = []
    for src, dst, s in ((g1, g0, 1), (g0, g1, 0)):
        sim = v.memory_c[s][src].float() @ v.memory_c[1 - s][dst].float().T
        got = dst[sim.argmax(1)]
        ok = torch.zeros(len(src), dtype=torch.bool)
        for j, item in enumerate(src.tolist()):  # a hit: the retrieved item is paired with this one
            mine = pairs[pairs[:, s] == item][:, 1 - s]
            ok[j] = bool((mine == got[j]).any())
        out.append(float(ok.float().mean()))
    return sum(out) / 2


def crossing_kept(v: Views) -> float:
    """Label-free retention: for each memory item, whether its nearest via item in its own parent
    is also its nearest via item as the *other* side encodes the via items in the connected space;
    the mean share over both sides."""
    out = []
    for s in (0, 1):
        own = (v.memory[s].float() @ v.via[s].float().T).argmax(1)
        crossed = (v.memory_c[s].float() @ v.via_c[1 - s].float().T).argmax(1)
        out.append(float((own == crossed).float().mean()))
    return sum(out) / 2


def via_alignment(v: Views, rows: torch.Tensor | None = None) -> float:
    """R@1 of via item -> the same via item as the other side encodes it, in the connected space,
    among the via items ``rows`` (default all); the mean of both directions. Meant for via items
    held out of training (a second connector trained without them)."""
    a, b = v.via_c[0].float(), v.via_c[1].float()
    if rows is not None:
        a, b = a[rows], b[rows]
    target = torch.arange(len(a))
    return float(((a @ b.T).argmax(1) == target).float().mean() + ((b @ a.T).argmax(1) == target).float().mean()) / 2


def via_round_trip(v: Views, k: int = K) -> float:
    """Via item t -> its nearest memory item on side s in parent s -> that item's nearest memory
    item of the other side in the connected space -> its nearest via item in the other parent: a
    hit when that is among t's ``k`` nearest via items there (t included); the mean over both
    starting sides. Only via items start, so it is blind to concepts they do not name."""
    out = []
    for s in (0, 1):
        o = 1 - s
        first = (v.via[s].float() @ v.memory[s].float().T).argmax(1)
        there = (v.memory_c[s][first].float() @ v.memory_c[o].float().T).argmax(1)
        back = (v.memory[o][there].float() @ v.via[o].float().T).argmax(1)
        near = torch.cat([torch.arange(len(v.via[o])).unsqueeze(1), _knn(v.via[o].float(), k)], 1)
        out.append(float((near == back.unsqueeze(1)).any(1).float().mean()))
    return sum(out) / 2


def uncovered(via: torch.Tensor, memory: torch.Tensor, k: int = K) -> torch.Tensor:
    """Memory rows no via item reaches: among no via item's ``k`` nearest memory rows (in the
    parent). A boolean mask; the items whose concept the via items may not name."""
    reached = torch.zeros(len(memory), dtype=torch.bool)
    reached[(via.float() @ memory.float().T).topk(min(k, len(memory)), dim=1).indices.flatten()] = True
    return ~reached


def uncovered_kept(v: Views, k: int = K) -> float:
    """``neighbourhood_kept`` over the memory items no via item reaches (``uncovered``), averaged
    over sides (a side with none counts 1): whether the connector leaves alone what the via items
    cannot vouch for."""
    out = []
    for s in (0, 1):
        mask = uncovered(v.via[s], v.memory[s], k)
        if not mask.any():
            out.append(1.0)
            continue
        a, b = _knn(v.memory[s].float(), k)[mask], _knn(v.memory_c[s].float(), k)[mask]
        out.append(float((a.unsqueeze(2) == b.unsqueeze(1)).any(2).float().mean()))
    return sum(out) / 2


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


def information_maximisation(v: Views, temperature: float = 0.05) -> float:
    """IM (unsupervised model selection for domain adaptation): each memory item's softmax over
    the other side's memory items in the connected space; the entropy of their mean minus their
    mean entropy (confident and diverse matches score high), over log n, averaged over sides."""
    out = []
    for s in (0, 1):
        p = torch.softmax(v.memory_c[s].float() @ v.memory_c[1 - s].float().T / temperature, dim=1)
        out.append(float((_entropy(p.mean(0)) - _entropy(p).mean()) / torch.log(torch.tensor(float(p.shape[1])))))
    return sum(out) / 2


def soft_neighbourhood_density(v: Views, temperature: float = 0.05) -> float:
    """SND (Saito et al. 2021), across modalities: the mean entropy of each memory item's softmax
    over the other side's memory items in the connected space, over log n, averaged over sides."""
    out = []
    for s in (0, 1):
        p = torch.softmax(v.memory_c[s].float() @ v.memory_c[1 - s].float().T / temperature, dim=1)
        out.append(float(_entropy(p).mean() / torch.log(torch.tensor(float(p.shape[1])))))
    return sum(out) / 2


def confidence(v: Views, temperature: float = 0.05) -> float:
    """1 - ``soft_neighbourhood_density``: how peaked each memory item's softmax over the other
    side's memory items is in the connected space (SND read the other way round)."""
    return 1.0 - soft_neighbourhood_density(v, temperature)


CRITERIA = {
    "knowledge kept (kNN overlap, memories + via)": knowledge_kept,
    "memories kept (kNN overlap)": memories_kept,
    "cycle consistency": cycle_consistency,
    "pseudo-label agreement (via distributions)": pseudo_label_agreement,
    "pseudo-pair R@1 (all via items)": pseudo_pair_recall,
    "crossing kept (top-1 via item)": crossing_kept,
    "via round trip": via_round_trip,
    "uncovered kept (kNN overlap of items no via item reaches)": uncovered_kept,
    "IM (τ 0.05)": information_maximisation,
    "SND (τ 0.05)": soft_neighbourhood_density,
    "confidence (1 - SND, τ 0.05)": confidence,
}


def scores(v: Views) -> dict[str, float]:
    """Every criterion of ``CRITERIA`` on one connector's views."""
    return {name: fn(v) for name, fn in CRITERIA.items()}


#: the criterion ``criterion`` uses unless told. Spearman with held-out audio->image R@1 over five
#: configurations, 3 seeds: 1.00 / 0.72 / 0.90 / 0.70 / -0.30 (mini, its held-out vocabulary, hard
#: world at coverage all / half / few; docs/results/label-free-criterion): not reliable on every world
DEFAULT = "confidence (1 - SND, τ 0.05)"


def criterion(space: MCR, items: Sequence[Any], memories: Mapping[str, Sequence[Any]], name: str = DEFAULT) -> float:
    """A label-free score of the connected ``space`` (higher is better), from the via ``items`` and
    the unpaired ``memories`` (``{modality: items}``, one per parent) it was trained on: the
    criterion ``name`` of ``CRITERIA``. What it is worth for choosing a configuration is measured,
    world by world, in docs/results/label-free-criterion; no criterion agreed with the labelled
    metric on every world, so treat a score as a hint, not a choice."""
    if name not in CRITERIA:
        raise ConfigError(f"unknown criterion {name!r}; criteria: {'; '.join(CRITERIA)}")
    return CRITERIA[name](views(space, items, memories))
