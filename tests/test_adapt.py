"""``mcrgraph adapt``: a domain offset measured on an unlabelled corpus (spaces/domain.py) and a
stored copy of a connector that applies it (adapt.py). Measured on the worlds: docs/results/domain-offset."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import mcrgraph
from mcrgraph.cli.main import cli
from mcrgraph.default_plugins.synthetic import default_data, held_out_items
from mcrgraph.errors import AmbiguousPathError, ConfigError, ConnectorFileError, DataError, UnknownModalityError
from mcrgraph.spaces.domain import domain_offset, shift
from mcrgraph.store import connectors

QUICK = {"epochs": 2, "batch_size": 64}
CORPUS = held_out_items("audio", 200)  # variant 100 of 200 concepts: never offered for training


def clusters(n_concepts: int, per: int, dim: int, seed: int, spread: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit rows around ``n_concepts`` fixed centres (the same centres for every seed), and their labels."""
    centres = F.normalize(torch.randn(n_concepts, dim, generator=torch.Generator().manual_seed(0)), dim=1)
    g = torch.Generator().manual_seed(seed)
    lab = torch.arange(n_concepts).repeat_interleave(per)
    return F.normalize(centres[lab] + spread * torch.randn(len(lab), dim, generator=g) / dim ** 0.5, dim=1), lab


def reference(corpus: torch.Tensor, memory: torch.Tensor, k: int) -> np.ndarray:
    """The offset written out row by row in float64 (numpy), as the module docstring states it."""
    c, m = corpus.double().numpy(), memory.double().numpy()

    def nn_mean(x, skip):
        s = x @ m.T
        if skip is not None:
            s[skip] = -np.inf
        return m[np.argsort(-s, kind="stable")[:k]].mean(0)

    return np.mean([nn_mean(x, None) - x for x in c], 0) - np.mean([nn_mean(x, i) - x for i, x in enumerate(m)], 0)


def test_offset_equals_a_float64_reference():
    memory, _ = clusters(12, 10, 16, seed=1)
    corpus, _ = clusters(12, 4, 16, seed=2)
    got = domain_offset(corpus, memory, 5)
    # the module sums in float64 and rounds once to float32: entries below 2 in size are off by
    # at most 2^-24 * 2 < 1.2e-7 from the float64 reference (ties in the ranking are measure-zero here)
    assert got.dtype == torch.float32 and got.shape == (16,)
    np.testing.assert_allclose(got.numpy(), reference(corpus, memory, 5), rtol=0, atol=2.4e-7)


def test_a_corpus_like_the_memory_gets_about_nothing_and_a_moved_one_its_move_back():
    memory, _ = clusters(40, 20, 16, seed=1)
    same, _ = clusters(40, 5, 16, seed=3)  # new draws around the same centres
    move = 0.6 * F.normalize(torch.randn(16, generator=torch.Generator().manual_seed(9)), dim=0)
    moved = F.normalize(same + move, dim=1)
    near, far = domain_offset(same, memory), domain_offset(moved, memory)
    assert near.norm() < 0.25 * far.norm()  # measured: 0.022 against 0.435
    assert F.cosine_similarity(far, -move, dim=0) > 0.9  # measured: 0.998
    # and moving the corpus by its offset brings it back near its own concepts' memory items
    assert (shift(moved, far) - same).norm(dim=1).mean() < 0.5 * (moved - same).norm(dim=1).mean()  # measured: 0.10 against 0.52


@pytest.mark.parametrize("corpus, memory, k, msg", [
    (torch.empty(0, 4), torch.eye(4), 2, "corpus must be a non-empty"),
    (torch.full((3, 4), float("nan")), torch.eye(4), 2, "corpus's embeddings hold NaN"),
    (torch.eye(3), torch.eye(4), 2, "the corpus has dim 3 but the memory 4"),
    (torch.eye(4), torch.eye(4), 4, "more than 4 items"),
])
def test_bad_offset_input_says_what_is_wrong(corpus, memory, k, msg):
    with pytest.raises(DataError, match=msg):
        domain_offset(corpus, memory, k)


