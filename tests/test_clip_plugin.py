"""The clip plugin (open_clip), offline: random-init architectures, files the test writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import mcrgraph
from mcrgraph.errors import EncoderError
from mcrgraph_clip import ClipConfig, ClipMCR

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
TEXTS = ["a photo of a dog", "a photo of a cat", "an airplane", "a red car", "two birds"]


def tiny(**kw) -> ClipMCR:
    return ClipMCR(ClipConfig(name="tiny-clip", model="tiny", pretrained=None, architecture=TINY, **kw))


def pictures(tmp_path, n=5):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (40 + 3 * i, 50, 3), dtype=np.uint8) for i in range(n)]
    paths = []
    for i, a in enumerate(arrays):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(a).save(p)
        paths.append(str(p))
    return arrays, paths


def test_encodes_texts_and_images_as_unit_rows(tmp_path):
    m = tiny()
    assert m.dim == 32 and m.modalities == ("image", "text")
    _, paths = pictures(tmp_path)
    for modality, items in (("text", TEXTS), ("image", paths)):
        e = mcrgraph.embed(m, modality, items)
        assert e.shape == (5, 32) and e.dtype == torch.float32
        torch.testing.assert_close(e.norm(dim=1), torch.ones(5))
        assert torch.cdist(e, e).triu(1)[torch.triu(torch.ones(5, 5), 1) > 0].min() > 1e-4  # items differ


def test_every_image_form_gives_the_same_embedding(tmp_path):
    m = tiny()
    arrays, paths = pictures(tmp_path, 1)
    pil = Image.open(paths[0])
    tensor = torch.from_numpy(arrays[0]).permute(2, 0, 1).float() / 255.0
    e = m.encode("image", [paths[0], pil, arrays[0], arrays[0].astype(np.float32) / 255.0, tensor])
    for row in e[1:]:
        torch.testing.assert_close(row, e[0], atol=1e-5, rtol=1e-5)


def test_batch_invariance_and_determinism(tmp_path):
    _, paths = pictures(tmp_path)
    a, b = tiny(), tiny()
    for modality, items in (("text", TEXTS), ("image", paths)):
        batch = a.encode(modality, items)
        one_by_one = torch.cat([a.encode(modality, [x]) for x in items])
        torch.testing.assert_close(batch, one_by_one, atol=1e-5, rtol=1e-5)
        assert torch.equal(batch, b.encode(modality, items))  # a fresh instance: the same seeded init
    assert not torch.equal(tiny(seed=1).encode("text", TEXTS), a.encode("text", TEXTS))
    assert a.fingerprint() == b.fingerprint() != tiny(seed=1).fingerprint()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_saved_checkpoint_reloads_to_the_same_embeddings(tmp_path, suffix):
    src = tiny(seed=3)
    model = src.parts()[0]
    path = tmp_path / f"ckpt{suffix}"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if suffix == ".pt":
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    else:
        save_file(state, str(path))
    loaded = ClipMCR(ClipConfig(name="tiny-clip", model="tiny", pretrained=str(path), architecture=TINY, seed=99))
    assert loaded.weights_present() is True
    _, paths = pictures(tmp_path, 3)
    for modality, items in (("text", TEXTS), ("image", paths)):
        assert torch.equal(loaded.encode(modality, items), src.encode(modality, items))
    assert loaded.fingerprint() != tiny(seed=99).fingerprint()


def test_a_checkpoint_that_does_not_fit_fails_loudly(tmp_path):
    state = dict(tiny().parts()[0].state_dict())
    dropped = sorted(state)[5]
    del state[dropped]
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "bad.pt")
    m = ClipMCR(ClipConfig(name="tiny-clip", model="tiny", pretrained=str(tmp_path / "bad.pt"), architecture=TINY))
    with pytest.raises(EncoderError, match="1 missing") as e:
        m.encode("text", ["x"])
    assert dropped in str(e.value) and "extra.weight" in str(e.value)


def test_vit_b_32_is_the_default_architecture():
    m = ClipMCR(ClipConfig(pretrained=None))
    assert (m.name, m.dim) == ("clip", 512)
    model = m.parts()[0]
    assert sum(p.numel() for p in model.parameters()) == 151_277_313  # ViT-B/32 as OpenAI's
    assert model.visual.patch_size == (32, 32) and model.visual.image_size == (224, 224)
    e = m.encode("image", [np.zeros((64, 64, 3), np.uint8)])
    assert e.shape == (1, 512)


def test_missing_weights_offline_name_the_local_path_option(monkeypatch):
    monkeypatch.delenv("MCRGRAPH_CLIP_PRETRAINED", raising=False)
    m = ClipMCR(ClipConfig.from_env())
    assert m.config.pretrained == "openai" and m.weights_present() is False
    assert "MCRGRAPH_CLIP_PRETRAINED=/path/to/" in m.weights_hint()
    with pytest.raises(EncoderError, match="MCRGRAPH_CLIP_PRETRAINED=/path/to/"):
        m.encode("text", ["a dog"])
    monkeypatch.setenv("MCRGRAPH_CLIP_PRETRAINED", "/nowhere/model.bin")
    m = ClipMCR(ClipConfig.from_env())
    assert m.weights_present() is False
    with pytest.raises(EncoderError, match="no checkpoint at /nowhere/model.bin"):
        m.encode("text", ["a dog"])


def test_bad_names_and_items_are_explained(tmp_path):
    with pytest.raises(EncoderError, match="no model 'ViT-B-33'"):
        ClipMCR(ClipConfig(model="ViT-B-33", pretrained=None)).encode("text", ["x"])
    with pytest.raises(EncoderError, match="no pretrained tag 'nope'.*openai"):
        ClipMCR(ClipConfig(pretrained="nope")).encode("text", ["x"])
    m = tiny()
    with pytest.raises(mcrgraph.DataError, match="image file .*missing.png' does not exist"):
        m.encode("image", [str(tmp_path / "missing.png")])
    with pytest.raises(mcrgraph.DataError, match="NaN"):
        m.encode("image", [np.full((8, 8, 3), np.nan)])
    with pytest.raises(mcrgraph.DataError, match="text items are strings"):
        m.encode("text", [3])
    with pytest.raises(mcrgraph.UnknownModalityError):
        mcrgraph.embed(m, "audio", ["x"])


def test_listed_by_the_cli_without_loading_weights():
    from click.testing import CliRunner

    from mcrgraph.cli import cli

    r = CliRunner().invoke(cli, ["plugins"])
    assert r.exit_code == 0
    assert "clip (image/text, 512-d, WEIGHTS MISSING)" in r.output
    assert "clip: weights missing; run `mcrgraph download clip` where you are online (ViT-B-32 / 'openai'), or set MCRGRAPH_CLIP_PRETRAINED=" in r.output
    assert "entry point (mcrgraph-clip)" in r.output
    data = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    space = next(p for p in data if p["name"] == "clip")["spaces"][0]
    assert space["name"] == "clip" and space["dim"] == 512 and space["weights_present"] is False
    assert "MCRGRAPH_CLIP_PRETRAINED=" in space["weights_hint"]


def test_patch_embeddings_for_localization(tmp_path):
    from mcrgraph.tasks.localize import embed_dense

    m = tiny()
    _, paths = pictures(tmp_path, 2)
    dense = embed_dense(m, "image", paths)
    assert dense.shape == (2, 4, 4, 32)  # 32 px / patch 8
    torch.testing.assert_close(dense.norm(dim=-1), torch.ones(2, 4, 4))
    assert m.dense_modalities() == ("image",)
    big = ClipMCR(ClipConfig(pretrained=None))
    assert big.encode_dense("image", [np.zeros((64, 64, 3), np.uint8)]).shape == (1, 7, 7, 512)


def test_patch_tokens_come_through_the_public_output_tokens_route():
    """The plugin asks open_clip's tower for its tokens with ``output_tokens`` (public) instead of
    calling its private ``_embeds``/``_pool``: the same tensors, to 1e-6, on random-init weights;
    the tower itself is left returning pooled embeddings only."""
    from mcrgraph_clip.space import _dense_tokens

    for m in (tiny(), ClipMCR(ClipConfig(pretrained=None))):
        visual = m.parts()[0].visual
        pixels = torch.randn(2, 3, *visual.image_size, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            got = _dense_tokens(visual, pixels)
            _, tokens = visual._pool(visual.transformer(visual._embeds(pixels)))  # the private route, as before
            gh, gw = visual.grid_size
            torch.testing.assert_close(got, (tokens @ visual.proj).reshape(2, gh, gw, -1), rtol=0, atol=1e-6)
            assert visual.output_tokens is False and visual(pixels).shape == (2, visual.proj.shape[1])
