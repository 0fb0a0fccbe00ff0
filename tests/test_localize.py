"""Localization heat maps (mcrgraph/tasks/localize.py): dense features in the MCR contract, mini-clip's
patch embeddings, dense features through connectors, the planner's choice, errors, drawing and
the ``mcrgraph localize`` command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

import mcrgraph
from mcrgraph.cli import drawing
from mcrgraph.cli import cli
from mcrgraph.errors import ConfigError, DataError, EncoderError, EncoderOutputError, NoPathError, UnknownModalityError
from mcrgraph.planning.graph import MCRGraph
from mcrgraph.tasks.localize import Heatmap, embed_dense, localize, picture
from mcrgraph_mini.space import inputs
from mcrgraph_mini.world import bundled

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def joined(tmp_path_factory):
    """mini-clip + mini-clap through text, trained as `mcrgraph connect` does (the default 60
    epochs: with 2 the heads are barely trained and every patch scores nearly the same), and an
    Ex-MCR extension of mini-clap into mini-clip; both unsaved, in a store of their own."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MCRGRAPH_HOME", str(tmp_path_factory.mktemp("home")))
        cmcr = mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False)
        exmcr = mcrgraph.connect("mini-clip", "mini-clap", via="text", method="ex-mcr", save=False, epochs=2)
    return {"c-mcr": cmcr, "ex-mcr": exmcr}


def _graph_with(space) -> MCRGraph:
    return MCRGraph([*mcrgraph.list_mcrs(), space])


def _side_by_side(pairs):
    """32x32 images: image a squeezed into the left half, image b into the right half."""
    imgs, _ = bundled().arrays("heldout", "image")

    def half(i):
        return np.asarray(Image.fromarray(imgs[i]).resize((16, 32), Image.BILINEAR))

    return [np.concatenate([half(a), half(b)], axis=1) for a, b in pairs]


def _left_minus_right(dense, query_a, query_b):
    """Per image: mean over the left half of (map of a - map of b) minus the same on the right."""
    d = torch.einsum("nhwk,nk->nhw", dense, query_a) - torch.einsum("nhwk,nk->nhw", dense, query_b)
    w = d.shape[2] // 2
    return d[:, :, :w].mean(dim=(1, 2)) - d[:, :, w:].mean(dim=(1, 2))


def _pairs(rng, n, label_of, candidates):
    out = []
    while len(out) < n:
        a, b = rng.choice(candidates, 2, replace=False)
        if label_of[a] != label_of[b]:
            out.append((int(a), int(b)))
    return out


# -- mini-clip's image tower ---------------------------------------------------------------


def test_mean_of_projected_patches_is_the_global_embedding_before_normalising():
    """Average pooling and the final Linear commute, so the mean over the 8x8 grid of the
    projected patches is exactly what forward() returns (up to float rounding)."""
    tower = mcrgraph.get_mcr("mini-clip").towers["image"]
    real = inputs("image", bundled().ids("heldout", "image")[:16])
    noise = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for x in (real, noise):
            dense, whole = tower.dense(x), tower(x)
            assert dense.shape == (len(x), 8, 8, 128)
            torch.testing.assert_close(dense.mean(dim=(1, 2)), whole, atol=1e-5, rtol=1e-4)


def test_encode_is_the_plain_forward_of_the_shipped_towers():
    """ImageTower.dense left forward alone: encode is still normalise(tower(x)) of the shipped
    weights, and those load with every key accounted for."""
    import torch.nn.functional as F

    from mcrgraph_mini.space import WEIGHTS, load_towers
    from mcrgraph_mini.world import bundled

    x = torch.from_numpy(bundled().arrays("heldout", "image")[0][[0, 900]])
    for name in ("mini-clip", "mini-ulip"):
        towers = load_towers(name, WEIGHTS / f"{name}.safetensors")
        with torch.inference_mode():
            direct = F.normalize(towers["image"](x), dim=-1)
        got = mcrgraph.embed(mcrgraph.get_mcr(name), "image", ["mini:heldout/image/0", "mini:heldout/image/900"], use_cache=False)
        torch.testing.assert_close(got, direct, atol=1e-6, rtol=0)


def test_mini_spaces_with_images_give_unit_patch_embeddings():
    for name in ("mini-clip", "mini-ulip"):
        space = mcrgraph.get_mcr(name)
        assert space.dense_modalities() == ("image",)
        dense = embed_dense(space, "image", ["mini:heldout/image/3", "mini:memory/image/5"])
        assert dense.shape == (2, 8, 8, 128) and dense.dtype == torch.float32
        torch.testing.assert_close(dense.norm(dim=-1), torch.ones(2, 8, 8))
    assert mcrgraph.get_mcr("mini-clap").dense_modalities() == ()


