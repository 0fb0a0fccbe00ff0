"""The two torchaudio transforms laion_clap's feature code uses, in plain torch (features.py).

laion_clap computes its log-mel input with ``torchaudio.transforms.MelSpectrogram`` and
``AmplitudeToDB``; torchaudio has no release for the torch that open_clip's torchvision needs
here, and laion_clap's own feature code then fails with ``'NoneType' object has no attribute
'transforms'``. These
follow torchaudio's definitions (periodic Hann window, reflect padding, HTK mel scale, no
filter normalisation; dB = 10 log10(max(x, 1e-10))); a test checks them against librosa with
the settings laion_clap's own comments name."""
from __future__ import annotations

import math

import torch


def _hz_to_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_filters(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """(n_freqs, n_mels) triangular HTK filters, as torchaudio.functional.melscale_fbanks."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


class MelSpectrogram(torch.nn.Module):
    def __init__(self, sample_rate: int, n_fft: int, win_length: int | None = None, hop_length: int | None = None,
                 center: bool = True, pad_mode: str = "reflect", power: float = 2.0, norm=None, onesided: bool = True,
                 n_mels: int = 128, f_min: float = 0.0, f_max: float | None = None):
        super().__init__()
        if norm is not None or not onesided:
            raise NotImplementedError("only norm=None, onesided=True (what laion_clap asks for)")
        self.n_fft, self.win_length = n_fft, win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.center, self.pad_mode, self.power = center, pad_mode, power
        self.register_buffer("window", torch.hann_window(self.win_length))
        self.register_buffer("fb", mel_filters(n_fft // 2 + 1, f_min, f_max or sample_rate / 2, n_mels, sample_rate))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop_length, self.win_length, self.window, center=self.center,
                          pad_mode=self.pad_mode, normalized=False, onesided=True, return_complex=True)
        spec = spec.abs().pow(self.power)
        return torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)  # (..., n_mels, frames)


class AmplitudeToDB(torch.nn.Module):
    def __init__(self, stype: str = "power", top_db: float | None = None):
        super().__init__()
        if stype != "power" or top_db is not None:
            raise NotImplementedError("only stype='power', top_db=None (what laion_clap asks for)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(x, min=1e-10))
