"""Issue 25 item 4: the paired oracle per preset, and each row's share of the oracle of its
own preset (so a row is never judged against a ceiling built with other techniques)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import mcrgraph
from mcrgraph.methods import cmcr
from mcrgraph_mini.oracle import paired_oracle
from mcrgraph_mini.report import ORACLES, SHARE, preset_of, share_of_oracle, tables
from mcrgraph_mini.world import bundled

GROUP = "event sounds vs emoji"


def _metrics(r1: float) -> dict:
    return {"R@1": r1, "R@5": r1, "mAP": r1, "image->audio R@1": r1, "chance R@1": 0.05, "queries": 6, "gallery": 4}


def _results(rows: dict[str, float]) -> dict:
    return {"audio_image": {row: {GROUP: _metrics(r1)} for row, r1 in rows.items()}, "audio_3d": {}, "retention": {},
            "image_text": {}, "encoders": {}}


def test_each_row_is_divided_by_the_oracle_of_its_own_preset():
    # the two oracles differ, so dividing by the other preset's oracle gives another number
    paper, default = "C-MCR, full", "C-MCR, preset mcrgraph (default)"
    assert (preset_of(paper), preset_of(default)) == ("paper", "mcrgraph")
    got = tables(_results({paper: 0.25, default: 0.5, "paired oracle, preset paper": 0.5,
                           "paired oracle, preset mcrgraph": 0.8}))[f"audio->image, {GROUP}"]
    assert got[paper][SHARE] == 0.25 / 0.5 and got[default][SHARE] == 0.5 / 0.8
    assert SHARE not in got["paired oracle, preset paper"] and SHARE not in got["chance"]


def test_a_row_whose_oracle_did_not_run_has_no_share():
    shares = share_of_oracle({"C-MCR, full": _metrics(0.25), "C-MCR, preset mcrgraph (default)": _metrics(0.5),
                              "paired oracle, preset paper": _metrics(0.5)})
    assert shares == {"C-MCR, full": 0.5}
    assert share_of_oracle({"C-MCR, full": _metrics(0.25), "paired oracle, preset paper": _metrics(0.0)}) == {}


def test_rows_without_an_explicit_preset_take_the_config_default():
    from mcrgraph.methods.inputs import InputConfig

    assert InputConfig().preset == "mcrgraph" and set(ORACLES.values()) == {"paper", "mcrgraph"}
    assert preset_of("paired oracle, preset mcrgraph") == "mcrgraph"


@pytest.mark.parametrize("preset", ["paper", "mcrgraph"])
def test_the_oracle_bridges_over_the_captions_alone_with_their_reach(preset, monkeypatch):
    """Training stores the via rows (captions AND paired items) as bridging keys; the oracle's
    bridging must read out over the captions only, with each caption's reach on the memories,
    as a connector of the same preset does (mcrgraph.methods.inputs.bridge_items). Fake
    encoders stand in for mini-clip and mini-clap (the real ones take ~25 s on the memories)."""
    from conftest import FakeMCR
    from mcrgraph.methods.inputs import reach_count

    fake = {"mini-clip": FakeMCR("fake-clip", ("image", "text")), "mini-clap": FakeMCR("fake-clap", ("audio", "text"), dim=6)}
    monkeypatch.setattr(mcrgraph, "get_mcr", fake.__getitem__)
    world = bundled()
    oracle = paired_oracle(seed=0, per_concept=1, preset=preset, epochs=1)
    tensors = oracle._tensors
    if preset == "paper":
        assert not any(k.startswith("bridge_") for k in tensors)
        return
    clip, clap = fake["mini-clip"], fake["mini-clap"]
    captions = world.captions()
    assert torch.equal(tensors["bridge_a"], mcrgraph.embed(clip, "text", captions))
    assert torch.equal(tensors["bridge_b"], mcrgraph.embed(clap, "text", captions))
    for side, space, modality in (("a", clip, "image"), ("b", clap, "audio")):
        reach = tensors[f"bridge_{side}.reach"]
        memory = mcrgraph.embed(space, modality, world.ids("memory", modality))
        # the k-th highest similarity of each caption to the memory (k: the C-MCR preset's reach on this memory's
        # size); the same float32 dot products of unit rows summed in another order: |error| <= dim * 2^-24 < 1e-6
        k = reach_count(cmcr.Config(preset=preset), memory)
        assert k == round(0.025 * len(memory))
        assert torch.allclose(reach, (tensors[f"bridge_{side}"] @ memory.T).topk(k, dim=1).values[:, k - 1], rtol=0, atol=1e-6)


def test_joined_captions_name_one_concepts_picture_and_sound():
    world = bundled()
    joined = world.joined_captions()
    both = [c for c in world.concepts if c.image_captions and c.audio_captions]
    assert len(joined) == sum(min(len(c.image_captions), len(c.audio_captions)) for c in both)
    assert not set(joined) & set(world.captions())
    login = world.concepts[[c.name for c in world.concepts].index("login chime")]
    assert f"{login.image_captions[0]} and {login.audio_captions[0]}" in joined
    assert world.joined_captions([0]) == [f"{i} and {a}" for i, a in zip(world.concepts[0].image_captions, world.concepts[0].audio_captions)]


def test_held_out_vocabulary_drops_the_joined_captions_of_its_test_concepts():
    """A test concept's joined caption may not name it by its name ("an emoji of a wastebasket and
    the sound of emptying the trash" for "trash emptied"), so the split drops them explicitly."""
    from mcrgraph_mini.report import held_out_vocabulary

    world = bundled()
    _, unnamed = held_out_vocabulary(world)
    kept, again = held_out_vocabulary(world, world.captions() + world.joined_captions())
    assert list(again) == list(unnamed)
    assert not set(kept) & set(world.joined_captions(unnamed))
    named = sorted(set(range(len(world.concepts))) - set(unnamed.tolist()))
    assert set(world.joined_captions(named[:3])) <= set(kept)