def test_text_heat_maps_light_up_the_half_that_shows_the_caption():
    """Two held-out images side by side; the map of image a's caption minus the map of image
    b's caption is higher on a's half. Measured with the shipped weights on 100 such pairs:
    right for 89% (digits 75%, letters 86%, emoji and event emoji 95%); these 60 pairs: 93%,
    mean difference 0.31. Fixed pairs, so the test is deterministic; the bar leaves room for
    float differences across machines."""
    w = bundled()
    _, labels = w.arrays("heldout", "image")
    rng = np.random.default_rng(0)
    pairs = _pairs(rng, 60, labels, np.arange(len(labels)))
    space = mcrgraph.get_mcr("mini-clip")
    dense = embed_dense(space, "image", _side_by_side(pairs))
    caption = {i: w.concepts[labels[i]].image_captions[0] for p in pairs for i in p}
    qa = mcrgraph.embed(space, "text", [caption[a] for a, _ in pairs])
    qb = mcrgraph.embed(space, "text", [caption[b] for _, b in pairs])
    diff = _left_minus_right(dense, qa, qb)
    right = float((diff > 0).float().mean())
    assert right >= 0.75, f"a's half was warmer for {right:.2f} of the pairs"
    assert float(diff.mean()) > 0.1


# -- through connectors ----------------------------------------------------------------------


def test_a_connected_space_maps_each_patch_through_its_head(joined):
    space = joined["c-mcr"]
    assert space.dense_modalities() == ("image",)
    items = ["mini:heldout/image/10", "mini:heldout/image/800"]
    dense = embed_dense(space, "image", items)
    assert dense.shape == (2, 8, 8, space.dim)
    assert torch.isfinite(dense).all()
    torch.testing.assert_close(dense.norm(dim=-1), torch.ones(2, 8, 8))
    # row by row equals the whole batch (BatchNorm in eval mode), and a patch maps as an item would
    parent = embed_dense(mcrgraph.get_mcr("mini-clip"), "image", items)
    with torch.inference_mode():
        one = space.heads().apply(0, "image", parent[1, 3, 4][None])[0]
    torch.testing.assert_close(dense[1, 3, 4], one)


def test_audio_heat_map_through_the_connector(joined):
    space = joined["c-mcr"]
    g = _graph_with(space)
    hm = localize("audio", "mini:heldout/audio/0", "mini:heldout/image/900", graph=g)
    assert isinstance(hm, Heatmap)
    assert hm.path.node == hm.space == space.name
    assert hm.scores.shape == (8, 8) and torch.isfinite(hm.scores).all()
    assert -1 - 1e-5 <= float(hm.scores.min()) <= hm.peak[2] <= 1 + 1e-5
    assert hm.peak[2] == float(hm.scores.max())
    assert hm.upsampled(32, 40).shape == (32, 40)
    again = localize("audio", "mini:heldout/audio/0", "mini:heldout/image/900", graph=g)
    assert torch.equal(hm.scores, again.scores)


def test_held_out_speech_lights_up_the_half_that_shows_what_was_said(joined):
    """As the text test, with held-out sounds (real and festival voices, event sounds) as the
    queries, through the C-MCR connector: audio and images never met in training. Measured on
    100 pairs of any kind: right for 75% (event sounds 68%, digits 60%); these 60 pairs: 73%,
    mean difference 0.11 (sd 0.17). The audio tower is the weak link (docs/mini-world.md)."""
    space = joined["c-mcr"]
    w = bundled()
    _, img_labels = w.arrays("heldout", "image")
    _, aud_labels = w.arrays("heldout", "audio")
    rng = np.random.default_rng(1)
    with_image = set(img_labels.tolist())
    sounds = np.array([i for i, c in enumerate(aud_labels) if c in with_image])
    image_of = {int(c): np.flatnonzero(img_labels == c) for c in set(aud_labels[sounds].tolist())}
    sound_pairs = _pairs(rng, 60, aud_labels, sounds)
    image_pairs = [(int(rng.choice(image_of[int(aud_labels[a])])), int(rng.choice(image_of[int(aud_labels[b])]))) for a, b in sound_pairs]
    dense = embed_dense(space, "image", _side_by_side(image_pairs))
    qa = mcrgraph.embed(space, "audio", [f"mini:heldout/audio/{a}" for a, _ in sound_pairs])
    qb = mcrgraph.embed(space, "audio", [f"mini:heldout/audio/{b}" for _, b in sound_pairs])
    diff = _left_minus_right(dense, qa, qb)
    right = float((diff > 0).float().mean())
    assert right >= 0.6, f"the said concept's half was warmer for {right:.2f} of the pairs"
    assert float(diff.mean()) > 0


def test_exmcr_base_side_patches_are_the_base_spaces_own(joined):
    space = joined["ex-mcr"]
    items = ["mini:heldout/image/10", "mini:heldout/image/800"]
    assert "image" in space.dense_modalities()
    assert torch.equal(embed_dense(space, "image", items), embed_dense(mcrgraph.get_mcr("mini-clip"), "image", items))


