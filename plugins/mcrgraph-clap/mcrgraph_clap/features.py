"""CLAP's audio input, as laion_clap's ``get_audio_features`` computes it (training/data.py,
laion_clap 1.1.7, CC0-1.0), for the two settings this plugin uses: fusion (log-mel of the whole
clip squeezed to 10 s next to three random 10 s chunks) and random truncation, both with
repeat-padding of short clips. One copy shared by both backends, so a clip gives the same input
whichever model reads it; test_clap_backends checks it equals laion_clap's own output."""
from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from .mel import AmplitudeToDB, MelSpectrogram

# HTSAT-tiny's audio_cfg in laion_clap's model configs (every released checkpoint uses it)
AUDIO_CFG = dict(sample_rate=48_000, window_size=1024, hop_size=480, mel_bins=64, fmin=50, fmax=14_000)


def quantise(wave: np.ndarray) -> np.ndarray:
    """The int16 round trip laion_clap's file loader applies (float32_to_int16, int16_to_float32)."""
    return ((np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0).astype(np.float32)


def log_mel(wave: torch.Tensor, cfg: dict) -> torch.Tensor:
    """(frames, mel_bins) log-mel, as laion_clap's ``get_mel``."""
    mel = MelSpectrogram(sample_rate=cfg["sample_rate"], n_fft=cfg["window_size"], win_length=cfg["window_size"],
                         hop_length=cfg["hop_size"], center=True, pad_mode="reflect", power=2.0, norm=None, onesided=True,
                         n_mels=cfg["mel_bins"], f_min=cfg["fmin"], f_max=cfg["fmax"])(wave)
    return AmplitudeToDB(top_db=None)(mel).T


def audio_features(wave: torch.Tensor, max_len: int, fusion: bool, cfg: dict = AUDIO_CFG) -> dict[str, torch.Tensor]:
    """``{"waveform", "longer"[, "mel_fusion"]}`` for one 1-D float wave, drawing its random
    chunks from numpy's global RNG in the order laion_clap does."""
    import torchvision

    sample: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if len(wave) > max_len:
            longer = torch.tensor([True])
            if fusion:
                mel = log_mel(wave, cfg)
                chunk_frames = max_len // cfg["hop_size"] + 1
                total_frames = mel.shape[0]
                if chunk_frames == total_frames:  # longer than max_len by less than a hop
                    sample["mel_fusion"] = torch.stack([mel, mel, mel, mel], dim=0)
                    longer = torch.tensor([False])
                else:
                    ranges = np.array_split(list(range(0, total_frames - chunk_frames + 1)), 3)
                    if len(ranges[1]) == 0:
                        ranges[1] = [0]
                    if len(ranges[2]) == 0:
                        ranges[2] = [0]
                    starts = [np.random.choice(r) for r in ranges]  # front, middle, back
                    chunks = [mel[s : s + chunk_frames, :] for s in starts]
                    shrunk = torchvision.transforms.Resize(size=[chunk_frames, cfg["mel_bins"]])(mel[None])[0]
                    sample["mel_fusion"] = torch.stack([shrunk, *chunks], dim=0)
            overflow = len(wave) - max_len
            start = np.random.randint(0, overflow + 1)
            wave = wave[start : start + max_len]
        else:
            if len(wave) < max_len:  # repeat-pad
                wave = wave.repeat(int(max_len / len(wave)))
                wave = F.pad(wave, (0, max_len - len(wave)), mode="constant", value=0)
            if fusion:
                mel = log_mel(wave, cfg)
                sample["mel_fusion"] = torch.stack([mel, mel, mel, mel], dim=0)
            longer = torch.tensor([False])
    sample["longer"] = longer
    sample["waveform"] = wave
    return sample


def clip_features(wave: np.ndarray, max_len: int, fusion: bool, cfg: dict = AUDIO_CFG) -> dict[str, torch.Tensor]:
    """``audio_features`` of a quantised clip with numpy's RNG seeded by the clip, so that an item
    always gives the same input, alone or in a batch (the caller's RNG state is restored)."""
    wave = quantise(wave)
    seed = int.from_bytes(hashlib.sha256(wave.tobytes()).digest()[:4], "little")
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return audio_features(torch.from_numpy(wave).float(), max_len, fusion, cfg)
    finally:
        np.random.set_state(state)
