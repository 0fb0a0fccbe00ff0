import json

import pytest
import torch

import mcrgraph
from mcrgraph.store import connectors
from conftest import CAPTIONS, QUICK

IMAGES = [f"k{i}#7" for i in range(20)]
SOUNDS = [f"k{i}#8" for i in range(20)]


def test_connect_stores_weights_and_card(fakes, store):
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    folder = store / "connectors" / "fa+fb"
    assert space.name == "fa+fb" and space.folder == folder
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "model.safetensors"]
    card = json.loads((folder / "card.json").read_text())
    assert card["method"] == "c-mcr" and card["via"] == "text"
    assert [s["name"] for s in card["spaces"]] == ["fa", "fb"]
    assert card["modalities"] == ["image", "text", "audio"] and card["dim"] == 8
    assert card["config"]["epochs"] == 2 and card["config"]["intra_weight"] == 1.0
    assert 0 <= card["metrics"]["val_r1"] <= 1 and card["metrics"]["val_items"] == 6
    assert card["data"][0]["count"] == 60 and len(card["data"][0]["fingerprint"]) == 64
    assert not [p for p in (store / "connectors").iterdir() if p.name.startswith(".")]


def test_connected_space_is_an_mcr(fakes):
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    for mod in ("image", "text", "audio", "text@fb"):
        emb = mcrgraph.embed(space, mod, ["k1", "k2", "k3"])
        assert emb.shape == (3, 8)
    assert space.route("audio") == ["fb", "fa+fb"]
    assert space.route("text") == ["fa", "fa+fb"] and space.route("text@fb") == ["fb", "fa+fb"]
    with pytest.raises(mcrgraph.UnknownModalityError, match="can be pinned to"):
        mcrgraph.embed(space, "text@fc", ["k1"])


def test_same_seed_same_weights_other_seed_differs(fakes):
    a = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, save=False)
    b = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, save=False)
    c = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config={**QUICK, "seed": 1}, save=False)
    assert a.card.weights_sha256 == b.card.weights_sha256 != c.card.weights_sha256


def test_with_memories_uses_all_losses(fakes):
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories={"image": IMAGES, "audio": SOUNDS}, config=QUICK)
    refs = {(d.space, d.modality): d.count for d in space.card.data}
    assert refs == {("fa", "text"): 60, ("fb", "text"): 60, ("fa", "image"): 20, ("fb", "audio"): 20}


@pytest.mark.parametrize("kwargs,error,msg", [
    (dict(via="audio"), mcrgraph.UnknownModalityError, "'fa' has no modality 'audio'; 'fa' and 'fb' share: text"),
    (dict(via="text", memories={"image": IMAGES}), mcrgraph.DataError, "memories of both sides or of neither"),
    (dict(via="text", memories={"text": IMAGES}), mcrgraph.ConfigError, "other than the via modality"),
    (dict(via="text", memories={"3d": IMAGES}), mcrgraph.UnknownModalityError, "neither 'fa' nor 'fb' has"),
    (dict(via="text", config={"epochs": -1}), mcrgraph.ConfigError, "c-mcr option epochs: Input should be greater than or equal to 0"),
    (dict(via="text", config={"nope": 1}), mcrgraph.ConfigError, "c-mcr option nope: Extra inputs are not permitted"),
    (dict(via="text", config={"device": "cuda"}), mcrgraph.ConfigError, "no CUDA device"),
    (dict(via="text", method="x-mcr"), mcrgraph.ConfigError, "unknown method 'x-mcr'; choose one of: c-mcr"),
    (dict(via="text", name="bad/name"), mcrgraph.ConfigError, "bad connector name"),
    (dict(via="text", name="fc"), mcrgraph.ConfigError, "name of a plugin space"),
    (dict(via="text", items=["k1", "k2"]), mcrgraph.DataError, "at least 4 via items"),
])
def test_bad_connects_raise_clear_errors_and_store_nothing(fakes, store, kwargs, error, msg):
    kwargs.setdefault("items", CAPTIONS)
    with pytest.raises(error, match=msg):
        mcrgraph.connect("fa", "fb", **kwargs)
    assert not (store / "connectors").exists() or not list((store / "connectors").iterdir())


def test_no_items_and_no_defaults(fakes):
    with pytest.raises(mcrgraph.DataError, match="give items of 'text'"):
        mcrgraph.connect("fa", "fb", via="text")


def test_existing_name_needs_overwrite(fakes):
    first = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    with pytest.raises(mcrgraph.ConfigError, match="exists already"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    second = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config={**QUICK, "seed": 3}, overwrite=True)
    assert mcrgraph.get_mcr("fa+fb").card.weights_sha256 == second.card.weights_sha256 != first.card.weights_sha256


