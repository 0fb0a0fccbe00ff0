"""Issue 25 item 3: Ex-MCR's cross readout at encode time (``cross_weight``): a leaf item's
softmax weights over the leaf's via items, applied to the base's embeddings of the same via
items (the leaf-centred pseudo-tuples' ``b_v``, docs/architecture.md "The Ex-MCR method"),
blended with the mapped item. Opt-in; the base stays bit-identical."""
import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.methods.exmcr import CROSS_KEYS, CROSS_VALUES, cross_readout
from mcrgraph.methods.inputs import neighbour_temperatures
from mcrgraph.spaces.connected import ConnectedMCR
from mcrgraph.spaces.encoding import embed
from conftest import CAPTIONS, QUICK

SOUNDS = [f"k{i}#8" for i in range(20)]
MEMORIES = {"image": [f"k{i}#7" for i in range(20)], "audio": SOUNDS}
ITEMS = ["k1", "k2#3", "k5"]


def _extend(**options):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=MEMORIES, method="ex-mcr", save=False,
                           config=QUICK, **options)


def _softmax_readout64(q, keys, values, tau):
    """The reference: the same formula in float64, one plain softmax over whole rows."""
    p = torch.softmax(q.double() @ keys.double().T / torch.as_tensor(tau, dtype=torch.float64), dim=1)
    return F.normalize(p @ values.double(), dim=1)


def test_readout_is_the_float64_softmax_on_a_tiny_example():
    gen = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(3, 4, generator=gen), dim=1)
    keys = F.normalize(torch.randn(6, 4, generator=gen), dim=1)  # the leaf's via items
    values = F.normalize(torch.randn(6, 5, generator=gen), dim=1)  # the base's, row for row
    # float32 unit vectors, 6 terms per sum: each product and sum rounds by <= 6e-8 relative, the
    # softmax's exp and the normalisation a few more; 1e-6 bounds their sum with room, far below
    # the differences a wrong weight or a swapped value row makes (>= 1e-2 here, asserted below)
    for tau in (0.01, 0.05, 1.0):
        got = cross_readout(q, keys, values, tau)
        assert got.dtype == torch.float32 and got.shape == (3, 5)
        assert torch.allclose(got.double(), _softmax_readout64(q, keys, values, tau), atol=1e-6, rtol=0)
    assert (cross_readout(q, keys, values.flip(0), 1.0) - cross_readout(q, keys, values, 1.0)).abs().max() > 1e-2
    # with neighbours: each row at its own τ, the same softmax
    tau = neighbour_temperatures(q, keys, 2.0)
    assert torch.allclose(cross_readout(q, keys, values, 0.05, neighbours=2.0).double(),
                          _softmax_readout64(q, keys, values, tau), atol=1e-6, rtol=0)


def test_base_stays_bit_identical_and_only_the_leafs_other_modality_changes(fakes):
    off, on = _extend(preset="mcrgraph"), _extend(preset="mcrgraph", cross_weight=0.5)
    assert all(torch.equal(off._tensors[k], on._tensors[k]) for k in off._tensors)  # encode-time only: the same training
    assert set(on._tensors) - set(off._tensors) == {CROSS_VALUES}  # the leaf's via items are bridging's (bridge_b)
    for mod in ("image", "text"):
        assert torch.equal(mcrgraph.embed(on, mod, ITEMS), mcrgraph.embed(fakes["fa"], mod, ITEMS))
    assert torch.equal(mcrgraph.embed(on, "text@fb", ITEMS), mcrgraph.embed(off, "text@fb", ITEMS))
    assert not torch.equal(on.encode("audio", SOUNDS), off.encode("audio", SOUNDS))


@pytest.mark.parametrize("neighbours", [0.0, 3.0])
def test_encode_blends_the_cross_readout_with_the_mapped_item(fakes, neighbours):
    off = _extend(preset="paper")
    on = _extend(preset="paper", cross_weight=0.3, cross_neighbours=neighbours)
    t = on._tensors
    via_leaf, via_base = embed(fakes["fb"], "text", CAPTIONS), embed(fakes["fa"], "text", CAPTIONS)
    assert torch.equal(t[CROSS_KEYS], via_leaf) and torch.equal(t[CROSS_VALUES], via_base)  # every via item, both spaces
    assert "bridge_b" not in t  # preset paper: no bridging, so the cross readout stores the leaf's own copy
    snd = embed(fakes["fb"], "audio", SOUNDS)
    tau = neighbour_temperatures(snd, via_leaf, neighbours) if neighbours else on.card.config["memory_temperature"]
    cross = _softmax_readout64(snd, via_leaf, via_base, tau)
    expect = F.normalize(0.3 * cross + 0.7 * off.encode("audio", SOUNDS).double(), dim=1)
    assert torch.allclose(on.encode("audio", SOUNDS).double(), expect, atol=1e-5, rtol=0)  # float32 head + readout