def test_dense_features_work_through_two_connectors(joined):
    """(mini-clip + mini-clap) + mini-ulip through images: the image side is the first parent,
    itself connected; pinning the image to mini-ulip takes the other side."""
    outer = mcrgraph.connect(joined["c-mcr"], "mini-ulip", via="image", save=False, epochs=1,
                             items=bundled().ids("memory", "image")[:64])
    assert set(outer.dense_modalities()) == {"image"}
    for pin in ("image", "image@mini-clip", "image@mini-ulip"):
        dense = embed_dense(outer, pin, ["mini:heldout/image/7"])
        assert dense.shape == (1, 8, 8, outer.dim) and torch.isfinite(dense).all()
    assert not torch.equal(embed_dense(outer, "image@mini-clip", ["mini:heldout/image/7"]),
                           embed_dense(outer, "image@mini-ulip", ["mini:heldout/image/7"]))


# -- the library function, exactly, on a small dense plugin ----------------------------------


class GridMCR(mcrgraph.MCR):
    """image/text space on the three colour axes. A text item is an axis name; an image item is
    a grid of axis names ("red,green;blue,red"), one patch per name."""

    name, modalities, dim = "grid", ("image", "text"), 3
    AXES = {"red": 0, "green": 1, "blue": 2}

    def _patches(self, item):
        return torch.stack([torch.stack([F.one_hot(torch.tensor(self.AXES[n]), 3).float() for n in row.split(",")])
                            for row in item.split(";")])

    def dense_modalities(self):
        return ("image",)

    def encode(self, modality, items):
        if modality == "text":
            return torch.stack([F.one_hot(torch.tensor(self.AXES[i]), 3).float() for i in items])
        return torch.stack([F.normalize(self._patches(i).mean(dim=(0, 1)), dim=0) for i in items])

    def encode_dense(self, modality, items):
        return torch.stack([self._patches(i) for i in items])


class PlainMCR(mcrgraph.MCR):
    """image/text, no dense features; named to sort before "grid", so the planner's tie goes to it."""

    name, modalities, dim = "aa-plain", ("image", "text"), 3

    def encode(self, modality, items):
        raise AssertionError("never asked")


def only(*spaces):
    for name in ("synthetic", "mini", "clip", "clap", "ulip"):
        mcrgraph.unregister(name)
    for s in spaces:
        mcrgraph.register(s)


