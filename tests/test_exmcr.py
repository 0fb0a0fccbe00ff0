import pytest
import torch

import mcrgraph
from conftest import CAPTIONS, QUICK

IMAGES = [f"k{i}#7" for i in range(20)]
SOUNDS = [f"k{i}#8" for i in range(20)]
SHAPES = [f"k{i}#9" for i in range(20)]
ITEMS = ["k1", "k2#3", "k5"]


def extend(**kw):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories={"image": IMAGES, "audio": SOUNDS}, method="ex-mcr", config=QUICK, **kw)


def test_base_modalities_are_exactly_the_base_encoder(fakes):
    space = extend()
    assert space.name == "fb-into-fa" and space.dim == fakes["fa"].dim
    reloaded = mcrgraph.get_mcr("fb-into-fa")
    for s in (space, reloaded):
        for mod in ("image", "text"):
            assert torch.equal(mcrgraph.embed(s, mod, ITEMS), mcrgraph.embed(fakes["fa"], mod, ITEMS))
    assert torch.equal(mcrgraph.embed(space, "audio", ITEMS), mcrgraph.embed(reloaded, "audio", ITEMS))
    assert not torch.equal(mcrgraph.embed(space, "text@fb", ITEMS), mcrgraph.embed(space, "text", ITEMS))


def test_seeded_and_switches_change_training(fakes):
    a, b = extend(save=False), extend(save=False)
    assert a.card.weights_sha256 == b.card.weights_sha256
    variants = {extend(save=False, f1=False).card.weights_sha256, extend(save=False, dense=False).card.weights_sha256,
                extend(save=False, centres=["via"]).card.weights_sha256, a.card.weights_sha256}
    assert len(variants) == 4
    assert extend(save=False, centres=["via"]).card.metrics["tuples"] == 54  # 60 captions less 6 held out
    assert a.card.metrics["tuples"] == 54 + 20 + 20  # plus one tuple per leaf and per base memory item


def test_f1_starts_as_identity_and_is_stored(fakes):
    space = extend(save=False, epochs=0)
    f1 = space.heads().ext.f1
    assert torch.equal(f1.weight, torch.eye(6)) and torch.equal(f1.bias, torch.zeros(6))


@pytest.mark.parametrize("kw,error,msg", [
    (dict(centres=["leaf"], memories={}), mcrgraph.DataError, "need memories that were not given"),
    (dict(centres=[]), mcrgraph.ConfigError, "centres"),
    (dict(centres=["middle"]), mcrgraph.ConfigError, "centres"),
])
def test_bad_configs(fakes, kw, error, msg):
    memories = kw.pop("memories", {"image": IMAGES, "audio": SOUNDS})
    with pytest.raises(error, match=msg):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=memories, method="ex-mcr", config=QUICK, **kw)


def test_one_sided_memory_is_allowed(fakes):
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories={"audio": SOUNDS}, method="ex-mcr", config=QUICK, save=False)
    assert space.card.metrics["tuples"] == 54 + 20


def test_leaves_extended_into_one_base_meet_there(only_fakes):
    extend()
    mcrgraph.connect("fa", "fc", via="image", items=IMAGES * 3, memories={"3d": SHAPES}, method="ex-mcr", config=QUICK)
    g = mcrgraph.graph()
    path = g.plan("audio", "3d")
    assert (path.node, path.target_node, path.frame) == ("fb-into-fa", "fc-into-fa", "fa")
    assert path.describe() == "audio@fb -> fb-into-fa => fa <= fc-into-fa <- 3d@fc"
    sim = g.similarity("audio", ITEMS, "3d", ITEMS[:2])
    expected = mcrgraph.embed(mcrgraph.get_mcr("fb-into-fa"), "audio", ITEMS) @ mcrgraph.embed(mcrgraph.get_mcr("fc-into-fa"), "3d", ITEMS[:2]).T
    assert torch.allclose(sim, expected)
    # image stays the base's own: one Ex-MCR node covers audio and image with one head crossed
    assert g.plan("audio", "image").describe() == "audio@fb -> fb-into-fa <- image@fa"


def test_planner_prefers_fewer_heads_over_a_nested_chain(only_fakes):
    ab = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    mcrgraph.connect(ab, "fc", via="image", items=IMAGES * 3, config=QUICK)
    assert mcrgraph.graph().plan("audio", "3d").node == "fa+fb+fc"  # the only way, for now
    extend()
    mcrgraph.connect("fa", "fc", via="image", items=IMAGES * 3, memories={"3d": SHAPES}, method="ex-mcr", config=QUICK)
    path = mcrgraph.graph().plan("audio", "3d")
    assert path.node == "fb-into-fa" and path.cost < 3  # 2 heads crossed vs 3 through fa+fb+fc


def test_extended_space_can_be_connected_again(only_fakes):
    space = extend()
    onward = mcrgraph.connect(space, "fc", via="image", items=IMAGES * 3, config=QUICK)
    assert set(onward.modalities) == {"image", "text", "audio", "3d"}
    assert mcrgraph.embed(onward, "audio", ITEMS).shape == (3, 8)
