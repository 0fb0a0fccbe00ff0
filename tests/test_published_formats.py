"""The published files as they really are (issue 28): replicas built offline with the libraries
that wrote the originals (random weights, the real layout), fed through the code a user runs.
Each test names where its facts come from. The COCO shard replica is in test_recipes.py (it needs
that file's local hub)."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from mcrgraph.errors import ConnectorFileError, EncoderError
from mcrgraph.plugin import load_torch_weights, numpy_scalar_globals
from mcrgraph_clap import ClapConfig, ClapMCR
from mcrgraph_clip import ClipConfig, ClipMCR
from test_clap_plugin import TEXTS, sounds, write_tokenizer

# -- LAION-CLAP's released checkpoints ------------------------------------------------------------
# laion_clap/training/main.py saves {"epoch", "name", "state_dict": model.state_dict() (DDP:
# "module." keys), "optimizer": optimizer.state_dict()}; its cosine schedule
# (laion_clap/training/scheduler.py) sets each param group's lr to a numpy float64 (np.cos). The
# hub's pickle scan of lukewys/laion_clap 630k-fusion-best.pt lists exactly these two non-torch
# globals (issue 28).
HUB_SCAN = ["numpy.core.multiarray.scalar", "numpy.dtype"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("roberta"))


def clap(tok, **kw) -> ClapMCR:
    folder, size = tok
    kw.setdefault("backend", "laion")
    return ClapMCR(ClapConfig(name="released-clap", tokenizer=str(folder), fusion=True,
                              text_config={"num_hidden_layers": 1, "vocab_size": size}, **kw))


def save_as_released(model: torch.nn.Module, path):
    """``model`` saved the way laion_clap's trainer saved 630k-fusion-best.pt."""
    pytest.importorskip("laion_clap")
    from laion_clap.training.scheduler import cosine_lr

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cosine_lr(optimizer, 1e-4, 2, 10)(5)  # laion_clap's own schedule: the lr becomes np.float64
    assert type(optimizer.param_groups[0]["lr"]) is np.float64
    torch.save({"epoch": 45, "name": "replica", "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict()}, path)
    return path


def renamed(src, dst, old: bytes, new: bytes):
    """A copy of a torch zip checkpoint whose pickle names module ``new`` where it said ``old``
    (numpy 2 pickles its scalars as numpy._core.multiarray.scalar, numpy 1 as numpy.core...)."""
    with zipfile.ZipFile(src) as z:
        entries = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for info, data in entries:
            if info.filename.endswith("/data.pkl"):
                assert old in data
                data = data.replace(old, new)
            z.writestr(info, data)
    return dst


@pytest.fixture(scope="module")
def released(tok, tmp_path_factory):
    """(the seeded space whose weights were saved, its file in the released layout)."""
    src = clap(tok, checkpoint=None, seed=5)
    return src, save_as_released(src.parts()[0], tmp_path_factory.mktemp("clap") / "630k-fusion-best.pt")


def test_the_replica_pickles_what_the_hub_scan_lists(released):
    names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(released[1])))
    if np.__version__.startswith("1."):
        assert names == sorted(HUB_SCAN)
    else:  # numpy 2 writes its own module's name; the numpy 1 names are checked by renaming below
        assert names == sorted(n.replace("numpy.core", "numpy._core") for n in HUB_SCAN)


@pytest.mark.parametrize("backend", ["laion", "transformers"])
def test_the_released_clap_layout_loads_and_encodes_as_saved(tok, released, tmp_path, backend):
    src, path = released
    if backend == "laion":
        pytest.importorskip("laion_clap")
    files = sounds(tmp_path)
    loaded = clap(tok, checkpoint=str(path), backend=backend)
    for modality, items in (("text", TEXTS), ("audio", files)):
        # the same weights through the same code: equal to float rounding (the two backends were
        # shown equal to 5.2e-8 in test_clap_backends.py; 1e-5 leaves room for the conversion)
        torch.testing.assert_close(loaded.encode(modality, items), src.encode(modality, items), atol=1e-5, rtol=0)


def test_numpy_scalars_load_by_their_numpy_1_and_numpy_2_names(released, tmp_path):
    path = released[1]
    one = renamed(path, tmp_path / "numpy1.pt", b"numpy._core.multiarray", b"numpy.core.multiarray") \
        if not np.__version__.startswith("1.") else path
    two = renamed(one, tmp_path / "numpy2.pt", b"numpy.core.multiarray", b"numpy._core.multiarray")
    for f in (one, two):
        ckpt = load_torch_weights(f, allow=numpy_scalar_globals())
        assert ckpt["epoch"] == 45 and float(ckpt["optimizer"]["param_groups"][0]["lr"]) > 0
        with pytest.raises(ConnectorFileError, match="multiarray.scalar"):  # without the allow-list: refused, named
            load_torch_weights(f)


def test_the_numpy_allow_list_admits_scalars_not_arrays(tmp_path):
    """An ndarray pickles numpy's _reconstruct, which can build any object: still refused."""
    path = tmp_path / "array.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "metrics": np.arange(3)}, path)
    with pytest.raises(ConnectorFileError, match="_reconstruct"):
        load_torch_weights(path, allow=numpy_scalar_globals())