def test_localize_exact_scores_and_peak():
    only(GridMCR())
    hm = localize("text", "green", "red,green,blue;blue,blue,green")
    assert hm.scores.tolist() == [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert hm.peak == (0, 1, 1.0)  # the first of the ties
    assert hm.score == pytest.approx(float(F.normalize(torch.tensor([1.0, 2.0, 3.0]), dim=0)[1]))
    assert hm.path.describe() == "text@grid <-> image@grid (both in grid)"
    assert (hm.query, hm.image, hm.space) == ("green", "red,green,blue;blue,blue,green", "grid")


def test_the_planner_moves_to_a_space_with_dense_features():
    only(PlainMCR(), GridMCR())
    g = mcrgraph.graph()
    with pytest.raises(mcrgraph.AmbiguousPathError, match="aa-plain, grid"):  # two user spaces tie for text-image...
        g.plan("text", "image")
    assert localize("text", "blue", "blue,red", graph=g).path.node == "grid"  # ...but only one has dense features
    with pytest.raises(ConfigError, match=r"'aa-plain' has no dense .*spaces with dense image features: grid"):
        localize("text", "blue", "blue,red", image_modality="image@aa-plain", graph=g)
    with pytest.raises(ConfigError, match="aa-plain"):  # a path given by hand is checked too
        localize("text", "blue", "blue,red", path=g.plan("text@aa-plain", "image"), graph=g)


def test_space_without_dense_features_is_refused_naming_those_with_them():
    with pytest.raises(ConfigError, match=r"synth-clip.*mini-clip, mini-ulip"):
        localize("text", "c3#0", "c3#101", image_modality="image@synth-clip")
    with pytest.raises(ConfigError, match="has no dense"):
        embed_dense(mcrgraph.get_mcr("synth-clip"), "image", ["c3#101"])
    mcrgraph.unregister("mini")
    mcrgraph.unregister("clip")  # the clip plugin's ViT has patch tokens too
    with pytest.raises(ConfigError, match="no installed space has them"):
        localize("text", "c3#0", "c3#101")


def test_bad_requests():
    with pytest.raises(UnknownModalityError, match="smell"):
        localize("smell", "x", "mini:heldout/image/0")
    with pytest.raises(ConfigError, match="text"):  # text has no dense features anywhere
        localize("image", "mini:heldout/image/0", "a dog", image_modality="text")
    with pytest.raises(NoPathError, match="mcrgraph connect"):  # nothing joins audio and images yet
        localize("audio", "mini:heldout/audio/0", "mini:heldout/image/0")
    with pytest.raises(DataError, match="one image item"):
        localize("text", "a dog", ["mini:heldout/image/0", "mini:heldout/image/1"])
    with pytest.raises(DataError, match="single str"):
        embed_dense(mcrgraph.get_mcr("mini-clip"), "image", "mini:heldout/image/0")
    with pytest.raises(ConfigError, match="the path compares"):
        g = mcrgraph.graph()
        localize("text", "a dog", "mini:heldout/image/0", path=g.plan("3d@mini-ulip", "image"), graph=g)


class BrokenGrid(GridMCR):
    name = "broken"

    def __init__(self, mode):
        self.mode = mode

    def encode_dense(self, modality, items):
        good = super().encode_dense(modality, items)
        if self.mode == "norm":
            return 2 * good
        if self.mode == "shape":
            return good[:, 0]
        raise ValueError("boom")


@pytest.mark.parametrize("mode, error, message", [("norm", EncoderOutputError, "not L2-normalised"),
                                                  ("shape", EncoderOutputError, r"expected a tensor \(1, H, W, 3\)"),
                                                  ("raise", EncoderError, "ValueError: boom")])
def test_a_plugin_breaking_the_dense_contract_is_named(mode, error, message):
    space = BrokenGrid(mode)
    only(space)
    with pytest.raises(error, match=message) as info:
        localize("text", "red", "red,blue")
    assert "broken" in str(info.value)


# -- drawing and the command line ------------------------------------------------------------


def test_picture_reads_files_bundled_items_and_arrays(tmp_path):
    Image.new("RGBA", (50, 30), (255, 0, 0, 255)).save(tmp_path / "r.png")
    assert picture(str(tmp_path / "r.png")).shape == (30, 50, 3)  # the original size, not 32x32
    assert picture("mini:heldout/image/0").shape == (32, 32, 3)
    assert picture(np.zeros((5, 6), np.float32)).shape == (5, 6, 3)
    assert picture("no such file.png") is None and picture(object()) is None


def test_draw_heatmap_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    scores = torch.linspace(-0.2, 0.6, 64).view(8, 8)
    drawing.draw_heatmap(np.full((40, 60, 3), 200, np.uint8), scores, tmp_path / "a.png", title="t")
    drawing.draw_heatmap(None, scores, tmp_path / "b.png")
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(DataError):
        drawing.draw_heatmap(None, torch.zeros(8), tmp_path / "c.png")


@pytest.fixture
def digit_file(tmp_path):
    imgs, _ = bundled().arrays("heldout", "image")
    path = tmp_path / "eight.png"
    Image.fromarray(imgs[900]).resize((96, 96), Image.BILINEAR).save(path)
    return path


def test_cli_localize_draws_the_png_and_prints_the_peak(tmp_path, digit_file):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out.png"
    r = CliRunner().invoke(cli, ["localize", "--text", "a handwritten eight", "--image", str(digit_file), "--png", str(out)])
    assert r.exit_code == 0, r.output
    assert "path: text@mini-clip <-> image@mini-clip" in r.output
    assert "peak: row" in r.output and "8x8 grid" in r.output
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_cli_localize_json(digit_file):
    r = CliRunner().invoke(cli, ["localize", "--text", "a handwritten eight", "--image", str(digit_file), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["grid"] == [8, 8] and data["space"] == "mini-clip" and data["query_modality"] == "text"
    scores = torch.tensor(data["scores"])
    assert scores.shape == (8, 8)
    assert data["peak"]["score"] == pytest.approx(float(scores.max()), abs=1e-5)
    assert scores[data["peak"]["row"], data["peak"]["col"]] == pytest.approx(float(scores.max()), abs=1e-5)
    direct = localize("text", "a handwritten eight", str(digit_file))
    torch.testing.assert_close(scores, direct.scores, atol=1e-5, rtol=0)


def test_cli_localize_usage_errors(digit_file):
    runner = CliRunner()
    r = runner.invoke(cli, ["localize", "--text", "a dog"])
    assert r.exit_code == 2 and "one query and one image" in r.output
    r = runner.invoke(cli, ["localize", "--text", "a", "--text", "b", "--image", str(digit_file)])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["localize", "--audio", "mini:heldout/audio/0", "--image", str(digit_file)])
    assert r.exit_code == 1 and "Error:" in r.output and "mcrgraph connect" in r.output
    r = runner.invoke(cli, ["localize", "--help"])
    assert r.exit_code == 0 and "mcrgraph localize --audio a.wav --image b.jpg --png out.png" in r.output