class ByConcept(mcrgraph.MCR):
    """Texts only: a caption's embedding is one-hot on its concept (``shift`` moves sound captions
    to the next concept's slot), so the sound->image caption link is known exactly."""

    modalities, dim = ("text",), 229

    def __init__(self, name: str, shift: int = 0):
        self.name, self.shift, world = name, shift, bundled()
        self.slot = {t: (i + shift) % self.dim for i, c in enumerate(world.concepts) for t in c.audio_captions}
        self.slot.update({t: i for i, c in enumerate(world.concepts) for t in c.image_captions})

    def encode(self, modality, items):
        return torch.nn.functional.one_hot(torch.tensor([self.slot[t] for t in items]), self.dim).float()


def test_caption_link_ranks_each_sound_caption_among_the_groups_image_captions():
    from mcrgraph_mini.evaluate import REAL_VOICES, caption_link

    right, wrong = caption_link(ByConcept("linked")), caption_link(ByConcept("shifted", shift=1))
    assert set(right) == {"real voice, digits", "real voice, all words", "festival voices", "event sounds vs emoji", REAL_VOICES}
    for group in right:  # no image modality: only the caption link is measured
        assert right[group] == {"sound caption -> image caption R@1": 1.0}
        assert wrong[group]["sound caption -> image caption R@1"] == 0.0


class ItemsByConcept(mcrgraph.MCR):
    """Bundled audio and images one-hot on their concept; images of concept c sit on ``lands[c]``."""

    modalities, dim = ("audio", "image"), 229

    def __init__(self, name: str, lands: dict[int, int]):
        self.name, self.lands, self.world = name, lands, bundled()

    def encode(self, modality, items):
        slots = [self.world.label(i) for i in items]
        if modality == "image":
            slots = [self.lands.get(c, c) for c in slots]
        return torch.nn.functional.one_hot(torch.tensor(slots), self.dim).float()


def test_per_concept_names_where_each_events_sounds_land_and_linked_reads_the_text():
    from mcrgraph_mini.crossing import linked, per_concept

    world = bundled()
    names = [c.name for c in world.concepts]
    login, logout = names.index("login chime"), names.index("logout chime")
    # logout's images sit on login's slot: logout's sounds find none of their own, login's sounds tie
    # between login's and logout's images (R@1 0 or 1, by gallery order); every other event is found
    got = per_concept(ItemsByConcept("moved", {logout: login}), "event sounds vs emoji")
    assert len(got) == 19 and got[logout][0] == 0.0
    assert all(got[c] == (1.0, c) for c in got if c not in (login, logout))
    concepts = np.array(sorted(got))
    assert linked(ByConcept("linked"), concepts, world).all() and not linked(ByConcept("shifted", 1), concepts, world).any()
