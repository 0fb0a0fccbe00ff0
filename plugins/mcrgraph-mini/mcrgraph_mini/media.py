"""What the bundled items show a person (the ``item_media`` hook): images as they are, point
clouds as their points, and sounds re-synthesised from the stored log-mel (the bundle keeps
only the log-mel the towers read, not the waves): Griffin-Lim phase recovery on the
least-squares linear spectrogram. Heard through mini-clap again, such a sound embeds within
a cosine of about 0.97 of the log-mel it came from (tests/test_serve_media.py)."""
from __future__ import annotations

import functools

import numpy as np
import torch

from . import features as F

GRIFFIN_LIM_ITERATIONS = 24


@functools.lru_cache(maxsize=1)
def _mel_pinv() -> torch.Tensor:
    return torch.linalg.pinv(F._MEL)


def wave_of(log_mel: np.ndarray) -> np.ndarray:
    """A uint8 (N_MELS, FRAMES) log-mel -> a mono float32 wave at SAMPLE_RATE, peak 0.9."""
    db = log_mel.astype(np.float32) * (F.TOP_DB / 255.0) - F.TOP_DB
    magnitude = (_mel_pinv() @ torch.from_numpy(10 ** (db / 10))).clamp_min(0).sqrt()
    n, options = (F.FRAMES - 1) * F.HOP, dict(n_fft=F.N_FFT, hop_length=F.HOP, win_length=400, window=F._WINDOW, center=True)
    phase = torch.exp(2j * np.pi * torch.rand(magnitude.shape, generator=torch.Generator().manual_seed(0)))
    for _ in range(GRIFFIN_LIM_ITERATIONS):
        wave = torch.istft(magnitude * phase, length=n, **options)
        phase = torch.exp(1j * torch.stft(wave, return_complex=True, **options).angle())
    wave = torch.istft(magnitude * phase, length=n, **options)
    return (wave / wave.abs().max().clamp_min(1e-8) * 0.9).numpy().astype(np.float32)


def item_media(modality: str, item: str):
    from .world import bundled

    data = bundled().lookup(modality, item)
    if modality == "audio":
        return wave_of(data), F.SAMPLE_RATE
    if modality == "3d":
        return np.asarray(data, dtype=np.float32)
    return np.asarray(data, dtype=np.uint8)
