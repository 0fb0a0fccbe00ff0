"""Issue 25 item 2: label-free criteria (``mcrgraph.tasks.selection``). On a tiny world whose truth
is known (two parents that are different rotations of one latent space, plus noise), a connector
that maps both parents back to the latent scores above one that maps them through random
matrices; and ``views`` embeds what connect had, on the right side."""
import pytest
import torch
import torch.nn.functional as F

import mcrgraph
from mcrgraph.errors import ConfigError, DataError
from mcrgraph.tasks import selection
from conftest import CAPTIONS, QUICK

CONCEPTS, LATENT, VIA, MEMORY = 30, 12, 3, 4


def _world(seed: int = 0):
    """Latent rows of via items and both memories (concept + item noise), each parent's rotation."""
    g = torch.Generator().manual_seed(seed)
    concepts = F.normalize(torch.randn(CONCEPTS, LATENT, generator=g), dim=1)

    def items(n, of=concepts):
        return F.normalize(of.repeat(n, 1) + 0.25 * torch.randn(n * len(of), LATENT, generator=g), dim=1)

    rotations = [torch.linalg.qr(torch.randn(LATENT, LATENT, generator=g))[0] for _ in range(2)]
    # the via items name two thirds of the concepts: the rest only the memories hold
    return items(VIA, concepts[: 2 * CONCEPTS // 3]), (items(MEMORY), items(MEMORY)), rotations, g


def _views(connector) -> selection.Views:
    """Parents see the latent through their rotation; ``connector(side, rows in the parent)`` maps
    a parent's rows into the connected space."""
    via, memories, rot, _ = _world()
    in_parent = [lambda x, r=r: x @ r for r in rot]
    v = tuple(in_parent[s](via) for s in (0, 1))
    m = tuple(in_parent[s](memories[s]) for s in (0, 1))
    return selection.Views(v, m, tuple(connector(s, v[s]) for s in (0, 1)), tuple(connector(s, m[s]) for s in (0, 1)))


def test_the_true_connector_scores_above_a_random_one():
    _, _, rot, g = _world()
    truth = _views(lambda s, x: x @ rot[s].T)  # back to the shared latent: the two sides meet exactly
    noise = [torch.randn(LATENT, LATENT, generator=g) for _ in range(2)]
    random = _views(lambda s, x: F.normalize(x @ noise[s], dim=1))
    for name, fn in selection.CRITERIA.items():
        if name.startswith("SND"):
            continue  # a density, not a quality: its direction is what the benchmark measures
        assert fn(truth) > fn(random) + 0.05, name
    # an orthogonal map keeps every neighbourhood and every nearest via item exactly
    assert selection.knowledge_kept(truth) == 1.0 and selection.crossing_kept(truth) == 1.0
    assert 0.0 <= selection.soft_neighbourhood_density(random) <= 1.0
    assert 0 < int(selection.uncovered(truth.via[0], truth.memory[0]).sum()) < len(truth.memory[0])


def test_a_connector_that_swaps_concepts_loses_the_pseudo_labels():
    """Each side kept exactly (orthogonal maps) but side 1 turned by a different rotation: every
    neighbourhood is kept, so knowledge kept cannot tell; the crossing criteria can."""
    _, _, rot, g = _world()
    twist = torch.linalg.qr(torch.randn(LATENT, LATENT, generator=g))[0]
    truth = _views(lambda s, x: x @ rot[s].T)
    swapped = _views(lambda s, x: x @ rot[s].T @ (twist if s else torch.eye(LATENT)))
    assert selection.knowledge_kept(swapped) == selection.knowledge_kept(truth) == 1.0
    for fn in (selection.pseudo_label_agreement, selection.pseudo_pair_recall, selection.crossing_kept):
        assert fn(truth) > fn(swapped) + 0.3, fn.__name__
    # a consistent wrong pairing still cycles home often (each item's match matches back): a weak signal
    assert selection.cycle_consistency(truth) > selection.cycle_consistency(swapped)


def test_held_out_rows_and_neighbourhoods():
    x = F.normalize(torch.randn(50, 6, generator=torch.Generator().manual_seed(1)), dim=1)
    assert selection.neighbourhood_kept(x, x, k=5) == 1.0
    assert selection.neighbourhood_kept(x, x.flip(0), k=5) < 0.5  # the same set, rows paired wrongly
    v = selection.Views((x, x), (x, x), (x, x), (x, x))
    assert selection.via_alignment(v, torch.arange(10)) == 1.0
    assert selection.pseudo_pair_recall(v, torch.arange(10)) == 1.0


def test_views_embed_what_connect_had(fakes):
    memories = {"image": [f"k{i}#7" for i in range(20)], "audio": [f"k{i}#8" for i in range(20)]}
    space = mcrgraph.connect("fa", "fb", via="text", items=CAPTIONS, memories=memories, save=False, config=QUICK)
    v = selection.views(space, CAPTIONS, {"audio": memories["audio"], "image@fa": memories["image"]})
    assert [t.shape for t in v.via] == [(len(CAPTIONS), 8), (len(CAPTIONS), 6)]
    assert torch.equal(v.memory[1], mcrgraph.embed(fakes["fb"], "audio", memories["audio"]))
    assert torch.equal(v.memory_c[1], mcrgraph.embed(space, "audio", memories["audio"]))
    assert torch.equal(v.via_c[0], mcrgraph.embed(space, "text@fa", CAPTIONS))
    assert set(selection.scores(v)) == set(selection.CRITERIA)
    with pytest.raises(DataError, match="one memory for each parent"):
        selection.views(space, CAPTIONS, {"audio": memories["audio"]})
    with pytest.raises(DataError, match="exactly one"):
        selection.views(space, CAPTIONS, {"text": CAPTIONS, "audio": memories["audio"]})
    assert selection.criterion(space, CAPTIONS, memories) == selection.CRITERIA[selection.DEFAULT](v)
    with pytest.raises(ConfigError, match="unknown criterion"):
        selection.criterion(space, CAPTIONS, memories, name="accuracy")
    with pytest.raises(ConfigError, match="not a connected space"):
        selection.views(fakes["fa"], CAPTIONS, memories)