def test_crash_during_save_leaves_old_connector_intact(fakes, store, monkeypatch):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    before = (store / "connectors" / "fa+fb" / "model.safetensors").read_bytes()

    def crash(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mcrgraph.store.disk.os.fsync", crash)
    with pytest.raises(mcrgraph.StoreError, match="No space left on device; nothing was stored"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config={**QUICK, "seed": 5}, overwrite=True)
    assert (store / "connectors" / "fa+fb" / "model.safetensors").read_bytes() == before
    assert [p.name for p in (store / "connectors").iterdir()] == ["fa+fb"]


def test_reload_is_bit_identical(fakes):
    trained = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    fresh = connectors_reload("fa+fb")
    for mod in ("image", "audio"):
        assert torch.equal(mcrgraph.embed(trained, mod, ["k1", "k9"]), mcrgraph.embed(fresh, mod, ["k1", "k9"]))


def connectors_reload(name):
    from mcrgraph.spaces.connected import ConnectedMCR

    folder = connectors.connector_path(name)
    return ConnectedMCR(connectors.read_card(folder), folder)


def test_truncated_weights_give_a_clear_error(fakes, store):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    path = store / "connectors" / "fa+fb" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(mcrgraph.ConnectorFileError, match="model.safetensors is corrupt or was changed"):
        mcrgraph.embed(connectors_reload("fa+fb"), "audio", ["k1"])


def test_changed_encoder_is_detected(fakes):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    space = connectors_reload("fa+fb")
    fakes["fb"].proj += 1
    fakes["fb"].__dict__.pop("_mcrgraph_fingerprint", None)
    with pytest.raises(mcrgraph.ConnectorMismatchError, match="trained on a different 'fb'") as e:
        mcrgraph.embed(space, "audio", ["k1"])
    # the one line that fixes it
    assert str(e.value).endswith("retrain it: mcrgraph connect fa fb --via text --method c-mcr --name fa+fb --overwrite")


@pytest.mark.parametrize("damage,msg", [
    (lambda p: p.unlink(), "card.json is missing"),
    (lambda p: p.write_text("{not json"), "is not valid JSON"),
    (lambda p: p.write_text('{"hello": 1}'), "is not an mcrgraph connector card"),
    (lambda p: p.write_text(p.read_text().replace('"format_version": 1', '"format_version": 99')), "format_version 99; this mcrgraph reads up to 2"),
    (lambda p: p.write_text(p.read_text().replace('"dim": 8', '"dim": "eight"')), "card.json is invalid: spaces.0.dim: Input should be a valid integer"),
])
def test_bad_cards_are_reported_not_loaded(fakes, store, damage, msg):
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    damage(store / "connectors" / "fa+fb" / "card.json")
    good, bad = connectors.list_cards()
    assert "fa+fb" not in good and msg in bad["fa+fb"]
    with pytest.raises(mcrgraph.ConnectorFileError, match=msg):
        mcrgraph.get_mcr("fa+fb")


def test_recursive_connect_covers_three_spaces(fakes):
    ab = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)
    abc = mcrgraph.connect(ab, "fc", via="image", items=[f"k{i}#{j}" for j in range(3) for i in range(20)], config=QUICK)
    assert abc.name == "fa+fb+fc" and set(abc.modalities) == {"image", "text", "audio", "3d"}
    assert abc.route("audio") == ["fb", "fa+fb", "fa+fb+fc"] and abc.route("3d") == ["fc", "fa+fb+fc"]
    assert mcrgraph.embed(abc, "audio", ["k1", "k2"]).shape == (2, 8)
    assert mcrgraph.graph().nx.nodes["fa+fb+fc"]["hops"] == 2


def test_unsaved_space_cannot_be_parent_of_a_saved_one(fakes):
    ab = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK, save=False)
    with pytest.raises(mcrgraph.ConfigError, match="neither registered nor stored"):
        mcrgraph.connect(ab, "fc", via="image", items=CAPTIONS, config=QUICK)
    assert mcrgraph.connect(ab, "fc", via="image", items=CAPTIONS, config=QUICK, save=False).name == "fa+fb+fc"


def test_single_string_is_not_taken_for_items(fakes):
    with pytest.raises(mcrgraph.DataError, match="items must be a list"):
        mcrgraph.embed(fakes["fa"], "text", "a caption")


def test_unsaved_space_connects_again_even_when_a_stored_one_has_its_name(fakes):
    """An unsaved connected space keeps the very parents it was trained on: connecting it
    again must not look up the stored connector of the same name (other weights)."""
    mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config=QUICK)  # stored as fa+fb
    fresh = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, config={**QUICK, "seed": 5}, save=False)
    hop = mcrgraph.connect(fresh, "fc", via="image", items=[f"k{i}" for i in range(40)], config=QUICK, save=False)
    assert hop.parents()[0] is fresh
    assert hop.encode("audio", ["k1", "k2"]).shape == (2, hop.dim)
