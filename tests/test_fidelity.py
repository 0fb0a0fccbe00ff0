"""Issue 16: retention is computed right, each knowledge-keeping technique changes encoding as
specified, preset paper is today's method, Ex-MCR's base stays bit-identical, cards keep it all."""
import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.store import connectors
from mcrgraph.spaces.connected import ConnectedMCR
from mcrgraph.spaces.encoding import embed
from mcrgraph.tasks.fidelity import retention
from mcrgraph.methods import cmcr, exmcr
from mcrgraph.methods.losses import memory_readout
from conftest import CAPTIONS, QUICK

IMAGES = [f"k{i}#7" for i in range(20)]
SOUNDS = [f"k{i}#8" for i in range(20)]
MEMORIES = {"image": IMAGES, "audio": SOUNDS}


# -- retention on a case whose answer is known ------------------------------------------------
E = torch.eye(4)


class Table(mcrgraph.MCR):
    """Items are looked up in ``rows[modality]`` by their index (``"3"`` -> row 3)."""

    cache = False

    def __init__(self, name, rows, pins=()):
        self.name, self.rows, self.pins = name, rows, list(pins)
        self.modalities, self.dim = ("audio", "text"), 4

    def encode(self, modality, items):
        return self.rows[modality][[int(i) for i in items]].clone()

    def pin_targets(self, modality):
        return [self.name, *self.pins]


def test_retention_of_a_constructed_case():
    parent = Table("p", {"audio": E, "text": E})  # alone: every sound finds its caption
    crossed = E[[0, 1, 3, 2]]  # captions 2 and 3 swapped in the connected space
    same = torch.stack([E[0], E[1], E[2], -E[3]])  # same side: caption 3 lost
    space = Table("s", {"audio@p": E, "text": crossed, "text@p": same}, pins=["p"])
    items, labels = ["0", "1", "2", "3"], [0, 1, 2, 3]
    got = retention(space, parent, "audio", "text", items, labels, items, labels,
                    groups={"all": [True] * 4, "first two": [True, True, False, False], "last two": [False, False, True, True]})
    assert got["all"]["parent alone R@1"] == 1.0
    assert got["all"]["connected R@1"] == 0.5 and got["all"]["retention"] == 0.5
    assert got["all"]["same-side R@1"] == 0.75 and got["all"]["same-side retention"] == 0.75
    assert got["first two"]["retention"] == 1.0 and got["first two"]["gallery"] == 2
    assert got["last two"]["retention"] == 0.0 and got["last two"]["same-side retention"] == 0.5


# -- the techniques ------------------------------------------------------------------------
def _connect(**options):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=MEMORIES, save=False, config=QUICK, **options)


def test_preset_paper_is_the_published_method(fakes):
    space = _connect(preset="paper")
    cfg = space.card.config
    assert (cfg["centre"], cfg["bridge_weight"], cfg["norm"], cfg["via_mix"]) == (False, 0.0, "batch", 1.0)
    assert all(k.startswith(("a.", "b.")) for k in space._tensors)  # nothing stored beside the heads
    heads = space.heads()
    assert heads.inputs is None
    emb = embed(fakes["fb"], "audio", SOUNDS)
    assert torch.equal(space.encode("audio", SOUNDS), heads.b(emb))
    assert torch.equal(space.encode("text", CAPTIONS[:5]), heads.a(embed(fakes["fa"], "text", CAPTIONS[:5])))


def test_paper_training_is_unchanged_by_the_new_fields(fakes):
    """preset paper trains exactly as setting every technique off by hand (no extra noise draws,
    no extra tensors), and a card written before presets loads as paper."""
    a, b = _connect(preset="paper"), _connect(preset="mcrgraph", centre=False, bridge_weight=0.0, via_mix=1.0, norm="batch", memory_weight=0.0)
    assert a._tensors.keys() == b._tensors.keys()
    assert all(torch.equal(a._tensors[k], b._tensors[k]) for k in a._tensors)
    old = {k: v for k, v in a.card.config.items() if k not in ("preset", "centre", "bridge_weight", "bridge_temperature", "bridge_neighbours", "bridge_reach", "bridge_top_k", "norm", "via_mix")}
    card = a.card.model_copy(update={"config": old})
    reloaded = ConnectedMCR(card, None, tensors=a._tensors, parents=a.parents())
    assert torch.equal(reloaded.encode("audio", SOUNDS), a.encode("audio", SOUNDS))
    assert torch.equal(reloaded.encode("text", CAPTIONS), a.encode("text", CAPTIONS))


