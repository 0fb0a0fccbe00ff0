"""The clap plugin (laion_clap), offline: a random-init CLAP with a 1-layer text branch, a
byte-level BPE vocabulary the test writes, and sound files the test writes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

import mcrgraph
from mcrgraph.errors import EncoderError
from mcrgraph_clap import ClapConfig, ClapMCR
from mcrgraph_clap.mel import AmplitudeToDB, MelSpectrogram

TEXTS = ["a dog barks", "rain on a roof", "a bell rings", "a car horn", "birds singing"]


def write_tokenizer(folder, extra: int = 1100, specials_only: bool = False):
    """A roberta-style vocabulary: the 5 specials, the 256 byte symbols, a few merges and filler
    tokens (so it is larger than what transformers returns offline)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    merges = []
    if not specials_only:
        for c in bytes_to_unicode().values():
            vocab.setdefault(c, len(vocab))
        merges = ["Ġ a", "d o", "r a", "b e"]
        for m in merges:
            vocab.setdefault(m.replace(" ", ""), len(vocab))
        for i in range(extra):
            vocab[f"filler{i}"] = len(vocab)
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("".join(f"{line}\n" for line in ["#version: 0.2", *merges]))
    return folder, len(vocab)


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("roberta"))


def tiny(tok, **kw) -> ClapMCR:
    folder, size = tok
    kw.setdefault("checkpoint", None)
    kw.setdefault("fusion", True)
    return ClapMCR(ClapConfig(name="tiny-clap", tokenizer=str(folder), text_config={"num_hidden_layers": 1, "vocab_size": size}, **kw))


def sounds(tmp_path):
    """Five sound files at 16 kHz, 44.1 kHz and 48 kHz, one of them 12 s (fusion on)."""
    rng = np.random.default_rng(0)
    out = []
    for i, (sr, secs) in enumerate([(16000, 1.0), (44100, 2.5), (48000, 0.5), (16000, 12.0), (48000, 3.0)]):
        t = np.arange(int(sr * secs)) / sr
        wave = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))
        p = tmp_path / f"s{i}.wav"
        soundfile.write(p, wave.astype(np.float32), sr)
        out.append(str(p))
    return out


def test_encodes_audio_and_text_as_unit_rows(tmp_path, tok):
    m = tiny(tok)
    for modality, items in (("text", TEXTS), ("audio", sounds(tmp_path))):
        e = mcrgraph.embed(m, modality, items)
        assert e.shape == (5, 512) and e.dtype == torch.float32
        torch.testing.assert_close(e.norm(dim=1), torch.ones(5))
        assert torch.cdist(e, e)[torch.triu(torch.ones(5, 5), 1) > 0].min() > 1e-5


def test_batch_invariance_determinism_and_sample_rates(tmp_path, tok):
    a, b = tiny(tok), tiny(tok)
    files = sounds(tmp_path)
    for modality, items in (("text", TEXTS), ("audio", files)):
        batch = a.encode(modality, items)
        torch.testing.assert_close(batch, torch.cat([a.encode(modality, [x]) for x in items]), atol=1e-5, rtol=1e-5)
        assert torch.equal(batch, b.encode(modality, items))
    wave, sr = soundfile.read(files[0], dtype="float32")
    torch.testing.assert_close(a.encode("audio", [(wave, sr)]), a.encode("audio", [files[0]]))
    from mcrgraph.io.media import resample

    at48 = resample(wave, sr, 48000)  # a bare array is taken at 48 kHz, as laion_clap takes it
    torch.testing.assert_close(a.encode("audio", [at48]), a.encode("audio", [files[0]]))


