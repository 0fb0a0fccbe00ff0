"""Issue 25: bridging's sharpness from the data (``bridge_neighbours``): each item's temperature
is the one at which its softmax over the via items has the asked number of effective neighbours."""
import math

import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.methods.inputs import TAU_RANGE, neighbour_temperatures, readout
from mcrgraph.methods.losses import memory_readout
from mcrgraph.spaces.connected import ConnectedMCR
from mcrgraph.spaces.encoding import embed
from conftest import CAPTIONS, QUICK

SOUNDS = [f"k{i}#8" for i in range(20)]
MEMORIES = {"image": [f"k{i}#7" for i in range(20)], "audio": SOUNDS}


def _entropy(scores: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(scores.double() / tau.double(), dim=1)
    return -(logp.exp() * logp).sum(1)


def _assert_neighbours(scores: torch.Tensor, tau: torch.Tensor, neighbours: float) -> None:
    """The search leaves log τ within log(1e8) / 2^30 = 1.7e-8 of the root, and τ comes back in
    float32 (relative rounding 6e-8): 1e-7 in log τ. dH/dlog τ is the variance of the logits
    under the softmax, so H is within 1e-7 x that variance (plus float64 rounding)."""
    logits = scores.double() / tau.double()
    p = torch.softmax(logits, dim=1)
    var = (p * logits**2).sum(1) - (p * logits).sum(1) ** 2
    assert ((_entropy(scores, tau) - math.log(neighbours)).abs() <= 1e-7 * var + 1e-9).all()


@pytest.mark.parametrize("neighbours", [2.0, 10.0, 50.0])
@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_each_row_gets_the_asked_number_of_effective_neighbours(neighbours, scale):
    gen = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(64, 32, generator=gen), dim=1)
    keys = F.normalize(torch.randn(500, 32, generator=gen), dim=1)
    tau = neighbour_temperatures(q * scale, keys, neighbours)
    _assert_neighbours(q * scale @ keys.T, tau, neighbours)


def test_temperatures_follow_the_similarity_scale():
    """Scores c times smaller get a temperature c times smaller: the same softmax, whatever the scale."""
    gen = torch.Generator().manual_seed(1)
    q, keys = F.normalize(torch.randn(16, 8, generator=gen), dim=1), F.normalize(torch.randn(200, 8, generator=gen), dim=1)
    wide, narrow = neighbour_temperatures(q, keys, 5.0), neighbour_temperatures(q * 0.1, keys, 5.0)
    assert torch.allclose(narrow, wide * 0.1, rtol=1e-4)
    assert torch.allclose(readout(q, keys, 0.05, None, 5.0), readout(q * 0.1, keys, 0.05, None, 5.0), atol=1e-5)


def test_bounds_and_top_k():
    gen = torch.Generator().manual_seed(2)
    q, keys = F.normalize(torch.randn(4, 8, generator=gen), dim=1), F.normalize(torch.randn(30, 8, generator=gen), dim=1)
    assert torch.allclose(neighbour_temperatures(q, keys, 1000.0), torch.full((4, 1), TAU_RANGE[1]), rtol=1e-4)  # more than there are: flat
    one = neighbour_temperatures(q, keys, 1.0)  # one: the best alone (the softmax is one-hot in float64)
    assert (_entropy(q @ keys.T, one) < 1e-9).all()
    # over the top-k scores, as the top-k readout weighs them
    top = neighbour_temperatures(q, keys, 3.0, top_k=10)
    best = (q @ keys.T).topk(10, dim=1).values
    _assert_neighbours(best, top, 3.0)


def _connect(**options):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=MEMORIES, save=False, config=QUICK, **options)


def test_bridging_with_neighbours_reads_out_at_each_rows_temperature(fakes):
    space = _connect(preset="paper", bridge_weight=0.7, bridge_neighbours=3.0)
    t, heads = space._tensors, space.heads()
    snd = embed(fakes["fb"], "audio", SOUNDS)
    tau = neighbour_temperatures(snd, t["bridge_b"], 3.0)
    expect = heads.b(F.normalize(0.7 * memory_readout(snd / tau, t["bridge_b"], 1.0) + 0.3 * snd, dim=1))
    assert torch.allclose(space.encode("audio", SOUNDS), expect, atol=1e-6)
    fixed = _connect(preset="paper", bridge_weight=0.7)
    assert all(torch.equal(fixed._tensors[k], t[k]) for k in t)  # encode-time only: the same heads and items


def test_a_card_without_the_field_bridges_as_before(fakes):
    # memory readout off: its stored values are the memory as encoded with the card's bridging, which
    # this test changes under it (a real card written before has neither field)
    space = _connect(preset="mcrgraph", memory_weight=0.0)
    old = {k: v for k, v in space.card.config.items() if k != "bridge_neighbours"}
    reloaded = ConnectedMCR(space.card.model_copy(update={"config": old}), None, tensors=space._tensors, parents=space.parents())
    expect = _connect(preset="mcrgraph", bridge_neighbours=0.0, memory_weight=0.0).encode("audio", SOUNDS)
    assert torch.equal(reloaded.encode("audio", SOUNDS), expect)