def test_centring_subtracts_the_stored_centroids_in_training_and_encoding(fakes):
    space = _connect(preset="paper", centre=True)
    t = space._tensors
    assert torch.allclose(t["centre_a.via"], embed(fakes["fa"], "text", CAPTIONS).mean(0))
    assert torch.allclose(t["centre_b.other"], embed(fakes["fb"], "audio", SOUNDS).mean(0))
    heads = space.heads()
    img = embed(fakes["fa"], "image", IMAGES)
    assert torch.allclose(space.encode("image", IMAGES), heads.a(F.normalize(img - t["centre_a.other"], dim=1)))
    txt = embed(fakes["fb"], "text", CAPTIONS)
    assert torch.allclose(space.encode("text@fb", CAPTIONS), heads.b(F.normalize(txt - t["centre_b.via"], dim=1)))
    plain = _connect(preset="paper")
    assert not torch.equal(plain._tensors["a.net.0.weight"], t["a.net.0.weight"])  # trained on centred inputs


def test_bridging_blends_a_readout_over_the_via_items(fakes):
    space = _connect(preset="paper", bridge_weight=0.7, bridge_temperature=0.1)
    t, heads = space._tensors, space.heads()
    assert torch.equal(t["bridge_b"], embed(fakes["fb"], "text", CAPTIONS))
    snd = embed(fakes["fb"], "audio", SOUNDS)
    expect = heads.b(F.normalize(0.7 * memory_readout(snd, t["bridge_b"], 0.1) + 0.3 * snd, dim=1))
    assert torch.allclose(space.encode("audio", SOUNDS), expect, atol=1e-6)
    txt = embed(fakes["fb"], "text", CAPTIONS)
    assert torch.equal(space.encode("text@fb", CAPTIONS), heads.b(txt))  # via items are not bridged
    off = _connect(preset="paper")
    assert all(torch.equal(off._tensors[k], t[k]) for k in off._tensors)  # encode-time only: same heads


def test_bridging_over_the_top_k_via_items(fakes):
    """bridge_top_k reads each item out over its k nearest via items (methods.readout.topk_readout);
    with k at least the number of via items it is the exact bridging."""
    from mcrgraph.methods.readout import topk_readout

    space = _connect(preset="paper", bridge_weight=0.7, bridge_temperature=0.1, bridge_top_k=2)
    t, heads = space._tensors, space.heads()
    snd = embed(fakes["fb"], "audio", SOUNDS)
    near = F.normalize(topk_readout(snd, t["bridge_b"], t["bridge_b"], 0.1, 2), dim=1)
    expect = heads.b(F.normalize(0.7 * near + 0.3 * snd, dim=1))
    assert torch.allclose(space.encode("audio", SOUNDS), expect, atol=1e-6)
    exact = _connect(preset="paper", bridge_weight=0.7, bridge_temperature=0.1)
    assert not torch.allclose(space.encode("audio", SOUNDS), exact.encode("audio", SOUNDS), atol=1e-4)
    wide = _connect(preset="paper", bridge_weight=0.7, bridge_temperature=0.1, bridge_top_k=len(CAPTIONS))
    assert torch.allclose(wide.encode("audio", SOUNDS), exact.encode("audio", SOUNDS), atol=1e-6)


def test_both_sides_via_mixes_the_two_heads_and_a_pin_reaches_one(fakes):
    space = _connect(preset="paper", via_mix=0.25)
    heads = space.heads()
    za, zb = heads.a(embed(fakes["fa"], "text", CAPTIONS)), heads.b(embed(fakes["fb"], "text", CAPTIONS))
    assert torch.allclose(space.encode("text", CAPTIONS), F.normalize(0.25 * za + 0.75 * zb, dim=1))
    assert torch.equal(space.encode("text@fb", CAPTIONS), zb)
    assert torch.equal(space.encode("text@fa", CAPTIONS), za)


