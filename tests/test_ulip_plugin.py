"""The ``ulip`` plugin (plugins/mcrgraph-ulip): ULIP's PointBERT written in this project, loaded
by the official state-dict keys. Tiny random-init configs; no network, no real checkpoint."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import mcrgraph
from mcrgraph.errors import EncoderError
from mcrgraph_ulip import PointBertConfig, TextConfig, UlipConfig, UlipMCR
from mcrgraph_ulip.model import farthest_point_sample
from mcrgraph_ulip.space import build_model

TINY = dict(
    point=PointBertConfig(trans_dim=32, depth=2, num_heads=2, group_size=8, num_group=16, encoder_dims=32, npoints=256),
    text=TextConfig(width=32, layers=2, heads=2, context_length=16),
    vision_model="vit_tiny_patch16_224", image_size=32, embed_dim=16, batch_size=4, workers=2,
)


def tiny(**kw) -> UlipMCR:
    return UlipMCR(UlipConfig(**{"checkpoint": None, **TINY, **kw}))


def sphere(n=500, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def cube(n=500, seed=1):
    p = np.random.default_rng(seed).uniform(-1, 1, size=(n, 3))
    axis = np.arange(n) % 3
    p[np.arange(n), axis] = np.sign(p[np.arange(n), axis])  # on the faces
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clouds")
    s, c = sphere(), cube()
    np.save(d / "sphere.npy", s.astype(np.float32))
    with open(d / "cube.ply", "w") as f:
        f.write(f"ply\nformat ascii 1.0\nelement vertex {len(c)}\nproperty float x\nproperty float y\nproperty float z\nend_header\n")
        f.writelines(f"{x} {y} {z}\n" for x, y, z in c)
    with open(d / "sphere.obj", "w") as f:
        f.writelines(f"v {x} {y} {z}\n" for x, y, z in sphere(400, seed=5))
        f.write("f 1 2 3\n")
    return {"npy": d / "sphere.npy", "ply": d / "cube.ply", "obj": d / "sphere.obj"}


@pytest.fixture(scope="module")
def mcr():
    return tiny()


def official_checkpoint(model: torch.nn.Module, path, drop=None, extra=None):
    state = {"module." + k: v.clone() for k, v in model.state_dict().items() if k != drop}
    if extra:
        state["module." + extra] = torch.zeros(3)
    torch.save({"state_dict": state, "args": argparse.Namespace(model="ULIP_PointBERT", npoints=8192), "epoch": 3,
                "best_acc1": 60.3}, path)
    return path


# -- architecture ------------------------------------------------------------------------------
def test_tiny_architecture_has_the_official_names(mcr):
    model = mcr.parts()[0]
    sd = model.state_dict()
    shapes = {
        "pc_projection": (64, 16),
        "image_projection": (192, 16),
        "text_projection": (32, 16),
        "point_encoder.encoder.first_conv.0.weight": (128, 3, 1),
        "point_encoder.encoder.first_conv.1.running_var": (128,),
        "point_encoder.encoder.first_conv.3.weight": (256, 128, 1),
        "point_encoder.encoder.second_conv.0.weight": (512, 512, 1),
        "point_encoder.encoder.second_conv.3.weight": (32, 512, 1),
        "point_encoder.reduce_dim.weight": (32, 32),
        "point_encoder.cls_token": (1, 1, 32),
        "point_encoder.cls_pos": (1, 1, 32),
        "point_encoder.pos_embed.0.weight": (128, 3),
        "point_encoder.pos_embed.2.weight": (32, 128),
        "point_encoder.blocks.blocks.0.attn.qkv.weight": (96, 32),
        "point_encoder.blocks.blocks.1.mlp.fc1.weight": (128, 32),
        "point_encoder.blocks.blocks.1.mlp.fc2.bias": (32,),
        "point_encoder.norm.weight": (32,),
        "visual.patch_embed.proj.weight": (192, 3, 16, 16),
        "token_embedding.weight": (49408, 32),
        "positional_embedding": (16, 32),
        "transformer.resblocks.1.attn.in_proj_weight": (96, 32),
        "transformer.resblocks.0.attn.out_proj.weight": (32, 32),
        "transformer.resblocks.0.mlp.c_fc.weight": (128, 32),
        "transformer.resblocks.0.mlp.c_proj.weight": (32, 128),
        "transformer.resblocks.0.ln_1.weight": (32,),
        "ln_final.weight": (32,),
        "logit_scale": (),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert "point_encoder.blocks.blocks.0.attn.qkv.bias" not in sd  # qkv has no bias in PointBERT
    assert "attn_mask" not in sd
    tops = {k.split(".")[0] for k in sd}
    assert tops == {"point_encoder", "pc_projection", "visual", "image_projection", "transformer", "token_embedding",
                    "positional_embedding", "ln_final", "text_projection", "logit_scale"}


def test_full_point_encoder_matches_pointbert_ulip2():
    model = build_model(UlipConfig(checkpoint=None), towers=False)
    sd = model.state_dict()
    assert tuple(sd["point_encoder.encoder.first_conv.0.weight"].shape) == (128, 3, 1)
    assert tuple(sd["pc_projection"].shape) == (768, 512)
    assert tuple(sd["point_encoder.blocks.blocks.11.attn.qkv.weight"].shape) == (1152, 384)
    assert tuple(sd["point_encoder.blocks.blocks.0.mlp.fc1.weight"].shape) == (1536, 384)
    assert tuple(sd["point_encoder.encoder.second_conv.3.weight"].shape) == (256, 512, 1)
    blocks = {k.split(".")[3] for k in sd if k.startswith("point_encoder.blocks.blocks.")}
    assert len(blocks) == 12
    cfg = UlipConfig(checkpoint=None)
    assert (cfg.point.num_group, cfg.point.group_size, cfg.point.npoints, cfg.text.context_length) == (512, 32, 8192, 77)


def test_fps_starts_at_index_0_and_takes_the_farthest():
    pts = torch.tensor([[0.0, 0, 0], [0.1, 0, 0], [5, 0, 0], [0, 3, 0], [2.4, 1.4, 0]])
    idx = farthest_point_sample(pts[None], 4)
    # 0 first; 2 is farthest from it; then 3 (dist² 9 to point 0) beats 4 (dist² 4.72 to 0, 8.72 to 2)
    assert idx.tolist() == [[0, 2, 3, 4]]
    both = farthest_point_sample(torch.stack([pts, pts.flip(0)]), 3)
    assert both[0].tolist() == [0, 2, 3] and both[1].tolist() == [0, 2, 1]  # flipped: 4->0, 2->2, 1->3


# -- encoding --------------------------------------------------------------------------------
def test_encodes_point_files_and_arrays(mcr, files):
    items = [str(files["npy"]), files["ply"], str(files["obj"]), cube(300, seed=7), np.c_[sphere(), np.ones((500, 3))]]
    out = mcr.encode("3d", items)
    assert out.shape == (5, 16) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-5)
    assert not torch.allclose(out[0], out[1], atol=1e-3)  # a sphere is not a cube
    via_lib = mcrgraph.embed(mcr, "3d", [str(files["npy"])], use_cache=False)
    assert torch.allclose(via_lib[0], out[0], atol=1e-5)


def test_batch_invariance_and_determinism(mcr, files):
    items = [str(files["npy"]), str(files["ply"]), cube(300, seed=3)]
    batch = mcr.encode("3d", items)
    one = torch.cat([mcr.encode("3d", [x]) for x in items])
    assert torch.allclose(batch, one, atol=1e-5)
    again = tiny().encode("3d", items)
    assert torch.equal(batch, again)
    texts = ["a chair", "an airplane with two wings", "a lamp"]
    t = mcr.encode("text", texts)
    assert torch.allclose(t, torch.cat([mcr.encode("text", [x]) for x in texts]), atol=1e-5)
    assert torch.equal(t, tiny().encode("text", texts))
    assert tiny().fingerprint() == mcr.fingerprint() != tiny(seed=1).fingerprint()


def test_image_and_text(mcr):
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
    out = mcr.encode("image", [Image.fromarray(arr), arr, torch.rand(3, 20, 20)])
    assert out.shape == (3, 16) and torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(out[0], out[1], atol=1e-6)
    text = mcr.encode("text", ["a chair", "a table", "x " * 100])  # the last is cut at the context length
    assert text.shape == (3, 16) and torch.isfinite(text).all()
    assert torch.allclose(text.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(text[0], text[1], atol=1e-4)
    with pytest.raises(mcrgraph.DataError):
        mcr.encode("text", [3])


def test_bad_modality(mcr):
    with pytest.raises(mcrgraph.UnknownModalityError):
        mcrgraph.embed(mcr, "audio", ["a.wav"])
    with pytest.raises(mcrgraph.UnknownModalityError):
        mcr.encode("audio", ["a.wav"])


def test_pointbert_attention_is_the_written_out_softmax():
    """PointBERT's attention runs through torch's fused SDPA: the same numbers as the softmax
    written out (the reference below, as ULIP's code has it) and the same weight keys."""
    from mcrgraph_ulip.model import Attention

    torch.manual_seed(0)
    attn = Attention(32, 2).eval()
    x = torch.randn(3, 17, 32)
    with torch.no_grad():
        qkv = attn.qkv(x).reshape(3, 17, 3, 2, 16).permute(2, 0, 3, 1, 4)
        weights = ((qkv[0] @ qkv[1].transpose(-2, -1)) * attn.scale).softmax(dim=-1)
        expected = attn.proj((weights @ qkv[2]).transpose(1, 2).reshape(3, 17, 32))
        torch.testing.assert_close(attn(x), expected, rtol=0, atol=1e-5)
    assert list(attn.state_dict()) == ["qkv.weight", "proj.weight", "proj.bias"]


# -- checkpoints -----------------------------------------------------------------------------
def test_official_checkpoint_round_trip(mcr, files, tmp_path):
    path = official_checkpoint(mcr.parts()[0], tmp_path / "pointbert_ULIP-2.pt")
    loaded = tiny(checkpoint=str(path))
    assert loaded.weights_present() is True
    items = [str(files["npy"]), cube(300, seed=2)]
    assert torch.allclose(loaded.encode("3d", items), mcr.encode("3d", items), atol=1e-6)
    assert torch.allclose(loaded.encode("text", ["a cup"]), mcr.encode("text", ["a cup"]), atol=1e-6)
    img = [np.full((32, 32, 3), 90, np.uint8)]
    assert torch.allclose(loaded.encode("image", img), mcr.encode("image", img), atol=1e-6)
    assert loaded.fingerprint() != mcr.fingerprint()


def test_checkpoint_weights_override_the_seed(mcr, tmp_path):
    # the seed still seeds the sampling of point clouds, so compare the weights themselves
    path = official_checkpoint(mcr.parts()[0], tmp_path / "ckpt.pt")
    theirs = tiny(checkpoint=str(path), seed=5).parts()[0].state_dict()
    ours = mcr.parts()[0].state_dict()
    assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)
    assert not torch.equal(tiny(seed=5).parts()[0].state_dict()["pc_projection"], ours["pc_projection"])


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_checkpoint_with_wrong_keys_fails(mcr, tmp_path, change):
    model = mcr.parts()[0]
    if change == "drop":
        key = "point_encoder.blocks.blocks.1.attn.proj.weight"
        path = official_checkpoint(model, tmp_path / "c.pt", drop=key)
    else:
        key = "point_encoder.blocks.blocks.9.attn.qkv.bias"
        path = official_checkpoint(model, tmp_path / "c.pt", extra=key)
    with pytest.raises(EncoderError, match=key.replace(".", r"\.")):
        tiny(checkpoint=str(path)).encode("3d", [cube(100)])


