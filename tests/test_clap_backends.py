"""The clap plugin's two backends (issue 18): laion_clap's model code and transformers'
``ClapModel`` on the same checkpoint keys. Random-init towers (a 1-layer text branch) converted
both ways give the same embeddings; the shared audio input equals laion_clap's own."""
from __future__ import annotations

import types

import numpy as np
import pytest
import soundfile
import torch

from mcrgraph.errors import EncoderError
from mcrgraph_clap import ClapConfig, ClapMCR
from mcrgraph_clap.convert import hf_keys, hf_to_laion, laion_only, laion_to_hf
from mcrgraph_clap.features import AUDIO_CFG, audio_features, quantise
from mcrgraph_clap.mel import AmplitudeToDB, MelSpectrogram

from test_clap_plugin import TEXTS, write_tokenizer
from test_clap_plugin import tiny as tiny_clap

pytest.importorskip("laion_clap")
TOLERANCE = 1e-4
HF_ONLY = {"text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids"}


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("roberta"))


def tiny(tok, backend, **kw) -> ClapMCR:
    return tiny_clap(tok, backend=backend, **kw)


def clips(tmp_path):
    """A 2 s clip (repeat-padded), one of exactly 10 s, and one of 23 s (fusion picks chunks)."""
    rng = np.random.default_rng(3)
    out = []
    for i, secs in enumerate((2.0, 10.0, 23.0)):
        t = np.arange(int(48000 * secs)) / 48000
        wave = 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t * (1 + t / 40)) + 0.05 * rng.standard_normal(len(t))
        soundfile.write(tmp_path / f"c{i}.wav", wave.astype(np.float32), 48000)
        out.append(str(tmp_path / f"c{i}.wav"))
    return out


@pytest.mark.parametrize("fusion", [True, False])
@pytest.mark.parametrize("seconds", [0.7, 10.0, 10.005, 31.0])
def test_the_audio_input_is_laion_claps_own(monkeypatch, fusion, seconds):
    """features.py against laion_clap's get_audio_features (with our torchaudio stand-in, as
    laion_clap needs one here): bit-identical, random chunks included, for the same RNG state."""
    from laion_clap.training import data

    monkeypatch.setattr(data, "torchaudio", types.SimpleNamespace(
        transforms=types.SimpleNamespace(MelSpectrogram=MelSpectrogram, AmplitudeToDB=AmplitudeToDB)))
    wave = quantise(np.random.default_rng(1).standard_normal(int(48000 * seconds)).astype(np.float32) * 0.2)
    np.random.seed(11)
    theirs = data.get_audio_features({}, torch.from_numpy(wave).float(), 480000, "fusion" if fusion else "rand_trunc",
                                     "repeatpad", {**AUDIO_CFG, "class_num": 527})
    np.random.seed(11)
    ours = audio_features(torch.from_numpy(wave).float(), 480000, fusion)
    assert ours.keys() == theirs.keys()
    for k in ours:
        assert torch.equal(ours[k], theirs[k]), k
    assert bool(ours["longer"]) == (fusion and seconds > 10.01 or not fusion and seconds > 10)


def test_every_key_has_its_place(tok):
    """Each laion_clap key of the model maps onto ClapModel's keys, and back, one to one."""
    laion = tiny(tok, "laion").parts()[0].state_dict()
    hf = tiny(tok, "transformers").parts()[0].state_dict()
    converted = laion_to_hf(laion)
    assert set(converted) == set(hf) - HF_ONLY
    assert all(converted[k].shape == hf[k].shape for k in converted)
    kept = [k for k in laion if not laion_only(k)]
    back = hf_to_laion(converted, laion)
    assert set(back) == set(kept) and all(torch.equal(back[k], laion[k]) for k in kept)
    assert hf_keys("audio_branch.layers.0.blocks.1.attn.qkv.weight") == [
        f"audio_model.audio_encoder.layers.0.blocks.1.attention.self.{p}.weight" for p in ("query", "key", "value")]
    assert hf_keys("audio_branch.tscam_conv.weight") == []


