"""Sounds for the mini world: espeak-ng voices (training and memory), festival voices and the
asterisk recordings (held out), event sounds, and the wave augmentations. Every stored clip
is a wave that goes through ``features.log_mel``."""
from __future__ import annotations

import functools
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .features import FRAMES, HOP, SAMPLE_RATE, log_mel, read_audio, resample

SR = SAMPLE_RATE
WINDOW = (FRAMES - 1) * HOP  # the samples log_mel keeps (features.fit_length)
ESPEAK_BASES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
# espeak-ng voice variants (--voices=variant) that sound like a person; the robot, whisper,
# croak and novelty ones are left out. mbrola voices (mb-*) need the mbrola program and are not used.
ESPEAK_VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
    "klatt4", "klatt5", "klatt6", "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Gene", "Hugo", "Jacky",
    "Lee", "Marco", "Mario", "Michael", "Mike", "Storm", "adam", "anika", "aunty", "belinda", "benjamin", "boris",
    "caleb", "david", "ed", "edward", "grandma", "grandpa", "iven", "john", "linda", "max", "norbert", "paul",
    "quincy", "rob", "robert", "shelby", "steph", "travis", "victor", "zac",
]
FESTIVAL_VOICES = {"festival-kal": "voice_kal_diphone", "festival-ked": "voice_ked_diphone",
                   "festival-slt": "voice_cmu_us_slt_arctic_hts"}


class BuildError(RuntimeError):
    pass


def _need(program: str, package: str) -> str:
    path = shutil.which(program)
    if not path:
        raise BuildError(f"{program} is missing: apt-get install {package}")
    return path