def test_reach_weighs_bridging_by_the_share_of_via_items_the_item_is_near(fakes):
    """bridge_reach: each via item's reach is its k-th best similarity to the side's memory; an
    item bridges with bridge_weight x the softmax share of the via items whose reach it attains."""
    space = _connect(preset="paper", bridge_weight=0.7, bridge_reach=3)
    t, heads = space._tensors, space.heads()
    via, snd = t["bridge_b"], embed(fakes["fb"], "audio", SOUNDS)
    assert torch.allclose(t["bridge_b.reach"], (via @ snd.T).topk(3, dim=1).values[:, 2])  # SOUNDS is fb's memory
    s = snd @ via.T
    p = torch.softmax(s / 0.05, dim=1)
    w = 0.7 * (p * (s >= t["bridge_b.reach"]).float()).sum(1, keepdim=True)
    expect = heads.b(F.normalize(w * F.normalize(p @ via, dim=1) + (1 - w) * snd, dim=1))
    assert torch.allclose(space.encode("audio", SOUNDS), expect, atol=1e-5)
    assert ((w > 0) & (w < 0.7)).any()  # the share does vary here, so the test can tell


def test_a_reach_every_item_attains_is_plain_bridging(fakes):
    wide = _connect(preset="paper", bridge_weight=0.7, bridge_reach=len(SOUNDS))  # the lowest similarity: all attain it
    plain = _connect(preset="paper", bridge_weight=0.7)
    assert torch.allclose(wide.encode("audio", SOUNDS), plain.encode("audio", SOUNDS), atol=1e-5)
    assert "bridge_b.reach" not in plain._tensors


def test_each_method_takes_its_own_measured_reach_under_the_preset():
    """Preset mcrgraph: C-MCR bridges with a reach of 2.5% of each side's memory (30 of the hard world's
    1,200; it keeps its width as a memory grows, docs/results/reach-memory-size), Ex-MCR a count of 20
    (docs/results/fsdd-real-voices); an explicit count wins, 0 included, and preset paper has none."""
    from mcrgraph.methods import cmcr, exmcr

    c, e = cmcr.Config(), exmcr.Config()
    assert (c.bridge_reach, c.bridge_reach_fraction) == (0, 0.025)
    assert (e.bridge_reach, e.bridge_reach_fraction) == (20, 0.0)
    assert e.bridge_neighbours == c.bridge_neighbours == 10.0  # only the reach differs
    assert (cmcr.Config(bridge_reach=30).bridge_reach, cmcr.Config(bridge_reach=30).bridge_reach_fraction) == (30, 0.0)
    assert cmcr.Config(bridge_reach=0).bridge_reach_fraction == 0.0  # "reach 0" means off, as before the fraction
    assert cmcr.Config(bridge_reach_fraction=0.1).bridge_reach_fraction == 0.1
    for cfg in (exmcr.Config(preset="paper"), cmcr.Config(preset="paper")):
        assert (cfg.bridge_reach, cfg.bridge_reach_fraction) == (0, 0.0)


def test_the_reach_count_follows_the_memory_size():
    from mcrgraph.methods import cmcr
    from mcrgraph.methods.inputs import reach_count

    frac = cmcr.Config()
    assert [reach_count(frac, torch.zeros(n, 2)) for n in (1, 20, 1200, 12000)] == [1, 1, 30, 300]  # at least 1
    assert reach_count(frac, None) == 0 and reach_count(frac, torch.zeros(0, 2)) == 0  # no memory: no reach
    assert reach_count(cmcr.Config(bridge_reach=30), torch.zeros(12000, 2)) == 30  # a count stays a count
    assert reach_count(cmcr.Config(bridge_reach_fraction=0.0, bridge_reach=0), torch.zeros(12000, 2)) == 0


def test_a_fraction_is_the_count_it_stands_for(fakes):
    """bridge_reach_fraction f on a memory of n items stores the thresholds of bridge_reach round(f n)."""
    as_count = _connect(preset="paper", bridge_weight=0.7, bridge_reach=3)
    as_fraction = _connect(preset="paper", bridge_weight=0.7, bridge_reach_fraction=3 / len(SOUNDS))
    assert torch.equal(as_fraction._tensors["bridge_b.reach"], as_count._tensors["bridge_b.reach"])
    assert torch.equal(as_fraction.encode("audio", SOUNDS), as_count.encode("audio", SOUNDS))
    assert as_fraction.card.config["bridge_reach_fraction"] == 3 / len(SOUNDS) and as_fraction.card.config["bridge_reach"] == 0


def test_a_card_written_before_the_fraction_keeps_its_count(fakes):
    """Cards store resolved fields; one from before bridge_reach_fraction existed has none, and reads as
    its count (ABSENT_MEANS), with its stored thresholds used as they are."""
    from mcrgraph.methods import cmcr
    from mcrgraph.methods.common import config_of

    space = _connect(preset="mcrgraph", bridge_reach=3)
    old = {k: v for k, v in space.card.config.items() if k != "bridge_reach_fraction"}
    card = space.card.model_copy(update={"config": old})
    cfg = config_of(card, cmcr.Config, cmcr.NAME)
    assert (cfg.bridge_reach, cfg.bridge_reach_fraction) == (3, 0.0)
    again = ConnectedMCR(card, None, tensors=space._tensors, parents=space.parents())
    assert torch.equal(again.encode("audio", SOUNDS), space.encode("audio", SOUNDS))