@pytest.fixture(params=["c-mcr", "ex-mcr"])
def joined(request):
    return mcrgraph.connect("synth-clip", "synth-clap", via="text", method=request.param, save=False, seed=0, **QUICK)


def test_adapted_audio_is_the_heads_on_moved_embeddings_and_nothing_else_changes(joined):
    adapted = mcrgraph.adapt(joined, "audio", CORPUS, save=False)
    clap = mcrgraph.get_mcr("synth-clap")
    memory = default_data("audio", "memory")
    offset = domain_offset(mcrgraph.embed(clap, "audio", CORPUS), mcrgraph.embed(clap, "audio", memory))
    assert torch.equal(adapted.tensors()["offset.audio"], offset)
    queries = CORPUS[:30]
    side = [p.name for p in joined.parents()].index("synth-clap")
    with torch.inference_mode():
        expected = joined.heads().apply(side, "audio", shift(mcrgraph.embed(clap, "audio", queries), offset)).float()
    assert torch.equal(mcrgraph.embed(adapted, "audio", queries), expected)
    assert not torch.allclose(mcrgraph.embed(joined, "audio", queries), expected)  # the offset did move them
    for modality, items in (("image", held_out_items("image", 20)), ("text", held_out_items("text", 20))):
        assert torch.equal(mcrgraph.embed(adapted, modality, items), mcrgraph.embed(joined, modality, items))  # bit for bit
    ref = adapted.card.offsets[0]
    assert (ref.modality, ref.space, ref.neighbours, ref.corpus.count, ref.memory.count) == ("audio", "synth-clap", 10, 200, len(memory))
    assert ref.norm == pytest.approx(float(offset.norm()), abs=1e-6) and joined.card.offsets == []


def test_stored_adapted_connector_reloads_and_the_original_is_untouched():
    mcrgraph.connect("synth-clip", "synth-clap", via="text", seed=0, **QUICK)
    folder = connectors.connector_path("synth-clip+synth-clap")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    made = mcrgraph.adapt("synth-clip+synth-clap", "audio", CORPUS)
    assert made.name == "synth-clip+synth-clap.adapted"
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before
    again = mcrgraph.get_mcr(made.name)
    assert torch.equal(mcrgraph.embed(again, "audio", CORPUS[:10]), mcrgraph.embed(made, "audio", CORPUS[:10]))
    card = json.loads((made.folder / "card.json").read_text())
    plain = json.loads((folder / "card.json").read_text())
    assert card["format_version"] == 2 and card["offsets"][0]["modality"] == "audio"
    assert plain["format_version"] == 1 and "offsets" not in plain  # older mcrgraph versions still read plain cards
    # adapting the adapted one again replaces the audio offset rather than stacking a second
    twice = mcrgraph.adapt(made.name, "audio", CORPUS[:100], name="twice")
    assert [o.corpus.count for o in twice.card.offsets] == [100]
    with pytest.raises(ConfigError, match="exists already"):
        mcrgraph.adapt("synth-clip+synth-clap", "audio", CORPUS)
    mcrgraph.adapt("synth-clip+synth-clap", "audio", CORPUS[:50], overwrite=True)


def test_an_unpinned_query_asks_which_and_a_pin_chooses():
    mcrgraph.connect("synth-clip", "synth-clap", via="text", seed=0, **QUICK)
    mcrgraph.adapt("synth-clip+synth-clap", "audio", CORPUS, name="mine")
    g = mcrgraph.graph()
    with pytest.raises(AmbiguousPathError, match="audio@mine"):
        g.plan("audio", "image")
    assert g.plan("audio@mine", "image").node == "mine"