class Payload:
    """Unpickling it would create a file: a checkpoint must never run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (self.marker,))


def _touch(marker):
    open(marker, "w").close()


def test_checkpoint_with_pickled_objects_is_refused(mcr, tmp_path):
    marker = tmp_path / "ran"
    state = {"module." + k: v for k, v in mcr.parts()[0].state_dict().items()}
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": state, "args": Payload(str(marker))}, path)
    with pytest.raises(EncoderError, match="refused.*_touch"):
        tiny(checkpoint=str(path)).encode("3d", [cube(100)])
    assert not marker.exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(EncoderError):
        tiny(checkpoint=str(junk)).encode("3d", [cube(100)])


def test_missing_checkpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("MCRGRAPH_ULIP_CHECKPOINT", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for m in (UlipMCR(UlipConfig.from_env(**TINY)), tiny(checkpoint=str(tmp_path / "nope.pt"))):
        assert m.weights_present() is False
        assert "from https://" in m.weights_hint() and "set MCRGRAPH_ULIP_CHECKPOINT=" in m.weights_hint()
        with pytest.raises(EncoderError, match="MCRGRAPH_ULIP_CHECKPOINT"):
            m.encode("3d", [cube(100)])
    assert UlipConfig.from_env().checkpoint.endswith("pointbert_ULIP-2.pt")
    monkeypatch.setenv("MCRGRAPH_ULIP_CHECKPOINT", "none")
    assert UlipConfig.from_env().checkpoint is None and tiny().weights_present() is None
    monkeypatch.setenv("MCRGRAPH_ULIP_CHECKPOINT", "/x/y.pt")
    assert UlipConfig.from_env().checkpoint == "/x/y.pt"


def test_registered_through_the_entry_point(tmp_path, monkeypatch):
    monkeypatch.setenv("MCRGRAPH_ULIP_CHECKPOINT", str(tmp_path / "absent.pt"))
    assert "ulip" in [getattr(m, "name", m) for m in mcrgraph.list_mcrs()]
    space = mcrgraph.get_mcr("ulip")
    assert isinstance(space, UlipMCR) and space.dim == 512 and space.modalities == ("3d", "image", "text")
    assert space.weights_present() is False and space._parts is None  # listing builds nothing