def espeak(text: str, voice: str, speed: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """espeak-ng speaking ``text`` -> (wave, rate)."""
    import soundfile

    r = subprocess.run([_need("espeak-ng", "espeak-ng"), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
                       capture_output=True, timeout=60)
    if r.returncode != 0 or len(r.stdout) < 100:
        raise BuildError(f"espeak-ng -v {voice} failed: {r.stderr.decode(errors='replace')[:200]}")
    wave, sr = soundfile.read(io.BytesIO(r.stdout), dtype="float32", always_2d=True)
    return wave.mean(axis=1), int(sr)


def usable_voices() -> tuple[list[str], list[str]]:
    """The espeak bases and variants that work here (each tried once, speaking a word)."""
    def ok(voice: str) -> bool:
        try:
            w, _ = espeak("seven", voice)
        except BuildError:
            return False
        return len(w) > 1000 and float(np.abs(w).max()) > 0.01

    bases = [b for b in ESPEAK_BASES if ok(b)]
    if not bases:
        raise BuildError("no English espeak-ng voice works: apt-get install espeak-ng")
    variants = [v for v in ESPEAK_VARIANTS if ok(f"en-us+{v}")]
    return bases, variants


def festival(voice_fn: str, texts: list[str], folder: Path) -> list[Path]:
    """One festival process speaks every text with one voice -> a wav per text."""
    _need("festival", "festival")
    folder.mkdir(parents=True, exist_ok=True)
    outs = [folder / f"{i}.wav" for i in range(len(texts))]
    lines = [f"({voice_fn})"]
    for t, o in zip(texts, outs):
        clean = t.replace('"', "").replace("\\", "")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{clean}")) "{o}" \'riff)')
    script = folder / "say.scm"
    script.write_text("\n".join(lines) + "\n")
    r = subprocess.run(["festival", "--batch", str(script)], capture_output=True, timeout=1800)
    missing = [o for o in outs if not o.exists()]
    if r.returncode != 0 or missing:
        raise BuildError(f"festival ({voice_fn}) failed; is its voice package installed? {r.stderr.decode(errors='replace')[-300:]}")
    return outs


# -- augmentation --------------------------------------------------------------------------

def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (tape style: pitch moves with it)."""
    from scipy.signal import resample

    return resample(x, max(16, int(round(len(x) / factor)))).astype(np.float32)


def _reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.7)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir *= rng.uniform(0.1, 0.6) / (np.sqrt((ir ** 2).sum()) + 1e-9)  # reverberant energy vs the direct path
    ir[0] = 1.0
    return fftconvolve(x, ir)[: len(x) + n // 2].astype(np.float32)


def _noise(x: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    n = rng.standard_normal(len(x))
    if rng.random() < 0.5:  # pink: 1/f power
        spec = np.fft.rfft(n)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        n = np.fft.irfft(spec / np.sqrt(f), len(x))
    frames = x[: len(x) // 160 * 160].reshape(-1, 160) if len(x) >= 160 else x[None, :]
    energy = (frames.astype(np.float64) ** 2).mean(axis=1)
    active = energy[energy >= 0.01 * energy.max()] if energy.max() > 0 else energy
    p_sig = float(active.mean()) if len(active) else 1e-6
    n = n / (np.sqrt((n ** 2).mean()) + 1e-12) * np.sqrt(p_sig / 10 ** (snr_db / 10))
    return (x + n).astype(np.float32)


def _telephone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Band-limit like a telephone line: 300-3400 Hz, through 8 kHz, sometimes mu-law."""
    from scipy.signal import butter, resample_poly, sosfilt

    sos = butter(4, [rng.uniform(250, 350), rng.uniform(3200, 3500)], btype="band", fs=SR, output="sos")
    y = resample_poly(sosfilt(sos, x), 1, 2)
    if rng.random() < 0.4:
        peak = float(np.abs(y).max()) or 1.0
        mu = 255.0
        c = np.sign(y / peak) * np.log1p(mu * np.abs(y / peak)) / np.log1p(mu)
        c = np.round(c * 127) / 127
        y = peak * np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu
    return resample_poly(y, 2, 1).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator, telephone: float = 0.6, crop: bool = False) -> np.ndarray:
    """A 16 kHz wave -> a randomly altered copy: crop (long sounds), speed/pitch, reverb, time
    shift, noise (white/pink, 5-30 dB SNR), telephone band, gain."""
    x = np.asarray(x, dtype=np.float32)
    if crop and len(x) > int(1.4 * SR):
        n = int(rng.uniform(1.3, 3.0) * SR)
        if n < len(x):
            s = int(rng.integers(0, len(x) - n + 1))
            x = x[s:s + n]
    if rng.random() < 0.8:
        x = _speed(x, rng.uniform(0.8, 1.12))
    if rng.random() < 0.45:
        x = _reverb(x, rng)
    x = x / (float(np.abs(x).max()) or 1.0)
    if len(x) < WINDOW:  # time shift: a random place in the window log_mel keeps, so noise fills it all
        at = int(rng.integers(0, WINDOW - len(x) + 1))
        x = np.pad(x, (at, WINDOW - len(x) - at))
    if rng.random() < 0.65:  # the held-out voices are clean: more clips at high SNR than low
        x = _noise(x, rng, 5 + 25 * np.sqrt(rng.random()))
    if rng.random() < telephone:
        x = _telephone(x, rng)
    x = x / (float(np.abs(x).max()) or 1.0) * rng.uniform(0.2, 0.95)
    return x.astype(np.float32)


# -- jobs (run in worker processes; each returns uint8 log-mels) ----------------------------

def trim(x: np.ndarray, floor_db: float = -45.0, margin: float = 0.03) -> np.ndarray:
    """Cut the silence before and after the sound (espeak adds about 0.3 s after a word)."""
    n = len(x) // 160 * 160
    if n == 0:
        return x
    energy = (x[:n].astype(np.float64) ** 2).reshape(-1, 160).mean(axis=1)
    loud = np.flatnonzero(energy > energy.max() * 10 ** (floor_db / 10))
    pad = int(margin * SR)
    return x[max(0, loud[0] * 160 - pad): min(len(x), (loud[-1] + 1) * 160 + pad)]


def job_espeak(text: str, voice: str, speed: int, pitch: int, seeds: list[int]) -> list[np.ndarray]:
    """One espeak utterance, augmented once per seed."""
    wave, sr = espeak(text, voice, speed, pitch)
    x = trim(resample(wave, sr, SR))
    return [log_mel(augment(x, np.random.default_rng(s)), SR) for s in seeds]


@functools.lru_cache(maxsize=64)
def _sound(path: str) -> np.ndarray:
    wave, sr = read_audio(path)
    return resample(wave, sr, SR)


def job_event(path: str, seeds: list[int]) -> list[np.ndarray]:
    x = _sound(path)
    return [log_mel(augment(x, np.random.default_rng(s), telephone=0.3, crop=True), SR) for s in seeds]


def job_file(path: str) -> list[np.ndarray]:
    """A recording as it is (held-out voices)."""
    return [log_mel(*read_audio(path))]


def festival_all(jobs: dict[str, list[str]], folder: Path, workers: int) -> dict[str, list[Path]]:
    """Every festival voice speaking its texts, up to ``workers`` voices at a time."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, workers)) as ex:
        futs = {src: ex.submit(festival, FESTIVAL_VOICES[src], texts, folder / src) for src, texts in jobs.items()}
        return {src: f.result() for src, f in futs.items()}


def temp_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="mini-build-")