def test_layer_norm_heads(fakes):
    space = _connect(preset="paper", norm="layer")
    kinds = {type(m).__name__ for m in space.heads().a.modules()}
    assert "LayerNorm" in kinds and "BatchNorm1d" not in kinds


def test_via_noise_is_the_noise_std_field(fakes):
    a, b = _connect(preset="paper"), _connect(preset="paper", noise_std=0.13)
    assert not torch.equal(a._tensors["a.net.0.weight"], b._tensors["a.net.0.weight"])


def test_ex_mcr_keeps_its_base_bit_identical_with_every_technique(fakes):
    space = _connect(method="ex-mcr", preset="mcrgraph", centre=True, bridge_weight=0.7, norm="layer")
    assert not any(k.endswith("_a") or "_a." in k for k in space._tensors)  # nothing stored for the base
    for modality, items in (("image", IMAGES), ("text", CAPTIONS)):
        assert torch.equal(space.encode(modality, items), embed(fakes["fa"], modality, items))
    paper = _connect(method="ex-mcr", preset="paper")
    assert not torch.allclose(space.encode("audio", SOUNDS), paper.encode("audio", SOUNDS))


def test_the_card_keeps_the_new_fields(fakes, store):
    options = dict(preset="mcrgraph", centre=True, bridge_weight=0.6, bridge_temperature=0.2, norm="layer", via_mix=0.4)
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=MEMORIES, config=QUICK, **options)
    card = connectors.read_card(space.folder)
    assert {k: card.config[k] for k in options} == options
    assert card.config["bridge_top_k"] is None
    loaded = mcrgraph.get_mcr("fa+fb")
    assert loaded is not space
    for modality, items in (("audio", SOUNDS), ("image", IMAGES), ("text", CAPTIONS)):
        assert torch.allclose(loaded.encode(modality, items), space.encode(modality, items), atol=1e-6)


def test_default_preset_and_its_resolution():
    assert cmcr.Config().preset == "mcrgraph"
    assert exmcr.Config(preset="paper").bridge_weight == 0.0
    assert cmcr.Config(preset="paper", bridge_weight=0.5).bridge_weight == 0.5  # explicit beats preset
    assert not hasattr(exmcr.Config(), "via_mix")  # both-sides via would change Ex-MCR's base text
    with pytest.raises(ValueError):
        cmcr.Config(preset="nope")


def test_per_modality_statistics_are_the_memory_s_and_serve_only_that_modality(fakes):
    space = _connect(preset="paper", norm="modality")
    t, heads = space._tensors, space.heads()
    snd = embed(fakes["fb"], "audio", SOUNDS)
    with torch.no_grad():
        first = heads.b.net[0](snd)  # what the first BatchNorm of b sees for the memory's sounds
    assert torch.allclose(t["bn_b.net.1.running_mean"], first.mean(0), atol=1e-5)
    assert torch.allclose(space.encode("audio", SOUNDS), heads.other[1](snd))
    assert not torch.allclose(heads.other[1](snd), heads.b(snd))
    txt = embed(fakes["fb"], "text", CAPTIONS)
    assert torch.equal(space.encode("text@fb", CAPTIONS), heads.b(txt))  # via items keep the trained statistics
    ex = _connect(method="ex-mcr", preset="paper", norm="modality")
    assert "bn_b.net.1.running_mean" in ex._tensors and not any(k.startswith("bn_a") for k in ex._tensors)
    assert torch.equal(ex.encode("image", IMAGES), embed(fakes["fa"], "image", IMAGES))


def test_cli_preset_switch(fakes, tmp_path):
    from click.testing import CliRunner

    from mcrgraph.cli import cli

    captions = tmp_path / "captions.txt"
    captions.write_text("\n".join(CAPTIONS))
    r = CliRunner().invoke(cli, ["connect", "fa", "fb", "--via", "text", "--items", str(captions), "--epochs", "2",
                                 "--preset", "paper", "--no-progress"])
    assert r.exit_code == 0, r.output
    card = connectors.read_card(connectors.connector_path("fa+fb"))
    assert card.config["preset"] == "paper" and card.config["bridge_weight"] == 0.0 and card.config["via_mix"] == 1.0