def test_bad_adapt_requests_say_how_to_fix_them(joined):
    with pytest.raises(ConfigError, match="via modality"):
        mcrgraph.adapt(joined, "text", ["a caption"], save=False)
    with pytest.raises(UnknownModalityError, match="no modality '3d'"):
        mcrgraph.adapt(joined, "3d", ["x"], save=False)
    with pytest.raises(ConfigError, match="not a connected space"):
        mcrgraph.adapt("synth-clap", "audio", CORPUS, save=False)
    with pytest.raises(DataError, match="no audio items"):
        mcrgraph.adapt(joined, "audio", [], save=False)
    with pytest.raises(DataError, match="is not the one .* was trained on"):
        mcrgraph.adapt(joined, "audio", CORPUS, memory=CORPUS, save=False)
    with pytest.raises(ConfigError, match="bad connector name"):
        mcrgraph.adapt(joined, "audio", CORPUS, name="no/slash", save=False)


def test_without_a_training_memory_adapt_asks_for_one():
    plain = mcrgraph.connect("synth-clip", "synth-clap", via="text", memories={}, save=False, seed=0, **QUICK)
    with pytest.raises(DataError, match="trained without a memory of audio"):
        mcrgraph.adapt(plain, "audio", CORPUS, save=False)
    given = mcrgraph.adapt(plain, "audio", CORPUS, memory=default_data("audio", "memory"), save=False)  # given: measured against it
    assert given.card.offsets[0].memory.count == len(default_data("audio", "memory"))


def test_weights_without_the_offset_tensor_are_a_connector_file_error(joined):
    adapted = mcrgraph.adapt(joined, "audio", CORPUS, save=False)
    broken = type(adapted)(adapted.card, None, tensors={k: v for k, v in adapted.tensors().items() if k != "offset.audio"},
                           parents=adapted.parents())
    with pytest.raises(ConnectorFileError, match="no offset.audio; adapt it again"):
        mcrgraph.embed(broken, "audio", CORPUS[:3])


def test_cli_adapt(tmp_path):
    run = CliRunner().invoke
    assert run(cli, ["connect", "synth-clip", "synth-clap", "--via", "text", "--epochs", "2", "--no-progress"]).exit_code == 0
    items = tmp_path / "corpus.txt"
    items.write_text("\n".join(CORPUS))
    res = run(cli, ["adapt", "synth-clip+synth-clap", "audio", "--items", str(items), "--name", "studio", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "offset of length" in res.output and "--audio@studio" in res.output and "synth-clip+synth-clap is unchanged" in res.output
    assert mcrgraph.get_mcr("studio").card.offsets[0].corpus.count == len(CORPUS)
    listed = run(cli, ["connectors"]).output
    assert listed.count("adapted") == 1  # "c-mcr, adapted (audio)" on studio's row (the table may wrap it); the original is plain
    res = run(cli, ["adapt", "synth-clip+synth-clap", "text", "--items", str(items)])
    assert res.exit_code != 0 and "via modality" in res.output
    assert "Unlabelled items of MODALITY" in run(cli, ["adapt", "--help"]).output


def test_a_two_hop_connector_adapts_through_its_connected_parent():
    hop1 = mcrgraph.connect("synth-clip", "synth-clap", via="text", save=False, seed=0, **QUICK)
    hop2 = mcrgraph.connect(hop1, "synth-ulip", via="image", memories={"audio": default_data("audio", "memory"), "3d": default_data("3d", "memory")},
                            save=False, seed=0, **QUICK)
    adapted = mcrgraph.adapt(hop2, "audio", CORPUS, save=False)
    assert adapted.card.offsets[0].space == hop1.name  # audio reaches hop2 through hop1: the offset is measured in hop1's space
    expected = domain_offset(mcrgraph.embed(hop1, "audio", CORPUS), mcrgraph.embed(hop1, "audio", default_data("audio", "memory")))
    assert torch.equal(adapted.tensors()["offset.audio"], expected)
    shapes = held_out_items("3d", 20)
    assert torch.equal(mcrgraph.embed(adapted, "3d", shapes), mcrgraph.embed(hop2, "3d", shapes))
