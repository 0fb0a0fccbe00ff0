"""Turning raw items into the fixed-size inputs the mini towers take. The data builder, the
trainer and the plugin all go through these functions, so training and use see the same input."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcrgraph.errors import DataError
from mcrgraph.io.media import pil_image
from mcrgraph.io.media import read_audio  # noqa: F401  (the builder reads sound files through here)
from mcrgraph.io.media import resample as _resample
from mcrgraph.io.pointcloud import load_point_cloud

SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 512, 160, 40
FRAMES = 128  # 1.28 s: the longest spoken number ("seventy") fits
TOP_DB = 80.0  # dynamic range kept below each clip's loudest bin, as librosa's top_db
DITHER_DB = -60.0  # faint fixed noise under every clip, so studio silence looks like a real room
IMAGE_SIZE = 32
POINTS = 1024


def resample(wave: np.ndarray, sr: int, target: int = SAMPLE_RATE) -> np.ndarray:
    return _resample(wave, sr, target)


def _mel_filters() -> torch.Tensor:
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(20.0), mel(SAMPLE_RATE / 2), N_MELS + 2))
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return torch.from_numpy(tri.astype(np.float32))  # (N_MELS, N_FFT//2+1)


_MEL = _mel_filters()
_WINDOW = torch.hann_window(400)


def fit_length(wave: np.ndarray, samples: int = (FRAMES - 1) * HOP) -> np.ndarray:
    """Crop to the loudest ``samples`` (where the word is) or pad with silence, centred."""
    if len(wave) >= samples:
        energy = np.convolve(wave.astype(np.float64) ** 2, np.ones(HOP), mode="valid")
        cum = np.concatenate([[0.0], np.cumsum(energy[::HOP])])
        span = (samples - HOP) // HOP
        start = int(np.argmax(cum[span:] - cum[:-span])) * HOP if len(cum) > span else 0
        start = min(start, len(wave) - samples)  # the last window may start past the end's reach
        return wave[start:start + samples]
    pad = samples - len(wave)
    return np.pad(wave, (pad // 2, pad - pad // 2))


def log_mel(wave: np.ndarray, sr: int) -> np.ndarray:
    """A mono wave at any rate -> uint8 (N_MELS, FRAMES) log-mel image: each clip's loudest bin
    maps to 255 and TOP_DB below it to 0, so overall gain does not matter."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or len(wave) == 0:
        raise DataError(f"audio must be a non-empty mono wave, got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise DataError("audio has NaN or infinite samples")
    x = fit_length(resample(wave, sr))
    peak = float(np.abs(x).max()) or 1.0
    noise = np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    x = torch.from_numpy(x + peak * 10 ** (DITHER_DB / 20) * noise)
    spec = torch.stft(x, N_FFT, HOP, win_length=400, window=_WINDOW, center=True, return_complex=True)
    power = _MEL @ spec.abs().pow(2)
    db = 10.0 * torch.log10(power.clamp_min(1e-10))
    db = (db - db.max()).clamp_min(-TOP_DB)
    return ((db + TOP_DB) * (255.0 / TOP_DB)).round().to(torch.uint8).numpy()[:, :FRAMES]


def audio_input(item: Any) -> np.ndarray:
    """A path to a sound file, or a 1-D wave at SAMPLE_RATE, or an already computed
    (N_MELS, FRAMES) uint8 log-mel -> the log-mel."""
    if isinstance(item, (str, Path)):
        return log_mel(*read_audio(item))
    arr = np.asarray(item)
    if arr.ndim == 2 and arr.shape == (N_MELS, FRAMES) and arr.dtype == np.uint8:
        return arr
    if arr.ndim == 1:
        return log_mel(arr, SAMPLE_RATE)
    raise DataError(f"audio items are file paths, 1-D waves at {SAMPLE_RATE} Hz or uint8 ({N_MELS}, {FRAMES}) log-mels; got shape {arr.shape}")


def image_input(item: Any) -> np.ndarray:
    """A path, a PIL image, or an (H, W[, C]) array -> uint8 (IMAGE_SIZE, IMAGE_SIZE, 3).
    Float arrays are taken as 0..1."""
    from PIL import Image

    if isinstance(item, np.ndarray) and item.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and item.dtype == np.uint8:
        return item
    im = pil_image(item)
    return np.asarray(im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR), dtype=np.uint8)


def points_input(item: Any, seed: int = 0) -> np.ndarray:
    """A .npy/.ply/.obj path or an (N, 3) array -> float32 (POINTS, 3), centred, unit ball."""
    return load_point_cloud(item, POINTS, seed=seed)