def _checkpoint(state, path):
    torch.save({"epoch": 45, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return str(path)


def _max_diff(a: ClapMCR, b: ClapMCR, files) -> dict[str, float]:
    out = {}
    for modality, items in (("text", TEXTS), ("audio", files)):
        x, y = a.encode(modality, items), b.encode(modality, items)
        assert x.shape == y.shape == (len(items), 512)
        out[modality] = (x - y).abs().max().item()
    return out


def test_laion_weights_in_transformers_give_the_same_embeddings(tmp_path, tok):
    laion = tiny(tok, "laion", seed=5)
    path = _checkpoint(laion.parts()[0].state_dict(), tmp_path / "laion.pt")
    hf = tiny(tok, "transformers", checkpoint=path, seed=123)
    diff = _max_diff(laion, hf, clips(tmp_path))
    print("laion -> transformers, max |diff|:", diff)
    assert max(diff.values()) < TOLERANCE, diff


def test_transformers_weights_in_laion_give_the_same_embeddings(tmp_path, tok):
    hf = tiny(tok, "transformers", seed=7)
    shell = tiny(tok, "laion", seed=8).parts()[0].state_dict()  # its laion-only tensors: unused by embeddings
    state = {**shell, **hf_to_laion(hf.parts()[0].state_dict(), shell)}
    laion = tiny(tok, "laion", checkpoint=_checkpoint(state, tmp_path / "hf.pt"))
    diff = _max_diff(laion, hf, clips(tmp_path))
    print("transformers -> laion, max |diff|:", diff)
    assert max(diff.values()) < TOLERANCE, diff


def test_the_backend_is_chosen_and_fingerprinted(monkeypatch, tok):
    monkeypatch.delenv("MCRGRAPH_CLAP_BACKEND", raising=False)
    assert ClapConfig.from_env().backend == "auto" and ClapConfig.from_env().resolved_backend() == "laion"
    monkeypatch.setenv("MCRGRAPH_CLAP_BACKEND", "transformers")
    assert ClapConfig.from_env().resolved_backend() == "transformers"
    monkeypatch.setenv("MCRGRAPH_CLAP_BACKEND", "tensorflow")
    with pytest.raises(ValueError):
        ClapConfig.from_env()
    monkeypatch.delenv("MCRGRAPH_CLAP_BACKEND")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "laion_clap" else real(name, *a))
    assert ClapConfig().resolved_backend() == "transformers"  # laion_clap absent: transformers
    # the same function of the same weights (tests above): one fingerprint, caches carry over
    assert tiny(tok, "laion").fingerprint() == tiny(tok, "transformers").fingerprint()
    assert tiny(tok, "laion", seed=1).fingerprint() != tiny(tok, "transformers").fingerprint()


def test_what_the_transformers_backend_does_not_run(tok):
    with pytest.raises(EncoderError, match="MCRGRAPH_CLAP_BACKEND=laion"):
        tiny(tok, "transformers", fusion=False).encode("text", ["a"])
    with pytest.raises(EncoderError, match="HTSAT-tiny"):
        tiny(tok, "transformers", amodel="HTSAT-base").encode("text", ["a"])


def test_the_transformers_backend_runs_without_laion_clap(tmp_path, tok):
    """As installed without the `laion` extra: laion_clap (and its clap_module) cannot be
    imported at all, and the default backend still encodes both modalities."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f'''
        import sys, importlib.abc
        class NoLaion(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("laion_clap", "clap_module"):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, NoLaion())
        import numpy as np
        from mcrgraph_clap import ClapConfig, ClapMCR
        cfg = ClapConfig(name="t", checkpoint=None, fusion=True, tokenizer={str(tok[0])!r},
                         text_config={{"num_hidden_layers": 1, "vocab_size": {tok[1]}}})
        assert cfg.resolved_backend() == "transformers", cfg.resolved_backend()
        m = ClapMCR(cfg)
        print(m.encode("text", ["a dog"]).shape, m.encode("audio", [np.zeros(48000, np.float32) + 0.1]).shape)
        assert not [k for k in sys.modules if k.startswith(("laion_clap", "clap_module"))]
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["torch.Size([1,", "512])", "torch.Size([1,", "512])"]