def test_a_card_without_the_field_behaves_as_before(fakes):
    space = _extend(preset="mcrgraph")
    old = {k: v for k, v in space.card.config.items() if not k.startswith("cross_")}
    reloaded = ConnectedMCR(space.card.model_copy(update={"config": old}), None, tensors=space._tensors, parents=space.parents())
    assert reloaded.heads().cross is None
    assert torch.equal(reloaded.encode("audio", SOUNDS), space.encode("audio", SOUNDS))


def test_bad_input(fakes):
    with pytest.raises(mcrgraph.ConfigError, match="cross_weight"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, method="ex-mcr", save=False, config=QUICK, cross_weight=1.5)
    with pytest.raises(mcrgraph.ConfigError, match="cross_neighbours"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, method="ex-mcr", save=False, config=QUICK, cross_neighbours=-1)
    q, keys, values = torch.ones(2, 4), torch.ones(3, 4), torch.ones(3, 5)
    with pytest.raises(mcrgraph.DataError, match="dim 3 but the leaf via items have dim 4"):
        cross_readout(torch.ones(2, 3), keys, values, 0.05)
    with pytest.raises(mcrgraph.DataError, match="3 leaf via items but 2 base ones"):
        cross_readout(q, keys, values[:2], 0.05)


def test_a_card_that_sets_it_without_its_tensors_is_refused(fakes):
    space = _extend(preset="paper", cross_weight=0.5)
    lacking = {k: v for k, v in space._tensors.items() if k != CROSS_VALUES}
    broken = ConnectedMCR(space.card, None, tensors=lacking, parents=space.parents())
    with pytest.raises(mcrgraph.ConnectorFileError, match="lack cross.base"):
        broken.encode("audio", SOUNDS)
    short = {**space._tensors, CROSS_VALUES: space._tensors[CROSS_VALUES][:-1]}
    with pytest.raises(mcrgraph.ConnectorFileError, match="leaf via items but"):
        ConnectedMCR(space.card, None, tensors=short, parents=space.parents()).encode("audio", SOUNDS)


def test_reach_weighs_the_cross_readout_by_the_share_on_via_items_the_item_is_near(fakes):
    from mcrgraph.methods.exmcr import CROSS_REACH
    from mcrgraph.methods.stored_readout import share as cross_share
    from mcrgraph.methods.inputs import reaches

    off = _extend(preset="paper")
    on = _extend(preset="paper", cross_weight=0.6, cross_reach=3)
    t, snd = on._tensors, embed(fakes["fb"], "audio", SOUNDS)
    via_leaf, via_base = t[CROSS_KEYS], t[CROSS_VALUES]
    assert torch.equal(t[CROSS_REACH], reaches(via_leaf, snd, 3))  # the leaf's audio memory is SOUNDS
    tau = on.card.config["memory_temperature"]
    # the k-th nearest memory item scores the threshold itself (the memory is the query set here), so
    # which via items count is the float32 comparison, as stored and as encoded; the softmax in float64
    near = (snd @ via_leaf.T) >= t[CROSS_REACH]
    assert near.sum(1).min() >= 1 and (~near).any()
    p = torch.softmax(snd.double() @ via_leaf.double().T / tau, dim=1)
    share = (p * near.double()).sum(1, keepdim=True)
    assert torch.allclose(cross_share(snd, via_leaf, t[CROSS_REACH], tau).double(), share, atol=1e-6, rtol=0)
    assert 0 < float(share.min()) and float(share.max()) <= 1 + 1e-9
    w = 0.6 * share
    expect = F.normalize(w * _softmax_readout64(snd, via_leaf, via_base, tau) + (1 - w) * off.encode("audio", SOUNDS).double(), dim=1)
    assert torch.allclose(on.encode("audio", SOUNDS).double(), expect, atol=1e-5, rtol=0)


def test_reach_needs_the_leafs_memory(fakes):
    with pytest.raises(mcrgraph.DataError, match="cross_reach needs the leaf's memory"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories={"image": MEMORIES["image"]}, method="ex-mcr",
                         save=False, config=QUICK, cross_weight=0.5, cross_reach=3)
    space = _extend(preset="paper", cross_weight=0.5, cross_reach=3)
    lacking = {k: v for k, v in space._tensors.items() if k != "cross.reach"}
    with pytest.raises(mcrgraph.ConnectorFileError, match="lack cross.reach"):
        ConnectedMCR(space.card, None, tensors=lacking, parents=space.parents()).encode("audio", SOUNDS)
