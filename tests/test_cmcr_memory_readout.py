"""The memory readout on C-MCR's two sides (``memory_weight``; preset mcrgraph 0.3, 5 neighbours): a non-via item's softmax
weights over its own side's memory, in its own space, applied to the connector's encoding of those
memory items, blended with its encoding. Training is unchanged; the via modality is untouched."""
import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.methods.cmcr import MEMORY
from mcrgraph.methods.inputs import neighbour_temperatures
from mcrgraph.spaces.connected import ConnectedMCR
from mcrgraph.spaces.encoding import embed
from conftest import CAPTIONS, QUICK

MEMORIES = {"image": [f"k{i}#7" for i in range(20)], "audio": [f"k{i}#8" for i in range(20)]}
UNSEEN = [f"u{i}" for i in range(10)]  # concepts no memory holds (a fake encodes by concept)


def _connect(memories=MEMORIES, **options):
    return mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=memories, save=False, config=QUICK, **options)


def test_training_and_the_via_modality_are_unchanged_and_each_side_stores_its_memory_as_encoded(fakes):
    off, on = _connect(memory_weight=0.0), _connect(memory_weight=0.4, memory_neighbours=3.0)
    assert all(torch.equal(off._tensors[k], on._tensors[k]) for k in off._tensors)  # encode-time only
    assert set(on._tensors) - set(off._tensors) == {k for kind in MEMORY for k in (kind.keys, kind.values)}
    for kind, mod, space in zip(MEMORY, ("image", "audio"), ("fa", "fb")):
        assert torch.equal(on._tensors[kind.keys], embed(fakes[space], mod, MEMORIES[mod]))
        # the connector without the readout encodes the memory with the same float32 ops, one chunk of 20
        assert torch.equal(on._tensors[kind.values], off.encode(mod, MEMORIES[mod]))
    assert torch.equal(mcrgraph.embed(on, "text", CAPTIONS[:5]), mcrgraph.embed(off, "text", CAPTIONS[:5]))


@pytest.mark.parametrize("neighbours", [0.0, 3.0])
def test_encode_blends_each_sides_memory_readout(fakes, neighbours):
    off, on = _connect(memory_weight=0.0), _connect(memory_weight=0.4, memory_neighbours=neighbours)
    for mod, space in (("image", "fa"), ("audio", "fb")):
        keys, values = embed(fakes[space], mod, MEMORIES[mod]), off.encode(mod, MEMORIES[mod])
        q = embed(fakes[space], mod, UNSEEN)
        tau = neighbour_temperatures(q, keys, neighbours) if neighbours else on.card.config["memory_temperature"]
        p = torch.softmax(q.double() @ keys.double().T / torch.as_tensor(tau, dtype=torch.float64), dim=1)
        expect = F.normalize(0.4 * F.normalize(p @ values.double(), dim=1) + 0.6 * off.encode(mod, UNSEEN).double(), dim=1)
        # float32 heads and readout against float64 (20-term sums, ~6e-8 relative each): 1e-5 bounds them
        assert torch.allclose(on.encode(mod, UNSEEN).double(), expect, atol=1e-5, rtol=0)


def test_a_card_without_the_fields_has_no_readout(fakes):
    space = _connect()  # preset mcrgraph: the readout on
    old = {k: v for k, v in space.card.config.items() if k not in ("memory_weight", "memory_neighbours")}
    reloaded = ConnectedMCR(space.card.model_copy(update={"config": old}), None, tensors=space._tensors, parents=space.parents())
    assert reloaded.heads().memory == (None, None)
    assert torch.equal(reloaded.encode("audio", UNSEEN), _connect(memory_weight=0.0).encode("audio", UNSEEN))


def test_the_presets_readout_is_off_without_memories_and_the_card_says_so(fakes):
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, save=False, config=QUICK)
    assert space.card.config["memory_weight"] == 0.0 and space.heads().memory == (None, None)
    assert _connect().card.config["memory_weight"] == 0.3 and _connect(preset="paper").card.config["memory_weight"] == 0.0


def test_bad_input(fakes):
    with pytest.raises(mcrgraph.ConfigError, match="memory_weight"):
        _connect(memory_weight=-0.1)
    with pytest.raises(mcrgraph.DataError, match="memory_weight needs both sides' memories"):
        mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, save=False, config=QUICK, memory_weight=0.3)
    space = _connect(memory_weight=0.3)
    lacking = {k: v for k, v in space._tensors.items() if k != MEMORY[1].values}
    with pytest.raises(mcrgraph.ConnectorFileError, match="lack memory_b.mapped"):
        ConnectedMCR(space.card, None, tensors=lacking, parents=space.parents()).encode("audio", UNSEEN)