def test_a_saved_checkpoint_reloads_to_the_same_embeddings(tmp_path, tok):
    src = tiny(tok, seed=5)
    model = src.parts()[0]
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]  # what older transformers saved
    path = tmp_path / "clap.pt"
    torch.save({"epoch": 45, "state_dict": state}, path)
    loaded = tiny(tok, checkpoint=str(path), seed=123)
    assert loaded.weights_present() is True
    files = sounds(tmp_path)[:3]
    for modality, items in (("text", TEXTS), ("audio", files)):
        assert torch.equal(loaded.encode(modality, items), src.encode(modality, items))

    del state["module.audio_projection.0.weight"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(EncoderError, match=r"missing \(audio_projection.0.weight\)"):
        tiny(tok, checkpoint=str(path)).encode("text", TEXTS)


def test_refuses_a_tokenizer_of_special_tokens_only(tmp_path):
    folder, _ = write_tokenizer(tmp_path / "specials", specials_only=True)
    m = ClapMCR(ClapConfig(checkpoint=None, tokenizer=str(folder), text_config={"num_hidden_layers": 1}))
    with pytest.raises(EncoderError, match="only its 5 special tokens"):
        m.encode("text", ["a dog"])
    small, _ = write_tokenizer(tmp_path / "small", extra=0)
    m = ClapMCR(ClapConfig(checkpoint=None, tokenizer=str(small)))  # a real model needs roberta-base's vocabulary
    with pytest.raises(EncoderError, match="MCRGRAPH_CLAP_TOKENIZER"):
        m.encode("text", ["a dog"])


def test_sounds_need_no_tokenizer(tmp_path, tok):
    """roberta-base's tokenizer is read on the first text, so audio works without its files."""
    folder, size = tok
    m = ClapMCR(ClapConfig(name="tiny-clap", checkpoint=None, fusion=True, tokenizer=str(tmp_path / "no-roberta-here"),
                           text_config={"num_hidden_layers": 1, "vocab_size": size}))
    e = m.encode("audio", sounds(tmp_path)[:2])
    assert e.shape == (2, 512) and m._tokenizer is None
    with pytest.raises(EncoderError, match="MCRGRAPH_CLAP_TOKENIZER"):
        m.encode("text", ["a dog"])
    assert torch.equal(m.encode("audio", sounds(tmp_path)[:2]), e)  # a failed text leaves the audio side as it was


def test_missing_weights_offline_name_the_local_path_options(monkeypatch, tok):
    monkeypatch.delenv("MCRGRAPH_CLAP_CHECKPOINT", raising=False)
    monkeypatch.delenv("MCRGRAPH_CLAP_TOKENIZER", raising=False)
    m = ClapMCR(ClapConfig.from_env())
    assert m.config.checkpoint == "630k-fusion-best.pt" and m.config.use_fusion() and m.weights_present() is False
    assert "set MCRGRAPH_CLAP_CHECKPOINT=/path/to/630k-fusion-best.pt" in m.weights_hint()
    # offline, transformers hands back roberta-base's 5 special tokens without an error: caught
    with pytest.raises(EncoderError, match="only 5 tokens.*MCRGRAPH_CLAP_TOKENIZER"):
        m.encode("text", ["a dog"])
    monkeypatch.setenv("MCRGRAPH_CLAP_TOKENIZER", str(tok[0]))
    m = ClapMCR(ClapConfig.from_env())
    assert "MCRGRAPH_CLAP_CHECKPOINT" in m.weights_hint() and "TOKENIZER" not in m.weights_hint()  # only what is missing
    with pytest.raises(EncoderError, match="MCRGRAPH_CLAP_CHECKPOINT=/path/to/630k-fusion-best.pt"):
        m.encode("audio", [np.zeros(48000, np.float32)])
    fp = m.fingerprint()
    assert fp == ClapMCR(ClapConfig.from_env()).fingerprint()  # a released name: no file needed


def test_bad_audio_is_explained(tmp_path, tok):
    m = tiny(tok)
    (tmp_path / "x.wav").write_bytes(b"RIFF....")
    for item, msg in ((str(tmp_path / "x.wav"), "cannot read it as a sound file"), (np.array([np.nan, 1.0]), "NaN"),
                      (np.zeros((2, 100)), "1-D"), (np.zeros(0), "1-D"), ((np.zeros(100), 0), "sample rate")):
        with pytest.raises(mcrgraph.DataError, match=msg):
            m.encode("audio", [item])


def test_the_log_mel_matches_librosa():
    """Our stand-in for torchaudio's transforms against librosa with the settings laion_clap's
    comments give for aligning the two."""
    import librosa

    cfg = dict(sample_rate=48000, window_size=1024, hop_size=480, mel_bins=64, fmin=50, fmax=14000)
    wave = np.random.default_rng(1).standard_normal(48000).astype(np.float32) * 0.1
    ours = MelSpectrogram(sample_rate=cfg["sample_rate"], n_fft=1024, win_length=1024, hop_length=480, center=True,
                          pad_mode="reflect", power=2.0, norm=None, onesided=True, n_mels=64, f_min=50, f_max=14000)(torch.from_numpy(wave))
    ours = AmplitudeToDB(top_db=None)(ours).numpy()
    ref = librosa.feature.melspectrogram(y=wave, sr=48000, n_fft=1024, hop_length=480, win_length=1024, window="hann",
                                         center=True, pad_mode="reflect", power=2.0, n_mels=64, fmin=50, fmax=14000,
                                         htk=True, norm=None)
    ref = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=None)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-3)
