"""Issue 25 item 3: Ex-MCR's memory readout at encode time (``memory_weight``): a leaf non-via
item's softmax weights over the leaf's memory items, in the leaf's own space, applied to the
connector's own encoding of those items, blended with the item's encoding. Encode-time only:
training is unchanged and the base stays bit-identical."""
import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.methods.exmcr import MEMORY_KEYS
from mcrgraph.methods.inputs import neighbour_temperatures
from mcrgraph.spaces.connected import ConnectedMCR
from mcrgraph.spaces.encoding import embed
from conftest import CAPTIONS, QUICK

SOUNDS = [f"k{i}#8" for i in range(20)]  # the leaf's audio memory
MEMORIES = {"image": [f"k{i}#7" for i in range(20)], "audio": SOUNDS}
UNSEEN = [f"u{i}" for i in range(10)]  # concepts the memory does not hold (a fake encodes by concept)
ITEMS = ["k1", "k2#3", "k5"]
KEYS, VALUES, _ = MEMORY_KEYS


def _extend(memories=MEMORIES, **options):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=memories, method="ex-mcr", save=False,
                            config=QUICK, **options)


def test_training_and_the_base_are_unchanged_and_the_store_is_the_memory_as_encoded(fakes):
    off, on = _extend(memory_weight=0.0), _extend(memory_weight=0.4, memory_neighbours=3.0)
    assert all(torch.equal(off._tensors[k], on._tensors[k]) for k in off._tensors)  # encode-time only: the same training
    assert set(on._tensors) - set(off._tensors) == {KEYS, VALUES}
    assert torch.equal(on._tensors[KEYS], embed(fakes["fb"], "audio", SOUNDS))  # the leaf's memory as given
    # the values are what the connector without this readout encodes the memory as: the same float32
    # ops on the same rows (one chunk of 20), so equal to the bit
    assert torch.equal(on._tensors[VALUES], off.encode("audio", SOUNDS))
    for mod in ("image", "text"):
        assert torch.equal(mcrgraph.embed(on, mod, ITEMS), mcrgraph.embed(fakes["fa"], mod, ITEMS))
    assert torch.equal(mcrgraph.embed(on, "text@fb", ITEMS), mcrgraph.embed(off, "text@fb", ITEMS))  # the leaf's via modality too
    assert not torch.equal(on.encode("audio", UNSEEN), off.encode("audio", UNSEEN))


@pytest.mark.parametrize("neighbours", [0.0, 3.0])
def test_encode_blends_the_memory_readout_with_the_items_encoding(fakes, neighbours):
    off, on = _extend(memory_weight=0.0), _extend(memory_weight=0.4, memory_neighbours=neighbours)
    keys, values = embed(fakes["fb"], "audio", SOUNDS), off.encode("audio", SOUNDS)
    q = embed(fakes["fb"], "audio", UNSEEN)
    tau = neighbour_temperatures(q, keys, neighbours) if neighbours else on.card.config["memory_temperature"]
    p = torch.softmax(q.double() @ keys.double().T / torch.as_tensor(tau, dtype=torch.float64), dim=1)
    readout = F.normalize(p @ values.double(), dim=1)
    expect = F.normalize(0.4 * readout + 0.6 * off.encode("audio", UNSEEN).double(), dim=1)
    # float32 head and readout against float64: 20-term softmax sums and 512-term products, each
    # rounding ~6e-8 relative; 1e-5 bounds them with room and is far below what one misplaced row moves
    assert torch.allclose(on.encode("audio", UNSEEN).double(), expect, atol=1e-5, rtol=0)


def test_one_neighbour_at_full_weight_lands_an_item_where_the_map_put_its_memory_twin(fakes):
    on = _extend(memory_weight=1.0, memory_neighbours=1.0)
    # one effective neighbour: the softmax falls on the nearest memory item, itself; the encoding is that row
    assert torch.allclose(on.encode("audio", SOUNDS), on._tensors[VALUES], atol=1e-5, rtol=0)


def test_a_card_without_the_fields_behaves_as_before(fakes):
    space = _extend(preset="mcrgraph", memory_weight=0.3)
    old = {k: v for k, v in space.card.config.items() if k not in ("memory_weight", "memory_neighbours")}
    reloaded = ConnectedMCR(space.card.model_copy(update={"config": old}), None, tensors=space._tensors, parents=space.parents())
    assert reloaded.heads().memory is None  # a card written before: no readout, as it was trained and measured
    assert torch.equal(reloaded.encode("audio", UNSEEN), _extend(preset="mcrgraph", memory_weight=0.0).encode("audio", UNSEEN))


def test_bad_input(fakes):
    with pytest.raises(mcrgraph.ConfigError, match="memory_weight"):
        _extend(memory_weight=1.5)
    with pytest.raises(mcrgraph.ConfigError, match="memory_neighbours"):
        _extend(memory_weight=0.3, memory_neighbours=-1)
    with pytest.raises(mcrgraph.DataError, match="memory_weight needs the leaf's memory"):
        _extend(memories={"image": MEMORIES["image"]}, memory_weight=0.3)


def test_a_card_that_sets_it_without_its_tensors_is_refused(fakes):
    space = _extend(memory_weight=0.3)
    lacking = {k: v for k, v in space._tensors.items() if k != VALUES}
    with pytest.raises(mcrgraph.ConnectorFileError, match="lack memory.mapped"):
        ConnectedMCR(space.card, None, tensors=lacking, parents=space.parents()).encode("audio", UNSEEN)
    short = {**space._tensors, VALUES: space._tensors[VALUES][:-1]}
    with pytest.raises(mcrgraph.ConnectorFileError, match="20 leaf memory items but 19 mapped ones"):
        ConnectedMCR(space.card, None, tensors=short, parents=space.parents()).encode("audio", UNSEEN)


def test_ex_mcrs_preset_leaves_the_readout_off_and_one_option_turns_it_on(fakes):
    default = _extend()  # it lost the hard world's weak parent beyond the spread: opt-in for Ex-MCR
    assert default.card.config["memory_weight"] == 0.0 and KEYS not in default._tensors and default.heads().memory is None
    on = _extend(memory_weight=0.3)  # the measured setting: the preset's 5 neighbours
    assert on.card.config["memory_neighbours"] == 5.0 and on.heads().memory is not None