# -- OpenAI's CLIP through open_clip's `openai` tag ----------------------------------------------
# open_clip 3.3 (pretrained.py): ViT-B-32's `openai` tag has hf_hub "timm/vit_base_patch32_clip_224.openai/"
# and quick_gelu=True; download_pretrained_from_hf asks for open_clip_model.safetensors first. Since
# open_clip 2.29, the ViT-B-32 config builds GELU and a tag that differs only warns. This uses the
# real ViT-B-32 (151M parameters, a 605 MB file, about 20 s here): the fact is about that model and tag.
CLIP_REPO, CLIP_FILE = "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors"


@pytest.fixture(scope="module")
def openai_in_hub_cache(tmp_path_factory):
    """ViT-B-32-quickgelu random weights in the Hugging Face cache where the tag's file goes."""
    import open_clip
    from safetensors.torch import save_file

    import mcrgraph_clip.space as clip_space

    cache = tmp_path_factory.mktemp("hf")
    revision = getattr(clip_space, "HUB_REVISION", None) or "5" * 40  # the pinned one, when the plugin pins it
    repo = cache / f"models--{CLIP_REPO.replace('/', '--')}"
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    torch.manual_seed(3)
    reference = open_clip.create_model("ViT-B-32-quickgelu", pretrained=None)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(repo / "snapshots" / revision / CLIP_FILE))
    return cache, repo / "snapshots" / revision / CLIP_FILE


@pytest.fixture
def hub_cache(openai_in_hub_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(openai_in_hub_cache[0]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return openai_in_hub_cache


def test_the_default_clip_is_openais_quickgelu_model(hub_cache, tmp_path):
    import open_clip
    from PIL import Image

    from mcrgraph_clip.space import uses_quick_gelu

    space = ClipMCR(ClipConfig.from_env())  # the default space, as a user gets it: ViT-B-32, tag openai
    assert space.weights_present() is True
    model, preprocess, tokenizer = space.parts()
    assert uses_quick_gelu(model)
    quick = open_clip.create_model("ViT-B-32-quickgelu", pretrained=str(hub_cache[1])).eval()
    gelu = open_clip.create_model("ViT-B-32", pretrained=str(hub_cache[1])).eval()  # what the space built before issue 28
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)) for _ in range(2)]
    pixels = torch.stack([preprocess(im) for im in images])
    with torch.inference_mode():
        for modality, ours, theirs, old in (
            ("image", space.encode("image", images), quick.encode_image(pixels), gelu.encode_image(pixels)),
            ("text", space.encode("text", TEXTS[:2]), quick.encode_text(tokenizer(TEXTS[:2])), gelu.encode_text(tokenizer(TEXTS[:2]))),
        ):
            theirs, old = torch.nn.functional.normalize(theirs, dim=-1), torch.nn.functional.normalize(old, dim=-1)
            assert torch.equal(ours, theirs), modality  # the same modules, weights and inputs: the same bits
            assert (ours - old).abs().max() > 1e-3, modality  # GELU is another function (measured 1.5e-2 / 5.5e-2 unnormalised)


def test_an_activation_that_differs_from_the_tag_fails_loudly(hub_cache, monkeypatch):
    """The check behind the default: were the tag to say GELU, the QuickGELU model must not load."""
    import mcrgraph_clip.space as clip_space

    monkeypatch.setattr(clip_space, "tag_activation", lambda model, tag: False)
    with pytest.raises(EncoderError, match="trained with GELU, but open_clip built ViT-B-32-quickgelu with QuickGELU"):
        ClipMCR(ClipConfig(model="ViT-B-32-quickgelu")).parts()


def test_a_local_copy_of_quickgelu_weights_is_told_its_model():
    hint = ClipMCR(ClipConfig()).weights_hint()
    assert "MCRGRAPH_CLIP_MODEL=ViT-B-32-quickgelu" in hint
    assert "MCRGRAPH_CLIP_MODEL" not in ClipMCR(ClipConfig(model="ViT-B-32", pretrained="laion2b_s34b_b79k")).weights_hint()


# -- transformers' ClapModel: 4.x returns tensors, 5.x BaseModelOutputWithPooling ---------------
# transformers 4.x modeling_clap.py: get_text_features/get_audio_features return
# F.normalize(projection(pooled)) as a tensor; 5.x (installed here: 5.25) returns the text/audio
# model output with pooler_output set to that tensor.


def test_both_shapes_of_clapmodel_features_give_the_same_embeddings(tok, tmp_path, monkeypatch):
    from transformers import ClapModel
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    space = clap(tok, checkpoint=None, backend="transformers", seed=2)
    files = sounds(tmp_path)[:2]
    native = {m: space.encode(m, items) for m, items in (("text", TEXTS), ("audio", files))}
    probe = space.parts()[0].get_text_features(input_ids=torch.tensor([[0, 5, 2]]))
    other = ((lambda out: out.pooler_output) if isinstance(probe, BaseModelOutputWithPooling)  # 5.x here: test 4.x's tensor
             else (lambda out: BaseModelOutputWithPooling(pooler_output=out)))
    for name in ("get_text_features", "get_audio_features"):
        real = getattr(ClapModel, name)
        monkeypatch.setattr(ClapModel, name, lambda self, *a, _real=real, **k: other(_real(self, *a, **k)))
    assert type(space.parts()[0].get_text_features(input_ids=torch.tensor([[0, 5, 2]]))) is not type(probe)
    for modality, items in (("text", TEXTS), ("audio", files)):
        assert torch.equal(space.encode(modality, items), native[modality])
