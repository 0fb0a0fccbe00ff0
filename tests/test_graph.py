import pytest
import torch

import mcrgraph
from conftest import CAPTIONS, QUICK


def test_graph_has_spaces_overlaps_and_derived_nodes(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    g = mcrgraph.graph().nx
    assert g.nodes["fa+fb"]["kind"] == "connector" and g.nodes["fa+fb"]["hops"] == 1
    overlaps = {(frozenset((u, v)), a["via"], a["trained"]) for u, v, a in g.edges(data=True) if a["kind"] == "overlap"}
    assert (frozenset(("fa", "fb")), "text", True) in overlaps
    assert (frozenset(("fa", "fc")), "image", False) in overlaps
    assert (frozenset(("fa+fb", "fc")), "image", False) in overlaps
    assert not any("fa+fb" in pair and ("fa" in pair or "fb" in pair) for pair, _, _ in overlaps)  # no overlap with own parts
    derived = {frozenset((u, v)) for u, v, a in g.edges(data=True) if a["kind"] == "derived"}
    assert derived == {frozenset(("fa+fb", "fa")), frozenset(("fa+fb", "fb"))}


def test_plan_prefers_a_plugin_that_covers_both(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    path = mcrgraph.graph().plan("image", "text")
    assert path.node == "fa" and path.cost == 0
    assert path.describe() == "image@fa <-> text@fa (both in fa)"


def test_plan_through_connector_and_describe(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    path = mcrgraph.graph().plan("audio", "image")
    assert path.node == "fa+fb"
    assert path.describe() == "audio@fb -> fa+fb <- image@fa"
    assert mcrgraph.graph().plan("text@fb", "image").describe() == "text@fb -> fa+fb <- image@fa"


def test_plan_multi_hop(fakes):
    ab = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    mcrgraph.connect(ab, "fc", via="image", items=CAPTIONS, config=QUICK)
    path = mcrgraph.graph().plan("audio", "3d")
    assert path.node == "fa+fb+fc"
    assert path.describe() == "audio@fb -> fa+fb -> fa+fb+fc <- 3d@fc"


def test_plan_refines_hops_by_validation_score(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, name="weak")
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config={**QUICK, "epochs": 30}, name="strong")
    g = mcrgraph.graph()
    scores = {n: g.nx.nodes[n]["score"] for n in ("weak", "strong")}
    assert scores["strong"] > scores["weak"]
    assert g.plan("audio", "image").node == "strong"
    assert g.plan("audio", "image", weight=lambda n, a: 0 if n == "weak" else (None if a["kind"] == "plugin" else 1)).node == "weak"


def test_no_path_lists_connect_commands(only_fakes):
    with pytest.raises(mcrgraph.NoPathError) as e:
        mcrgraph.graph().plan("audio", "3d")
    assert e.value.steps == [
        "mcrgraph connect fa fb --via text --items TEXT_ITEMS",  # fa first: the next step goes through its image
        "mcrgraph connect fa+fb fc --via image --items IMAGE_ITEMS",
    ]
    assert "no trained space covers audio and 3d" in str(e.value)


def test_no_path_uses_existing_connectors(only_fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    with pytest.raises(mcrgraph.NoPathError) as e:
        mcrgraph.graph().plan("audio", "3d")
    assert e.value.steps == ["mcrgraph connect fa+fb fc --via image --items IMAGE_ITEMS"]


def test_unreachable_and_unknown(fakes):
    mcrgraph.register(mcrgraph.get_mcr("fa").__class__("island", ("smell",)))
    with pytest.raises(mcrgraph.NoPathError, match="no chain of shared modalities"):
        mcrgraph.graph().plan("smell", "audio")
    with pytest.raises(mcrgraph.UnknownModalityError, match="no space has modality 'taste'"):
        mcrgraph.graph().plan("taste", "audio")
    with pytest.raises(mcrgraph.UnknownMCRError, match="no space named 'nope'"):
        mcrgraph.graph().plan("audio@nope", "text")
    with pytest.raises(mcrgraph.UnknownModalityError, match="space 'fa' has no 'audio'"):
        mcrgraph.graph().plan("audio@fa", "text")
    mcrgraph.unregister("island")


def test_similarity_is_cosine_in_the_planned_space(fakes):
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    sim = mcrgraph.graph().similarity("audio", ["k1", "k2", "k3"], "image", ["k1", "k4"])
    expected = mcrgraph.embed(space, "audio", ["k1", "k2", "k3"]) @ mcrgraph.embed(space, "image", ["k1", "k4"]).T
    assert sim.shape == (3, 2) and torch.allclose(sim, expected)


def test_connector_whose_space_is_gone_is_skipped_with_a_clear_error(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    mcrgraph.unregister("fb")
    g = mcrgraph.graph()
    assert g.nx.nodes["fa+fb"]["missing"] == ["fb"]
    with pytest.raises(mcrgraph.NoPathError):
        g.plan("audio", "image")
    with pytest.raises(mcrgraph.UnknownMCRError, match="connector 'fa\\+fb' joins 'fb', which is not installed"):
        mcrgraph.embed(mcrgraph.get_mcr("fa+fb"), "image", ["k1"])
    mcrgraph.register(fakes["fb"])


def test_suggestion_omits_items_when_a_plugin_offers_them():
    with pytest.raises(mcrgraph.NoPathError) as e:  # clap and clip have no weights here; the demo chains tie, then names
        mcrgraph.graph().plan("audio", "image")
    assert e.value.steps == ["mcrgraph connect mini-clap mini-clip --via text"]


def test_no_overlap_between_connectors_of_the_same_spaces(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, name="one")
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, name="two")
    g = mcrgraph.graph().nx
    assert not g.has_edge("one", "two")
